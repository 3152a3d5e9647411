"""Every export checks itself: each graph runs in ONNX Runtime (CPU) on seeded inputs covering its dynamic
sizes and is compared with the official PyTorch code (references.py), per output, against the tolerance
its GraphSpec gives."""

from __future__ import annotations

from sam2_trt.core.graph_check import (OutputReport, compare, format_reports, reports_to_json,  # noqa: F401 (re-exported)
                                 sample_inputs)
from sam2_trt.core.specs import GraphSpec


def validate_graph(spec: GraphSpec, onnx_path, model, image_size: int, seed: int = 0,
                   tolerances: dict | None = None) -> list:
    """Run every validation case of `spec` through ONNX Runtime and the official code; one report per output,
    judged by the spec's tolerances or `tolerances` ({output: Tolerance}, e.g. an int8 graph's)."""
    import onnxruntime as ort

    from .references import REFERENCES

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    reports = []
    for k, case in enumerate(spec.validation_cases):
        inputs = sample_inputs(spec, image_size, case, seed + k)
        ours = dict(zip(spec.output_names, session.run(spec.output_names, inputs)))
        ref = {n: v.numpy() for n, v in REFERENCES[spec.name](model, inputs).items()}
        reports.extend(compare(spec, case, ours, ref, tolerances))
    return reports
