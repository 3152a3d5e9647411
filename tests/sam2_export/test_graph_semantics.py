"""Properties of the graphs that the runtime relies on, checked on the exported ONNX with ONNX Runtime."""

import numpy as np
import pytest

from sam2_trt.core.specs import GRAPHS, MEMORY_ATTENTION
from sam2_trt.export.validate import sample_inputs


@pytest.fixture(scope="module")
def tiny512(tiny_checkpoint, tmp_path_factory):
    from sam2_trt.export.exporter import export_model

    out = tmp_path_factory.mktemp("semantics") / "model"
    export_model("sam2.1_hiera_t", out, checkpoint=tiny_checkpoint, image_size=512, log=lambda m: None)
    return out


def _session(model_dir, graph):
    import onnxruntime as ort

    return ort.InferenceSession(str(model_dir / GRAPHS[graph].filename), providers=["CPUExecutionProvider"])


def test_memory_attention_padding_is_exact(tiny512):
    """An object padded with extra masked slots/pointers gets the same features as without the padding."""
    sess = _session(tiny512, "memory_attention")
    x = sample_inputs(MEMORY_ATTENTION, 512, {"objects": 1, "slots": 2, "pointers": 3}, seed=5)
    x["memory_valid"][:] = 1
    x["pointer_valid"][:] = 1
    plain = sess.run(None, x)[0]
    padded = dict(x)
    rng = np.random.default_rng(0)
    padded["memory"] = np.concatenate([x["memory"], rng.normal(size=x["memory"].shape).astype(np.float32)], 1)
    padded["memory_tpos_index"] = np.concatenate([x["memory_tpos_index"]] * 2, 1)
    padded["memory_valid"] = np.array([[1, 1, 0, 0]], np.float32)
    padded["object_pointers"] = np.concatenate([x["object_pointers"], x["object_pointers"] * 3], 1)
    padded["pointer_tpos"] = np.concatenate([x["pointer_tpos"]] * 2, 1)
    padded["pointer_valid"] = np.array([[1, 1, 1, 0, 0, 0]], np.float32)
    np.testing.assert_allclose(sess.run(None, padded)[0], plain, rtol=0, atol=1e-5)


def test_memory_attention_batches_objects_like_one_by_one(tiny512):
    sess = _session(tiny512, "memory_attention")
    x = sample_inputs(MEMORY_ATTENTION, 512, {"objects": 3, "slots": 3, "pointers": 4}, seed=6)
    batched = sess.run(None, x)[0]
    for i in range(3):
        one = {k: (v if k == "vision_features" else v[i:i + 1]) for k, v in x.items()}
        np.testing.assert_allclose(sess.run(None, one)[0], batched[i:i + 1], rtol=0, atol=1e-5)


def test_memory_encoder_outputs_are_bfloat16_values(tiny512):
    sess = _session(tiny512, "memory_encoder")
    x = sample_inputs(GRAPHS["memory_encoder"], 512, {"objects": 2}, seed=7)
    mem = sess.run(None, x)[0]
    bits = mem.view(np.uint32)
    assert np.all(bits & 0xFFFF == 0), "memories must be rounded to bfloat16 like the official predictor's"


@pytest.mark.parametrize("graph", ["prompt_decoder", "memory_attention", "memory_encoder"])
def test_objects_of_several_frames_equal_each_alone_bit_for_bit(tiny512, graph):
    """What lets a server track many videos in one call: each object reads its own frame (frame_index) and
    gets exactly the bits it gets alone, whatever else is in the batch (layer_norm.py)."""
    spec = GRAPHS[graph]
    sess = _session(tiny512, graph)
    x = sample_inputs(spec, 512, {"objects": 4, "embeds": 4, "points": 3, "slots": 3, "pointers": 5, "frames": 2},
                      seed=8)
    assert set(x["frame_index"].tolist()) == {0, 1}
    batched = sess.run(None, x)
    for i in range(4):
        f = int(x["frame_index"][i])
        one = {k: v[f:f + 1] if spec.tensor(k).shape[0] == "frames" else
               np.zeros(1, np.int32) if k == "frame_index" else v[i:i + 1] for k, v in x.items()}
        for name, alone, together in zip(spec.output_names, sess.run(None, one), batched):
            assert np.array_equal(alone[0], together[i]), f"{graph}.{name}, object {i}"


def test_memory_attention_padding_is_bit_exact(tiny512):
    """Sessions tracked together are padded to the most slots and pointers among them: masked keys must not
    change a single bit."""
    sess = _session(tiny512, "memory_attention")
    x = sample_inputs(MEMORY_ATTENTION, 512, {"objects": 1, "slots": 2, "pointers": 3}, seed=9)
    x["memory_valid"][:] = 1
    x["pointer_valid"][:] = 1
    per_slot = ("memory", "memory_tpos_index", "memory_valid", "object_pointers", "pointer_tpos", "pointer_valid")
    padded = {k: np.concatenate([v, v], axis=1) if k in per_slot else v for k, v in x.items()}
    padded["memory_valid"][:, 2:] = 0
    padded["pointer_valid"][:, 3:] = 0
    assert np.array_equal(sess.run(None, padded)[0], sess.run(None, x)[0])


def test_global_attention_of_the_image_encoder_runs_in_query_blocks(tiny512):
    """Hiera's three global-attention blocks attend over 32 x 32 tokens at 512 px: 4 blocks of 256 queries each
    (sam2_export/modules/image_encoder.py), next to its 9 windowed blocks (one softmax each)."""
    import onnx

    nodes = onnx.load(str(tiny512 / GRAPHS["image_encoder"].filename)).graph.node
    assert sum(n.op_type == "Softmax" for n in nodes) == 9 + 3 * 4
