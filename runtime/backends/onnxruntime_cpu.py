"""ONNX Runtime on the CPU: the reference backend, and the one CI runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from sam2_trt.core.errors import ModelDirError
from sam2_trt.core.specs import GraphSpec
from .base import Backend, GraphSession


_ORT_DTYPES = {"tensor(float)": "float32", "tensor(int32)": "int32", "tensor(int64)": "int64",
               "tensor(float16)": "float16", "tensor(bool)": "bool"}


def check_session_io(session, spec: GraphSpec, path: Path) -> None:
    """ModelDirError unless the ONNX file declares the spec's inputs and outputs (name, dtype, rank)."""
    declared = {a.name: (mode, _ORT_DTYPES.get(a.type, a.type), len(a.shape))
                for mode, args in (("input", session.get_inputs()), ("output", session.get_outputs())) for a in args}
    problems = spec.io_problems(declared)
    if problems:
        raise ModelDirError(f"{path} is not this model's {spec.name} graph: {'; '.join(problems)}; re-export the "
                            f"model with `sam2-trt export`")


def session_options(threads: int | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # ORT warns about unused initializers of constant-folded graphs
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
    return opts


class OrtCpuSession(GraphSession):
    def __init__(self, spec: GraphSpec, path: Path, threads: int | None):
        import onnxruntime as ort

        super().__init__(spec)
        self.session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
        check_session_io(self.session, spec, path)

    def run(self, inputs: Mapping) -> dict:
        return dict(zip(self.spec.output_names, self.session.run(self.spec.output_names, dict(inputs))))


class OnnxRuntimeCpuBackend(Backend):
    name = "onnxruntime-cpu"
    device = "cpu"

    def __init__(self, device_id: int = 0, stream=None, threads: int | None = None):
        # SAM2_TRT_THREADS caps ONNX Runtime's intra-op threads (default: one per core)
        self.threads = threads or int(os.environ.get("SAM2_TRT_THREADS", "0")) or None

    @classmethod
    def unavailable_reason(cls, device_id: int = 0):
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return "onnxruntime is not installed (pip install onnxruntime)"
        return None

    def open(self, spec: GraphSpec, path: Path) -> GraphSession:
        return OrtCpuSession(spec, path, self.threads)
