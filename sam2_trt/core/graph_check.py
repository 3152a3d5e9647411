"""Graph outputs against a reference, per output: seeded inputs that cover a graph's dynamic sizes, the error
report, and its table. Shared by the export's validation against PyTorch (sam2_export/validate.py) and the
engine check against ONNX Runtime (engines/check.py); no heavy imports.

Errors: max |ours - reference| and that divided by max |reference|, judged by a spec.Tolerance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .specs import GraphSpec, Tolerance


def sample_inputs(spec: GraphSpec, image_size: int, dims: dict, seed: int) -> dict:
    """Seeded inputs for one validation case: {input name: numpy array} with realistic value ranges. A case that
    does not name the `frames` axis has one frame (one video)."""
    dims = {"frames": 1, **dims}
    rng = np.random.default_rng(seed)
    out = {}
    for t in spec.inputs:
        shape = t.resolve(image_size, dims)
        if t.sample == "coords":
            a = rng.uniform(0, image_size, shape)
        elif t.sample == "labels":
            a = rng.integers(-1, 4, shape)
        elif t.sample == "binary":
            a = (np.arange(int(np.prod(shape))) % 2).reshape(shape)  # both branches in every case with >= 2
        elif t.sample == "tpos_index":
            a = rng.integers(0, 7, shape)
        elif t.sample == "tpos":
            a = rng.uniform(-1, 1, shape)
        elif t.sample == "valid":
            a = rng.uniform(size=shape) < 0.7
            if len(shape) == 2 and shape[1] > 0:
                a[:, 0] = True  # every object keeps at least one real entry, as the runtime guarantees
        elif t.sample == "frame_index":
            a = np.arange(shape[0]) % int(dims["frames"])  # every frame used when objects >= frames
            rng.shuffle(a)
        elif t.sample == "logits":
            a = rng.normal(0, 8, shape)  # both signs, some near the 0 threshold
        else:  # "normal" / "image"
            a = rng.normal(0, 1, shape)
        out[t.name] = np.ascontiguousarray(a, dtype=t.dtype)
    return out


@dataclass
class OutputReport:
    graph: str
    case: dict
    output: str
    max_abs_err: float
    max_rel_err: float  # max abs error / max abs reference value
    atol: float
    rtol: float
    passed: bool


def compare(spec: GraphSpec, case: dict, ours: dict, reference: dict, tolerances: dict | None = None) -> list:
    """One OutputReport per output; `tolerances` ({output: Tolerance}) overrides the spec's."""
    reports = []
    for t in spec.outputs:
        a = np.asarray(ours[t.name], dtype=np.float64)
        b = np.asarray(reference[t.name], dtype=np.float64)
        if a.shape != b.shape:
            raise AssertionError(f"{spec.name}.{t.name}: shape {a.shape} != reference {b.shape}")
        err = float(np.max(np.abs(a - b))) if a.size else 0.0
        ref = float(np.max(np.abs(b))) if b.size else 0.0
        tol: Tolerance = (tolerances or {}).get(t.name, t.tolerance)
        ok = bool(np.isfinite(a).all()) and tol.passes(err, ref)
        reports.append(OutputReport(spec.name, dict(case), t.name, err, err / max(ref, 1e-30),
                                    tol.atol, tol.rtol, ok))
    return reports


def format_reports(reports: list) -> str:
    lines = [f"{'graph.output':42} {'case':38} {'max abs':>10} {'max rel':>10} {'tolerance':>18}  ok"]
    for r in reports:
        case = ",".join(f"{k}={v}" for k, v in r.case.items())
        lines.append(f"{r.graph + '.' + r.output:42} {case:38} {r.max_abs_err:10.3g} {r.max_rel_err:10.3g} "
                     f"{f'{r.atol:g}+{r.rtol:g}*max|ref|':>18}  {'yes' if r.passed else 'NO'}")
    return "\n".join(lines)


def reports_to_json(reports: list) -> list:
    return [asdict(r) for r in reports]
