"""Checking the video predictor's arguments before any state changes (so a rejected call leaves the state
as it was), and turning clicks, boxes and masks into decoder inputs as SAM2VideoPredictor does."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .. import ops
from ..prompts import check_finite, check_labels, numeric, to_model_coords, warn_outside

MAX_OBJ_ID = 2**31 - 1


@dataclass
class PointPrompt:
    coords: np.ndarray  # [N, 2] float32, model pixels (x, y) in [0, image_size]
    labels: np.ndarray  # [N] int32: 1 fg, 0 bg, 2/3 box corners, -1 padding


def check_frame_idx(frame_idx, num_frames: int, what: str = "frame_idx") -> int:
    if isinstance(frame_idx, bool) or not isinstance(frame_idx, numbers.Integral):
        raise TypeError(f"{what} must be an int frame index, not {type(frame_idx).__name__} {frame_idx!r}")
    if not 0 <= frame_idx < num_frames:
        raise IndexError(f"{what} {frame_idx} is out of range: the video has {num_frames} frames "
                         f"(0..{num_frames - 1})")
    return int(frame_idx)


def check_obj_id(obj_id) -> int:
    if isinstance(obj_id, bool) or not isinstance(obj_id, numbers.Integral):
        raise TypeError(f"obj_id must be an int (e.g. 1, 2, ...), not {type(obj_id).__name__} {obj_id!r}")
    if not 0 <= obj_id <= MAX_OBJ_ID:
        raise ValueError(f"obj_id {obj_id} is out of range: use 0..{MAX_OBJ_ID}")
    return int(obj_id)


def point_prompt(points, labels, box, clear_old_points: bool, normalize_coords: bool, video_hw,
                 image_size: int) -> PointPrompt:
    """The new clicks of add_new_points_or_box in model pixels; a box becomes two leading points labelled 2, 3.

    points: [N, 2] or [1, N, 2] (x, y); labels: [N] or [1, N]; box: [4] or [2, 2] (x0, y0, x1, y1); pixels
    of the video, or [0, 1] with normalize_coords=False (then scaled by the model's image size only).
    """
    if (points is not None) != (labels is not None):
        raise ValueError("points and labels must be provided together (one label per point: 1 positive, "
                         "0 negative)")
    if points is None and box is None:
        raise ValueError("at least one of points or box must be provided as input")
    if box is not None and not clear_old_points:
        raise ValueError("cannot add box without clearing old points, since box prompt must be provided before "
                         "any point prompt (please use clear_old_points=True instead)")
    coords = np.zeros((0, 2), np.float32)
    lab = np.zeros(0, np.int32)
    if points is not None:
        pc = numeric("points", points)
        pl = numeric("labels", labels, dtype=None)
        if pc.ndim == 3 and pc.shape[0] == 1:
            pc = pc[0]
        if pl.ndim == 2 and pl.shape[0] == 1:
            pl = pl[0]
        if pc.ndim != 2 or pc.shape[-1] != 2:
            raise ValueError(f"points has shape {np.shape(points)}; expected Nx2 (x, y) for one object")
        if pc.shape[0] == 0 and box is None:
            raise ValueError(f"points has shape {np.shape(points)}: give at least one point (x, y) with its label, "
                             f"or a box")
        if pl.shape != pc.shape[:1]:
            raise ValueError(f"labels has shape {np.shape(labels)} but points has shape {np.shape(points)}: give "
                             f"one label per point ({pc.shape[0]} labels)")
        check_finite("points", pc)
        check_labels("labels", pl)
        coords, lab = pc, pl.astype(np.int32)
    if box is not None:
        b = numeric("box", box)
        if b.size != 4:
            raise ValueError(f"box has shape {b.shape}; expected 4 values (x0, y0, x1, y1) for one object")
        check_finite("box", b)
        b = b.reshape(2, 2)
        if b[1, 0] < b[0, 0] or b[1, 1] < b[0, 1]:
            raise ValueError(f"box {b.ravel().tolist()} has x1 < x0 or y1 < y0; boxes are XYXY (x0, y0, x1, y1)")
        coords = np.concatenate([b, coords])
        lab = np.concatenate([np.array([2, 3], np.int32), lab])
    warn_outside("points" if box is None else "box and points", coords, video_hw if normalize_coords else (1, 1),
                 stacklevel=3)
    model = to_model_coords(coords, normalize_coords, video_hw, image_size)
    return PointPrompt(np.ascontiguousarray(model, np.float32), np.ascontiguousarray(lab, np.int32))


def merge_points(old: PointPrompt | None, new: PointPrompt) -> PointPrompt:
    """sam2.utils.misc.concat_points: older clicks first."""
    if old is None:
        return new
    return PointPrompt(np.concatenate([old.coords, new.coords]), np.concatenate([old.labels, new.labels]))


def mask_prompt(mask, video_hw, image_size: int) -> np.ndarray:
    """add_new_mask's input: a 2-D mask of the video's size (or the model's, image_size^2) -> [S, S] float32
    binary, resized as the official code (antialiased bilinear, then >= 0.5)."""
    m = np.asarray(mask)
    h, w = video_hw
    if m.ndim != 2 or m.shape not in ((h, w), (image_size, image_size)):
        raise ValueError(f"mask has shape {m.shape}; expected a 2-D mask of the video's size {h}x{w} (HxW) "
                         f"or of the model's input size {image_size}x{image_size}")
    if m.dtype != bool:
        if not np.issubdtype(m.dtype, np.number):
            raise TypeError(f"mask has dtype {m.dtype}; pass a bool array (True = object)")
        check_finite("mask", m.astype(np.float32))
        m = m != 0  # the official code takes torch.tensor(mask, dtype=torch.bool)
    m = m.astype(np.float32)
    if m.shape != (image_size, image_size):
        m = (ops.resize_bilinear_antialias(m[None, None], (image_size, image_size))[0, 0] >= 0.5)
        m = m.astype(np.float32)
    return np.ascontiguousarray(m)
