"""The README's embedding snippet runs as written (on a test model and image), and `sam2-trt segment` writes
files a person can open."""

import re

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, run_cli
from tests.official_reference import scene


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "photo.jpg"
    Image.fromarray(scene(360, 480)).save(path, quality=95)
    return path


def test_readme_embedding_snippet_runs(tiny512_dir, photo, monkeypatch):
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Embedding the runtime", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = code.replace('"models/sam2.1_hiera_t"', repr(str(tiny512_dir))).replace('"photo.jpg"', repr(str(photo)))
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["best"].shape == (360, 480) and namespace["best"].dtype == bool
    assert namespace["masks"].shape == (1, 360, 480)
    assert isinstance(namespace["records"], list)


def test_segment_cli_writes_masks_and_overlay(tiny512_dir, photo, tmp_path):
    out = tmp_path / "clicks"
    proc = run_cli("segment", photo, "--model", tiny512_dir, "--point", "300,130", "--point", "100,250,0",
                   "--out", out, "--device", "cpu")
    assert proc.returncode == 0, proc.stderr[-2000:]
    mask = np.asarray(Image.open(out / "mask.png"))
    overlay = np.asarray(Image.open(out / "overlay.png"))
    assert mask.shape == (360, 480) and set(np.unique(mask)) <= {0, 255} and mask.any()
    original = np.asarray(Image.open(photo).convert("RGB")).astype(int)
    assert overlay.shape == (360, 480, 3)
    assert np.abs(overlay.astype(int) - original)[mask > 0].mean() > 5  # the mask is visibly tinted
    assert "using backend onnxruntime-cpu" in proc.stderr


def test_segment_cli_auto_writes_coco_rle(tiny512_dir, photo, tmp_path):
    import json

    from pycocotools import mask as mask_utils

    out = tmp_path / "auto"
    proc = run_cli("segment", photo, "--model", tiny512_dir, "--auto", "--points-per-side", "4", "--out", out,
                   "--device", "cpu")
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = json.loads((out / "masks.json").read_text())
    labels = np.asarray(Image.open(out / "labels.png"))
    assert labels.shape == (360, 480) and (out / "overlay.png").is_file()
    for r in records:
        m = mask_utils.decode({"size": r["segmentation"]["size"], "counts": r["segmentation"]["counts"].encode()})
        assert m.shape == (360, 480) and int(m.sum()) == r["area"]


def test_segment_cli_errors(tiny512_dir, photo, tmp_path):
    proc = run_cli("segment", photo, "--model", tiny512_dir, "--out", tmp_path, "--device", "cpu")
    assert proc.returncode == 2 and "give --point" in proc.stderr
    proc = run_cli("segment", tmp_path / "none.jpg", "--model", tiny512_dir, "--point", "1,1", "--out", tmp_path)
    assert proc.returncode == 3 and "none.jpg does not exist" in proc.stderr
    proc = run_cli("segment", photo, "--model", tmp_path / "nomodel", "--point", "1,1", "--out", tmp_path)
    assert proc.returncode == 3 and "model directory not found" in proc.stderr
    proc = run_cli("segment", photo, "--model", tiny512_dir, "--point", "1", "--out", tmp_path)
    assert proc.returncode == 2 and "--point '1': expected X,Y[,LABEL] (2 or 3" in proc.stderr
    proc = run_cli("segment", photo, "--model", tiny512_dir, "--box", "100,100,10,10", "--out", tmp_path,
                   "--device", "cpu")
    assert proc.returncode == 3 and "x1 < x0" in proc.stderr


def test_readme_video_snippet_runs(tiny512_dir, tmp_path):
    from tests.runtime.video_reference import write_jpeg_video

    clip = write_jpeg_video(tmp_path / "clip", num_frames=3, h=480, w=640)
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Tracking objects in videos", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = code.replace('"models/sam2.1_hiera_t"', repr(str(tiny512_dir))).replace('"clip.mp4"', repr(str(clip)))
    frames = [np.asarray(Image.open(clip / f"{t:05d}.jpg")) for t in range(3)]
    namespace = {"frames": frames}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["frame_idx"] == 2 and namespace["obj_ids"] == [1]
    assert namespace["masks"].shape == (2, 480, 640) and namespace["masks"].dtype == bool
    assert namespace["logits"].shape == (1, 1, 480, 640)


# ---- images of other depths, and flag values ---------------------------------------------------------------------
def test_sixteen_bit_images_keep_their_content(tiny512_dir, tmp_path):
    """A 16-bit PNG: PIL's convert('RGB') clips it at 255 (mostly white); its top 8 bits are what it shows."""
    from sam2_trt import SAM2ImagePredictor
    from sam2_trt.runtime.images import read_image

    eight = scene(120, 160)[..., 0].astype(np.uint16)
    sixteen = eight * 256 + 100  # 16-bit values whose top byte is the 8-bit image
    path = tmp_path / "deep.png"
    Image.fromarray(sixteen).save(path)
    loaded = read_image(path)
    assert loaded.dtype == np.uint8 and np.array_equal(loaded, np.repeat(eight[..., None], 3, 2).astype(np.uint8))

    predictor = SAM2ImagePredictor.load(tiny512_dir, device="cpu")
    predictor.set_image(Image.open(path))  # a PIL I;16 image through the API: the same conversion
    via_pil = predictor.predict(point_coords=np.array([[80.0, 60.0]]), point_labels=np.array([1]))[0]
    predictor.set_image(loaded)
    via_array = predictor.predict(point_coords=np.array([[80.0, 60.0]]), point_labels=np.array([1]))[0]
    assert np.array_equal(via_pil, via_array)
    with pytest.raises(ValueError, match=r"floating-point image \(PIL mode 'F'\) whose range is unknown"):
        predictor.set_image(Image.fromarray(sixteen.astype(np.float32)))

    proc = run_cli("segment", path, "--model", tiny512_dir, "--point", "80,60", "--out", tmp_path / "out",
                   "--device", "cpu")
    assert proc.returncode == 0, proc.stderr[-2000:]
    mask = np.asarray(Image.open(tmp_path / "out" / "mask.png")) > 0
    best = predictor.predict(point_coords=np.array([[80.0, 60.0]]), point_labels=np.array([1]))
    assert np.array_equal(mask, best[0][np.argmax(best[1])])


@pytest.mark.parametrize("flag, message", [
    ("300,130,0.7", "--point '300,130,0.7': the label must be 1 (foreground) or 0 (background), got 0.7"),
    ("inf,130", "--point 'inf,130': every value must be a finite number (no inf or nan)"),
    ("300,nan", "--point '300,nan': every value must be a finite number"),
])
def test_segment_point_flags_are_checked_with_their_name(photo, tmp_path, flag, message):
    proc = run_cli("segment", photo, "--model", tmp_path, "--point", flag, "--out", tmp_path / "out")
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_segment_out_under_a_file_and_a_rerun_in_another_mode(tiny512_dir, photo, tmp_path):
    (tmp_path / "f").write_text("x")
    proc = run_cli("segment", photo, "--model", tiny512_dir, "--point", "300,130", "--out", tmp_path / "f" / "o",
                   "--device", "cpu")
    assert proc.returncode == 3 and "which is a file; choose a folder path" in proc.stderr, proc.stderr
    out = tmp_path / "out"
    assert run_cli("segment", photo, "--model", tiny512_dir, "--auto", "--points-per-side", "2", "--out", out,
                   "--device", "cpu").returncode == 0
    assert run_cli("segment", photo, "--model", tiny512_dir, "--point", "300,130", "--out", out,
                   "--device", "cpu").returncode == 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["mask.png", "overlay.png"]
