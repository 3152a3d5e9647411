"""`sam2-trt demo`: the bundled clip and prompts, the offline fallback (announced and labelled), the model cache."""

import importlib.util
import json
import re
import socket
import subprocess
import sys

import av
import numpy as np

from sam2_trt.cli import demo as demo_cli
from sam2_trt.export import cached_exports as demo
from sam2_trt.export.download import BASE_URL_ENV
from tests.conftest import REPO, run_cli
from tests.sam2_export.test_cli import _BLOCKED


def _decode(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_demo_clip_module():
    spec = importlib.util.spec_from_file_location("make_demo_clip", demo.ASSETS / "make_demo_clip.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bundled_clip_is_what_the_script_renders():
    make = _make_demo_clip_module()
    assert demo.CLIP.stat().st_size < 1_000_000
    with av.open(str(demo.CLIP)) as c:
        assert c.streams.video[0].codec_context.name == "h264" and c.streams.video[0].average_rate == 24
    clip = _decode(demo.CLIP)
    assert len(clip) == 48 and clip[0].shape == (360, 640, 3)
    for t in (0, 24, 47):
        err = clip[t].astype(float) - make.render(t, make.background()).astype(float)
        psnr = 10 * np.log10(255 ** 2 / np.mean(err ** 2))
        assert psnr > 30, f"frame {t}: PSNR {psnr:.1f} dB against a fresh render"
    assert json.loads(demo.PROMPTS.read_text()) == json.loads(json.dumps(make.prompts()))


def test_bundled_prompts_hit_their_objects():
    prompts = demo_cli.demo_prompts()
    assert [(p.frame, p.obj_id) for p in prompts] == [(0, 1), (0, 2), (0, 3)]
    assert prompts[1].box is not None and len(prompts[2].points) == 2
    frame0 = _decode(demo.CLIP)[0].astype(int)
    ball = frame0[int(prompts[0].points[0][1]), int(prompts[0].points[0][0])]
    star = frame0[int(prompts[2].points[0][1]), int(prompts[2].points[0][0])]
    assert ball[0] > 2 * ball[2] and star[0] > 200 and star[1] > 150 and star[2] < 100  # red ball, yellow star
    x0, y0, x1, y1 = map(int, prompts[1].box)
    assert (frame0[y0:y1, x0:x1, 2] > 150).mean() > 0.5  # the box prompt frames the blue box


def test_help_needs_no_torch():
    for cmd in ("demo", "track"):
        proc = subprocess.run([sys.executable, "-c", _BLOCKED, cmd, "--help"], capture_output=True, text=True,
                              cwd=REPO, timeout=120)
        assert proc.returncode == 0 and f"usage: sam2-trt {cmd}" in proc.stdout, proc.stderr


def test_official_weights_are_used_and_cached_when_downloadable(tmp_path, monkeypatch):
    from sam2_trt.export import download, exporter
    from sam2_trt.export.configs import resolve_model_name

    monkeypatch.setenv("SAM2_TRT_CACHE", str(tmp_path))
    ckpt = tmp_path / "sam2.1_hiera_tiny.pt"
    monkeypatch.setattr(download, "download_checkpoint", lambda model, log: ckpt)
    exports = []
    monkeypatch.setattr(exporter, "export_model", lambda *a, **k: exports.append((a, k)))
    model_dir, weights = demo.prepare_model(resolve_model_name("sam2.1_hiera_t"), 512, False, log=lambda m: None)
    assert weights == "official" and model_dir == tmp_path / "models" / "sam2.1_hiera_t-512px-official"
    assert exports[0][1]["checkpoint"] == ckpt and exports[0][1]["random_weights_seed"] is None


def test_demo_offline_falls_back_to_labelled_random_weights(tmp_path):
    env = {BASE_URL_ENV: f"http://127.0.0.1:{_closed_port()}", "SAM2_TRT_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "demo"
    # no --image-size: on the CPU the demo picks 512 and says so
    proc = run_cli("demo", "--max-frames", "6", "--out", out, "--backend", "onnxruntime-cpu", env=env, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "running on the CPU, so at 512 px" in proc.stderr
    assert "could not download the sam2.1_hiera_t checkpoint" in proc.stderr
    assert "OFFLINE: falling back to seeded random weights" in proc.stderr
    assert re.search(r"^tracked 3 objects through 6 frames in \d+\.\d s: \d+\.\d FPS \(backend onnxruntime-cpu\) "
                     r"-- RANDOM WEIGHTS", proc.stdout, re.M), proc.stdout

    report = json.loads((out / "demo.json").read_text())
    assert report["weights"] == "random (offline)" and report["model"] == "sam2.1_hiera_t"
    assert report["image_size"] == 512
    assert report["frames"] == 6 and report["backend"] == "onnxruntime-cpu" and report["fps"] > 0
    assert sorted(p.name for p in (out / "masks").iterdir()) == [f"{f:05d}.png" for f in range(6)]
    video = _decode(out / "overlay.mp4")
    assert len(video) == 6 and video[0].shape == (360, 640, 3)
    top, clip_top = video[0][:16].astype(float), _decode(demo.CLIP)[0][:16].astype(float)
    assert top.mean() < 0.6 * clip_top.mean()  # the dark caption band ...
    assert (top.min(axis=2) > 220).sum() > 30  # ... with white text on it

    # A second run reuses the cached export: no second export (which takes ~20 s).
    proc = run_cli("demo", "--image-size", "512", "--max-frames", "1", "--out", tmp_path / "again", "--backend",
                   "onnxruntime-cpu", "--quiet", env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "using the cached export" in proc.stderr and "exporting" not in proc.stderr
    assert json.loads((tmp_path / "again" / "demo.json").read_text())["frames"] == 1


def test_demo_rejects_a_bad_model_name_before_any_work(tmp_path):
    proc = run_cli("demo", "--model", "sam3", "--out", tmp_path / "d", env={"SAM2_TRT_CACHE": str(tmp_path)},
                   timeout=120)
    assert proc.returncode == 3 and "sam2-trt demo: error: unknown config 'sam3'" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_demo_rejects_a_bad_image_size(tmp_path):
    proc = run_cli("demo", "--image-size", "1000", "--out", tmp_path / "d", env={"SAM2_TRT_CACHE": str(tmp_path)},
                   timeout=120)
    assert proc.returncode == 3 and "--image-size 1000" in proc.stderr
