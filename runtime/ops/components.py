"""Small-component filtering of mask logits: the official hole filling and sprinkle removal.

The official code labels 8-connected components with a CUDA union-find (`sam2._C`, via
`sam2.utils.misc.get_connected_components`) and keeps only each pixel's component area; any 8-connected
labelling gives the same areas, so this uses OpenCV. Every component counts, including those touching the
border. (The official callers silently skip all of this when `sam2._C` is missing; these functions do not.)
"""

from __future__ import annotations

import numpy as np

from .resize import resize_bilinear


def _cv2():
    try:
        import cv2
    except ImportError as e:
        raise ImportError("hole filling / sprinkle removal need OpenCV for connected components: "
                          "pip install opencv-python-headless (or pass max areas of 0 to skip them)") from e
    return cv2


def component_areas(mask: np.ndarray) -> np.ndarray:
    """Area of each pixel's 8-connected component: [..., H, W] bool -> [..., H, W] int32, 0 where mask is False.

    The `counts` of the official `get_connected_components` ([N, 1, H, W] in the official callers). All masks
    are labelled in one OpenCV call: stacked with a zero row between them, so no component spans two masks.
    """
    cv2 = _cv2()
    mask = np.asarray(mask)
    if mask.ndim < 2:
        raise ValueError(f"expected masks [..., H, W], got shape {mask.shape}")
    h, w = mask.shape[-2:]
    flat = mask.reshape(-1, h, w)
    if flat.size == 0:
        return np.zeros(mask.shape, np.int32)
    stacked = np.zeros((flat.shape[0], h + 1, w), np.uint8)
    stacked[:, :h] = flat != 0
    _, labels, stats, _ = cv2.connectedComponentsWithStats(stacked.reshape(-1, w), connectivity=8,
                                                           ltype=cv2.CV_32S)
    areas = stats[:, cv2.CC_STAT_AREA].astype(np.int32)
    areas[0] = 0  # label 0 is OpenCV's background: the False pixels
    return areas[labels].reshape(-1, h + 1, w)[:, :h].reshape(mask.shape)


def _small_components(mask: np.ndarray, max_area: float) -> np.ndarray:
    """[..., H, W] bool: pixels of `mask` in 8-connected components of area <= max_area."""
    areas = component_areas(mask)
    return (areas > 0) & (areas <= max_area)


def _check_logits(logits) -> np.ndarray:
    logits = np.asarray(logits)
    if logits.ndim != 4:
        raise ValueError(f"expected mask logits [N, C, H, W], got shape {logits.shape}")
    return logits.astype(np.float32, copy=False)


def fill_holes(logits: np.ndarray, max_area: float, threshold: float = 0.0, fill_value: float | None = None):
    """Image-predictor hole filling: [N, C, H, W] float32 -> [N, C, H, W] float32 (a new array).

    Background components (logits <= threshold) of area <= max_area get fill_value (default threshold + 10.0,
    as `SAM2Transforms.postprocess_masks`); max_area <= 0 changes nothing.
    """
    logits = _check_logits(logits)
    if max_area <= 0:
        return logits.copy()
    fill = np.float32(threshold + 10.0 if fill_value is None else fill_value)
    return np.where(_small_components(logits <= np.float32(threshold), max_area), fill, logits)


def remove_sprinkles(logits: np.ndarray, max_area: float, threshold: float = 0.0) -> np.ndarray:
    """Image-predictor sprinkle removal: [N, C, H, W] float32 -> [N, C, H, W] float32 (a new array).

    Foreground components (logits > threshold) of area <= max_area get threshold - 10.0; max_area <= 0 changes
    nothing.
    """
    logits = _check_logits(logits)
    if max_area <= 0:
        return logits.copy()
    small = _small_components(logits > np.float32(threshold), max_area)
    return np.where(small, np.float32(threshold - 10.0), logits)


def fill_holes_in_mask_scores(logits: np.ndarray, max_area: float) -> np.ndarray:
    """Video hole filling, the official `sam2.utils.misc.fill_holes_in_mask_scores`: [N, 1, H, W] float32 ->
    [N, 1, H, W] float32 (a new array). Components of logits <= 0 with area <= max_area get 0.1."""
    if not max_area > 0:
        raise ValueError(f"max_area must be positive, got {max_area} (the official code asserts this; "
                         "skip the call when fill_hole_area is 0)")
    return fill_holes(logits, max_area, threshold=0.0, fill_value=0.1)


def postprocess_image_masks(low_res: np.ndarray, orig_hw, mask_threshold: float = 0.0,
                            max_hole_area: float = 0.0, max_sprinkle_area: float = 0.0) -> np.ndarray:
    """`SAM2Transforms.postprocess_masks`: low-res logits [B, C, h, w] -> [B, C, H, W] float32, (H, W) = orig_hw.

    Fills holes and removes sprinkles on the low-res logits, then bilinear (half-pixel, no antialias) upsampling.
    Quirk kept: both component passes label the *input* logits, so a small foreground ring around a filled hole
    is still removed (leaving the filled hole as foreground).
    """
    logits = _check_logits(low_res)
    thr = np.float32(mask_threshold)
    out = logits
    if max_hole_area > 0:
        out = np.where(_small_components(logits <= thr, max_hole_area), np.float32(mask_threshold + 10.0), out)
    if max_sprinkle_area > 0:
        small = _small_components(logits > thr, max_sprinkle_area)
        out = np.where(small, np.float32(mask_threshold - 10.0), out)
    return resize_bilinear(out, orig_hw)
