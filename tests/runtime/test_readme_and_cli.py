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
    assert proc.returncode == 3 and "cannot read image" in proc.stderr
    proc = run_cli("segment", photo, "--model", tmp_path / "nomodel", "--point", "1,1", "--out", tmp_path)
    assert proc.returncode == 3 and "model directory not found" in proc.stderr
    proc = run_cli("segment", photo, "--model", tiny512_dir, "--point", "1", "--out", tmp_path)
    assert proc.returncode == 2 and "x,y[,label]" in proc.stderr
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
