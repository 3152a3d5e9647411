"""One live server for the API tests (started once, shared), its media folder, and the library it must match.

The model is sam2.1_hiera_t with the shared seeded random weights, exported at 256 px so that a CPU tracks a
frame in a fraction of a second; the expected masks come from the library (SAM2ImagePredictor,
SAM2VideoPredictor) run in the test process on the same model directory and the same files.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from tests.conftest import export_tiny
from tests.official_reference import scene
from tests.serve.live import start_server

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install '.[serve]')")

# begins with "-" as one in 64 of secrets.token_urlsafe's do: every live test then starts its server with it
TOKEN = "-test-token-0123456789abcdef"
SHORT_FRAMES = 6  # frames of short.mp4


@pytest.fixture(scope="session")
def tiny256_dir(tiny_checkpoint, tmp_path_factory):
    return export_tiny(tiny_checkpoint, tmp_path_factory, 256)


@pytest.fixture(scope="session")
def media_root(tmp_path_factory, clip):
    """The --media-root of the live server: a photo, a short mp4, the JPEG clip, the demo clip, a sub-folder, a
    link that stays inside and two that lead outside (to a file and to a folder)."""
    from sam2_trt.export.cached_exports import CLIP
    from sam2_trt.runtime.video_writers import OverlayVideoWriter

    base = tmp_path_factory.mktemp("media")
    root, outside = base / "root", base / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"not for clients")
    Image.fromarray(scene(180, 240, seed=3)).save(root / "photo.png")
    Image.fromarray(scene(90, 120, seed=4)).save(root / "sub" / "small.png")
    shutil.copy(CLIP, root / "demo_clip.mp4")
    shutil.copytree(clip, root / "frames")
    with Image.open(clip / "00000.jpg") as first:
        w, h = first.size
    with OverlayVideoWriter(root / "short.mp4", 24, w, h) as video:
        for t in range(SHORT_FRAMES):
            video.write(np.roll(scene(h, w, seed=5), (3 * t, 7 * t), axis=(0, 1)))
    (root / "inside_link.png").symlink_to(root / "photo.png")
    (root / "escape.png").symlink_to(outside / "secret.png")
    (root / "escape_dir").symlink_to(outside, target_is_directory=True)
    return root


@pytest.fixture(scope="session")
def live(tiny256_dir, media_root, tmp_path_factory):
    server = start_server(tiny256_dir, tmp_path_factory.mktemp("live"), "--media-root", media_root, token=TOKEN)
    yield server
    server.stop()


@pytest.fixture
def client(live):
    with live.client() as c:
        yield c


@pytest.fixture(scope="session")
def library_model(tiny256_dir):
    """The same model directory opened in the test process: what the server's answers must equal."""
    from sam2_trt.runtime.model import SAM2Model

    return SAM2Model.load(tiny256_dir, backend="onnxruntime-cpu")
