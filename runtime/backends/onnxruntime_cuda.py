"""ONNX Runtime with the CUDA execution provider (onnxruntime-gpu), through I/O binding.

Inputs may be host numpy arrays (copied in by ORT), or OrtValues or runtime.gpu DeviceArrays already on the
GPU (bound in place, once the stream their `__cuda_array_interface__` names has finished writing them);
outputs are bound to the GPU and returned as OrtValues, so features and the memory bank stay on the device
between graph calls. A caller-supplied CUDA stream becomes ORT's compute stream.

When the CUDA provider cannot load (cuDNN or a CUDA library missing, a driver too old), ONNX Runtime falls back
to the CPU and only logs a warning, which our log level hides: the model would silently run on the CPU. So each
session must have CUDA as its first active provider, else BackendUnavailable carries ONNX Runtime's own words
for why (issue 19, item 4).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np

from sam2_trt.core.errors import BackendUnavailable
from sam2_trt.core.specs import GraphSpec
from .base import Backend, GraphSession
from .onnxruntime_cpu import check_session_io, session_options

PROVIDER = "CUDAExecutionProvider"


@contextlib.contextmanager
def _captured_stderr(into: list):
    """Collect what native code writes to file descriptor 2 (ONNX Runtime's C++ log) into `into`."""
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            into.append(tmp.read().decode(errors="replace"))


def fallback_reason(path: Path, provider_options: dict) -> str:
    """ONNX Runtime's warnings (Python and native) when it opens `path` with the CUDA provider: why it fell back."""
    import onnxruntime as ort

    opts = session_options()
    opts.log_severity_level = 2  # warnings: the provider's load failure is one
    native: list = []
    with warnings.catch_warnings(record=True) as caught, _captured_stderr(native):
        warnings.simplefilter("always")
        try:
            ort.InferenceSession(str(path), opts, providers=[(PROVIDER, provider_options)])
        except Exception as e:  # noqa: BLE001  (the reason is what we are after)
            native.append(f"{type(e).__name__}: {e}")
    lines = [str(w.message) for w in caught] + [line for text in native for line in text.splitlines()]
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in lines]  # the log's terminal colours
    relevant = [line for line in lines if any(k in line for k in ("CUDA", "cuda", "cudnn", "cuDNN",
                                                                          "provider", ".so"))]
    return " | ".join(relevant[-4:]) or "ONNX Runtime gave no reason"


def require_cuda_provider(session, path: Path, provider_options: dict) -> None:
    """BackendUnavailable with ONNX Runtime's reason unless `session` runs on CUDA (CUDA first among its
    active providers)."""
    active = session.get_providers()
    if active and active[0] == PROVIDER:
        return
    import onnxruntime as ort

    raise BackendUnavailable(
        f"ONNX Runtime {ort.__version__} opened {Path(path).name} on {', '.join(active) or 'no provider'} instead of "
        f"{PROVIDER}: it fell back to the CPU ({fallback_reason(path, provider_options)}). Install "
        f"onnxruntime-gpu for your CUDA with its cuDNN (pip install onnxruntime-gpu; torch's nvidia-* packages "
        f"provide the libraries), or use backend='onnxruntime-cpu'")


def preload_cuda_libraries() -> None:
    """Load the CUDA and cuDNN libraries from the nvidia-* wheels (e.g. torch's) before the provider needs
    them, where this ONNX Runtime can (onnxruntime.preload_dlls, 1.21+); a failure shows up as the fallback."""
    import onnxruntime as ort

    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        with contextlib.suppress(Exception), contextlib.redirect_stdout(None):
            preload()


class OrtCudaSession(GraphSession):
    def __init__(self, spec: GraphSpec, path: Path, provider_options: dict, device_id: int):
        import onnxruntime as ort

        super().__init__(spec)
        self.device_id = device_id
        self.session = ort.InferenceSession(str(path), session_options(), providers=[(PROVIDER, provider_options)])
        require_cuda_provider(self.session, path, provider_options)
        check_session_io(self.session, spec, path)
        # ORT computes on its own stream unless given one: inputs made elsewhere are waited for on the host then
        stream = provider_options.get("user_compute_stream")
        self._stream = None if stream is None else int(stream)

    def run(self, inputs: Mapping) -> dict:
        from ..gpu.device import as_stream, wait_for_producer

        binding = self.session.io_binding()
        for name in self.spec.input_names:
            value = inputs[name]
            if isinstance(value, np.ndarray):
                binding.bind_cpu_input(name, np.ascontiguousarray(value))
            elif hasattr(value, "__cuda_array_interface__"):  # a runtime.gpu DeviceArray: bound in place
                cai = value.__cuda_array_interface__
                wait_for_producer(cai, None if self._stream is None else as_stream(self._stream))
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
        preload_cuda_libraries()

    @classmethod
    def unavailable_reason(cls, device_id: int = 0):
        try:
            import onnxruntime as ort
        except ImportError:
            return "onnxruntime-gpu is not installed (pip install onnxruntime-gpu)"
        if PROVIDER not in ort.get_available_providers():
            return (f"the installed onnxruntime {ort.__version__} has no {PROVIDER} "
                    f"(pip uninstall onnxruntime && pip install onnxruntime-gpu)")
        return None

    def open(self, spec: GraphSpec, path: Path) -> GraphSession:
        return OrtCudaSession(spec, path, self.provider_options, self.device_id)

    def to_host(self, tensor) -> np.ndarray:
        return tensor if isinstance(tensor, np.ndarray) else tensor.numpy()

    def from_host(self, array: np.ndarray):
        import onnxruntime as ort

        return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), "cuda", self.device_id)
