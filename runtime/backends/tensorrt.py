"""TensorRT: engines built by `sam2-trt build` (engines/), run with cuda-python.

Per graph, one execution context. A call binds every input and output by address (`set_tensor_address`) and
enqueues with `execute_async_v3` on the backend's stream: host inputs are copied in once, device inputs
(DeviceArrays, or anything with `__cuda_array_interface__`) are bound in place, and outputs are new
DeviceArrays from the stream-ordered pool (so an output stays valid however often the graph runs again).
Nothing synchronises except `to_host`.

CUDA graphs (cuda_graphs.py): a call with the same input shapes as the previous call of that engine (the steady
state of tracking) is replayed from a captured graph over static buffers; a caller's legacy default stream (0)
cannot be captured, so it runs without. Every TensorRT answer is checked (engine_io.py): the engine's tensor
types against the spec when it is opened, `set_input_shape`'s result and the output shapes before anything is
allocated. Device N: everything runs with N current (`use_device`), the caller's thread keeps its own device.

Engines are found and checked (TensorRT version, GPU, precision, ONNX sha256) as core/engine_record.py
describes, and a missing one is built by the builder the application or CLI installed (engine_builds.py); more objects than the engine's profile allows run as several calls
(object_chunks.py); any other shape outside the profile is a ShapeOutsideProfile error naming the axis.
"""

from __future__ import annotations

import logging
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
from .cuda_graphs import CaptureFailed, CapturedCall, GraphCache
from .engine_builds import record_or_build
from .engine_io import check_engine_io, checked_output_shapes, output_shapes
from .object_chunks import concat_objects, split_objects

log = logging.getLogger("sam2_trt")
INSTALL_HINT = ("install NVIDIA's TensorRT wheel for your CUDA (pip install tensorrt-cu12 or tensorrt-cu13, "
                "from pypi.nvidia.com)")


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
    """A DeviceArray for one input: host arrays are copied in, device arrays are bound in place (after the
    stream they were made on, when they name one, has finished writing them)."""
    from ..gpu.device import DeviceArray

    if isinstance(value, DeviceArray):
        arr = value
    elif hasattr(value, "__cuda_array_interface__"):
        arr = DeviceArray.from_cuda_array_interface(value, stream)
    else:
        return DeviceArray.from_host(np.ascontiguousarray(value, dtype=dtype), stream)
    if arr.dtype != np.dtype(dtype):
        raise TypeError(f"device input has dtype {arr.dtype}, the engine takes {dtype}")
    return arr


def engine_io(trt, engine) -> dict:
    """{tensor name: ("input" | "output", dtype name)} as the engine reports them (check_engine_io's input)."""
    io = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        mode = "input" if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else "output"
        trt_dtype = engine.get_tensor_dtype(name)
        try:
            dtype = np.dtype(trt.nptype(trt_dtype)).name
        except TypeError:  # a TensorRT type numpy has no name for (bf16, fp8): never one of the spec's
            dtype = str(trt_dtype)
        io[name] = (mode, dtype)
    return io


class TensorRTSession(GraphSession):
    def __init__(self, spec: GraphSpec, engine, record, stream, cuda_graphs: bool, rebuild_command: str,
                 device_id: int = 0):
        super().__init__(spec)
        self.rebuild_command = rebuild_command
        self.engine, self.record, self.stream, self.device_id = engine, record, stream, device_id
        self.context = engine.create_execution_context()
        if self.context is None:
            raise EngineError(f"TensorRT could not create an execution context for {spec.name} (out of GPU "
                              f"memory?)")
        objects = [p.max[0] for n, p in record.profiles.items() if spec.tensor(n).shape[:1] == ("objects",)]
        self.max_objects = min(objects) if objects else None
        self.graphs = GraphCache() if cuda_graphs and stream.handle != 0 else None

    def run(self, inputs: Mapping) -> dict:
        from ..gpu.device import use_device

        missing = [n for n in self.spec.input_names if n not in inputs]
        if missing:
            raise KeyError(f"{self.spec.name}: missing inputs {missing}")
        with use_device(self.device_id):
            if self.max_objects is None:
                return self._run_one(dict(inputs))
            chunks = split_objects(self.spec, dict(inputs), self.max_objects)
            return concat_objects(self.spec, [self._run_one(c) for c in chunks], self.stream)

    def _run_one(self, inputs: dict) -> dict:
        fix = f"rebuild with `{self.rebuild_command}`"
        dev = {}
        for t in self.spec.inputs:
            arr = _as_device(inputs[t.name], t.dtype, self.stream)
            self.record.check_shape(t.name, arr.shape, self.rebuild_command)
            dev[t.name] = arr
        expected = output_shapes(self.spec, {n: a.shape for n, a in dev.items()})
        for name, arr in dev.items():
            if not self.context.set_input_shape(name, arr.shape):
                raise EngineError(f"TensorRT refused shape {arr.shape} for {self.spec.name} input {name!r} (its log "
                                  f"above says why); {fix}")
        reported = {n: tuple(self.context.get_tensor_shape(n)) for n in self.spec.output_names}
        outputs = {n: (s, np.dtype(self.spec.tensor(n).dtype))
                   for n, s in checked_output_shapes(self.spec, expected, reported, fix).items()}
        key = tuple(a.shape for a in dev.values())
        plan = self.graphs.plan(key) if self.graphs is not None else "plain"
        if plan == "replay":
            return self.graphs.get(key).launch(dev, self.stream)
        if plan == "capture":
            try:
                call = CapturedCall(self.context, dev, outputs, self.stream)
            except CaptureFailed as e:
                log.info("sam2-trt: %s for %s inputs %s; running it without a CUDA graph", e, self.spec.name, key)
                self.graphs.refuse(key)
            else:
                self.graphs.add(key, call)
                return call.launch(dev, self.stream)
        return self._run_plain(dev, outputs)

    def _run_plain(self, dev: dict, outputs: dict) -> dict:
        from ..gpu.device import DeviceArray

        out = {n: DeviceArray.empty(shape, dtype, self.stream) for n, (shape, dtype) in outputs.items()}
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
        from ..gpu.device import Stream, as_stream, retain_pool_memory, use_device

        self.trt = import_tensorrt()
        self.device_id = device_id
        self.precision = precision
        self.build_missing = build_missing
        self.cuda_graphs = cuda_graphs
        with use_device(device_id):
            retain_pool_memory(device_id)
            self.stream = as_stream(stream, device_id) if stream is not None else Stream.create(device_id)
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
        from ..gpu.device import use_device

        model_dir = Path(path).parent
        onnx_sha = load_metadata(model_dir).raw["graphs"][spec.name]["sha256"]
        target = self.engine_target(model_dir)
        engine_dir = target.engine_dir(model_dir)
        record = record_or_build(model_dir, spec.name, target.precision, engine_dir, self.device_id,
                                 allow_build=self.build_missing)
        check_record(record, target, onnx_sha, engine_dir)
        path = engine_path(engine_dir, spec.name)
        rebuild = f"{build_command(model_dir, target.precision)} --force"
        with use_device(self.device_id):  # the engine and its context live on this backend's GPU
            engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
            if engine is None:
                raise EngineMismatch(f"TensorRT {target.tensorrt_version} could not load {path} (its log above says "
                                     f"why); rebuild with `{rebuild}`")
            check_engine_io(spec, engine_io(self.trt, engine), str(path), f"rebuild with `{rebuild}`")
            return TensorRTSession(spec, engine, record, self.stream, self.cuda_graphs, rebuild, self.device_id)

    def to_host(self, tensor) -> np.ndarray:
        return tensor if isinstance(tensor, np.ndarray) else tensor.to_host(self.stream)

    def from_host(self, array: np.ndarray):
        from ..gpu.device import DeviceArray, use_device

        with use_device(self.device_id):
            return DeviceArray.from_host(array, self.stream)
