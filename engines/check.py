"""`sam2-trt check`: every graph of a model directory, run by a backend (TensorRT engines by default), against
the fp32 ONNX graph in ONNX Runtime on the CPU, on seeded inputs that cover the dynamic sizes (the export's
validation cases). One report per output and case: max abs and relative error against the tolerance the
engine's precision policy recorded (runtime.graph_check computes and formats them, as the export does).
"""

from __future__ import annotations

from sam2_trt.core.graph_check import compare, sample_inputs
from sam2_trt.core.specs import GRAPHS, Tolerance

from .precision import policy_for


def _tolerances(session, graph: str) -> dict:
    """{output: Tolerance}: what the engine's record says; fp32 engine bounds for ONNX Runtime backends."""
    spec = GRAPHS[graph]
    record = getattr(session, "record", None)
    if record is not None and record.precision_policy.get("tolerances"):
        table = record.precision_policy["tolerances"]
        return {o: Tolerance(**table[f"{graph}.{o}"]) for o in spec.output_names}
    policy = policy_for("fp32")
    return {o: policy.tolerance(graph, o) for o in spec.output_names}


def check_model(model_dir, backend: str = "tensorrt", device: str = "cuda", precision: str | None = None,
                graphs=None, seed: int = 0, log=print) -> list:
    """OutputReports of `backend` against fp32 ONNX Runtime (CPU) for every validation case of every graph."""
    import onnxruntime as ort

    from sam2_trt.runtime.backends.onnxruntime_cpu import session_options
    from sam2_trt.core.engine_record import EngineMismatch, build_command
    from sam2_trt.core.metadata import sha256_file
    from sam2_trt.runtime.model import SAM2Model

    model = SAM2Model.load(model_dir, backend=backend, device=device, precision=precision)
    graphs = list(GRAPHS) if graphs is None else list(graphs)
    reports = []
    for graph in graphs:
        spec = GRAPHS[graph]
        session = model.session(graph)
        record = getattr(session, "record", None)
        if record is not None:  # the full hash here; loading checks only the size
            path = record.target.engine_dir(model.meta.model_dir) / record.engine_file
            if sha256_file(path) != record.engine_sha256:
                raise EngineMismatch(f"{path} does not match the sha256 in its record (changed on disk); rebuild it: "
                                     f"`{build_command(model.meta.model_dir, record.target.precision)} --force`")
        reference = ort.InferenceSession(str(model.meta.graph_path(graph)), session_options(),
                                         providers=["CPUExecutionProvider"])
        tolerances = _tolerances(session, graph)
        for k, case in enumerate(spec.validation_cases):
            inputs = sample_inputs(spec, model.image_size, case, seed + k)
            ref = dict(zip(spec.output_names, reference.run(spec.output_names, inputs)))
            ours = {n: model.host(v) for n, v in session.run(inputs).items()}
            reports.extend(compare(spec, case, ours, ref, tolerances))
        log(f"{graph}: {'ok' if all(r.passed for r in reports if r.graph == graph) else 'BEYOND TOLERANCE'}")
    return reports
