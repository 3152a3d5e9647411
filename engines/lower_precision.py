"""Rewrite an fp32 ONNX graph into the mixed precision a PrecisionPolicy asks for (engines/precision.py).

TensorRT builds the result strongly typed: every tensor runs in the type the graph gives it. The rewrite:

  1. types every tensor with ONNX shape inference, and marks "data-dependent" tensors: those computed from a
     graph input's values (Shape/Size outputs are not: they depend on sizes only);
  2. lowers a node (its float outputs become fp16/bf16) when it computes on a data-dependent float input, its op
     is dtype-generic, and the policy does not keep it fp32 (by op type, by name, or because a Sin/Cos or a
     threshold comparison is computed from it);
  3. inserts a Cast wherever a tensor's type differs from what its consumer now runs in, and casts lowered graph
     outputs back to fp32 (graph inputs and outputs keep their types). A weight (an fp32 initializer) that a
     lowered node reads is stored in the low type instead, as an initializer: older TensorRT ONNX parsers take
     deconvolution (ConvTranspose) weights only as initializers, and a Cast in front of a Conv/Gemm weight
     costs tactics (issue 19, item 7). Numerically the same: round to nearest even, as Cast.

`simulate=True` keeps every tensor fp32 and instead rounds each would-be-lowered tensor through the low type
(Cast to fp16/bf16 and back): the same rounding points, runnable in ONNX Runtime on a CPU, which is how the
policy's tolerances are measured without a GPU. Real reduced-precision kernels round no more often than this
(TensorRT fuses ops and accumulates in fp32), so it is, if anything, pessimistic.

Shapes and dtypes: the graph's inputs and outputs are unchanged (names, fp32/int32, dynamic axes).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from sam2_trt.core.fp32_islands import computed_into

# Ops whose float inputs and outputs may all be fp16/bf16 (ONNX type-generic and supported by TensorRT in both).
LOWERABLE_OPS = frozenset((
    "Add", "Sub", "Mul", "Div", "Neg", "MatMul", "Gemm", "Conv", "ConvTranspose", "Relu", "Erf", "Sigmoid", "Tanh",
    "Where", "Transpose", "Reshape", "Concat", "Slice", "Split", "Squeeze", "Unsqueeze", "Gather", "Expand", "Tile",
    "Identity", "MaxPool", "AveragePool", "Pad", "Resize", "Cast", "Flatten", "Clip", "Max", "Min", "Greater",
    "Less", "Equal", "LayerNormalization", "Softmax", "ReduceMean", "Pow", "Sqrt", "Sin", "Cos", "Exp",
))
# (op, input index) that must stay as they are whatever the node runs in.
PROTECTED_INPUTS = frozenset((("Resize", 1), ("Resize", 2)))
_LOW = {"float16": TensorProto.FLOAT16, "bfloat16": TensorProto.BFLOAT16}


def bfloat16_bits(values: np.ndarray) -> np.ndarray:
    """float32 values -> their bfloat16 encodings (uint16), rounded to nearest even as ONNX's Cast; NaN stays
    a (quiet) NaN."""
    bits = np.ascontiguousarray(values, np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(values)
    rounded[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded


def _low_initializer(tensor: onnx.TensorProto, low: int, name: str) -> onnx.TensorProto:
    """An fp32 initializer's values in the low type `low` (FLOAT16 or BFLOAT16), as a new initializer `name`."""
    values = numpy_helper.to_array(tensor)
    if low == TensorProto.FLOAT16:
        return numpy_helper.from_array(values.astype(np.float16), name)
    return helper.make_tensor(name, TensorProto.BFLOAT16, values.shape, bfloat16_bits(values).tobytes(), raw=True)


def _tensor_types(model: onnx.ModelProto) -> dict:
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    g = inferred.graph
    types = {vi.name: vi.type.tensor_type.elem_type for vi in list(g.input) + list(g.output) + list(g.value_info)}
    types.update({t.name: t.data_type for t in g.initializer})
    for node in g.node:
        if node.op_type == "Constant":
            value = next((a for a in node.attribute if a.name == "value"), None)
            if value is not None:
                types[node.output[0]] = value.t.data_type
    return types


def _data_dependent(graph: onnx.GraphProto) -> set:
    initializers = {t.name for t in graph.initializer}
    dependent = {i.name for i in graph.input if i.name not in initializers}
    for node in graph.node:
        if node.op_type in ("Shape", "Size"):
            continue
        if any(i in dependent for i in node.input if i):
            dependent.update(o for o in node.output if o)
    return dependent


def lowered_node_names(model: onnx.ModelProto, policy) -> set:
    """Names of the nodes the policy runs in reduced precision (for tests and the build log)."""
    nodes = model.graph.node
    return {nodes[k].name for k in _plan(model, policy)[0]}


def _plan(model: onnx.ModelProto, policy):
    graph = model.graph
    if any(n.op_type in ("If", "Loop", "Scan") for n in graph.node):
        raise ValueError("graphs with control flow (If/Loop/Scan) are not supported by the precision rewrite")
    types = _tensor_types(model)
    dependent = _data_dependent(graph)
    closure = computed_into(graph.node, policy.keep_fp32_inputs_of) if policy.keep_fp32_inputs_of else set()
    lowered = []  # node indices
    for k_node, node in enumerate(graph.node):
        if node.op_type not in LOWERABLE_OPS or node.op_type in policy.keep_fp32_ops:
            continue
        if any(part in node.name for part in policy.keep_fp32_name_parts) or k_node in closure:
            continue
        float_inputs = [i for k, i in enumerate(node.input)
                        if i and types.get(i) == TensorProto.FLOAT and (node.op_type, k) not in PROTECTED_INPUTS]
        casts_to_float = node.op_type == "Cast" and helper.get_attribute_value(
            next(a for a in node.attribute if a.name == "to")) == TensorProto.FLOAT
        if any(i in dependent for i in float_inputs) or (casts_to_float and node.input[0] in dependent):
            lowered.append(k_node)
    unknown = sorted({o for k in lowered for o in graph.node[k].output if o and o not in types})
    if unknown:
        raise ValueError(f"shape inference left {len(unknown)} tensor types unknown (e.g. {unknown[:3]}); the "
                         f"precision rewrite needs every type")
    return lowered, types


def lower_precision(model: onnx.ModelProto, policy, simulate: bool = False) -> onnx.ModelProto:
    """A new ModelProto in the policy's mixed precision (or, with `simulate`, fp32 with its rounding points)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    if policy.low_dtype is None:
        return out
    low = _LOW[policy.low_dtype]
    lowered, types = _plan(out, policy)
    lowered = set(lowered)
    graph = out.graph
    nodes = [graph.node[k] for k in range(len(graph.node))]
    # dtype each float tensor has after the rewrite (simulate: the type its values are rounded to)
    dtype = dict(types)
    for k in lowered:
        for o in nodes[k].output:
            if o and types.get(o) == TensorProto.FLOAT:
                dtype[o] = low
    new_nodes, casts = [], {}
    weights = {t.name: t for t in graph.initializer if t.data_type == TensorProto.FLOAT}

    def cast(name: str, to: int) -> str:
        """The name of `name` in type `to` (a Cast node; in simulate mode a round trip through `to`; a weight
        lowered for real: an initializer in that type)."""
        key = (name, to)
        if key not in casts:
            if not simulate and to == low and name in weights:
                graph.initializer.append(_low_initializer(weights[name], low, f"{name}__as{to}"))
                casts[key] = f"{name}__as{to}"
            elif simulate:
                q = f"{name}__q{to}"
                new_nodes.append(helper.make_node("Cast", [name], [q], to=to, name=f"{q}__cast"))
                new_nodes.append(helper.make_node("Cast", [q], [f"{q}__f32"], to=TensorProto.FLOAT,
                                                  name=f"{q}__back"))
                casts[key] = f"{q}__f32"
            else:
                c = f"{name}__as{to}"
                new_nodes.append(helper.make_node("Cast", [name], [c], to=to, name=f"{c}__cast"))
                casts[key] = c
        return casts[key]

    renamed_outputs = {}
    for k_node, node in enumerate(nodes):
        is_low = k_node in lowered
        for k, i in enumerate(node.input):
            if not i or types.get(i) not in (TensorProto.FLOAT, low) or (node.op_type, k) in PROTECTED_INPUTS:
                continue
            want = low if is_low else TensorProto.FLOAT
            if simulate:
                if is_low and dtype[i] == TensorProto.FLOAT:  # an fp32 value entering the low region: round it
                    node.input[k] = cast(i, low)
            elif dtype[i] != want:
                node.input[k] = cast(i, want)
        if is_low and node.op_type == "Cast" and not simulate:
            for a in node.attribute:
                if a.name == "to" and a.i == TensorProto.FLOAT:
                    a.i = low
        new_nodes.append(node)
        if is_low and simulate:  # round each float output as a low-precision kernel would store it
            for k, o in enumerate(node.output):
                if o and dtype.get(o) == low:
                    node.output[k] = f"{o}__raw"
                    q = f"{o}__q"
                    new_nodes.append(helper.make_node("Cast", [f"{o}__raw"], [q], to=low, name=f"{q}__cast"))
                    new_nodes.append(helper.make_node("Cast", [q], [o], to=TensorProto.FLOAT, name=f"{q}__back"))
    if not simulate:
        for o in graph.output:
            if dtype.get(o.name) == low:  # lowered output: rename its producer's tensor, cast back to fp32
                renamed_outputs[o.name] = f"{o.name}__low"
        for node in new_nodes:
            node.input[:] = [renamed_outputs.get(i, i) for i in node.input]
            node.output[:] = [renamed_outputs.get(o, o) for o in node.output]
        for name, low_name in renamed_outputs.items():
            new_nodes.append(helper.make_node("Cast", [low_name], [name], to=TensorProto.FLOAT,
                                              name=f"{name}__to_fp32"))
    del graph.node[:]
    graph.node.extend(_topological(new_nodes, graph))
    del graph.value_info[:]  # stale types; TensorRT and ONNX Runtime infer them again
    _drop_unused_initializers(graph, {name for name, to in casts if name in weights})
    return out


def _drop_unused_initializers(graph: onnx.GraphProto, candidates: set) -> None:
    """Remove the fp32 originals of lowered weights that no node reads any more (each is stored once)."""
    used = {i for n in graph.node for i in n.input} | {v.name for v in list(graph.input) + list(graph.output)}
    keep = [t for t in graph.initializer if t.name not in candidates or t.name in used]
    if len(keep) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(keep)


def _topological(nodes: list, graph: onnx.GraphProto) -> list:
    """Nodes ordered so every input is produced before use (inserted Casts follow their source)."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(nodes), []
    while pending:
        progressed, rest = False, []
        for node in pending:
            if all(i in available for i in node.input):
                ordered.append(node)
                available.update(node.output)
                progressed = True
            else:
                rest.append(node)
        if not progressed:
            missing = sorted({i for n in rest for i in n.input if i not in available})[:3]
            raise ValueError(f"precision rewrite produced a graph with unresolved inputs {missing}")
        pending = rest
    return ordered
