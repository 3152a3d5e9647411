"""A TensorRT stand-in over ONNX Runtime and the CUDA emulator, to run the TensorRT backend's logic on a CPU.

An "engine file" here is JSON naming the ONNX graph it was "built" from; the engine runs that graph in ONNX
Runtime on the tensors it finds at the addresses bound to it, on the emulator's memory, when its stream gets to it
(or when a captured graph replays). As TensorRT does, it reports instead of raising: `set_input_shape` returns
False for a refused shape, `get_tensor_shape` -1 where it cannot infer a dimension, `execute_async_v3` False when
the context's device is not current. An index out of range (ONNX Runtime raises) is what a GPU makes of it: an
illegal address, sticky. Options (the engine JSON's "faults") make it misbehave in the ways the backend must
survive: "refuse_shapes", "negative_output_dims", "dtypes" (tensor -> TensorRT type), "uncapturable".

    trt = TensorRTEmulator(cuda)          # cuda: a CudaEmulator, installed
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np

from sam2_trt.core.specs import DYNAMIC_AXES, GRAPHS
from tests.runtime.cuda_emulator import cudaError_t

_NUMPY = {"FLOAT": np.float32, "INT32": np.int32, "HALF": np.float16}


class TensorRTEmulator:
    __version__ = "10.99.0"
    TensorIOMode = SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    DataType = SimpleNamespace(FLOAT="FLOAT", INT32="INT32", HALF="HALF", BF16="BF16")

    class Logger:
        WARNING = 2

        def __init__(self, level):
            self.level = level

    def __init__(self, cuda):
        emulator = self

        class Runtime:
            def __init__(self, logger):
                pass

            def deserialize_cuda_engine(self, data: bytes):
                return Engine(emulator, cuda, json.loads(data))

        self.Runtime = Runtime

    @staticmethod
    def nptype(dtype):
        if dtype not in _NUMPY:
            raise TypeError(f"no numpy type for {dtype}")
        return _NUMPY[dtype]


def engine_file(onnx_path, graph: str, image_size: int, **faults) -> bytes:
    """The bytes of an emulated engine of `graph` (the ONNX file it runs), with optional faults."""
    return json.dumps({"onnx": str(onnx_path), "graph": graph, "image_size": image_size, "faults": faults}).encode()


class Engine:
    def __init__(self, trt, cuda, desc: dict):
        import onnxruntime as ort

        self.trt, self.cuda = trt, cuda
        self.spec = GRAPHS[desc["graph"]]
        self.image_size, self.faults = desc["image_size"], desc["faults"]
        self.device = cuda.current_device()  # TensorRT deserializes onto the current device
        cuda.log.append(("engine", self.device, self.spec.name))
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(desc["onnx"], opts, providers=["CPUExecutionProvider"])
        self.names = self.spec.input_names + self.spec.output_names

    @property
    def num_io_tensors(self) -> int:
        return len(self.names)

    def get_tensor_name(self, i: int) -> str:
        return self.names[i]

    def get_tensor_mode(self, name: str):
        return self.trt.TensorIOMode.INPUT if name in self.spec.input_names else self.trt.TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str):
        default = "INT32" if self.spec.tensor(name).dtype == "int32" else "FLOAT"
        return self.faults.get("dtypes", {}).get(name, default)

    def create_execution_context(self):
        self.cuda.log.append(("context", self.cuda.current_device(), self.spec.name))
        return Context(self)


class Context:
    def __init__(self, engine: Engine):
        self.engine, self.cuda = engine, engine.cuda
        self.shapes, self.addresses = {}, {}
        self.enqueues = 0

    def set_input_shape(self, name: str, shape) -> bool:
        if list(shape) in [list(s) for s in self.engine.faults.get("refuse_shapes", {}).get(name, [])]:
            return False
        self.shapes[name] = tuple(int(d) for d in shape)
        return True

    def get_tensor_shape(self, name: str) -> tuple:
        spec = self.engine.spec
        if name in spec.input_names:
            return self.shapes[name]
        dims = {}
        for t in spec.inputs:
            dims.update({axis: size for axis, size in zip(t.shape, self.shapes[t.name]) if axis in DYNAMIC_AXES})
        shape = spec.tensor(name).resolve(self.engine.image_size, dims)
        return (-1, *shape[1:]) if name in self.engine.faults.get("negative_output_dims", ()) else shape

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        self.addresses[name] = int(ptr)
        return True

    def execute_async_v3(self, stream: int) -> bool:
        if self.cuda.current_device() != self.engine.device:  # TensorRT runs on its engine's device only
            return False
        capture = self.cuda.streams.get(stream, {}).get("capture")
        if capture is not None and self.engine.faults.get("uncapturable"):
            self.cuda.invalidate_capture(stream)
        self.enqueues += 1
        bound = {n: (self.addresses[n], self.get_tensor_shape(n)) for n in self.engine.names}
        self.cuda.enqueue(stream, lambda: self._compute(bound))
        return True

    def _compute(self, bound: dict) -> None:
        """Run the graph on the tensors at the bound addresses (the shapes and addresses of the enqueue)."""
        spec, cuda = self.engine.spec, self.cuda
        if cuda.sticky is not None:
            return
        inputs = {}
        for t in spec.inputs:
            ptr, shape = bound[t.name]
            nbytes = int(np.prod(shape)) * np.dtype(t.dtype).itemsize
            inputs[t.name] = cuda.view(ptr, nbytes).view(t.dtype).reshape(shape).copy()
        try:
            outputs = self.engine.session.run(spec.output_names, inputs)
        except Exception:  # noqa: BLE001  (an out-of-range index: on a GPU, an illegal address)
            cuda.sticky = cudaError_t.cudaErrorIllegalAddress
            return
        for name, value in zip(spec.output_names, outputs):
            ptr, shape = bound[name]
            assert tuple(value.shape) == tuple(shape), (name, value.shape, shape)
            cuda.view(ptr, value.nbytes)[:] = np.ascontiguousarray(value, np.float32).view(np.uint8).reshape(-1)
