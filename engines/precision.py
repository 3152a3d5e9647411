"""The precision policy: which parts of each graph run in fp16/bf16 and which stay fp32, and how far the
outputs may then move.

TensorRT 10.12 deprecated (and 11 removed) the builder's FP16/BF16 flags and per-layer precision hints: the
network's own tensor types decide. So the policy is applied to the ONNX graph (engines/lower_precision.py
rewrites it into mixed precision with explicit Casts) and the engine is built strongly typed. That also makes
the policy testable and measurable without a GPU: the same rewrite in "simulate" mode rounds every
reduced-precision tensor through fp16/bf16 while computing in fp32, which ONNX Runtime runs on a CPU
(`sam2-trt bench precision`; results in benchmarks/results/ and the README).

What stays fp32, and why:
  * data-independent subgraphs (shape arithmetic, positional tables from constants, RoPE's sin/cos tables):
    sizes up to 4096 and angles are not exact in fp16; they are tiny, so fp32 costs nothing;
  * LayerNormalization and the decomposed LayerNorm2d's statistics (ReduceMean, Pow, Sqrt): x^2 overflows
    fp16 at |x| > 256, the failure public fp16 SAM 2 ports hit in the image encoder;
  * Softmax (attention): exp and the row sum;
  * Sin, Cos and everything they are computed from (the prompt encoder's random-Fourier point encoding: angles
    of up to ~30 rad have an fp16 step of 2^-5, enough to move a click's encoding);
  * threshold comparisons (Greater, Less) and everything they are computed from: the memory encoder binarizes
    the upsampled mask logits at 0, and an upsampling in fp16 flips pixels near 0 (measured: up to 6% error
    in the memory at 512 px); likewise the object-score test;
  * the object-score head (its sign decides whether an object is present; a flipped sign drops the object).
Graph inputs and outputs stay fp32, so the runtime binds the same buffers whatever the precision.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from sam2_trt.core.engine_record import check_precision
from sam2_trt.core.fp32_islands import KEEP_FP32_INPUTS_OF, KEEP_FP32_NAME_PARTS  # noqa: F401 (shared with int8)
from sam2_trt.core.specs import GRAPHS, Tolerance

KEEP_FP32_OPS = ("LayerNormalization", "Softmax", "ReduceMean", "Pow", "Sqrt", "Sin", "Cos")

# Bounds on |engine - fp32 ONNX Runtime| per output, as Tolerance(atol, rtol) against max|reference|.
# fp32/tf32 engines: TF32 rounds matmul inputs to a 10-bit mantissa, like fp16's, so tf32 shares fp16's bounds.
# Reduced precision: measured with the rewrite in ONNX Runtime (benchmarks/precision.py, tiny at 512 px, random
# weights): at most 4.4e-3 relative in fp16 and 1.7e-2 in bf16. The bounds are ~7x that, because trained
# weights, 1024 px and TensorRT's own kernels were not part of that measurement (`sam2-trt check` is).
_FP32 = {
    "features": Tolerance(1e-4, 1e-3, "fp32 engine: other kernels, other summation order"),
    "logits": Tolerance(1e-4, 1e-3, "fp32 engine: other kernels, other summation order"),
    "small": Tolerance(1e-4, 1e-3, "fp32 engine: other kernels, other summation order"),
    "memory": Tolerance(0.0, 1.6e-2, "bf16-rounded output: one flipped rounding is 2^-8 relative"),
}
_HALF = {
    "features": Tolerance(1e-3, 3e-2, "fp16 storage between layers (11-bit mantissa), up to 48 blocks deep"),
    "logits": Tolerance(1e-3, 3e-2, "fp16 storage in the two-way transformer and upscaling"),
    "small": Tolerance(1e-3, 3e-2, "fp16 storage in the transformer feeding the heads"),
    "memory": Tolerance(0.0, 3e-2, "fp16 storage, then the bf16 rounding of the output"),
}
_BF16 = {k: Tolerance(t.atol * 8, t.rtol * 4, "bf16 storage (8-bit mantissa): " + t.why.split(": ", 1)[-1])
         for k, t in _HALF.items()}


@dataclass(frozen=True)
class PrecisionPolicy:
    precision: str  # fp32 | tf32 | fp16 | bf16
    low_dtype: str | None  # "float16" / "bfloat16" for the reduced-precision parts, None when all fp32
    tf32: bool  # TensorRT may use TF32 for fp32 matmuls and convolutions
    keep_fp32_ops: tuple = ()
    keep_fp32_name_parts: tuple = ()
    keep_fp32_data_independent: bool = True
    keep_fp32_inputs_of: tuple = ()  # these ops and everything they are computed from stay fp32
    tolerances: dict = field(default_factory=dict)  # "graph.output" -> Tolerance

    def tolerance(self, graph: str, output: str) -> Tolerance:
        return self.tolerances[f"{graph}.{output}"]

    def to_json(self) -> dict:
        d = asdict(self)
        d["tolerances"] = {k: asdict(t) for k, t in self.tolerances.items()}
        return json.loads(json.dumps(d))  # plain JSON types (lists, not tuples): equal after a round trip


def _tolerances(table: dict) -> dict:
    """{"graph.output": Tolerance} from a table by precision kind (each output's kind is on its spec)."""
    return {f"{g}.{t.name}": table[t.precision_kind] for g, spec in GRAPHS.items() for t in spec.outputs}


def policy_for(precision: str) -> PrecisionPolicy:
    check_precision(precision, "--precision")
    if precision in ("fp32", "tf32"):
        return PrecisionPolicy(precision, None, tf32=precision == "tf32",
                               tolerances=_tolerances(_FP32 if precision == "fp32" else _HALF))
    return PrecisionPolicy(precision, {"fp16": "float16", "bf16": "bfloat16"}[precision], tf32=False,
                           keep_fp32_ops=KEEP_FP32_OPS, keep_fp32_name_parts=KEEP_FP32_NAME_PARTS,
                           keep_fp32_inputs_of=KEEP_FP32_INPUTS_OF,
                           tolerances=_tolerances(_HALF if precision == "fp16" else _BF16))


def unconstrained_policy(precision: str) -> PrecisionPolicy:
    """The same precision with no fp32 islands except what types require: the comparison the policy is
    measured against (benchmarks/precision.py)."""
    base = policy_for(precision)
    return PrecisionPolicy(base.precision, base.low_dtype, base.tf32, tolerances=base.tolerances)
