"""A CUDA runtime in host memory: the GPU-side logic of the runtime, tested on a machine without a GPU.

`CudaEmulator` stands in for `cuda.bindings.runtime` (and the few `cuda.bindings.driver` calls the runtime makes)
with the calls runtime/gpu/device.py, the TensorRT backend and its CUDA graphs use. Device memory is host memory,
so pointers are real addresses and copies are memmoves. What it models, because the tests are about it:

  * uninitialised memory: a fresh allocation is filled with 0xA5 bytes (an int32 of -1515870811, far outside any
    index range), as device memory holds garbage;
  * devices: each thread has a current device; every stream, allocation, event and context records its device;
  * stream capture: work enqueued on a capturing stream is recorded, and replayed by cudaGraphLaunch; a capture
    can be made to fail (`invalidate_captures`);
  * sticky errors: once an illegal address happened (`sticky`), every later call fails, as on a real GPU;
  * checked pointers: a copy, set or free outside a live allocation fails (cudaErrorInvalidValue).

It does not model asynchrony: enqueued work runs at once. `install(monkeypatch)` puts it where
`from cuda.bindings import runtime` finds it.
"""

from __future__ import annotations

import ctypes
import enum
import threading
from types import SimpleNamespace

import numpy as np

POISON = 0xA5


class cudaError_t(enum.IntEnum):  # noqa: N801  (the name cuda.bindings gives it)
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorInvalidDevice = 101
    cudaErrorInvalidResourceHandle = 400
    cudaErrorIllegalAddress = 700
    cudaErrorStreamCaptureInvalidated = 901


OK = cudaError_t.cudaSuccess


class CudaEmulator:
    cudaStreamNonBlocking = 1
    cudaEventDisableTiming = 2
    cudaMemcpyKind = SimpleNamespace(cudaMemcpyHostToDevice="h2d", cudaMemcpyDeviceToHost="d2h",
                                     cudaMemcpyDeviceToDevice="d2d")
    cudaDeviceAttr = SimpleNamespace(cudaDevAttrComputeCapabilityMajor="major",
                                     cudaDevAttrComputeCapabilityMinor="minor")
    cudaMemPoolAttr = SimpleNamespace(cudaMemPoolAttrReleaseThreshold="release_threshold")
    cudaStreamCaptureMode = SimpleNamespace(cudaStreamCaptureModeThreadLocal="thread_local")

    def __init__(self, devices: int = 2, capability=(9, 0), driver: int = 13000, runtime: int = 13050):
        self.devices, self.capability, self.driver, self.runtime = devices, capability, driver, runtime
        self.memory: dict = {}  # ptr -> (buffer, device)
        self.streams: dict = {}  # handle -> {"device", "capture"}
        self.graphs: dict = {}  # handle -> list of recorded operations
        self.log: list = []  # (what, device, ...) of every allocation, stream, event, context and launch
        self.sticky: cudaError_t | None = None
        self.invalidate_captures = False
        self._local = threading.local()
        self._next = 0x1000

    # ---- plumbing -----------------------------------------------------------------------------------------
    def _handle(self) -> int:
        self._next += 0x10
        return self._next

    def current_device(self) -> int:
        return getattr(self._local, "device", 0)

    def stream_device(self, handle: int) -> int:
        """The device of a stream (the legacy and per-thread default streams: the current device's)."""
        return self.streams[handle]["device"] if handle in self.streams else self.current_device()

    def _failed(self, *values):
        return (self.sticky, *values) if self.sticky is not None else None

    def _find(self, ptr: int, nbytes: int):
        """The allocation holding [ptr, ptr + nbytes), or None."""
        for base, (buf, device) in self.memory.items():
            if base <= ptr and ptr + nbytes <= base + buf.nbytes:
                return buf, device
        return None

    def view(self, ptr: int, nbytes: int) -> np.ndarray:
        """uint8 view of device memory [ptr, ptr + nbytes); AssertionError outside a live allocation."""
        assert self._find(ptr, max(nbytes, 1)) is not None, f"0x{ptr:x} (+{nbytes}) is not device memory"
        return np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(ptr)) if nbytes else np.empty(0, np.uint8)

    def enqueue(self, stream: int, work) -> None:
        """Run `work()` now, or record it when `stream` is capturing."""
        capture = self.streams.get(stream, {}).get("capture")
        if capture is not None:
            capture.append(work)
        else:
            work()

    def invalidate_capture(self, stream: int) -> None:
        self.streams[stream]["invalid"] = True

    # ---- devices and versions -----------------------------------------------------------------------------
    def cudaGetDeviceCount(self):
        return OK, self.devices

    def cudaDriverGetVersion(self):
        return OK, self.driver

    def cudaRuntimeGetVersion(self):
        return OK, self.runtime

    def cudaGetDevice(self):
        return self._failed(None) or (OK, self.current_device())

    def cudaSetDevice(self, device: int):
        if not 0 <= device < self.devices:
            return (cudaError_t.cudaErrorInvalidDevice,)
        self._local.device = device
        return (OK,)

    def cudaFree(self, ptr):
        if ptr == 0:
            self.log.append(("context", self.current_device()))
            return self._failed() or (OK,)
        raise AssertionError("the runtime frees with cudaFreeAsync")

    def cudaDeviceGetAttribute(self, attr, device: int):
        return OK, self.capability[0 if attr == "major" else 1]

    def cudaGetDeviceProperties(self, device: int):
        return OK, SimpleNamespace(name=f"Emulated GPU {device}".encode() + b"\0" * 8)

    def cudaDeviceGetDefaultMemPool(self, device: int):
        return OK, ("pool", device)

    def cudaMemPoolSetAttribute(self, pool, attr, value):
        return (OK,)

    def cudaGetLastError(self):
        return (self.sticky or OK,)

    # ---- streams and events -------------------------------------------------------------------------------
    def cudaStreamCreateWithFlags(self, flags):
        if self.sticky is not None:
            return self.sticky, None
        handle = self._handle()
        self.streams[handle] = {"device": self.current_device(), "capture": None}
        self.log.append(("stream", self.current_device(), handle))
        return OK, handle

    def cudaStreamSynchronize(self, handle):
        self.log.append(("synchronize", handle))
        return self._failed() or (OK,)

    def cudaStreamDestroy(self, handle):
        self.log.append(("destroy stream", handle))
        return (OK,) if self.streams.pop(handle, None) is not None else (cudaError_t.cudaErrorInvalidResourceHandle,)

    def cudaEventCreateWithFlags(self, flags):
        handle = self._handle()
        self.log.append(("event", self.current_device(), handle))
        return OK, handle

    def cudaEventRecord(self, event, stream):
        self.log.append(("record", event, stream))
        return self._failed() or (OK,)

    def cudaStreamWaitEvent(self, stream, event, flags):
        self.log.append(("wait", stream, event))
        return self._failed() or (OK,)

    def cudaEventDestroy(self, event):
        return (OK,)

    # ---- memory -------------------------------------------------------------------------------------------
    def cudaMallocAsync(self, nbytes: int, stream):
        if self.sticky is not None:
            return self.sticky, None
        buf = np.full(nbytes, POISON, np.uint8)
        ptr = buf.ctypes.data
        device = self.stream_device(stream)
        self.memory[ptr] = (buf, device)
        self.log.append(("malloc", device, nbytes))
        return OK, ptr

    def cudaFreeAsync(self, ptr, stream):
        if ptr not in self.memory:
            return (cudaError_t.cudaErrorInvalidValue,)
        self.enqueue(stream, lambda: self.memory.pop(ptr))
        return (OK,)

    def cudaMemcpyAsync(self, dst, src, nbytes, kind, stream):
        if self.sticky is not None:
            return (self.sticky,)
        device_ends = {"h2d": (dst,), "d2h": (src,), "d2d": (dst, src)}[kind]
        if any(self._find(p, nbytes) is None for p in device_ends):
            return (cudaError_t.cudaErrorInvalidValue,)
        self.enqueue(stream, lambda: ctypes.memmove(dst, src, nbytes))
        return (OK,)

    def cudaMemsetAsync(self, ptr, byte, nbytes, stream):
        if self._find(ptr, nbytes) is None:
            return (cudaError_t.cudaErrorInvalidValue,)
        self.enqueue(stream, lambda: ctypes.memset(ptr, byte, nbytes))
        return (OK,)

    # ---- graphs -------------------------------------------------------------------------------------------
    def cudaStreamBeginCapture(self, stream, mode):
        self.streams[stream]["capture"] = []
        self.streams[stream]["invalid"] = False
        return (OK,)

    def cudaStreamEndCapture(self, stream):
        state = self.streams[stream]
        work, state["capture"] = state["capture"], None
        if self.invalidate_captures or state.get("invalid"):
            return cudaError_t.cudaErrorStreamCaptureInvalidated, None
        handle = self._handle()
        self.graphs[handle] = work
        return OK, handle

    def cudaGraphInstantiate(self, graph, flags):
        return OK, ("exec", graph)

    def cudaGraphLaunch(self, exec_handle, stream):
        if self.sticky is not None:
            return (self.sticky,)
        self.log.append(("graph launch", self.stream_device(stream)))
        for work in self.graphs[exec_handle[1]]:
            work()
        return (OK,)

    def cudaGraphDestroy(self, graph):
        self.graphs.pop(graph, None)
        return (OK,)

    def cudaGraphExecDestroy(self, exec_handle):
        return (OK,)


class DriverEmulator:
    """The driver calls of runtime/gpu: the pool threshold's integer type and module loading, which records the
    device it happened on (kernels themselves do not run here)."""

    def __init__(self, emulator: CudaEmulator):
        self.emulator = emulator

    @staticmethod
    def cuuint64_t(value):
        return value

    def cuModuleLoadData(self, binary: bytes):
        self.emulator.log.append(("module", self.emulator.current_device()))
        return OK, ("module", self.emulator.current_device())

    def cuModuleGetFunction(self, module, name: bytes):
        return OK, (module, name.decode())


def install(monkeypatch, emulator: CudaEmulator) -> CudaEmulator:
    """Make `from cuda.bindings import runtime / driver` return the emulator for this test."""
    import sys

    import cuda.bindings
    import cuda.bindings.nvrtc  # noqa: F401  (real NVRTC compiles here; it imports the real driver module first)

    from sam2_trt.runtime.gpu import device

    driver = DriverEmulator(emulator)
    for name, module in (("runtime", emulator), ("driver", driver)):
        monkeypatch.setattr(cuda.bindings, name, module, raising=False)
        monkeypatch.setitem(sys.modules, f"cuda.bindings.{name}", module)
    monkeypatch.setattr(device, "_READY", set())
    return emulator
