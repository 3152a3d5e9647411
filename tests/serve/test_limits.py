"""Limits and their clear 4xx answers, on a server started with small ones: upload size (declared or not),
frame count, resolution, open sessions (the least recently used is evicted), idle expiry, and the queue
(503 with Retry-After)."""

import threading
import time

import pytest

from tests.official_reference import scene
from tests.serve.live import start_server
from tests.serve.test_api_images import png_bytes

TTL = 4


@pytest.fixture(scope="module")
def strict(tiny256_dir, media_root, tmp_path_factory):
    server = start_server(tiny256_dir, tmp_path_factory.mktemp("strict"), "--media-root", media_root,
                          "--max-sessions", 2, "--session-ttl", TTL, "--max-upload-mb", 0.05, "--max-frames", 5,
                          "--max-side", 300, "--max-queue", 1)
    yield server
    server.stop()


@pytest.fixture
def c(strict):
    with strict.client() as client:
        yield client


def test_uploads_over_the_limit_are_refused_and_leave_nothing(strict, c):
    big = b"\x00" * 60_000  # 0.057 MB > 0.05
    declared = c.post("/api/videos?name=big.mp4", content=big)
    assert declared.status_code == 413 and "--max-upload-mb" in declared.json()["detail"]
    chunked = c.post("/api/videos?name=big.mp4", content=iter([big[:30_000], big[30_000:]]))  # no Content-Length
    assert chunked.status_code == 413 and "larger than 0.05 MB" in chunked.json()["detail"]
    assert c.post("/api/images", content=iter([big])).status_code == 413
    assert not any((strict.dirs["work"] / "uploads").iterdir())


def test_frame_count_and_resolution_limits(c):
    frames = c.post("/api/videos/open", json={"path": "short.mp4"})  # 6 frames
    assert frames.status_code == 413 and "has 6 frames" in frames.json()["detail"]
    assert "--max-frames" in frames.json()["detail"]
    wide = c.post("/api/videos/open", json={"path": "frames"})  # 5 frames of 320x240
    assert wide.status_code == 413 and "320x240" in wide.json()["detail"] and "--max-side" in wide.json()["detail"]
    image = c.post("/api/images?name=wide.png", content=png_bytes(scene(40, 400, seed=1)))
    assert image.status_code == 413 and "wide.png is 400x40" in image.json()["detail"]


def test_past_max_sessions_the_least_recently_used_is_closed(c):
    a, b, d = (c.post("/api/images/open", json={"path": "sub/small.png"}).json()["session_id"] for _ in range(3))
    assert c.get(f"/api/images/{a}").status_code == 404  # the oldest went when the third came
    assert c.get(f"/api/images/{b}").status_code == 200  # b is now the most recently used ...
    e = c.post("/api/images/open", json={"path": "sub/small.png"}).json()["session_id"]
    assert c.get(f"/api/images/{d}").status_code == 404  # ... so d went
    assert c.get(f"/api/images/{b}").status_code == c.get(f"/api/images/{e}").status_code == 200
    assert c.get("/api/stats").json()["sessions"]["evicted"] >= 2


def test_idle_sessions_expire(c):
    sid = c.post("/api/images/open", json={"path": "sub/small.png"}).json()["session_id"]
    time.sleep(TTL + 2.5)
    r = c.get(f"/api/images/{sid}")
    assert r.status_code == 404 and "expired" in r.json()["detail"]
    assert c.get("/api/stats").json()["sessions"]["expired"] >= 1


def test_a_full_queue_answers_503_with_retry_after(strict):
    results = []

    def open_image():
        with strict.client() as client:
            results.append(client.post("/api/images", content=png_bytes(scene(90, 120, seed=7))))

    threads = [threading.Thread(target=open_image) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    statuses = sorted(r.status_code for r in results)
    assert set(statuses) <= {201, 503} and 503 in statuses and 201 in statuses, statuses
    busy = next(r for r in results if r.status_code == 503)
    assert busy.headers["retry-after"] == "1" and "busy" in busy.json()["detail"]
