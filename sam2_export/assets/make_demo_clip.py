"""Generate demo_clip.mp4 and demo_prompts.json, the clip and prompts `sam2-trt demo` tracks.

The clip is synthetic: no real footage can be downloaded where this package is built and tested, and a
drawn clip has a known licence and known object positions, so the prompts are computed, not hand-picked. It
is 48 frames of 640x360 at 24 fps: a slowly panning textured background, a shaded red ball that bounces in
front of a blue box sliding the other way (partial occlusion around frames 18-30) and a yellow star that
spins along a wave. Everything is drawn at 2x and area-downsampled, so edges are antialiased like a camera's.
The output is deterministic (seeded texture, single-threaded x264):

    python sam2_export/assets/make_demo_clip.py [OUT_DIR]     # default: beside this script
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT, FPS, FRAMES = 640, 360, 24, 48
SS = 2  # supersampling factor
PAN = 1.5  # background pan, output pixels per frame


def background() -> np.ndarray:
    """[H*SS, (W + pan)*SS, 3] uint8 RGB: sky-to-floor gradient with blurred seeded texture and floor tiles."""
    h, w = HEIGHT * SS, int(WIDTH + PAN * FRAMES + 8) * SS
    y = np.linspace(0, 1, h)[:, None, None]
    sky, horizon, floor = np.array([150, 180, 215.]), np.array([220, 215, 200.]), np.array([120, 140, 105.])
    horizon_y = 0.55
    top = sky + (horizon - sky) * (y / horizon_y)
    bottom = horizon * 0.8 + (floor - horizon * 0.8) * ((y - horizon_y) / (1 - horizon_y))
    img = np.where(y < horizon_y, top, bottom) * np.ones((1, w, 1))
    rng = np.random.default_rng(2024)
    for sigma, amp in ((24, 22.0), (6, 10.0), (1.5, 5.0)):  # clouds / grass at three scales
        noise = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), sigma * SS)
        img += (amp * noise / (noise.std() + 1e-6))[..., None]
    yy, xx = np.mgrid[0:h, 0:w]
    floor_mask = yy > horizon_y * h
    depth = np.clip((yy - horizon_y * h) / ((1 - horizon_y) * h), 1e-3, 1)
    lines = (np.abs(((xx - w / 2) / depth) % (90 * SS) - 45 * SS) < 1.2 * SS / depth) | \
            (np.abs((1 / depth) % 1.6 - 0.8) < 0.025 / depth)
    fade = np.clip(depth * 4, 0, 1)  # lines fade out towards the horizon, where they would alias
    img *= np.where(floor_mask & lines, 1 - 0.18 * fade, 1.0)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def _star(cx, cy, r, angle) -> np.ndarray:
    a = angle + np.arange(10) * np.pi / 5
    rad = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
    return np.stack([cx + rad * np.sin(a), cy - rad * np.cos(a)], 1)


def scene(t: int) -> dict:
    """Object geometry at frame t, in output pixels."""
    s = t / (FRAMES - 1)
    ball_x = 90 + 430 * s
    bounce = abs(np.sin(np.pi * 2.2 * s))
    ball = (ball_x, 300 - 150 * bounce, 36.0)
    box = (470 - 240 * s, 235, 120, 86, 8 * np.sin(2 * np.pi * s))  # cx, cy, w, h, degrees
    star = (120 + 420 * s, 80 + 30 * np.sin(2 * np.pi * 1.5 * s), 34.0, 2 * np.pi * 0.6 * s)
    return {"ball": ball, "box": box, "star": star}


def render(t: int, bg: np.ndarray) -> np.ndarray:
    """Frame t: [H, W, 3] uint8 RGB."""
    off = PAN * t * SS
    frame = cv2.warpAffine(bg, np.float32([[1, 0, -off], [0, 1, 0]]), (WIDTH * SS, HEIGHT * SS),
                           flags=cv2.INTER_LINEAR).astype(np.float32)
    g = scene(t)
    bx, by, r = (v * SS for v in g["ball"])
    for shadow_x, shadow_w in ((bx, r), ((g["box"][0]) * SS, g["box"][2] * SS / 2)):  # soft floor shadows
        shadow = np.zeros(frame.shape[:2], np.float32)
        cv2.ellipse(shadow, (int(shadow_x), int(310 * SS if shadow_w == r else 283 * SS)),
                    (int(shadow_w), int(shadow_w * 0.22)), 0, 0, 360, 1.0, -1)
        frame *= 1 - 0.35 * cv2.GaussianBlur(shadow, (0, 0), 6 * SS)[..., None]
    cx, cy, w, h, deg = g["box"]
    corners = cv2.boxPoints(((cx * SS, cy * SS), (w * SS, h * SS), deg)).astype(np.int32)
    cv2.fillPoly(frame, [corners], (40, 90, 200), cv2.LINE_AA)
    inner = cv2.boxPoints(((cx * SS, cy * SS), (w * SS * 0.7, h * SS * 0.14), deg)).astype(np.int32)
    cv2.fillPoly(frame, [inner], (235, 235, 245), cv2.LINE_AA)  # a label stripe, so the box has texture
    cv2.polylines(frame, [corners], True, (20, 45, 110), 2 * SS, cv2.LINE_AA)
    yy, xx = np.mgrid[0:frame.shape[0], 0:frame.shape[1]]
    d2 = (xx - bx) ** 2 + (yy - by) ** 2
    inside = d2 <= r * r
    light = np.clip(1.15 - np.sqrt((xx - bx + 0.35 * r) ** 2 + (yy - by + 0.35 * r) ** 2) / (1.6 * r), 0.35, 1.15)
    frame[inside] = (np.array([215, 40, 35.]) * light[inside][:, None]).clip(0, 255)
    sx, sy, sr, sa = g["star"]
    cv2.fillPoly(frame, [(_star(sx, sy, sr, sa) * SS).astype(np.int32)], (250, 200, 30), cv2.LINE_AA)
    cv2.polylines(frame, [(_star(sx, sy, sr, sa) * SS).astype(np.int32)], True, (170, 110, 0), SS, cv2.LINE_AA)
    return cv2.resize(frame.clip(0, 255).astype(np.uint8), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)


def render_all() -> list:
    bg = background()
    return [render(t, bg) for t in range(FRAMES)]


def prompts() -> dict:
    """Frame-0 prompts from the scene geometry: a click on the ball, a box on the box, two clicks on the star."""
    g = scene(0)
    bx, by, _ = g["ball"]
    cx, cy, w, h, deg = g["box"]
    pts = cv2.boxPoints(((cx, cy), (w, h), deg))
    sx, sy, sr, _ = g["star"]
    r1 = lambda v: round(float(v), 1)  # noqa: E731
    return {
        "description": "prompts on frame 0 of demo_clip.mp4 (video pixels), computed by make_demo_clip.py",
        "objects": {"1": "red ball", "2": "blue box", "3": "yellow star"},
        "points": [{"frame": 0, "x": r1(bx), "y": r1(by), "obj_id": 1, "label": 1},
                   {"frame": 0, "x": r1(sx), "y": r1(sy), "obj_id": 3, "label": 1},
                   {"frame": 0, "x": r1(sx), "y": r1(sy - 0.6 * sr), "obj_id": 3, "label": 1}],
        "boxes": [{"frame": 0, "x0": r1(pts[:, 0].min() - 3), "y0": r1(pts[:, 1].min() - 3),
                   "x1": r1(pts[:, 0].max() + 3), "y1": r1(pts[:, 1].max() + 3), "obj_id": 2}],
    }


def encode(frames, path: Path, crf: int = 23) -> None:
    import av

    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "slow", "threads": "1", "tune": "animation"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    encode(render_all(), out_dir / "demo_clip.mp4")
    (out_dir / "demo_prompts.json").write_text(json.dumps(prompts(), indent=1) + "\n")
    print(f"wrote {out_dir / 'demo_clip.mp4'} ({(out_dir / 'demo_clip.mp4').stat().st_size} bytes) and "
          f"{out_dir / 'demo_prompts.json'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
