"""The checks the TensorRT backend puts on an engine's answers (runtime/backends/engine_io.py), on a CPU: the
spec's output shapes against what the exported graphs really give in ONNX Runtime, and each refusal."""

import numpy as np
import pytest

from sam2_trt.core.engine_record import EngineError, EngineMismatch
from sam2_trt.core.graph_check import sample_inputs
from sam2_trt.core.specs import GRAPHS
from sam2_trt.runtime.backends.engine_io import (bound_symbols, check_engine_io, checked_output_shapes,
                                                 output_shapes)


@pytest.mark.parametrize("graph", list(GRAPHS))
def test_output_shapes_are_what_the_graphs_give(tiny512_dir, graph):
    import onnxruntime as ort

    spec = GRAPHS[graph]
    session = ort.InferenceSession(str(tiny512_dir / spec.filename), providers=["CPUExecutionProvider"])
    for k, case in enumerate(spec.validation_cases):
        inputs = sample_inputs(spec, 512, case, seed=k)
        got = dict(zip(spec.output_names, session.run(spec.output_names, inputs)))
        assert output_shapes(spec, {n: v.shape for n, v in inputs.items()}) == {n: v.shape for n, v in got.items()}


def test_inputs_that_disagree_are_named():
    spec = GRAPHS["memory_attention"]
    shapes = {n: v.shape for n, v in sample_inputs(spec, 512, {"objects": 2, "slots": 3, "pointers": 5}, 0).items()}
    assert bound_symbols(spec, shapes)["slots"] == 3
    with pytest.raises(ValueError, match=r"objects is 2 in 'memory' but 3 in 'memory_valid'"):
        bound_symbols(spec, {**shapes, "memory_valid": (3, 3)})
    with pytest.raises(ValueError, match=r"'vision_features' has 128 at axis 1, the graph takes 256"):
        bound_symbols(spec, {**shapes, "vision_features": (1, 128, 32, 32)})


def test_reported_output_shapes_are_checked():
    spec = GRAPHS["memory_encoder"]
    expected = {"memory": (2, 64, 32, 32)}
    assert checked_output_shapes(spec, expected, {"memory": (2, 64, 32, 32)}, "fix") == expected
    with pytest.raises(EngineError, match=r"could not infer .*'memory' \(it reports \(2, -1, 32, 32\).*; fix"):
        checked_output_shapes(spec, expected, {"memory": (2, -1, 32, 32)}, "fix")
    with pytest.raises(EngineMismatch, match=r"gives output 'memory' the shape \(2, 64, 16, 16\)"):
        checked_output_shapes(spec, expected, {"memory": (2, 64, 16, 16)}, "fix")


def test_engine_tensors_are_checked_against_the_spec():
    spec = GRAPHS["prompt_decoder"]
    io = {t.name: ("input", t.dtype) for t in spec.inputs} | {t.name: ("output", t.dtype) for t in spec.outputs}
    check_engine_io(spec, io, "e.engine", "rebuild")
    broken = {**io, "point_labels": ("input", "float32"), "extra": ("output", "float32")}
    del broken["masks"]
    with pytest.raises(EngineMismatch) as e:
        check_engine_io(spec, broken, "e.engine", "rebuild")
    message = str(e.value)
    for part in ("lacks the output 'masks'", "a tensor 'extra' that the spec does not",
                 "'point_labels' is a input of float32, the spec says a input of int32", "; rebuild"):
        assert part in message, message
    assert np.dtype(spec.tensor("point_labels").dtype) == np.int32
