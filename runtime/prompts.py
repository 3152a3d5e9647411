"""Checking user input (images, points, boxes, mask logits) and turning prompts into decoder inputs.

Every check runs before any predictor state changes, so a rejected call leaves the predictor as it was.
Messages name the offending value and say what to pass instead.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

VALID_LABELS = (-1, 0, 1, 2, 3)  # not-a-point, negative, positive, box top-left, box bottom-right
MIN_IMAGE_SIDE = 8


def check_image(image, what: str = "image") -> np.ndarray:
    """An RGB image as HxWx3 uint8: a numpy array, or a PIL image of any mode (converted by images.pil_to_rgb,
    16-bit grayscale included); anything else is rejected with a fix."""
    if type(image).__module__.startswith("PIL."):
        from .images import pil_to_rgb

        image = pil_to_rgb(image, what)
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{what} must be an HxWx3 uint8 numpy array or a PIL image, not {type(image).__name__}")
    if image.ndim == 2 or image.ndim == 3 and image.shape[2] == 1:
        raise ValueError(f"{what} has shape {image.shape} (grayscale); SAM 2 takes HxWx3 RGB: pass "
                         f"np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=2)")
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"{what} has shape {image.shape}; expected HxWx3 (RGB, channels last)")
    if image.shape[2] == 4:
        raise ValueError(f"{what} has shape {image.shape} (RGBA); SAM 2 takes RGB: pass image[..., :3]")
    if image.dtype != np.uint8:
        fix = ("(image >> 8).astype(np.uint8)" if image.dtype == np.uint16 else
               "(image * 255).round().astype(np.uint8) if its values are in [0, 1]")
        raise ValueError(f"{what} has dtype {image.dtype}; expected uint8 (0..255): convert with {fix}")
    h, w = image.shape[:2]
    if min(h, w) < MIN_IMAGE_SIDE:
        raise ValueError(f"{what} is {w}x{h} pixels; sam2-trt needs at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}")
    return image


def numeric(name: str, value, dtype=np.float32) -> np.ndarray:  # dtype None: keep the caller's numeric dtype
    """`value` as a numeric array, or ValueError naming the argument: strings, ragged lists and other objects are
    refused instead of surfacing as numpy's own errors (or being parsed, for strings of digits)."""
    try:
        raw = np.asarray(value)
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular array of numbers, got {value!r:.200}: {e}") from None
    if raw.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numbers, got {raw.dtype.name} values {value!r:.200}")
    return raw if dtype is None else raw.astype(dtype)


def warn_outside(what: str, xy, bounds_hw, stacklevel: int = 2) -> None:
    """One rule for the API and the CLI: a point or box corner outside the image (bounds (h, w), or (1, 1) for
    normalized coordinates) is used as the official code uses it, with a UserWarning naming it."""
    h, w = bounds_hw
    for x, y in np.asarray(xy, np.float64).reshape(-1, 2):
        if not (0 <= x <= w and 0 <= y <= h):
            warnings.warn(f"{what}: point ({x:g}, {y:g}) is outside the {w:g}x{h:g} image; it is used as the "
                          f"official code uses it, but a click outside the image is rarely meant (check the x, y "
                          f"order and the units)", UserWarning, stacklevel=stacklevel + 1)
            return


def check_finite(name: str, a: np.ndarray) -> None:
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values: {a.tolist() if a.size <= 16 else a.shape}")


def check_labels(name: str, labels: np.ndarray) -> None:
    bad = ~np.isin(labels, VALID_LABELS)
    if bad.any():
        raise ValueError(f"{name} must be in {{-1, 0, 1, 2, 3}} (1 positive, 0 negative); got "
                         f"{np.unique(labels[bad]).tolist()}")


@dataclass
class DecoderPrompts:
    """Decoder inputs for B prompts: coords [B,N,2] float32 in model pixels, labels [B,N] int32,
    mask_input [B,1,h,w] float32 or None."""

    coords: np.ndarray
    labels: np.ndarray
    mask_input: np.ndarray | None

    @property
    def batch(self) -> int:
        return self.coords.shape[0]


def to_model_coords(coords: np.ndarray, normalize: bool, orig_hw, image_size: int) -> np.ndarray:
    """SAM2Transforms.transform_coords in float32: pixels (or [0,1] when not normalize) -> model input pixels."""
    c = np.array(coords, dtype=np.float32)
    if normalize:
        h, w = orig_hw
        c[..., 0] = c[..., 0] / np.float32(w)
        c[..., 1] = c[..., 1] / np.float32(h)
    return c * np.float32(image_size)


def prepare_prompts(point_coords, point_labels, box, mask_input, normalize_coords: bool, orig_hw,
                    image_size: int, low_res_size: int) -> DecoderPrompts:
    """SAM2ImagePredictor._prep_prompts + the box/point merge of _predict, with input checks."""
    if point_coords is None and point_labels is not None:
        raise ValueError("point_labels were given without point_coords")
    if point_coords is None and box is None:
        raise ValueError("give point_coords (with point_labels) and/or box: the exported decoder needs at least "
                         "one point or box (mask_input alone is not supported)")
    coords = labels = None
    if point_coords is not None:
        if point_labels is None:
            raise ValueError("point_labels must be supplied if point_coords is supplied.")
        pc = numeric("point_coords", point_coords)
        pl = numeric("point_labels", point_labels, dtype=None)
        if pc.ndim not in (2, 3) or pc.shape[-1] != 2 or pc.shape[-2] == 0:
            raise ValueError(f"point_coords has shape {pc.shape}; expected Nx2 or BxNx2 (x, y), N >= 1")
        if pl.shape != pc.shape[:-1]:
            raise ValueError(f"point_labels has shape {pl.shape} but point_coords has shape {pc.shape}; expected "
                             f"labels of shape {pc.shape[:-1]} (one per point)")
        check_finite("point_coords", pc)
        check_labels("point_labels", pl)
        warn_outside("point_coords", pc, orig_hw if normalize_coords else (1, 1), stacklevel=3)
        coords = to_model_coords(pc, normalize_coords, orig_hw, image_size)
        labels = pl.astype(np.int32)
        if coords.ndim == 2:
            coords, labels = coords[None], labels[None]
    if box is not None:
        b = numeric("box", box)
        if b.ndim not in (1, 2) or b.shape[-1] != 4 or b.size == 0:
            raise ValueError(f"box has shape {b.shape}; expected 4 (x0, y0, x1, y1) or Bx4")
        check_finite("box", b)
        warn_outside("box", b, orig_hw if normalize_coords else (1, 1), stacklevel=3)
        b2 = b.reshape(-1, 4)
        flipped = (b2[:, 2] < b2[:, 0]) | (b2[:, 3] < b2[:, 1])
        if flipped.any():
            raise ValueError(f"box {b2[np.argmax(flipped)].tolist()} has x1 < x0 or y1 < y0; boxes are XYXY "
                             f"(x0, y0, x1, y1) with x1 >= x0 and y1 >= y0")
        box_coords = to_model_coords(b2.reshape(-1, 2, 2), normalize_coords, orig_hw, image_size)
        box_labels = np.tile(np.array([[2, 3]], np.int32), (box_coords.shape[0], 1))
        if coords is not None:
            if coords.shape[0] != box_coords.shape[0]:
                raise ValueError(f"{box_coords.shape[0]} boxes and {coords.shape[0]} point sets: give one box per "
                                 f"point set (or the same number of each)")
            coords = np.concatenate([box_coords, coords], axis=1)
            labels = np.concatenate([box_labels, labels], axis=1)
        else:
            coords, labels = box_coords, box_labels
    masks = None
    if mask_input is not None:
        masks = numeric("mask_input", mask_input)
        if masks.ndim == 3:
            masks = masks[None]
        if masks.ndim != 4 or masks.shape[1:] != (1, low_res_size, low_res_size) or \
                masks.shape[0] not in (1, coords.shape[0]):
            raise ValueError(f"mask_input has shape {np.shape(mask_input)}; expected 1x{low_res_size}x{low_res_size} "
                             f"(or Bx1x{low_res_size}x{low_res_size}) low-res logits, e.g. the third output of a "
                             f"previous predict()")
        check_finite("mask_input", masks)
        masks = np.ascontiguousarray(np.broadcast_to(masks, (coords.shape[0],) + masks.shape[1:]))
    return DecoderPrompts(np.ascontiguousarray(coords), np.ascontiguousarray(labels), masks)
