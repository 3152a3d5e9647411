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


def test_pil_images_of_every_mode_are_converted_without_loss():
    """PIL images carry their mode, so they are converted as that mode means (16-bit keeps its top 8 bits; the
    old message suggested convert('RGB'), which clips 16-bit images white)."""
    from PIL import Image

    from sam2_trt.runtime.prompts import check_image

    rgba = np.concatenate([IMAGE, np.full(IMAGE.shape[:2] + (1,), 7, np.uint8)], -1)
    np.testing.assert_array_equal(check_image(Image.fromarray(rgba)), IMAGE)
    gray16 = IMAGE[..., 1].astype(np.uint16) * 257
    np.testing.assert_array_equal(check_image(Image.fromarray(gray16)), np.repeat(IMAGE[..., 1:2], 3, 2))
    assert check_image(Image.fromarray(IMAGE).convert("P")).shape == IMAGE.shape
    with pytest.raises(ValueError, match=r"PIL mode 'F'.*range is unknown"):
        check_image(Image.fromarray(IMAGE[..., 0].astype(np.float32)))


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
    (dict(point_coords=[["120", "80"]], point_labels=[1]), r"point_coords must be numbers, got str"),
    (dict(point_coords=[[120, 80], [1]], point_labels=[1, 1]), r"point_coords must be a rectangular array"),
    (dict(point_coords=[[120, 80]], point_labels=["fg"]), r"point_labels must be numbers"),
    (dict(point_coords=[[120, 80]], point_labels=[0.7]), r"point_labels must be in .*got \[0\.7\]"),
    (dict(box="0 0 10 10"), r"box must be numbers, got str"),
    (dict(mask_input=[[["x"]]], **CLICK), r"mask_input must be numbers"),
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


def test_points_outside_the_image_warn_and_predict_as_the_official(predictor):
    far = dict(point_coords=np.array([[1e4, -50.0]]), point_labels=np.array([1]))
    with pytest.warns(UserWarning, match=r"point_coords: point \(10000, -50\) is outside the 260x200 image; it is "
                                         r"used as the official code uses it"):
        masks, ious, _ = predictor.predict(**far)
    assert masks.shape == (3, 200, 260)
    with pytest.warns(UserWarning, match=r"box: point \(300, 50\) is outside the 260x200 image"):
        predictor.predict(box=np.array([10.0, 10.0, 300.0, 50.0]))


def test_one_predictor_shared_by_threads_gives_each_thread_its_own_image(tiny512_dir):
    """Two threads set their own image and predict, interleaved, on one predictor: each gets the masks of its
    image (they used to get whichever image was set last)."""
    import threading

    from sam2_trt.runtime import SAM2ImagePredictor

    p = SAM2ImagePredictor.load(tiny512_dir, device="cpu")
    images = [IMAGE, np.ascontiguousarray(IMAGE[::-1, ::-1])]
    expected = []
    for im in images:
        p.set_image(im)
        expected.append(p.predict(**CLICK)[0])
    assert not np.array_equal(*expected)
    barrier, results, errors = threading.Barrier(2), {}, []

    def work(k):
        try:
            p.set_image(images[k])
            barrier.wait()  # both images set before either predicts
            results[k] = [p.predict(**CLICK)[0] for _ in range(2)]
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors, errors
    for k in (0, 1):
        for got in results[k]:
            np.testing.assert_array_equal(got, expected[k])


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(points_per_side=0), ValueError, "points_per_side must be >= 1, got 0"),
    (dict(points_per_side=-4), ValueError, "points_per_side must be >= 1, got -4"),
    (dict(points_per_side=2.5), TypeError, "points_per_side must be a whole number, got float 2.5"),
    (dict(points_per_side=True), TypeError, "points_per_side must be a whole number, got bool"),
    (dict(points_per_batch=0), ValueError, "points_per_batch must be >= 1"),
    (dict(crop_n_layers=-1), ValueError, "crop_n_layers must be >= 0, got -1"),
    (dict(crop_n_points_downscale_factor=0), ValueError, "crop_n_points_downscale_factor must be >= 1"),
    (dict(points_per_side=2, crop_n_layers=2, crop_n_points_downscale_factor=2), ValueError,
     r"crop layer 2 would have no points: points_per_side 2 / crop_n_points_downscale_factor 2\*\*2 < 1"),
    (dict(pred_iou_thresh=float("nan")), ValueError, r"pred_iou_thresh must be a finite number in \[0, 1\], got nan"),
    (dict(box_nms_thresh=1.5), ValueError, r"box_nms_thresh must be a finite number in \[0, 1\]"),
    (dict(min_mask_region_area=-1), ValueError, "min_mask_region_area must be a finite number >= 0"),
    (dict(points_per_side=None, point_grids=[np.array([[0.5, np.nan]])]), ValueError,
     r"point_grids\[0\] must hold finite \(x, y\) in \[0, 1\]"),
    (dict(points_per_side=None, point_grids=[np.zeros((0, 2))]), ValueError, r"point_grids\[0\] has shape \(0, 2\)"),
    (dict(points_per_side=None, point_grids=[np.full((4, 2), 0.5)] * 2), ValueError,
     r"point_grids must be a list of crop_n_layers \+ 1 = 1 grids, got 2 grids"),
])
def test_automatic_mask_generator_arguments_are_checked(predictor, kwargs, error, message):
    from sam2_trt.runtime import SAM2AutomaticMaskGenerator

    with pytest.raises(error, match=message):
        SAM2AutomaticMaskGenerator(predictor.model, **kwargs)


def test_model_path_that_is_a_file(tmp_path):
    from sam2_trt.runtime import SAM2ImagePredictor

    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(ModelDirError, match=r"model.onnx is a file, not a model directory; pass the folder"):
        SAM2ImagePredictor.load(tmp_path / "model.onnx", device="cpu")
