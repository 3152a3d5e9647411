"""Choosing among the decoder's four masks, as the official MaskDecoder.forward and SAM2Base._forward_sam_heads.

The prompt_decoder graph returns all four mask tokens; these functions apply the official selection on the host:
  * multimask: the three multimask outputs (tokens 1..3);
  * single mask with the stability fallback (build_sam2's apply_postprocessing): token 0 unless its mask is
    unstable, then the multimask output with the highest predicted IoU;
  * single mask without it: token 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StabilityFallback:
    delta: float = 0.05  # dynamic_multimask_stability_delta
    thresh: float = 0.98  # dynamic_multimask_stability_thresh


def stability_scores(logits: np.ndarray, delta: float) -> np.ndarray:
    """[..., H, W] logits -> [...] float32: #(l > delta) / #(l > -delta), 1 where the union is empty."""
    flat = logits.reshape(*logits.shape[:-2], -1)
    inter = np.count_nonzero(flat > delta, axis=-1).astype(np.float32)
    union = np.count_nonzero(flat > -delta, axis=-1).astype(np.float32)
    return np.where(union > 0, inter / np.maximum(union, 1), np.float32(1.0))


def select_masks(masks: np.ndarray, ious: np.ndarray, multimask_output: bool,
                 stability: StabilityFallback | None):
    """masks [B,4,h,w], ious [B,4] -> (masks [B,C,h,w], ious [B,C]) with C = 3 (multimask) or 1."""
    if multimask_output:
        return masks[:, 1:], ious[:, 1:]
    if stability is None:
        return masks[:, :1], ious[:, :1]
    rows = np.arange(masks.shape[0])
    best = 1 + np.argmax(ious[:, 1:], axis=-1)
    stable = stability_scores(masks[:, 0], stability.delta) >= stability.thresh
    pick = np.where(stable, 0, best)
    return masks[rows, pick][:, None], ious[rows, pick][:, None]
