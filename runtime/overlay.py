"""Pictures a person can look at: masks blended over the image with outlines (numpy + PIL only)."""

from __future__ import annotations

import numpy as np

# A fixed palette (DAVIS-like order) so object k always has the same colour.
PALETTE = np.array([
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (0, 0, 128),
], dtype=np.uint8)


def color(k: int) -> np.ndarray:
    return PALETTE[k % len(PALETTE)]


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of `mask` with a 4-neighbour outside it."""
    m = np.pad(mask, 1)
    inner = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    return mask & ~inner


def draw_overlay(image: np.ndarray, masks, alpha: float = 0.5, points=None) -> np.ndarray:
    """image HxWx3 uint8, masks iterable of bool HxW -> HxWx3 uint8 with each mask tinted and outlined."""
    out = image.astype(np.float32)
    for k, mask in enumerate(masks):
        mask = np.asarray(mask, bool)
        out[mask] = (1 - alpha) * out[mask] + alpha * color(k)
        out[_outline(mask)] = color(k)
    out = out.round().clip(0, 255).astype(np.uint8)
    for x, y, label in points or ():
        x, y = int(round(x)), int(round(y))
        c = (0, 255, 0) if label == 1 else (255, 0, 0)
        out[max(y - 3, 0):y + 4, max(x - 3, 0):x + 4] = c
    return out
