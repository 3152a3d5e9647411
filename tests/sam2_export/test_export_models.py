"""Every official model exports and validates itself at its real size; --image-size is honored end to end."""

import json
import shutil

import numpy as np
import pytest

from sam2_trt.core.metadata import VALIDATION_FILENAME, load_metadata
from sam2_trt.core.specs import GRAPHS
from sam2_trt.export.configs import ALL_MODELS
from sam2_trt.export.onnx_export import check_graph
from tests.conftest import run_cli


def _assert_valid_model_dir(out, image_size, family):
    meta = load_metadata(out)
    meta.verify_graphs(check_hashes=True)
    assert meta.image_size == image_size
    for name, spec in GRAPHS.items():
        check_graph(spec, out / spec.filename)  # onnx.checker, spec I/O names, no complex tensors
        io = meta.raw["graphs"][name]
        assert [t["name"] for t in io["inputs"]] == spec.input_names
    report = json.loads((out / VALIDATION_FILENAME).read_text())["outputs"]
    expected = sum(len(s.validation_cases) * len(s.outputs) for s in GRAPHS.values())
    assert len(report) == expected and all(r["passed"] for r in report)
    # SAM 2.1 differs from SAM 2.0 in exactly four flags (see SAM2_REFERENCE.md section 1)
    flags = meta.flags
    is21 = family == "sam2.1"
    assert flags["add_tpos_enc_to_obj_ptrs"] is is21 and flags["proj_tpos_enc_in_obj_ptrs"] is is21
    assert flags["use_signed_tpos_enc_to_obj_ptrs"] is is21
    assert ("no_obj_embed_spatial" in meta.raw["constants"]) is is21
    assert meta.constant("no_obj_ptr").shape == (1, 256)
    return meta


@pytest.mark.slow
@pytest.mark.parametrize("model", ALL_MODELS, ids=[m.short for m in ALL_MODELS])
def test_official_model_exports_and_validates_at_1024(model, tmp_path):
    from sam2_trt.export.random_weights import write_random_checkpoint

    ckpt = write_random_checkpoint(model, tmp_path / f"{model.long}.pt", seed=0)
    out = tmp_path / "model"
    proc = run_cli("export", "--config", model.config_path, "--checkpoint", ckpt, "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = _assert_valid_model_dir(out, 1024, model.family)
    assert meta.raw["graphs"]["image_encoder"]["outputs"][2]["shape"] == ["images", 256, 64, 64]
    assert meta.raw["checkpoint"]["file"] == ckpt.name
    shutil.rmtree(tmp_path)  # up to 2 GB per model


def test_image_size_512_flows_through_every_graph(tiny_checkpoint, tmp_path):
    import onnxruntime as ort

    out = tmp_path / "tiny512"
    proc = run_cli("export", "--config", "sam2.1_hiera_t", "--checkpoint", tiny_checkpoint, "--out", out,
                   "--image-size", "512")
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = _assert_valid_model_dir(out, 512, "sam2.1")
    assert meta.feature_size == 32
    sess = ort.InferenceSession(str(out / "image_encoder.onnx"), providers=["CPUExecutionProvider"])
    feats = sess.run(None, {"image": np.zeros((1, 3, 512, 512), np.float32)})
    assert [f.shape for f in feats] == [(1, 32, 128, 128), (1, 64, 64, 64), (1, 256, 32, 32), (1, 256, 32, 32)]
    sess = ort.InferenceSession(str(out / "prompt_decoder.onnx"), providers=["CPUExecutionProvider"])
    masks = sess.run(["masks"], {
        "image_embed": feats[3], "high_res_feat0": feats[0], "high_res_feat1": feats[1],
        "point_coords": np.array([[[100.0, 200.0]]], np.float32), "point_labels": np.array([[1]], np.int32),
        "mask_input": np.zeros((1, 1, 128, 128), np.float32), "has_mask_input": np.zeros(1, np.float32),
        "frame_index": np.zeros(1, np.int32)})[0]
    assert masks.shape == (1, 4, 128, 128)


def test_sam2_0_family_exports_with_the_same_interface(tmp_path):
    """SAM 2.0 lacks the pointer temporal encoding and no_obj_embed_spatial; its graphs keep every spec input."""
    out = tmp_path / "s2"
    proc = run_cli("export", "--config", "sam2_hiera_t", "--random-weights", "--out", out, "--image-size", "256")
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_valid_model_dir(out, 256, "sam2")
