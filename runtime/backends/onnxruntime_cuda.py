"""ONNX Runtime with the CUDA execution provider (onnxruntime-gpu), through I/O binding.

Inputs may be host numpy arrays (copied in by ORT), or OrtValues or runtime.gpu DeviceArrays already on the
GPU (bound in place);
outputs are bound to the GPU and returned as OrtValues, so features and the memory bank stay on the device
between graph calls. A caller-supplied CUDA stream becomes ORT's compute stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from sam2_trt.core.specs import GraphSpec
from .base import Backend, GraphSession
from .onnxruntime_cpu import check_session_io, session_options


class OrtCudaSession(GraphSession):
    def __init__(self, spec: GraphSpec, path: Path, provider_options: dict, device_id: int):
        import onnxruntime as ort

        super().__init__(spec)
        self.device_id = device_id
        self.session = ort.InferenceSession(
            str(path), session_options(), providers=[("CUDAExecutionProvider", provider_options)])
        check_session_io(self.session, spec, path)

    def run(self, inputs: Mapping) -> dict:
        binding = self.session.io_binding()
        for name in self.spec.input_names:
            value = inputs[name]
            if isinstance(value, np.ndarray):
                binding.bind_cpu_input(name, np.ascontiguousarray(value))
            elif hasattr(value, "__cuda_array_interface__"):  # a runtime.gpu DeviceArray: bound in place
                cai = value.__cuda_array_interface__
                binding.bind_input(name, "cuda", self.device_id, np.dtype(cai["typestr"]), list(cai["shape"]),
                                   cai["data"][0])
            else:
                binding.bind_ortvalue_input(name, value)
        for name in self.spec.output_names:
            binding.bind_output(name, "cuda", self.device_id)
        self.session.run_with_iobinding(binding)
        return dict(zip(self.spec.output_names, binding.get_outputs()))


class OnnxRuntimeCudaBackend(Backend):
    name = "onnxruntime-cuda"
    device = "cuda"

    def __init__(self, device_id: int = 0, stream=None, threads=None):
        self.device_id = device_id
        self.stream = stream
        self.provider_options = {"device_id": str(device_id)}
        if stream is not None:
            self.provider_options["user_compute_stream"] = str(int(stream))

    @classmethod
    def unavailable_reason(cls, device_id: int = 0):
        try:
            import onnxruntime as ort
        except ImportError:
            return "onnxruntime-gpu is not installed (pip install onnxruntime-gpu)"
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return (f"the installed onnxruntime {ort.__version__} has no CUDAExecutionProvider "
                    f"(pip uninstall onnxruntime && pip install onnxruntime-gpu)")
        return None

    def open(self, spec: GraphSpec, path: Path) -> GraphSession:
        return OrtCudaSession(spec, path, self.provider_options, self.device_id)

    def to_host(self, tensor) -> np.ndarray:
        return tensor if isinstance(tensor, np.ndarray) else tensor.numpy()

    def from_host(self, array: np.ndarray):
        import onnxruntime as ort

        return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), "cuda", self.device_id)
