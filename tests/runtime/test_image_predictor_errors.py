"""Bad input gets a clear error that names the value and the fix, and the predictor stays usable."""

import logging
import shutil

import numpy as np
import pytest

from sam2_trt.core.errors import BackendUnavailable, ModelDirError
from tests.official_reference import scene

IMAGE = scene(200, 260)
CLICK = dict(point_coords=np.array([[120.0, 80.0]]), point_labels=np.array([1]))


@pytest.fixture(scope="module")
def predictor(tiny512_dir):
    from sam2_trt.runtime import SAM2ImagePredictor

    p = SAM2ImagePredictor.load(tiny512_dir, backend="onnxruntime-cpu", device="cpu")
    p.set_image(IMAGE)
    return p


def test_predict_before_set_image(tiny512_dir):
    from sam2_trt.runtime import SAM2ImagePredictor

    p = SAM2ImagePredictor.load(tiny512_dir, device="cpu")
    with pytest.raises(RuntimeError, match=r"An image must be set with \.set_image"):
        p.predict(**CLICK)
    with pytest.raises(RuntimeError, match="set_image_batch"):
        p.predict_batch([CLICK["point_coords"]], [CLICK["point_labels"]])


@pytest.mark.parametrize("image, message", [
    (IMAGE[..., 0], "grayscale"),
    (IMAGE[..., :1], "grayscale"),
    (np.concatenate([IMAGE, IMAGE[..., :1]], -1), "RGBA"),
    (IMAGE.astype(np.uint16) * 257, r"dtype uint16.*\(image >> 8\)"),
    (IMAGE.astype(np.float32) / 255, "dtype float32"),
    (IMAGE[:5, :5], "5x5 pixels"),
    ([[1, 2, 3]], "numpy array or a PIL image"),
])
def test_bad_images_are_rejected_and_the_old_image_stays(predictor, image, message):
    before = predictor.predict(**CLICK)[0]
    with pytest.raises((ValueError, TypeError), match=message):
        predictor.set_image(image)
    np.testing.assert_array_equal(predictor.predict(**CLICK)[0], before)


def test_pil_image_in_another_mode():
    from PIL import Image

    from sam2_trt.runtime.prompts import check_image

    with pytest.raises(ValueError, match=r"mode 'RGBA'.*convert\('RGB'\)"):
        check_image(Image.fromarray(np.zeros((20, 20, 4), np.uint8)))
    assert check_image(Image.fromarray(IMAGE)).shape == IMAGE.shape


@pytest.mark.parametrize("kwargs, message", [
    (dict(point_coords=np.zeros((3,)), point_labels=np.ones(3)), r"point_coords has shape \(3,\)"),
    (dict(point_coords=np.zeros((2, 2)), point_labels=np.ones(3)), r"point_labels has shape \(3,\)"),
    (dict(point_coords=np.array([[np.nan, 1.0]]), point_labels=np.ones(1)), "NaN"),
    (dict(point_coords=np.zeros((2, 2)), point_labels=np.array([1, 7])), r"\{-1, 0, 1, 2, 3\}.*\[7\]"),
    (dict(point_coords=np.zeros((1, 2))), "point_labels must be supplied"),
    (dict(point_labels=np.ones(1)), "without point_coords"),
    (dict(box=np.array([100.0, 10.0, 50.0, 60.0])), r"x1 < x0"),
    (dict(box=np.array([1.0, 2.0, 3.0])), r"box has shape \(3,\)"),
    (dict(box=np.array([0.0, 0.0, np.inf, 9.0])), "infinite"),
    (dict(mask_input=np.zeros((1, 64, 64)), **CLICK), r"mask_input has shape \(1, 64, 64\).*1x128x128"),
    (dict(), "at least one point or box"),
])
def test_bad_prompts_are_rejected_and_the_predictor_stays_usable(predictor, kwargs, message):
    before = predictor.predict(**CLICK)
    with pytest.raises(ValueError, match=message):
        predictor.predict(**kwargs)
    after = predictor.predict(**CLICK)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_model_dir_missing_a_graph(tiny512_dir, tmp_path):
    from sam2_trt.runtime import SAM2ImagePredictor

    broken = tmp_path / "broken"
    shutil.copytree(tiny512_dir, broken)
    (broken / "memory_encoder.onnx").unlink()
    with pytest.raises(ModelDirError, match="missing memory_encoder.onnx.*sam2-trt export"):
        SAM2ImagePredictor.load(broken, device="cpu")


def test_model_dir_whose_graph_does_not_match_its_checksum(tiny512_dir, tmp_path):
    from sam2_trt.runtime import SAM2ImagePredictor

    broken = tmp_path / "broken"
    shutil.copytree(tiny512_dir, broken)
    with open(broken / "prompt_decoder.onnx", "r+b") as f:
        f.seek(-100, 2)
        byte = f.read(1)
        f.seek(-100, 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelDirError, match="prompt_decoder.onnx does not match the sha256"):
        SAM2ImagePredictor.load(broken, device="cpu")


def test_not_a_model_dir(tmp_path):
    from sam2_trt.runtime import SAM2ImagePredictor

    with pytest.raises(ModelDirError, match="not a sam2-trt model directory"):
        SAM2ImagePredictor.load(tmp_path, device="cpu")
    with pytest.raises(ModelDirError, match="model directory not found"):
        SAM2ImagePredictor.load(tmp_path / "nope", device="cpu")


def test_backend_selection(tiny512_dir, caplog):
    import onnxruntime as ort

    from sam2_trt.runtime.backends import select_backend

    with pytest.raises(ValueError, match="backend 'tensorrt-x' is unknown"):
        select_backend("tensorrt-x", "cpu")
    with pytest.raises(ValueError, match="device 'gpu' is not supported"):
        select_backend("auto", "gpu")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(BackendUnavailable, match="onnxruntime-gpu"):
            select_backend("onnxruntime-cuda", "cuda")
        with caplog.at_level(logging.INFO, logger="sam2_trt"):
            chosen = select_backend("auto", "cuda")
        assert chosen.name == "onnxruntime-cpu"
        lines = [r.getMessage() for r in caplog.records if "using backend" in r.getMessage()]
        assert len(lines) == 1 and "onnxruntime-cuda:" in lines[0] and "tensorrt" in lines[0]
