"""The opt-in int8 export for CPUs (`sam2-trt export --int8`): ONNX Runtime's dynamic quantization of
the weight matrix multiplications, everything else fp32.

What is quantized: every MatMul whose second input is a weight (an initializer), i.e. the Linear layers of the
Hiera trunk, the FPN neck's projections as matmuls, the two-way transformer, the memory attention's projections
and the MLPs: weights to int8 per output channel, activations to uint8 per tensor at run time (ONNX Runtime's
DynamicQuantizeMatMul on the CPU). What is not:
  * matmuls of two activations (attention scores and their weighting): their range changes per image;
  * convolutions: ONNX Runtime's ConvInteger on the CPU is slower than its fp32 convolution;
  * the fp32 islands of every reduced precision (sam2_trt/core/fp32_islands.py, shared with the TensorRT
    precision policy): the object-score head, and whatever feeds Sin/Cos (the point encoding) or a threshold
    comparison (the memory encoder's binarization);
  * LayerNorm, Softmax, GELU and every other op, which dynamic quantization leaves as they are.
Graph inputs and outputs keep their names, shapes and fp32 types: the runtime runs an int8 model directory
exactly like an fp32 one, on ONNX Runtime's CPU backend (MatMulInteger and DynamicQuantizeMatMul are CPU ops).

Each int8 graph is validated against the official PyTorch modules like the fp32 ones, with the tolerances below
(one per precision kind, as the TensorRT policy sets them per engine precision), and its error against the fp32
graph is recorded in validation.json. Measured on random weights (benchmarks/int8.py): trained weights have other
activation ranges, so the error of a real checkpoint is measured by its own export.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sam2_trt.core.fp32_islands import KEEP_FP32_INPUTS_OF, KEEP_FP32_NAME_PARTS, computed_into
from sam2_trt.core.specs import Tolerance

PRECISIONS = ("fp32", "int8")
DEFAULT_PRECISION = "fp32"  # exact: the default export is the one validated at fp32 tolerances

# Bounds on |int8 - reference| per output kind, as Tolerance(atol, rtol) against max|reference|. Measured by
# benchmarks/int8.py on sam2.1_hiera_t at 512 and 1024 px with random weights (README, "int8 on CPUs"): at most
# ~3e-2 relative on the features and logits; the bounds leave room for other models and checkpoints.
TOLERANCES = {
    "features": Tolerance(1e-3, 1.5e-1, "int8 weights (per channel) and uint8 activations (per tensor) in "
                                        "every linear layer, up to 48 Hiera blocks deep"),
    "logits": Tolerance(1e-3, 1.5e-1, "int8 linear layers of the two-way transformer and the hypernetworks"),
    "small": Tolerance(1e-3, 1.5e-1, "int8 linear layers feeding the IoU and pointer heads"),
    "memory": Tolerance(0.0, 1.5e-1, "int8 linear layers upstream of the memory encoder's fp32 convolutions"),
}


def tolerance(spec, output: str) -> Tolerance:
    return TOLERANCES[spec.tensor(output).precision_kind]


def weight_matmuls(model) -> tuple[list, list]:
    """(names of the MatMul nodes to quantize, names of those the fp32 islands keep) of an onnx.ModelProto."""
    graph = model.graph
    weights = {t.name for t in graph.initializer}
    weights |= {n.output[0] for n in graph.node if n.op_type == "Constant"}
    islands = computed_into(graph.node, KEEP_FP32_INPUTS_OF)
    quantize, kept = [], []
    for k, node in enumerate(graph.node):
        if node.op_type != "MatMul" or len(node.input) < 2 or node.input[1] not in weights:
            continue
        fp32 = k in islands or any(part in node.name for part in KEEP_FP32_NAME_PARTS)
        (kept if fp32 else quantize).append(node.name)
    return quantize, kept


def quantize_graph(src: Path, dst: Path) -> dict:
    """Write the int8 form of the fp32 graph `src` to `dst`; returns {"quantized": n, "kept_fp32": [names]}."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize, kept = weight_matmuls(onnx.load(str(src)))
    logging.disable(logging.WARNING)  # its advice to run ONNX Runtime's pre-processing first, on every graph
    try:
        quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul"], nodes_to_quantize=quantize,
                         per_channel=True, weight_type=QuantType.QInt8, extra_options={"MatMulConstBOnly": True})
    finally:
        logging.disable(logging.NOTSET)
    return {"quantized": len(quantize), "kept_fp32": kept}
