"""The clients of `sam2-trt bench serve`: image clients that click and check, video clients that prompt, track
over the WebSocket and check, each in its own thread with its own connection, until a deadline.

Every answer is compared with what the library computed in the benchmark process for the same prompt (bit for
bit); a mismatch, an HTTP error or a broken socket is counted as an error, never skipped.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass, field

import numpy as np


def decode_rle(rle: dict) -> np.ndarray:
    from pycocotools import mask as mask_utils

    return mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)


class Api:
    """JSON over one keep-alive connection to the server, with the bearer token."""

    def __init__(self, port: int, token: str):
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def call(self, method: str, path: str, body=None, raw: bytes | None = None):
        headers = {"Authorization": f"Bearer {self.token}"}
        data = raw
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # the server closed the idle keep-alive connection before this request: a new one, once (as urllib3)
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
        payload = response.read()
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status} {payload[:300]!r}")
        return json.loads(payload) if payload else None

    def close(self):
        self.conn.close()


@dataclass
class Tally:
    """One client's measurements: latencies in seconds, counts of results checked and of errors."""

    latencies: list = field(default_factory=list)  # predict requests (image) or tracked frames (video)
    propagations: list = field(default_factory=list)  # seconds per propagation (video)
    checked: int = 0
    errors: list = field(default_factory=list)


def image_client(port: int, token: str, image_png: bytes, prompts: list, expected: list, deadline: float) -> Tally:
    """Upload the image once, then predict prompt i % len(prompts) until the deadline (at least once); every
    mask checked."""
    tally, api = Tally(), Api(port, token)
    try:
        sid = api.call("POST", "/api/images?name=bench.png", raw=image_png)["session_id"]
        k = 0
        while k == 0 or time.monotonic() < deadline:
            prompt, masks = prompts[k % len(prompts)], expected[k % len(prompts)]
            t = time.perf_counter()
            try:
                got = api.call("POST", f"/api/images/{sid}/predict", prompt)
            except Exception as e:  # noqa: BLE001 - counted, and the client goes on
                tally.errors.append(str(e))
                api.close()
                api = Api(port, token)
                continue
            tally.latencies.append(time.perf_counter() - t)
            served = [decode_rle(m["segmentation"]) for m in got["masks"]]
            if len(served) != len(masks) or not all(np.array_equal(a, b) for a, b in zip(served, masks)):
                tally.errors.append(f"image prompt {k % len(prompts)}: masks differ from the library's")
            tally.checked += 1
            k += 1
        api.call("DELETE", f"/api/images/{sid}")
    except Exception as e:  # noqa: BLE001
        tally.errors.append(f"image client: {e}")
    finally:
        api.close()
    return tally


def video_client(port: int, token: str, media_path: str, prompt: dict, expected: dict, max_frames: int,
                 deadline: float) -> Tally:
    """Open the video once; until the deadline (at least once): reset, prompt, propagate max_frames frames over
    the WebSocket; every frame's masks checked against `expected` {frame: {obj_id: mask}}."""
    from websockets.sync.client import connect

    tally, api = Tally(), Api(port, token)
    try:
        sid = api.call("POST", "/api/videos/open", {"path": media_path})["session_id"]
        while not tally.propagations or time.monotonic() < deadline:
            api.call("POST", f"/api/videos/{sid}/reset")
            first = api.call("POST", f"/api/videos/{sid}/prompts", prompt)
            _check(tally, first["frame"], first["objects"], expected)
            t0 = last = time.perf_counter()
            frames = 0
            with connect(f"ws://127.0.0.1:{port}/api/videos/{sid}/propagate",
                         subprotocols=["sam2-trt", f"bearer.{token}"], open_timeout=60, max_size=None) as ws:
                ws.send(json.dumps({"max_frames": max_frames}))
                for message in ws:
                    event = json.loads(message)
                    if event["type"] == "frame":
                        now = time.perf_counter()
                        tally.latencies.append(now - last)
                        last = now
                        frames += 1
                        _check(tally, event["frame"], event["objects"], expected)
                    elif event["type"] in ("error", "cancelled"):
                        tally.errors.append(f"propagation: {event}")
            if frames != max_frames + 1:
                tally.errors.append(f"propagation delivered {frames} frames, not {max_frames + 1}")
            tally.propagations.append(time.perf_counter() - t0)
        api.call("DELETE", f"/api/videos/{sid}")
    except Exception as e:  # noqa: BLE001
        tally.errors.append(f"video client: {e}")
    finally:
        api.close()
    return tally


def _check(tally: Tally, frame: int, objects: list, expected: dict) -> None:
    want = expected.get(frame)
    got = {o["obj_id"]: decode_rle(o["segmentation"]) for o in objects}
    if want is None or got.keys() != want.keys() or not all(np.array_equal(got[o], want[o]) for o in want):
        tally.errors.append(f"frame {frame}: masks differ from the library's")
    tally.checked += 1
