"""Backends behind one interface (base.py), one small module each; `select_backend` picks one.

`backend="auto"` tries TensorRT, then ONNX Runtime on CUDA, then ONNX Runtime on the CPU, and logs one line
saying which it picked and why the faster ones were skipped.
"""

from __future__ import annotations

import logging

from .base import Backend, BackendUnavailable, GraphSession

log = logging.getLogger("sam2_trt")


def _registry() -> dict:
    from .onnxruntime_cpu import OnnxRuntimeCpuBackend
    from .onnxruntime_cuda import OnnxRuntimeCudaBackend

    backends = {}
    from .tensorrt import TensorRTBackend  # imports tensorrt only when used

    backends[TensorRTBackend.name] = TensorRTBackend
    backends[OnnxRuntimeCudaBackend.name] = OnnxRuntimeCudaBackend
    backends[OnnxRuntimeCpuBackend.name] = OnnxRuntimeCpuBackend
    return backends


BACKEND_NAMES = ("auto", "tensorrt", "onnxruntime-cuda", "onnxruntime-cpu")
_AUTO_ORDER = {"cuda": ("tensorrt", "onnxruntime-cuda", "onnxruntime-cpu"), "cpu": ("onnxruntime-cpu",)}


def parse_device(device: str):
    """"cpu" | "cuda" | "cuda:N" -> (kind, device id); ValueError for anything else."""
    dev = str(device).lower()
    if dev == "cpu":
        return "cpu", 0
    if dev == "cuda" or dev.startswith("cuda:") and dev[5:].isdigit():
        return "cuda", int(dev[5:] or 0) if ":" in dev else 0
    raise ValueError(f"device {device!r} is not supported; use 'cuda', 'cuda:N' or 'cpu'")


def unavailable_reasons(device: str = "cuda") -> dict:
    """{backend name: why it cannot run on `device`, or None if it can}, for every backend of that device kind
    (auto's order): what a benchmark or a diagnostic measures, without opening anything."""
    kind, device_id = parse_device(device)
    registry = _registry()
    return {name: registry[name].unavailable_reason(device_id) for name in _AUTO_ORDER[kind]}


def _options(name: str, precision):
    """Constructor options of one backend: `precision` is TensorRT's (which engines to run)."""
    return {"precision": precision} if name == "tensorrt" else {}


def select_backend(backend: str = "auto", device: str = "cuda", stream=None, precision: str | None = None) -> Backend:
    """A ready backend for `device` ("cuda", "cuda:N" or "cpu"); raises BackendUnavailable with the reason.
    `precision` (fp32, tf32, fp16, bf16) selects TensorRT engines; ONNX Runtime runs the fp32 graphs."""
    from sam2_trt.core.engine_record import check_precision

    if precision is not None and check_precision(precision) and backend not in ("auto", "tensorrt"):
        raise ValueError(f"precision={precision!r} applies to TensorRT engines; backend {backend!r} runs the fp32 "
                         f"ONNX graphs (drop precision, or use backend='tensorrt')")
    kind, device_id = parse_device(device)
    registry = _registry()
    name = {"onnxruntime": f"onnxruntime-{kind}"}.get(backend, backend)
    if name not in BACKEND_NAMES:
        raise ValueError(f"backend {backend!r} is unknown; use one of {', '.join(BACKEND_NAMES)}")
    if name != "auto":
        cls = registry[name]
        reason = cls.unavailable_reason(device_id)
        if reason:
            raise BackendUnavailable(f"backend {name!r} is not available: {reason}")
        return cls(device_id=device_id, stream=stream, **_options(name, precision))
    skipped = []
    for candidate in _AUTO_ORDER[kind]:
        cls = registry[candidate]
        reason = cls.unavailable_reason(device_id)
        if reason is None:
            why = f" (skipped {'; '.join(skipped)})" if skipped else ""
            runs_on = "cpu" if candidate.endswith("-cpu") else device  # auto on "cuda" falls back to the CPU
            log.info("sam2-trt: using backend %s on %s%s", candidate, runs_on, why)
            return cls(device_id=device_id, stream=stream, **_options(candidate, precision))
        skipped.append(f"{candidate}: {reason}")
    raise BackendUnavailable("no backend can run here: " + "; ".join(skipped))


__all__ = ["Backend", "BackendUnavailable", "GraphSession", "BACKEND_NAMES", "select_backend",
           "unavailable_reasons"]
