"""TensorRT: engines built by `sam2-trt build` (engines/), run with cuda-python.

Per graph, one execution context. A call binds every input and output by address (`set_tensor_address`) and
enqueues with `execute_async_v3` on the backend's stream: host inputs are copied in once, device inputs
(DeviceArrays, or anything with `__cuda_array_interface__`) are bound in place, and outputs are new
DeviceArrays from the stream-ordered pool (so an output stays valid however often the graph runs again).
Nothing synchronises except `to_host`.

CUDA graphs: a call with the same input shapes as the previous call of that engine (the steady state of
tracking) is replayed from a captured graph over static buffers (inputs copied in on the device, outputs
copied out), which removes TensorRT's per-kernel launch cost, the bulk of a small graph's time; at most
`MAX_CUDA_GRAPHS` shape sets are kept per engine, and a caller's legacy default stream (0) cannot be captured,
so it runs without.

Engines are found and checked (TensorRT version, GPU, precision, ONNX sha256) as core/engine_record.py
describes, and a missing one is built by the builder the application or CLI installed (engine_builds.py); more objects than the engine's profile allows run as several calls
(object_chunks.py); any other shape outside the profile is a ShapeOutsideProfile error naming the axis.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Mapping

import numpy as np

from sam2_trt.core.engine_record import (EngineError, EngineMismatch, EngineTarget, build_command, check_record,
                             choose_precision, engine_path)
from sam2_trt.core.errors import BackendUnavailable
from sam2_trt.core.metadata import load_metadata
from sam2_trt.core.specs import GraphSpec
from .base import Backend, GraphSession
from .engine_builds import record_or_build
from .object_chunks import concat_objects, split_objects

log = logging.getLogger("sam2_trt")
INSTALL_HINT = ("install NVIDIA's TensorRT wheel for your CUDA (pip install tensorrt-cu12 or tensorrt-cu13, "
                "from pypi.nvidia.com)")
MAX_CUDA_GRAPHS = 8


def import_tensorrt():
    try:
        import tensorrt
    except ImportError as e:
        raise BackendUnavailable(f"tensorrt is not installed ({e}); {INSTALL_HINT}") from None
    return tensorrt


def current_target(precision: str, device_id: int = 0) -> EngineTarget:
    """This machine's TensorRT version and GPU, for `precision`."""
    from ..gpu.device import compute_capability, device_name

    trt = import_tensorrt()
    return EngineTarget(trt.__version__, device_name(device_id), compute_capability(device_id), precision)


def trt_logger():
    trt = import_tensorrt()
    if not hasattr(trt_logger, "instance"):  # TensorRT wants one logger per process
        trt_logger.instance = trt.Logger(trt.Logger.WARNING)
    return trt_logger.instance


def _as_device(value, dtype: str, stream):
    """A DeviceArray for one input: host arrays are copied in, device arrays are bound in place."""
    from ..gpu.device import DeviceArray

    if isinstance(value, DeviceArray):
        arr = value
    elif hasattr(value, "__cuda_array_interface__"):
        arr = DeviceArray.from_cuda_array_interface(value)
    else:
        return DeviceArray.from_host(np.ascontiguousarray(value, dtype=dtype), stream)
    if arr.dtype != np.dtype(dtype):
        raise TypeError(f"device input has dtype {arr.dtype}, the engine takes {dtype}")
    return arr


class _CapturedCall:
    """A CUDA graph of one execute_async_v3 over static input/output buffers."""

    def __init__(self, context, spec: GraphSpec, shapes: dict, out_shapes: dict, stream):
        from ..gpu.device import DeviceArray, check, cuda_runtime

        rt = cuda_runtime()
        self.inputs = {n: DeviceArray.empty(s, spec.tensor(n).dtype, stream) for n, s in shapes.items()}
        self.outputs = {n: DeviceArray.empty(s, np.float32, stream) for n, s in out_shapes.items()}
        for name, arr in {**self.inputs, **self.outputs}.items():
            context.set_tensor_address(name, arr.ptr)
        # TensorRT's advice: enqueue once uncaptured after the shapes are set (shape-dependent setup is not
        # capturable), then capture. The uncaptured run's results are discarded: launch() runs the graph.
        if not context.execute_async_v3(stream.handle):
            raise RuntimeError("TensorRT failed to enqueue the engine before a CUDA graph capture")
        check(rt.cudaStreamBeginCapture(stream.handle, rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal),
              "cudaStreamBeginCapture")
        ok = context.execute_async_v3(stream.handle)
        graph = check(rt.cudaStreamEndCapture(stream.handle), "cudaStreamEndCapture")
        if not ok:
            rt.cudaGraphDestroy(graph)
            raise RuntimeError("TensorRT could not enqueue the engine inside a CUDA graph capture")
        self._graph = graph
        self._exec = check(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")

    def launch(self, dev_inputs: dict, stream) -> dict:
        from ..gpu.device import DeviceArray, check, cuda_runtime, memcpy

        for name, src in dev_inputs.items():
            memcpy(self.inputs[name].ptr, src.ptr, src.nbytes, "d2d", stream)
        check(cuda_runtime().cudaGraphLaunch(self._exec, stream.handle), "cudaGraphLaunch")
        out = {}
        for name, buf in self.outputs.items():  # callers keep outputs across calls: hand out copies
            out[name] = DeviceArray.empty(buf.shape, buf.dtype, stream)
            memcpy(out[name].ptr, buf.ptr, buf.nbytes, "d2d", stream)
        return out

    def __del__(self):
        try:
            from ..gpu.device import cuda_runtime

            rt = cuda_runtime()
            rt.cudaGraphExecDestroy(self._exec)
            rt.cudaGraphDestroy(self._graph)
        except Exception:  # interpreter shutdown, or the capture never finished
            pass


class TensorRTSession(GraphSession):
    def __init__(self, spec: GraphSpec, engine, record, stream, cuda_graphs: bool, model_dir: Path):
        super().__init__(spec)
        self.rebuild_command = f"{build_command(model_dir, record.target.precision)} --force"
        self.engine, self.record, self.stream = engine, record, stream
        self.context = engine.create_execution_context()
        if self.context is None:
            raise EngineError(f"TensorRT could not create an execution context for {spec.name} (out of GPU "
                              f"memory?)")
        objects = [p.max[0] for n, p in record.profiles.items() if spec.tensor(n).shape[:1] == ("objects",)]
        self.max_objects = min(objects) if objects else None
        self.cuda_graphs = cuda_graphs and stream.handle != 0
        self._seen = set()
        self._graphs: OrderedDict = OrderedDict()
        self._last_key = None

    def run(self, inputs: Mapping) -> dict:
        missing = [n for n in self.spec.input_names if n not in inputs]
        if missing:
            raise KeyError(f"{self.spec.name}: missing inputs {missing}")
        if self.max_objects is None:
            return self._run_one(dict(inputs))
        chunks = split_objects(self.spec, dict(inputs), self.max_objects)
        return concat_objects(self.spec, [self._run_one(c) for c in chunks], self.stream)

    def _run_one(self, inputs: dict) -> dict:
        from ..gpu.device import DeviceArray

        dev = {}
        for t in self.spec.inputs:
            arr = _as_device(inputs[t.name], t.dtype, self.stream)
            self.record.check_shape(t.name, arr.shape, self.rebuild_command)
            self.context.set_input_shape(t.name, arr.shape)
            dev[t.name] = arr
        out_shapes = {n: tuple(self.context.get_tensor_shape(n)) for n in self.spec.output_names}
        key = tuple(a.shape for a in dev.values())
        # Replay only when the context was last set up for these very shapes (steady-state tracking: the same
        # shapes every frame); a shape change runs uncaptured once, which reconfigures the context.
        same_shapes, self._last_key = self._last_key == key, key
        if self.cuda_graphs and same_shapes and key in self._graphs:
            self._graphs.move_to_end(key)
            return self._graphs[key].launch(dev, self.stream)
        if self.cuda_graphs and same_shapes and key in self._seen:  # the second call in a row: capture it
            call = _CapturedCall(self.context, self.spec, {n: a.shape for n, a in dev.items()}, out_shapes,
                                 self.stream)
            self._graphs[key] = call
            if len(self._graphs) > MAX_CUDA_GRAPHS:
                self._graphs.popitem(last=False)
            return call.launch(dev, self.stream)
        self._seen.add(key)
        out = {n: DeviceArray.empty(s, np.float32, self.stream) for n, s in out_shapes.items()}
        for name, arr in {**dev, **out}.items():
            self.context.set_tensor_address(name, arr.ptr)
        if not self.context.execute_async_v3(self.stream.handle):
            raise RuntimeError(f"TensorRT failed to enqueue {self.spec.name} (its log above says why)")
        return out


class TensorRTBackend(Backend):
    name = "tensorrt"
    device = "cuda"

    def __init__(self, device_id: int = 0, stream=None, precision: str | None = None, build_missing: bool = True,
                 cuda_graphs: bool = True):
        from ..gpu.device import Stream, as_stream, retain_pool_memory, set_device

        self.trt = import_tensorrt()
        set_device(device_id)
        retain_pool_memory(device_id)
        self.device_id = device_id
        self.stream = as_stream(stream) if stream is not None else Stream.create()
        self.precision = precision
        self.build_missing = build_missing
        self.cuda_graphs = cuda_graphs
        self._runtime = self.trt.Runtime(trt_logger())

    @classmethod
    def unavailable_reason(cls, device_id: int = 0):
        try:
            import_tensorrt()
        except BackendUnavailable as e:
            return str(e)
        from ..gpu import unavailable_reason

        return unavailable_reason(device_id)

    def engine_target(self, model_dir: Path) -> EngineTarget:
        base = current_target("fp32", self.device_id)
        return replace(base, precision=choose_precision(model_dir, base, self.precision))

    def open(self, spec: GraphSpec, path: Path) -> GraphSession:
        model_dir = Path(path).parent
        onnx_sha = load_metadata(model_dir).raw["graphs"][spec.name]["sha256"]
        target = self.engine_target(model_dir)
        engine_dir = target.engine_dir(model_dir)
        record = record_or_build(model_dir, spec.name, target.precision, engine_dir, self.device_id,
                                 allow_build=self.build_missing)
        check_record(record, target, onnx_sha, engine_dir)
        engine = self._runtime.deserialize_cuda_engine(engine_path(engine_dir, spec.name).read_bytes())
        if engine is None:
            raise EngineMismatch(f"TensorRT {target.tensorrt_version} could not load {engine_path(engine_dir, spec.name)}"
                                 f" (its log above says why); rebuild with "
                                 f"`{build_command(model_dir, target.precision)} --force`")
        return TensorRTSession(spec, engine, record, self.stream, self.cuda_graphs, model_dir)

    def to_host(self, tensor) -> np.ndarray:
        return tensor if isinstance(tensor, np.ndarray) else tensor.to_host(self.stream)

    def from_host(self, array: np.ndarray):
        from ..gpu.device import DeviceArray

        return DeviceArray.from_host(array, self.stream)
