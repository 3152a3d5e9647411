"""Device memory and streams through cuda-python (`cuda.bindings`), imported only when first used.

A `DeviceArray` is a C-contiguous buffer in device memory with a numpy shape and dtype: what the kernels in
`runtime.gpu.kernels` take and return, and what a TensorRT backend binds by pointer. Memory is stream-ordered
(cudaMallocAsync / cudaFreeAsync on the stream it was made on), so temporaries cost no device synchronisation;
use an array on its own stream, or synchronise before handing it to another. A `Stream` wraps a cudaStream_t
handle and the device it belongs to; anywhere a stream is taken, a Stream, a raw handle (int) or None (the legacy
default stream) will do.

Devices: nothing here changes the calling thread's current device for longer than one call. Work for device N
runs inside `use_device(N)`, which makes N current and restores the thread's previous device afterwards, so an
application's own CUDA code on another device is never disturbed (issue 19, item 6).
"""

from __future__ import annotations

import contextlib
import math
import sys

import numpy as np

from sam2_trt.core.errors import BackendUnavailable

INSTALL_HINT = "pip install 'sam2-trt[gpu]' (cuda-bindings and nvidia-cuda-nvrtc)"


class CudaUnavailable(BackendUnavailable):
    """No usable CUDA here: cuda-bindings, the driver or a device is missing (the message says which)."""


class CudaError(RuntimeError):
    """A CUDA runtime or driver call failed; the message names the call and the error."""


def cuda_runtime():
    """The `cuda.bindings.runtime` module, or CudaUnavailable saying how to install it."""
    try:
        from cuda.bindings import runtime
    except ImportError as e:
        raise CudaUnavailable(f"cuda-bindings is not installed ({e}); {INSTALL_HINT}") from e
    return runtime


def cuda_driver():
    try:
        from cuda.bindings import driver
    except ImportError as e:
        raise CudaUnavailable(f"cuda-bindings is not installed ({e}); {INSTALL_HINT}") from e
    return driver


def check(result, what: str):
    """Unpack a cuda.bindings result tuple (error, *values): the value(s), or CudaError naming `what`."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        name = getattr(err, "name", str(err))
        raise CudaError(f"{what} failed: {name}")
    return values[0] if len(values) == 1 else tuple(values) or None


def unavailable_reason(device_id: int = 0) -> str | None:
    """None when CUDA device `device_id` can run kernels here, else why not (the package, driver or device),
    always with the driver's and the runtime's CUDA versions (versions.py)."""
    from .versions import installed_versions, no_device_reason

    try:
        runtime = cuda_runtime()
        err, count = runtime.cudaGetDeviceCount()
    except CudaUnavailable as e:
        return str(e)
    except Exception as e:  # the driver library itself is missing (cuda.pathfinder raises its own error)
        return f"the NVIDIA driver could not be loaded ({type(e).__name__}: {e}); {installed_versions().describe()}"
    if int(err) != 0:
        return no_device_reason(getattr(err, "name", str(err)), installed_versions())
    if device_id >= count:
        return f"CUDA device {device_id} does not exist ({count} device(s) found)"
    return None


_READY: set = set()  # devices whose availability was checked and whose primary context exists


@contextlib.contextmanager
def use_device(device_id: int):
    """Run the block with `device_id`'s primary context current on this thread (allocations, streams, module
    loads and TensorRT calls need it), then restore the thread's previous device. CudaUnavailable, with the
    reason, for a device that cannot run here."""
    device_id = int(device_id)
    runtime = cuda_runtime()
    if device_id not in _READY:
        reason = unavailable_reason(device_id)
        if reason:
            raise CudaUnavailable(reason)
    previous = check(runtime.cudaGetDevice(), "cudaGetDevice")
    if previous != device_id:
        check(runtime.cudaSetDevice(device_id), f"cudaSetDevice({device_id})")
    try:
        if device_id not in _READY:
            check(runtime.cudaFree(0), "cudaFree(0) (context initialisation)")
            _READY.add(device_id)
        yield
    finally:
        if previous != device_id:
            runtime.cudaSetDevice(previous)


def current_device() -> int:
    return check(cuda_runtime().cudaGetDevice(), "cudaGetDevice")


def compute_capability(device_id: int = 0) -> tuple[int, int]:
    runtime = cuda_runtime()
    attr = runtime.cudaDeviceAttr
    major = check(runtime.cudaDeviceGetAttribute(attr.cudaDevAttrComputeCapabilityMajor, device_id), "cc major")
    minor = check(runtime.cudaDeviceGetAttribute(attr.cudaDevAttrComputeCapabilityMinor, device_id), "cc minor")
    return int(major), int(minor)


def device_name(device_id: int = 0) -> str:
    """The GPU's marketing name, e.g. "NVIDIA H100 80GB HBM3" (cudaDeviceProp.name)."""
    props = check(cuda_runtime().cudaGetDeviceProperties(device_id), f"cudaGetDeviceProperties({device_id})")
    name = props.name
    return (name.split(b"\0", 1)[0].decode() if isinstance(name, bytes) else str(name)).strip()


def retain_pool_memory(device_id: int = 0) -> None:
    """Let the device's default memory pool keep freed memory (release threshold = max) instead of returning it
    to the driver at every synchronisation, so per-frame stream-ordered allocations are reused, not remapped
    (the CUDA programming guide's advice for cudaMallocAsync). Best effort: a failure only costs speed."""
    try:
        runtime, driver = cuda_runtime(), cuda_driver()
        pool = check(runtime.cudaDeviceGetDefaultMemPool(device_id), "cudaDeviceGetDefaultMemPool")
        check(runtime.cudaMemPoolSetAttribute(pool, runtime.cudaMemPoolAttr.cudaMemPoolAttrReleaseThreshold,
                                              driver.cuuint64_t(0xFFFFFFFFFFFFFFFF)), "cudaMemPoolSetAttribute")
    except CudaError:
        pass


class Stream:
    """A cudaStream_t handle (`handle`, an int; 0 is the legacy default stream) and its device (`device_id`,
    None when unknown: a raw handle someone else made). `Stream.create(device_id)` makes a non-blocking stream
    on that device, which this object destroys; `Stream(handle)` wraps a stream someone else owns."""

    def __init__(self, handle: int = 0, owned: bool = False, device_id: int | None = None):
        self.handle = int(handle)
        self.device_id = device_id
        self._owned = owned

    @classmethod
    def create(cls, device_id: int | None = None) -> "Stream":
        """A new non-blocking stream on `device_id` (default: the thread's current device)."""
        runtime = cuda_runtime()
        device_id = current_device() if device_id is None else int(device_id)
        with use_device(device_id):
            handle = check(runtime.cudaStreamCreateWithFlags(runtime.cudaStreamNonBlocking), "cudaStreamCreate")
        return cls(int(handle), owned=True, device_id=device_id)

    def synchronize(self) -> None:
        check(cuda_runtime().cudaStreamSynchronize(self.handle), "cudaStreamSynchronize")

    def __int__(self) -> int:
        return self.handle

    def __del__(self):
        # At interpreter shutdown the CUDA libraries may already be unloaded, and the process exit releases the
        # stream anyway. Otherwise wait for the stream's work (stream-ordered frees included) before destroying
        # it, so nothing enqueued on it outlives it.
        if getattr(self, "_owned", False) and not sys.is_finalizing():
            try:
                runtime = cuda_runtime()
                runtime.cudaStreamSynchronize(self.handle)
                runtime.cudaStreamDestroy(self.handle)
            except Exception:  # the context is gone (the application reset the device)
                pass

    def __repr__(self) -> str:
        return f"Stream(0x{self.handle:x}, device {self.device_id})"


def as_stream(stream, device_id: int | None = None) -> Stream:
    """A Stream from a Stream, a raw cudaStream_t handle (int) or None (the legacy default stream); a raw
    handle is taken to belong to `device_id`."""
    if isinstance(stream, Stream):
        return stream
    return Stream(0 if stream is None else int(stream), device_id=device_id)


# ---- `__cuda_array_interface__` streams (version 3 of the protocol) ---------------------------------------------
# The protocol's "stream" field: None (absent) means no synchronisation is needed, 1 the legacy default stream,
# 2 the per-thread default stream, anything else a cudaStream_t; 0 is forbidden as ambiguous. 1 and 2 are also the
# runtime API's own handles for those streams (cudaStreamLegacy, cudaStreamPerThread), so a value can be used as
# a handle as it is.
def interface_stream(handle: int) -> int:
    """The "stream" value to export for work enqueued on stream `handle` (0, the legacy default, becomes 1)."""
    return 1 if int(handle) == 0 else int(handle)


def producer_stream_to_wait_for(cai: dict, consumer_handle: int | None) -> int | None:
    """The stream a consumer on `consumer_handle` must wait for before reading the array `cai` describes, or None
    when no wait is needed (no stream given, or the consumer's own stream). ValueError for the forbidden 0."""
    producer = cai.get("stream")
    if producer is None:
        return None
    producer = int(producer)
    if producer == 0:
        raise ValueError("__cuda_array_interface__ gives stream 0, which the protocol forbids (use 1 for the legacy "
                         "default stream, 2 for the per-thread default stream)")
    if consumer_handle is not None and producer == interface_stream(consumer_handle):
        return None
    return producer


def wait_for_producer(cai: dict, consumer: "Stream | None") -> None:
    """Order `consumer` after the work pending on the array's producer stream: an event recorded there that the
    consumer waits for (no host synchronisation). With no consumer stream (a library whose stream we do not
    know) the producer stream is synchronised instead."""
    producer = producer_stream_to_wait_for(cai, None if consumer is None else consumer.handle)
    if producer is None:
        return
    runtime = cuda_runtime()
    if consumer is None:
        check(runtime.cudaStreamSynchronize(producer), "cudaStreamSynchronize (the array's producer stream)")
        return
    event = check(runtime.cudaEventCreateWithFlags(runtime.cudaEventDisableTiming), "cudaEventCreateWithFlags")
    try:
        check(runtime.cudaEventRecord(event, producer), "cudaEventRecord (the array's producer stream)")
        check(runtime.cudaStreamWaitEvent(consumer.handle, event, 0), "cudaStreamWaitEvent")
    finally:
        runtime.cudaEventDestroy(event)  # released once the wait has happened


# The four memory primitives, module-level so that one seam holds every allocation and copy.
def malloc(nbytes: int, stream: Stream) -> int:
    runtime = cuda_runtime()
    return int(check(runtime.cudaMallocAsync(max(nbytes, 1), stream.handle), f"cudaMallocAsync({nbytes} B)"))


def free(ptr: int, stream: Stream) -> None:
    check(cuda_runtime().cudaFreeAsync(ptr, stream.handle), "cudaFreeAsync")


def memcpy(dst: int, src: int, nbytes: int, kind: str, stream: Stream) -> None:
    """kind: 'h2d', 'd2h' or 'd2d'. Host pointers may be pageable (staged by CUDA) or pinned (truly async)."""
    runtime = cuda_runtime()
    k = {"h2d": runtime.cudaMemcpyKind.cudaMemcpyHostToDevice, "d2h": runtime.cudaMemcpyKind.cudaMemcpyDeviceToHost,
         "d2d": runtime.cudaMemcpyKind.cudaMemcpyDeviceToDevice}[kind]
    if nbytes:
        check(runtime.cudaMemcpyAsync(dst, src, nbytes, k, stream.handle), f"cudaMemcpyAsync ({kind}, {nbytes} B)")


def memset(ptr: int, byte: int, nbytes: int, stream: Stream) -> None:
    if nbytes:
        check(cuda_runtime().cudaMemsetAsync(ptr, byte, nbytes, stream.handle), "cudaMemsetAsync")


class DeviceArray:
    """A C-contiguous array in device memory: `shape`, numpy `dtype`, device address `ptr`.

    Owned arrays (from `empty`, `from_host`, ...) are freed on their stream when collected or `free()`d; views
    (`reshape`, `wrap`) keep their base alive and free nothing.
    """

    def __init__(self, ptr: int, shape, dtype, *, base=None, stream: Stream | None = None, owned: bool = False):
        self.ptr = int(ptr)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self._base = base
        self._stream = stream if stream is not None else Stream(0)
        self._owned = owned

    # ---- construction ----------------------------------------------------------------------------------------
    @classmethod
    def empty(cls, shape, dtype, stream=None) -> "DeviceArray":
        stream = as_stream(stream)
        shape = tuple(int(s) for s in shape)
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        return cls(malloc(nbytes, stream), shape, dtype, stream=stream, owned=True)

    @classmethod
    def zeros(cls, shape, dtype, stream=None) -> "DeviceArray":
        out = cls.empty(shape, dtype, stream)
        memset(out.ptr, 0, out.nbytes, out._stream)
        return out

    @classmethod
    def from_host(cls, array, stream=None) -> "DeviceArray":
        """Copy a host array in (enqueued on `stream`; from pinned memory the copy is asynchronous)."""
        array = np.ascontiguousarray(array)
        out = cls.empty(array.shape, array.dtype, stream)
        memcpy(out.ptr, array.ctypes.data, array.nbytes, "h2d", out._stream)
        return out

    @classmethod
    def wrap(cls, ptr: int, shape, dtype, owner=None) -> "DeviceArray":
        """A view of memory someone else owns (an OrtValue's or a TensorRT binding's); `owner` is kept alive."""
        return cls(ptr, shape, dtype, base=owner)

    @classmethod
    def from_cuda_array_interface(cls, obj, stream=None) -> "DeviceArray":
        """A view of any object with `__cuda_array_interface__` (CuPy, torch CUDA tensors); C-contiguous only.
        When the object names the stream it was made on, `stream` (where the view will be used; None: the
        legacy default stream) waits for that stream's pending work first."""
        cai = obj.__cuda_array_interface__
        dtype, shape = np.dtype(cai["typestr"]), tuple(cai["shape"])
        strides = cai.get("strides")
        if strides is not None and tuple(strides) != tuple(np.empty(shape, dtype).strides):
            raise ValueError(f"only C-contiguous device arrays can be wrapped, got strides {strides} for {shape}")
        wait_for_producer(cai, as_stream(stream))
        return cls.wrap(cai["data"][0], shape, dtype, owner=obj)

    # ---- properties ------------------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def stream(self) -> Stream:
        return self._stream

    @property
    def __cuda_array_interface__(self) -> dict:
        """Version 3, with the stream the array's pending work is on (a consumer elsewhere waits for it)."""
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.ptr, False), "version": 3,
                "strides": None, "stream": interface_stream(self._stream.handle)}

    # ---- operations ------------------------------------------------------------------------------------------
    def reshape(self, *shape) -> "DeviceArray":
        shape = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape
        if -1 in shape:
            known = math.prod(s for s in shape if s != -1)
            shape = tuple(self.size // max(known, 1) if s == -1 else s for s in shape)
        if math.prod(shape) != self.size:
            raise ValueError(f"cannot reshape a device array of shape {self.shape} to {shape}")
        return DeviceArray(self.ptr, shape, self.dtype, base=self, stream=self._stream)

    def to_host(self, stream=None, out: np.ndarray | None = None) -> np.ndarray:
        """Copy to the host (on `stream`, default the array's own) and wait for the copy."""
        stream = self._stream if stream is None else as_stream(stream)
        out = np.empty(self.shape, self.dtype) if out is None else out
        if out.shape != self.shape or out.dtype != self.dtype or not out.flags.c_contiguous:
            raise ValueError(f"out must be C-contiguous {self.shape} {self.dtype}, got {out.shape} {out.dtype}")
        memcpy(out.ctypes.data, self.ptr, self.nbytes, "d2h", stream)
        stream.synchronize()
        return out

    def copy(self, stream=None) -> "DeviceArray":
        stream = self._stream if stream is None else as_stream(stream)
        out = DeviceArray.empty(self.shape, self.dtype, stream)
        memcpy(out.ptr, self.ptr, self.nbytes, "d2d", stream)
        return out

    def free(self) -> None:
        """Release the memory now (stream-ordered); later use of this array or its views is an error."""
        if self._owned and self.ptr:
            self._owned = False
            free(self.ptr, self._stream)
            self.ptr = 0

    def __del__(self):
        if sys.is_finalizing():  # the CUDA libraries may be gone already; the process exit frees everything
            return
        try:
            self.free()
        except Exception:  # the context is gone (the application reset the device)
            pass

    def __repr__(self) -> str:
        return f"DeviceArray(shape={self.shape}, dtype={self.dtype}, ptr=0x{self.ptr:x})"
