"""The precision policy as an ONNX rewrite, on a real export: what it keeps fp32, that the result is a valid
graph with the same interface, and that it stays within the tolerances the policy records, measured here in
ONNX Runtime on the CPU (which runs both the real fp16 graph and the rounding simulation)."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from sam2_trt.engines.lower_precision import lower_precision, lowered_node_names
from sam2_trt.engines.precision import KEEP_FP32_NAME_PARTS, KEEP_FP32_OPS, policy_for, unconstrained_policy
from sam2_trt.core.graph_check import sample_inputs
from sam2_trt.core.specs import GRAPHS

SIZE = 512


@pytest.fixture(scope="module")
def graphs(tiny512_dir):
    return {name: onnx.load(str(tiny512_dir / f"{name}.onnx")) for name in GRAPHS}


def run(model, inputs):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in model.graph.output]
    return dict(zip(names, session.run(names, inputs)))


def rel_errors(ours, ref):
    return {k: float(np.abs(ours[k].astype(np.float64) - ref[k]).max() / np.abs(ref[k]).max()) for k in ref}


def node_input_types(model):
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in list(g.input) + list(g.output) + list(g.value_info)}
    types.update({t.name: t.data_type for t in g.initializer})
    return g, types


@pytest.mark.parametrize("precision", ["fp32", "tf32"])
def test_full_precision_policies_leave_the_graph_alone(graphs, precision):
    m = graphs["memory_encoder"]
    assert lower_precision(m, policy_for(precision)).SerializeToString() == m.SerializeToString()


def test_every_keep_rule_matches_nodes_of_the_exported_graphs(graphs):
    ops = {n.op_type for m in graphs.values() for n in m.graph.node}
    assert set(KEEP_FP32_OPS) <= ops, set(KEEP_FP32_OPS) - ops  # a rule for an op no graph has is dead
    for part in KEEP_FP32_NAME_PARTS:
        assert any(part in n.name for n in graphs["prompt_decoder"].graph.node), part


@pytest.mark.parametrize("graph", list(GRAPHS))
def test_fp16_graph_is_valid_keeps_its_interface_and_runs_islands_in_fp32(graphs, graph):
    src = graphs[graph]
    low = lower_precision(src, policy_for("fp16"))
    onnx.checker.check_model(low)
    sig = lambda m: [(v.name, v.type.tensor_type.elem_type) for v in list(m.graph.input) + list(m.graph.output)]
    assert sig(low) == sig(src)
    g, types = node_input_types(low)
    lowered = [n for n in g.node if any(types.get(o) == TensorProto.FLOAT16 for o in n.output)]
    assert any(n.op_type in ("MatMul", "Conv", "Gemm") for n in lowered), "nothing heavy runs in fp16"
    for n in g.node:
        if n.op_type in KEEP_FP32_OPS or any(p in n.name for p in KEEP_FP32_NAME_PARTS):
            float_inputs = [types[i] for i in n.input if i and types.get(i) in (TensorProto.FLOAT, TensorProto.FLOAT16)]
            assert all(t == TensorProto.FLOAT for t in float_inputs), (n.name, float_inputs)


def test_point_encoding_stays_fp32_from_the_coordinates_to_sin_cos(graphs):
    m = graphs["prompt_decoder"]
    producer = {o: n for n in m.graph.node for o in n.output}
    chain, stack = set(), [n for n in m.graph.node if n.op_type in ("Sin", "Cos")]
    while stack:
        n = stack.pop()
        if n.name not in chain:
            chain.add(n.name)
            stack.extend(producer[i] for i in n.input if i in producer)
    assert any(n.op_type == "MatMul" for n in m.graph.node if n.name in chain)  # coords @ gaussian matrix
    assert not chain & lowered_node_names(m, policy_for("fp16"))
    assert chain & lowered_node_names(m, unconstrained_policy("fp16"))  # the rule is what keeps them fp32


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("graph", list(GRAPHS))
def test_reduced_precision_stays_within_the_recorded_tolerances(graphs, graph, precision):
    spec, policy = GRAPHS[graph], policy_for(precision)
    inputs = sample_inputs(spec, SIZE, spec.validation_cases[-1], seed=3)
    ref = run(graphs[graph], inputs)
    variants = {"simulated": lower_precision(graphs[graph], policy, simulate=True)}
    if precision == "fp16":  # ONNX Runtime's CPU kernels run the real fp16 graph too
        variants["fp16 graph"] = lower_precision(graphs[graph], policy)
    for label, model in variants.items():
        out = run(model, inputs)
        for name in spec.output_names:
            tol = policy.tolerance(graph, name)
            err = float(np.abs(out[name].astype(np.float64) - ref[name]).max())
            assert np.isfinite(out[name]).all() and tol.passes(err, float(np.abs(ref[name]).max())), \
                (label, name, err, tol)


@pytest.mark.parametrize("case", range(3))
def test_the_object_score_island_is_measurably_more_accurate(graphs, case):
    """Measured, not assumed: without its island the presence logit moves >= 3x more (fp16 rounding simulation;
    5-100x in development runs)."""
    spec, m = GRAPHS["prompt_decoder"], graphs["prompt_decoder"]
    inputs = sample_inputs(spec, SIZE, spec.validation_cases[case], seed=0)
    ref = run(m, inputs)
    kept = rel_errors(run(lower_precision(m, policy_for("fp16"), simulate=True), inputs), ref)
    free = rel_errors(run(lower_precision(m, unconstrained_policy("fp16"), simulate=True), inputs), ref)
    assert kept["object_score_logits"] * 3 < free["object_score_logits"], (kept, free)


def test_the_threshold_rule_keeps_binarized_masks_from_flipping(graphs):
    """The memory encoder binarizes upsampled logits at 0: upsampling in fp16 flips pixels near 0 and the
    memory moves by several percent; with the threshold's inputs in fp32 it stays within the tolerance."""
    spec, m = GRAPHS["memory_encoder"], graphs["memory_encoder"]
    inputs = sample_inputs(spec, SIZE, {"objects": 3}, seed=3)
    ref = run(m, inputs)["memory"]
    tol = policy_for("fp16").tolerance("memory_encoder", "memory")
    errors = {}
    for label, policy in (("policy", policy_for("fp16")), ("unconstrained", unconstrained_policy("fp16"))):
        out = run(lower_precision(m, policy, simulate=True), inputs)["memory"]
        errors[label] = float(np.abs(out.astype(np.float64) - ref).max())
    scale = float(np.abs(ref).max())
    assert tol.passes(errors["policy"], scale) and not tol.passes(errors["unconstrained"], scale), errors


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_lowered_weights_are_initializers_not_casts(graphs, precision):
    """Conv/ConvTranspose/Gemm (and every other lowered node) read their weights as initializers of the low type
    (older TensorRT parsers take deconvolution weights only so), holding the fp32 values rounded as Cast does;
    an fp32 original stays only where an fp32 node still reads it."""
    policy = policy_for(precision)
    low_type = {"fp16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16}[precision]
    seen_ops = set()
    for src in graphs.values():
        low = lower_precision(src, policy)
        onnx.checker.check_model(low)
        fp32 = {t.name: numpy_helper.to_array(t) for t in src.graph.initializer}
        inits = {t.name: t for t in low.graph.initializer}
        read = {i for n in low.graph.node for i in n.input}
        assert not {n.input[0] for n in low.graph.node if n.op_type == "Cast"} & set(fp32), "a Cast reads a weight"
        assert set(inits) <= read, "an initializer nothing reads was kept"
        for node in low.graph.node:
            for w in node.input[1:] if node.op_type in ("Conv", "ConvTranspose", "Gemm") else ():
                if w in inits and inits[w].data_type != TensorProto.FLOAT:
                    seen_ops.add(node.op_type)
                    assert inits[w].data_type == low_type
                    original = fp32[w.rsplit("__as", 1)[0]]
                    if precision == "fp16":
                        np.testing.assert_array_equal(numpy_helper.to_array(inits[w]), original.astype(np.float16))
                    else:  # bf16: the encodings ONNX Runtime's own Cast gives
                        stored = np.frombuffer(inits[w].raw_data, np.uint16).reshape(original.shape)
                        np.testing.assert_array_equal(stored, ort_bf16_bits(original))
    assert {"Conv", "ConvTranspose"} <= seen_ops, seen_ops


def ort_bf16_bits(values: np.ndarray) -> np.ndarray:
    """ONNX Runtime's Cast(float -> bfloat16) of `values`, as uint16 encodings (Cast back to float32 is exact)."""
    g = onnx.helper.make_graph(
        [onnx.helper.make_node("Cast", ["x"], ["b"], to=TensorProto.BFLOAT16),
         onnx.helper.make_node("Cast", ["b"], ["y"], to=TensorProto.FLOAT)], "cast",
        [onnx.helper.make_tensor_value_info("x", TensorProto.FLOAT, list(values.shape))],
        [onnx.helper.make_tensor_value_info("y", TensorProto.FLOAT, list(values.shape))])
    m = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 17)])
    m.ir_version = 8
    widened = run(m, {"x": values.astype(np.float32)})["y"]
    return (widened.view(np.uint32) >> 16).astype(np.uint16)
