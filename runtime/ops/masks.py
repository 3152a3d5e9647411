"""Per-frame mask logic on logits: the official non-overlap constraint, binarisation, areas and boxes."""

from __future__ import annotations

import numpy as np


def apply_non_overlapping_constraints(logits: np.ndarray) -> np.ndarray:
    """`SAM2Base._apply_non_overlapping_constraints`: [O, 1, H, W] float32 -> [O, 1, H, W] float32.

    At each pixel only the highest-scoring object keeps its logit (ties go to the lowest index, as
    torch.argmax); the others are clamped to at most -10.0. With O == 1 the input is returned as is.
    """
    logits = np.asarray(logits)
    if logits.ndim != 4 or logits.shape[1] != 1:
        raise ValueError(f"expected mask logits [O, 1, H, W], got shape {logits.shape}")
    if logits.shape[0] == 1:
        return logits
    # argmax by "first object equal to the max" (2x faster than np.argmax over axis 0). A NaN pixel has no
    # such object, so all are clamped, which equals torch's result there: np.minimum keeps the NaN.
    best = logits.max(axis=0)
    out = np.minimum(logits, np.float32(-10.0))
    taken = np.zeros(best.shape, bool)
    for k in range(logits.shape[0]):
        keep = logits[k] == best
        keep &= ~taken
        taken |= keep
        np.copyto(out[k], logits[k], where=keep)
    return out


def threshold_masks(logits: np.ndarray, threshold: float = 0.0):
    """Binary masks, areas and boxes of mask logits [O, 1, H, W] float32.

    Returns (masks [O, H, W] bool (logits > threshold), areas [O] int64, boxes [O, 4] int64 XYXY with inclusive
    pixel coordinates, [0, 0, 0, 0] for an empty mask: the amg `batched_mask_to_box` convention).
    """
    logits = np.asarray(logits)
    if logits.ndim != 4 or logits.shape[1] != 1:
        raise ValueError(f"expected mask logits [O, 1, H, W], got shape {logits.shape}")
    masks = logits[:, 0] > np.float32(threshold)
    o, h, w = masks.shape
    areas = np.count_nonzero(masks.reshape(o, -1), axis=1).astype(np.int64)
    boxes = np.zeros((o, 4), np.int64)
    if masks.size:
        rows = masks.any(axis=2)  # [O, H]
        cols = masks.any(axis=1)  # [O, W]
        boxes[:, 0] = cols.argmax(axis=1)
        boxes[:, 1] = rows.argmax(axis=1)
        boxes[:, 2] = w - 1 - cols[:, ::-1].argmax(axis=1)
        boxes[:, 3] = h - 1 - rows[:, ::-1].argmax(axis=1)
        boxes[areas == 0] = 0
    return masks, areas, boxes
