"""The synthetic input every benchmark uses: a moving scene drawn frame by frame, written as a clip once.

Speed and memory do not depend on what the pixels show, but tracking must have something to track: discs that
move on their own paths over a panning background, one per object, so that frame 0's clicks hit one disc each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class MovingScene:
    """Frame t ([H, W, 3] uint8 RGB) of a synthetic clip: a panning background and `objects` discs, each moving
    on its own path and bouncing off the borders. Frames are drawn on demand; nothing per frame is kept."""

    def __init__(self, h: int, w: int, objects: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.h, self.w = h, w
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        self.background = np.stack([80 + 60 * np.sin(x / 37), 90 + 50 * np.cos(y / 29), 120 + 40 * np.sin(
            (x + y) / 53)], -1).astype(np.uint8)
        self.ys, self.xs = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
        self.radius = max(4.0, min(h, w) / 10)
        self.colors = rng.integers(30, 230, (objects, 3)).astype(np.uint8)
        cols = int(np.ceil(np.sqrt(objects)))
        rows = int(np.ceil(objects / cols))
        self.start = np.array([((k // cols + 0.5) * h / rows, (k % cols + 0.5) * w / cols) for k in range(objects)],
                              np.float32)  # (y, x): spread on a grid, so that frame 0's clicks hit one disc each
        self.velocity = rng.uniform(-4, 4, (objects, 2)).astype(np.float32)  # pixels per frame

    def centre(self, k: int, t: int) -> tuple[float, float]:
        """(x, y) of disc k on frame t: straight motion folded back at the borders (a triangle wave)."""
        lo = self.radius
        out = []
        for v, span in zip(self.start[k] + t * self.velocity[k], (self.h, self.w)):
            period = 2 * (span - 2 * lo)
            p = (v - lo) % period
            out.append(lo + (p if p <= period / 2 else period - p))
        return out[1], out[0]

    def frame(self, t: int) -> np.ndarray:
        img = np.roll(self.background, shift=(t % self.h, (3 * t) % self.w), axis=(0, 1))
        for k, color in enumerate(self.colors):
            cx, cy = self.centre(k, t)
            img[(self.ys - cy) ** 2 + (self.xs - cx) ** 2 < self.radius ** 2] = color
        return img


def clicks(scene: MovingScene, objects: int) -> list:
    """One positive click per object on frame 0: [(obj_id, points [1, 2] (x, y) float32, labels [1] int32)]."""
    return [(k + 1, np.array([scene.centre(k, 0)], np.float32), np.array([1], np.int32)) for k in range(objects)]


def write_clip(folder: Path, frames: int, h: int, w: int, discs: int) -> Path:
    """`frames` frames of MovingScene(h, w, discs) as <00000>.jpg (the official loader's layout), written once:
    a folder that is complete is reused, one that is not is rewritten."""
    from PIL import Image

    done = folder / ".complete"
    if done.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    scene = MovingScene(h, w, discs)
    for t in range(frames):
        Image.fromarray(scene.frame(t)).save(folder / f"{t:05d}.jpg", quality=95)
    done.write_text(f"{frames} frames {w}x{h}, {discs} discs\n")
    return folder


def cached_clip(frames: int, h: int, w: int, discs: int) -> Path:
    from sam2_trt.export.download import cache_root

    return write_clip(cache_root() / "clips" / f"moving-{w}x{h}-{discs}discs-{frames}f", frames, h, w, discs)
