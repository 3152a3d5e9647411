"""One import name: the distribution installs `sam2_trt` and nothing else, its base install pulls no torch, and
from a wheel installed into a fresh virtual environment (cwd outside the checkout, so nothing resolves to the
repository's folders) the CLI answers --help for every command and the runtime segments an image and tracks
three frames of an exported model."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.package_layout import LISTED_PACKAGES, PACKAGE_DIRS, module_name

pytestmark = pytest.mark.filterwarnings("ignore")


def test_every_package_is_listed_in_pyproject():
    """pyproject lists packages by hand (the folders are mapped into sam2_trt): a new package must be added,
    and every listed package must have its folder."""
    found = {module_name(init) for folder in PACKAGE_DIRS.values() for init in folder.rglob("__init__.py")}
    assert found <= LISTED_PACKAGES, f"packages missing from pyproject's [tool.setuptools] packages: {found - LISTED_PACKAGES}"
    for pkg in LISTED_PACKAGES:
        parent = max((p for p in PACKAGE_DIRS if pkg == p or pkg.startswith(p + ".")), key=len)
        folder = PACKAGE_DIRS[parent].joinpath(*pkg[len(parent):].split(".")[1:])
        assert folder.is_dir(), f"{pkg} is listed but {folder} does not exist"


# Runs in the fresh environment: no torch may load, and nothing comes from the checkout.
SCRIPT = r"""
import json, sys
from pathlib import Path
import numpy as np
from PIL import Image
import sam2_trt
from sam2_trt import SAM2ImagePredictor, SAM2VideoPredictor

model, frames_dir = sys.argv[1], Path(sys.argv[2])
yy, xx = np.mgrid[:96, :128]
frames = [np.where(((xx - 40 - 6 * t) ** 2 + (yy - 48) ** 2 < 400)[..., None], 230, 30).astype(np.uint8)
          .repeat(3, axis=2) for t in range(3)]
frames_dir.mkdir()
for t, f in enumerate(frames):
    Image.fromarray(f).save(frames_dir / f"{t:05d}.jpg", quality=95)

image = SAM2ImagePredictor.load(model, device="cpu")
image.set_image(frames[0])
masks, ious, _ = image.predict(point_coords=np.array([[40.0, 48.0]]), point_labels=np.array([1]))
video = SAM2VideoPredictor.load(model, device="cpu")
state = video.init_state(str(frames_dir))
video.add_new_points_or_box(state, 0, 1, points=[[40, 48]], labels=[1])
tracked = [(t, logits.shape) for t, _, logits in video.propagate_in_video(state)]
print(json.dumps({
    "package": sam2_trt.__file__, "runtime": sys.modules["sam2_trt.runtime"].__file__,
    "masks": list(masks.shape), "tracked": [t for t, _ in tracked], "shape": list(tracked[0][1]),
    "torch": sorted(k for k in sys.modules if k.split(".")[0] in ("torch", "torchvision", "sam2")),
}))
"""

DISTRIBUTION_NAMES = r"""
import importlib.metadata as m
d = m.distribution("sam2-trt")
print(sorted({f.parts[0] for f in d.files if not f.parts[0].startswith("..") and ".dist-info" not in f.parts[0]}))
print(d.read_text("top_level.txt").split())
"""


def test_wheel_installs_one_name_and_runs_without_torch(built_wheel, tiny512_dir, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py, cli = venv / "bin" / "python", venv / "bin" / "sam2-trt"
    proc = subprocess.run([str(py), "-m", "pip", "install", "-q", str(built_wheel)], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    installed = {line.split("==")[0] for line in subprocess.run(
        [str(py), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True
    ).stdout.lower().splitlines()}
    assert "sam2-trt" in installed and "onnxruntime" in installed
    assert not installed & {"torch", "torchvision", "sam2"}, sorted(installed)

    work = tmp_path / "work"  # outside the checkout: nothing may resolve to the repository's folders
    work.mkdir()
    names = subprocess.run([str(py), "-c", DISTRIBUTION_NAMES], capture_output=True, text=True, cwd=work)
    assert names.returncode == 0, names.stderr
    assert names.stdout.split("\n")[:2] == ["['sam2_trt']", "['sam2_trt']"]

    top = subprocess.run([str(cli), "--help"], capture_output=True, text=True, cwd=work)
    assert top.returncode == 0 and "usage: sam2-trt" in top.stdout
    commands = ("export", "build", "check", "segment", "track", "track-many", "demo", "serve", "bench")
    assert all(c in top.stdout for c in commands)
    for command in commands:
        proc = subprocess.run([str(cli), command, "--help"], capture_output=True, text=True, cwd=work)
        assert proc.returncode == 0 and f"usage: sam2-trt {command}" in proc.stdout, (command, proc.stderr)

    jobs = subprocess.run([str(py), "-c", "import sys, sam2_trt.jobs; print(sorted({'ray', 'supervision', 'torch'} "
                           "& set(sys.modules)))"], capture_output=True, text=True, cwd=work)
    assert jobs.returncode == 0 and jobs.stdout.strip() == "[]", jobs.stderr  # installed, and Ray stays optional

    run = subprocess.run([str(py), "-c", SCRIPT, str(tiny512_dir), str(work / "frames")], capture_output=True,
                         text=True, cwd=work, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.splitlines()[-1])
    site = str(venv / "lib")
    assert result["package"].startswith(site) and result["runtime"].startswith(site), result
    assert result["masks"] == [3, 96, 128] and result["tracked"] == [0, 1, 2] and result["shape"] == [1, 1, 96, 128]
    assert result["torch"] == []

    track = subprocess.run([str(cli), "track", str(work / "frames"), "--model", str(tiny512_dir), "--device", "cpu",
                            "--point", "0,40,48,1", "--out", str(work / "out"), "--quiet"], capture_output=True,
                           text=True, cwd=work, timeout=600)
    assert track.returncode == 0, track.stderr[-3000:]
    assert sorted(p.name for p in (work / "out" / "masks").iterdir()) == ["00000.png", "00001.png", "00002.png"]
    assert REPO.as_posix() not in (track.stdout + track.stderr)
