"""What stays fp32 in every reduced-precision form of the graphs: the TensorRT precision policy
(engines/precision.py: fp16/bf16) and the CPU int8 export (sam2_export/int8.py) decide with these, once.

  * the object-score head: its sign decides whether an object is present (a flipped sign drops the object);
  * Sin, Cos and threshold comparisons (Greater, Less), and everything they are computed from: the prompt
    encoder's random-Fourier point encoding (angles of up to ~30 rad), the memory encoder's binarization of the
    upsampled mask logits at 0, the object-score test.
Pure Python over ONNX node objects (op_type, input, output): no onnx import here.
"""

from __future__ import annotations

KEEP_FP32_NAME_PARTS = ("/pred_obj_score_head/",)
KEEP_FP32_INPUTS_OF = ("Sin", "Cos", "Greater", "Less")


def computed_into(nodes, ops) -> set:
    """Indices into `nodes` (a graph's nodes, in order) of the nodes of type `ops` and of every node they are
    computed from, transitively. (Indices, not id(): protobuf may hand out a new Python wrapper per access.)"""
    nodes = list(nodes)
    producer = {o: k for k, n in enumerate(nodes) for o in n.output}
    keep, stack = set(), [k for k, n in enumerate(nodes) if n.op_type in ops]
    while stack:
        k = stack.pop()
        if k in keep:
            continue
        keep.add(k)
        stack.extend(producer[i] for i in nodes[k].input if i in producer)
    return keep
