"""What a GPU machine has, as gpu-check (gpu_check.py) prints and records it, each probe said plainly.

Every field is a value or None, and every "*_unavailable" / "*_inactive" field is None or the reason, so that
gpu-check can skip a step with the reason found here. The probes: the CUDA device and versions through
cuda-bindings (runtime/gpu), NVRTC, ONNX Runtime's available providers and the ones a session on a one-node graph
really runs on (a CUDA provider that cannot load falls back to the CPU), TensorRT and Polygraphy, torch and its
CUDA, the official sam2, compute-sanitizer.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from pathlib import Path

from sam2_trt.benchmarks.environment import describe


def _error(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}".strip()


def _cuda_fields() -> dict:
    from sam2_trt.runtime.gpu import unavailable_reason
    from sam2_trt.runtime.gpu.versions import installed_versions, version_text

    versions = installed_versions()
    out = {"cuda_unavailable": unavailable_reason(0), "driver_cuda": version_text(versions.driver),
           "cuda_runtime": version_text(versions.runtime), "cuda_bindings": versions.bindings,
           "gpu_name": None, "compute_capability": None, "gpu_count": None}
    if out["cuda_unavailable"] is None:
        from sam2_trt.runtime.gpu.device import check, compute_capability, cuda_runtime, device_name

        out.update(gpu_name=device_name(0), compute_capability="%d.%d" % compute_capability(0),
                   gpu_count=check(cuda_runtime().cudaGetDeviceCount(), "cudaGetDeviceCount"))
    try:
        from sam2_trt.runtime.gpu.compiler import nvrtc_version

        out.update(nvrtc="%d.%d" % nvrtc_version(), nvrtc_unavailable=None)
    except Exception as e:  # noqa: BLE001  (NvrtcUnavailable, or cuda-bindings missing)
        out.update(nvrtc=None, nvrtc_unavailable=_error(e))
    return out


def _identity_model(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _onnxruntime_fields(backends: dict) -> dict:
    """Providers available, the ones a CUDA session really runs on, and why CUDA is inactive (None: active)."""
    import onnxruntime as ort

    out = {"onnxruntime_providers": ort.get_available_providers(), "onnxruntime_active_providers": None,
           "onnxruntime_cuda_inactive": backends.get("onnxruntime-cuda")}
    if out["onnxruntime_cuda_inactive"] is not None:
        return out
    from sam2_trt.core.errors import BackendUnavailable
    from sam2_trt.runtime.backends.onnxruntime_cuda import PROVIDER, preload_cuda_libraries, require_cuda_provider
    from sam2_trt.runtime.backends.onnxruntime_cpu import session_options

    preload_cuda_libraries()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.onnx"
        try:
            _identity_model(path)
            session = ort.InferenceSession(str(path), session_options(), providers=[(PROVIDER, {"device_id": "0"})])
            out["onnxruntime_active_providers"] = session.get_providers()
            require_cuda_provider(session, path, {"device_id": "0"})
        except BackendUnavailable as e:
            out["onnxruntime_cuda_inactive"] = str(e)
        except Exception as e:  # noqa: BLE001  (onnx missing, or ORT refused the probe)
            out["onnxruntime_cuda_inactive"] = f"the probe session failed ({_error(e)})"
    return out


def _module_fields() -> dict:
    out = {}
    try:
        trt = importlib.import_module("tensorrt")
        out["tensorrt_version"] = trt.__version__
    except Exception as e:  # noqa: BLE001  (ImportError, or a TensorRT that cannot load its libraries)
        out["tensorrt_version"] = None
        out["tensorrt_import_error"] = _error(e)
    try:
        importlib.import_module("polygraphy")
        out["polygraphy_unavailable"] = None
    except ImportError as e:
        out["polygraphy_unavailable"] = f"polygraphy is not installed ({e})"
    try:
        torch = importlib.import_module("torch")
        out.update(torch_cuda=torch.version.cuda, torch_cuda_unavailable=None if torch.cuda.is_available() else
                   f"torch {torch.__version__} sees no CUDA device (built for CUDA {torch.version.cuda})")
    except ImportError as e:
        out.update(torch_cuda=None, torch_cuda_unavailable=f"torch is not installed ({e})")
    try:
        importlib.import_module("sam2.build_sam")
        out["official_unavailable"] = None
    except Exception as e:  # noqa: BLE001  (not installed, or a dependency of it missing)
        out["official_unavailable"] = f"the official sam2 cannot be imported ({_error(e)})"
    return out


def compute_sanitizer() -> str | None:
    """compute-sanitizer's path: on PATH, else in $CUDA_HOME/bin or /usr/local/cuda/bin."""
    found = shutil.which("compute-sanitizer")
    if found:
        return found
    for root in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if root and Path(root, "bin", "compute-sanitizer").is_file():
            return str(Path(root, "bin", "compute-sanitizer"))
    return None


def gpu_environment() -> dict:
    """benchmarks.environment.describe() plus the GPU probes (module docstring)."""
    from sam2_trt.runtime.backends import unavailable_reasons

    backends = unavailable_reasons("cuda")
    env = describe(**_cuda_fields(), backends=backends, **_module_fields(), compute_sanitizer=compute_sanitizer())
    env.update(_onnxruntime_fields(backends))
    return env


SHOWN = ("gpu", "gpu_name", "compute_capability", "gpu_count", "cuda_unavailable", "driver_cuda", "cuda_runtime",
         "cuda_bindings", "nvrtc", "nvrtc_unavailable", "onnxruntime", "onnxruntime-gpu", "onnxruntime_providers",
         "onnxruntime_active_providers", "onnxruntime_cuda_inactive", "tensorrt_version", "tensorrt_import_error",
         "polygraphy", "torch", "torch_cuda", "torch_cuda_unavailable", "sam2", "official_unavailable",
         "compute_sanitizer", "python", "cpu", "cpus_usable")


def print_environment(env: dict) -> None:
    print("environment:")
    for key in SHOWN:
        if key in env:
            print(f"  {key:30} {env[key]}")
    for name, reason in env["backends"].items():
        print(f"  backend {name:22} {'ready' if reason is None else reason}")
