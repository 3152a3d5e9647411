"""ONNX Runtime on the CPU: the reference backend, and the one CI runs.

A graph whose batch of images is dynamic is opened with that axis fixed to 1 (`add_free_dimension_override`), the
size the runtime sends it: ONNX Runtime then knows every shape of the image encoder and folds its shape arithmetic
and fuses what only fixed shapes allow (MatMul + Add into Gemm, the attention scale into FusedMatMul, GELU):
1081 nodes after optimization become 439, the same computation. A call with a larger batch runs image by image on
that session: each image then gets exactly the bits it gets alone (a session of the dynamic graph runs other
kernels, equal only within tolerance), which is what lets a server batch its clients' images with results
identical to each alone; on a CPU one call per image costs what a batch costs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

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


# Dynamic axes fixed to 1 in the session the runtime calls with that size (see the module docstring).
SPECIALIZED_AXES = ("images",)


def session_options(threads: int | None = None, fixed_axes: dict | None = None):
    """Session options of every ONNX Runtime CPU session: all graph optimizations, `threads` intra-op threads
    (None: one per core), and `fixed_axes` ({dynamic axis name: size}) fixed for the optimizer."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # ORT warns about unused initializers of constant-folded graphs
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
    for axis, size in (fixed_axes or {}).items():
        opts.add_free_dimension_override_by_name(axis, size)
    return opts


class OrtCpuSession(GraphSession):
    def __init__(self, spec: GraphSpec, path: Path, threads: int | None):
        import onnxruntime as ort

        super().__init__(spec)
        # (tensor name, axis index) of each specialized axis, inputs and outputs (axis 0 of the image encoder's)
        self._split_inputs = _specialized(spec.inputs)
        self._split_outputs = _specialized(spec.outputs)
        fixed_axes = {spec.tensor(name).shape[i]: 1 for name, i in self._split_inputs}
        self.session = ort.InferenceSession(str(path), session_options(threads, fixed_axes),
                                            providers=["CPUExecutionProvider"])
        check_session_io(self.session, spec, path)

    def _run(self, inputs: Mapping) -> dict:
        return dict(zip(self.spec.output_names, self.session.run(self.spec.output_names, dict(inputs))))

    def run(self, inputs: Mapping) -> dict:
        sizes = {inputs[name].shape[i] for name, i in self._split_inputs}
        if sizes <= {1}:
            return self._run(inputs)
        if len(sizes) > 1:
            raise ValueError(f"{self.spec.name}: inputs disagree on the size of {SPECIALIZED_AXES}: {sorted(sizes)}")
        split = dict(self._split_inputs)
        parts = [self._run({k: np.take(v, [j], axis=split[k]) if k in split else v for k, v in inputs.items()})
                 for j in range(sizes.pop())]
        axis = dict(self._split_outputs)
        return {k: np.concatenate([p[k] for p in parts], axis=axis.get(k, 0)) for k in self.spec.output_names}


def _specialized(tensors) -> list:
    return [(t.name, i) for t in tensors for i, d in t.dynamic_axes.items() if d in SPECIALIZED_AXES]


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
