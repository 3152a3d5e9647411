"""Tracing one graph wrapper to ONNX under its GraphSpec, and the structural checks every graph must pass."""

from __future__ import annotations

import warnings

from sam2_trt.core.specs import GraphSpec

from .validate import sample_inputs

# Sizes used for tracing: every dynamic axis > 1 (and != other axes) so the tracer cannot specialize a
# broadcast or a reshape on a size that happens to be 1.
TRACE_DIMS = {"images": 2, "frames": 5, "objects": 3, "embeds": 3, "points": 2, "slots": 2, "pointers": 4}
_COMPLEX_TYPES = {14, 15}  # onnx.TensorProto.COMPLEX64 / COMPLEX128


def export_graph(module, spec: GraphSpec, path, image_size: int, opset: int) -> None:
    import torch

    inputs = sample_inputs(spec, image_size, TRACE_DIMS, seed=1234)
    args = tuple(torch.from_numpy(inputs[n]) for n in spec.input_names)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings about Python ints we deliberately fix per image size
        torch.onnx.export(
            module, args, str(path), input_names=spec.input_names, output_names=spec.output_names,
            dynamic_axes=spec.dynamic_axes, opset_version=opset, do_constant_folding=True, dynamo=False,
        )
    check_graph(spec, path)


def check_graph(spec: GraphSpec, path) -> None:
    """onnx.checker, the spec's I/O names and no complex-number tensors anywhere (TensorRT has none)."""
    import onnx

    onnx.checker.check_model(str(path))
    model = onnx.load(str(path), load_external_data=False)
    names_in = [i.name for i in model.graph.input]
    names_out = [o.name for o in model.graph.output]
    if names_in != spec.input_names or names_out != spec.output_names:
        raise AssertionError(f"{spec.name}: exported I/O {names_in} -> {names_out} differs from the spec "
                             f"{spec.input_names} -> {spec.output_names}")
    inferred = onnx.shape_inference.infer_shapes(model)
    values = list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
    bad = [v.name for v in values if v.type.tensor_type.elem_type in _COMPLEX_TYPES]
    bad += [t.name for t in model.graph.initializer if t.data_type in _COMPLEX_TYPES]
    if bad:
        raise AssertionError(f"{spec.name}: complex-valued tensors in the graph: {bad[:5]}")


def graph_io_summary(spec: GraphSpec, image_size: int) -> dict:
    def entry(t):
        return {"name": t.name, "dtype": t.dtype, "shape": list(t.resolve(image_size))}

    return {"inputs": [entry(t) for t in spec.inputs], "outputs": [entry(t) for t in spec.outputs],
            "dynamic_axes": {k: {str(i): n for i, n in v.items()} for k, v in spec.dynamic_axes.items()}}
