"""More objects than an engine's profile allows run as several calls. Checked with real graphs in ONNX
Runtime: the chunked call equals the whole call, so each object's outputs depend on that object only."""

import numpy as np
import pytest

from sam2_trt.runtime.backends.object_chunks import concat_objects, objects_in_call, split_objects
from sam2_trt.core.graph_check import sample_inputs
from sam2_trt.core.specs import GRAPHS


@pytest.fixture(scope="module")
def model(tiny512_dir):
    from sam2_trt.runtime.model import SAM2Model

    return SAM2Model.load(tiny512_dir, backend="onnxruntime-cpu", device="cpu")


@pytest.mark.parametrize("graph, case", [
    ("memory_encoder", {"objects": 5}),
    ("prompt_decoder", {"objects": 5, "embeds": 1, "points": 3}),  # one image embedding shared by all
    ("prompt_decoder", {"objects": 5, "embeds": 5, "points": 2}),  # per-object (memory-conditioned) embeddings
    ("memory_attention", {"objects": 3, "slots": 2, "pointers": 3}),
])
def test_chunked_call_equals_the_whole_call(model, graph, case):
    spec = GRAPHS[graph]
    inputs = sample_inputs(spec, model.image_size, case, seed=7)
    whole = model.run(graph, **inputs)
    chunks = split_objects(spec, inputs, max_objects=2)
    assert len(chunks) == -(-case["objects"] // 2)
    assert [objects_in_call(spec, c) for c in chunks] == [2] * (len(chunks) - 1) + [case["objects"] % 2 or 2]
    if graph == "prompt_decoder":
        assert all(c["image_embed"].shape[0] == (1 if case["embeds"] == 1 else objects_in_call(spec, c))
                   for c in chunks)
    joined = concat_objects(spec, [model.run(graph, **c) for c in chunks])
    for name in spec.output_names:  # equal up to batch-dependent kernels (the spec's fp32 tolerance)
        err = float(np.abs(joined[name] - whole[name]).max())
        assert spec.tensor(name).tolerance.passes(err, float(np.abs(whole[name]).max())), (name, err)


def test_a_call_that_fits_is_not_split():
    spec = GRAPHS["memory_encoder"]
    inputs = sample_inputs(spec, 256, {"objects": 2}, seed=0)
    assert split_objects(spec, inputs, 2) == [inputs]
    assert objects_in_call(GRAPHS["image_encoder"], sample_inputs(GRAPHS["image_encoder"], 64, {"images": 1}, 0)) \
        is None
