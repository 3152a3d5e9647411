"""The web page in a real browser: Debian's chromium driven by Playwright (never `playwright install`). It opens
the page, picks an image from the media folder and clicks on it (and undoes the click), uploads the demo clip,
clicks on the red ball, checks the mask on the canvas pixel by pixel, propagates to 100 %, and downloads the
export. SAM2_TRT_PAGE_SCREENSHOT=path keeps its screenshot (the README's)."""

import base64
import io
import json
import os
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.serve.conftest import TOKEN
from tests.serve.live import decode_rle

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic"]
BALL = (90.0, 300.0)  # sam2_export/assets/demo_prompts.json: the red ball on frame 0
ALPHA, RED = 0.5, np.array([255, 64, 64])  # serve/static/app.js: the overlay of object 1


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


CANVAS_PIXELS = """async () => {
  const canvas = document.getElementById("canvas");
  const shown = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const frame = await api.bitmap(`/api/videos/${state.sid}/frames/0`);   // the frame as the page drew it
  const plain = new OffscreenCanvas(canvas.width, canvas.height).getContext("2d");
  plain.drawImage(frame, 0, 0);
  const base = plain.getImageData(0, 0, canvas.width, canvas.height).data;
  const b64 = (a) => { let s = ""; for (let i = 0; i < a.length; i += 8192)
    s += String.fromCharCode.apply(null, a.subarray(i, i + 8192)); return btoa(s); };
  return {sid: state.sid, width: canvas.width, height: canvas.height, shown: b64(shown), base: b64(base)};
}"""


def rgba(b64: str, w: int, h: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), np.uint8).reshape(h, w, 4)[..., :3].astype(int)


def test_the_page_segments_tracks_and_exports_the_demo_clip(browser, live, media_root, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 720}, accept_downloads=True)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live.url}/#token={TOKEN}")
    page.wait_for_function("document.getElementById('status').textContent.includes('open an image')")

    # an image from the media folder, one click: its mask comes back (the image API's path through the page)
    page.click("#media-button")
    page.click("#media-list li:has-text('photo.png')")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('photo.png: 240x180')")
    box = page.locator("#canvas").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function("document.getElementById('status').textContent.startsWith('object 1: mask of')")
    page.keyboard.press("z")  # undo the click: the object's mask goes
    page.wait_for_function("Object.keys(state.masks[0] || {}).length === 0")
    page.set_input_files("#file-input", str(media_root / "demo_clip.mp4"))
    page.wait_for_function("document.getElementById('status').textContent.includes('48 frames')", timeout=120_000)

    box = page.locator("#canvas").bounding_box()  # the canvas is scaled to the page: click in video pixels
    page.mouse.click(box["x"] + BALL[0] * box["width"] / 640, box["y"] + BALL[1] * box["height"] / 360)
    page.wait_for_function("document.getElementById('status').textContent.includes('frame 0: 1 object')",
                           timeout=60_000)

    shot = page.evaluate(CANVAS_PIXELS)
    w, h = shot["width"], shot["height"]
    shown, base = rgba(shot["shown"], w, h), rgba(shot["base"], w, h)
    with live.client() as c:
        (served,) = c.get(f"/api/videos/{shot['sid']}/masks/0").json()["objects"]
    mask = decode_rle(served["segmentation"])
    # random weights: the mask is whatever the model says, but something on the canvas is and something is not
    assert mask.shape == (360, 640) and 100 < mask.sum() < mask.size - 100
    yy, xx = np.mgrid[0:h, 0:w]
    away = (yy - BALL[1]) ** 2 + (xx - BALL[0]) ** 2 > 10 ** 2  # the click's dot is drawn there
    tinted = np.abs(shown - (base * (1 - ALPHA) + RED * ALPHA)).max(-1) <= 2
    untouched = np.abs(shown - base).max(-1) == 0
    assert tinted[mask & away].all(), "every mask pixel shows the object's colour over the frame"
    assert untouched[~mask & away].all(), "no pixel outside the mask is tinted"

    page.click("#propagate")
    page.wait_for_function("document.getElementById('progress-label').textContent.startsWith('100%')",
                           timeout=600_000)
    assert page.eval_on_selector("#progress", "p => p.value === p.max && p.max === 48")
    page.keyboard.press("ArrowRight")  # scrub to frame 1: its tracked mask is drawn
    page.wait_for_function("document.getElementById('frame-label').textContent === 'frame 1 / 47'")
    with page.expect_download() as download:
        page.click("#download-zip")
    saved = tmp_path / "masks.zip"
    download.value.save_as(saved)
    with live.client() as c:
        tracked = {f["frame"]: decode_rle(f["objects"][0]["segmentation"])
                   for f in c.get(f"/api/videos/{shot['sid']}/masks.json").json()["frames"]}
    assert sorted(tracked) == list(range(48)) and np.array_equal(tracked[0], mask)
    with zipfile.ZipFile(saved) as z:
        assert z.namelist() == [f"masks/{f:05d}.png" for f in range(48)] + ["masks.json"]
        for f in range(48):  # pixel value 1 = object 1, exactly where the server's mask is
            labels = np.asarray(Image.open(io.BytesIO(z.read(f"masks/{f:05d}.png"))))
            assert np.array_equal(labels == 1, tracked[f]) and not (labels > 1).any()
        assert len(json.loads(z.read("masks.json"))["frames"]) == 48
    screenshot = tmp_path / "page.png"
    page.screenshot(path=str(screenshot))
    if os.environ.get("SAM2_TRT_PAGE_SCREENSHOT"):
        shutil.copy(screenshot, os.environ["SAM2_TRT_PAGE_SCREENSHOT"])
    assert not errors, errors
    page.close()
