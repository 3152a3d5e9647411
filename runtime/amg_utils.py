"""Numpy twins of what the official `SAM2AutomaticMaskGenerator` uses from `sam2/utils/amg.py` and torchvision.

Each function gives the same values, shapes and (where the AMG records show them) dtypes as its official
counterpart on the inputs the AMG passes, so our generator produces the same records. Where the official
code has a quirk, it is kept and the docstring says so. This module never imports torch.

Official counterparts: `sam2.utils.amg.<same name>` (`mask_to_rle` is `mask_to_rle_pytorch`), and
`torchvision.ops.boxes.box_area` / `batched_nms`.
"""

from __future__ import annotations

import math
from itertools import product
from typing import Any, Dict, Generator, List, Sequence, Tuple

import numpy as np


class MaskData:
    """A dict of per-mask columns (np.ndarray with masks on axis 0, or list) filtered and concatenated together.

    Like the official class, but numpy-only: `filter` takes a bool mask or an index array, `cat` appends.
    """

    def __init__(self, **kwargs: Any) -> None:
        for k, v in kwargs.items():
            self._check(k, v)
        self._stats: Dict[str, Any] = dict(kwargs)

    @staticmethod
    def _check(key: str, v: Any) -> None:
        if v is not None and not isinstance(v, (list, np.ndarray)):
            raise TypeError(
                f"MaskData column {key!r} is a {type(v).__name__}; only lists and numpy arrays are supported")

    def __setitem__(self, key: str, item: Any) -> None:
        self._check(key, item)
        self._stats[key] = item

    def __delitem__(self, key: str) -> None:
        del self._stats[key]

    def __getitem__(self, key: str) -> Any:
        return self._stats[key]

    def __contains__(self, key: str) -> bool:
        return key in self._stats

    def items(self):
        return self._stats.items()

    def filter(self, keep: np.ndarray) -> None:
        """Keep rows `keep` ([N] bool, or [K] int indices, in that order) of every column."""
        keep = np.asarray(keep)
        idx = np.flatnonzero(keep) if keep.dtype == bool else keep.astype(np.int64, copy=False)
        for k, v in self._stats.items():
            if isinstance(v, np.ndarray):
                self._stats[k] = v[idx]
            elif isinstance(v, list):
                self._stats[k] = [v[i] for i in idx.tolist()]

    def cat(self, new_stats: "MaskData") -> None:
        """Append the rows of `new_stats`; columns missing here are copied in."""
        for k, v in new_stats.items():
            cur = self._stats.get(k)
            if cur is None:
                # A copy, as the official deepcopy: callers assign into rows later (postprocess_small_regions).
                self._stats[k] = v.copy() if isinstance(v, np.ndarray) else (list(v) if v is not None else None)
            elif isinstance(v, np.ndarray):
                self._stats[k] = np.concatenate([cur, v], axis=0)
            else:
                self._stats[k] = cur + list(v)


# ---------------------------------------------------------------- point grids, crops, batches


def build_point_grid(n_per_side: int) -> np.ndarray:
    """[n*n, 2] float64 (x, y) points at the centres of an n x n grid over [0,1]^2, x varying fastest."""
    offset = 1 / (2 * n_per_side)
    points_one_side = np.linspace(offset, 1 - offset, n_per_side)
    points_x = np.tile(points_one_side[None, :], (n_per_side, 1))
    points_y = np.tile(points_one_side[:, None], (1, n_per_side))
    return np.stack([points_x, points_y], axis=-1).reshape(-1, 2)


def build_all_layer_point_grids(n_per_side: int, n_layers: int, scale_per_layer: int) -> List[np.ndarray]:
    """One point grid per crop layer (n_layers + 1 of them); layer i has int(n_per_side / scale**i) per side."""
    return [build_point_grid(int(n_per_side / (scale_per_layer**i))) for i in range(n_layers + 1)]


def generate_crop_boxes(
    im_size: Tuple[int, ...], n_layers: int, overlap_ratio: float
) -> Tuple[List[List[int]], List[int]]:
    """Crop boxes (XYXY python ints) and their layer indices: the whole image, then (2**i)**2 crops in layer i.

    Within a layer the order is x0-major (all y0 of the first column, then the next column), as official.
    """
    crop_boxes, layer_idxs = [[0, 0, im_size[1], im_size[0]]], [0]
    im_h, im_w = im_size
    short_side = min(im_h, im_w)

    def crop_len(orig_len: int, n_crops: int, overlap: int) -> int:
        return int(math.ceil((overlap * (n_crops - 1) + orig_len) / n_crops))

    for i_layer in range(n_layers):
        n_crops_per_side = 2 ** (i_layer + 1)
        overlap = int(overlap_ratio * short_side * (2 / n_crops_per_side))
        crop_w = crop_len(im_w, n_crops_per_side, overlap)
        crop_h = crop_len(im_h, n_crops_per_side, overlap)
        crop_box_x0 = [int((crop_w - overlap) * i) for i in range(n_crops_per_side)]
        crop_box_y0 = [int((crop_h - overlap) * i) for i in range(n_crops_per_side)]
        for x0, y0 in product(crop_box_x0, crop_box_y0):
            crop_boxes.append([x0, y0, min(x0 + crop_w, im_w), min(y0 + crop_h, im_h)])
            layer_idxs.append(i_layer + 1)
    return crop_boxes, layer_idxs


def batch_iterator(batch_size: int, *args: Sequence) -> Generator[List[Any], None, None]:
    """Yield [arg[b*bs:(b+1)*bs] for arg in args] for each batch; all args must have the same length."""
    if not args or any(len(a) != len(args[0]) for a in args):
        raise ValueError(f"batch_iterator needs inputs of one length, got lengths {[len(a) for a in args]}")
    n_batches = len(args[0]) // batch_size + int(len(args[0]) % batch_size != 0)
    for b in range(n_batches):
        yield [arg[b * batch_size : (b + 1) * batch_size] for arg in args]


# ---------------------------------------------------------------- scores and boxes


def calculate_stability_score(masks: np.ndarray, mask_threshold: float, threshold_offset: float) -> np.ndarray:
    """IoU of the masks thresholded at mask_threshold +/- offset: [N, H, W] float32 logits -> [N] float32.

    Thresholds are rounded to the logits' dtype before comparing, as torch does with a python scalar.
    A mask with an empty low-threshold mask gives nan (0/0), as official.
    """
    masks = np.asarray(masks)
    dt = masks.dtype if np.issubdtype(masks.dtype, np.floating) else np.float32
    hi, lo = dt.type(mask_threshold + threshold_offset), dt.type(mask_threshold - threshold_offset)

    def count(binary: np.ndarray) -> np.ndarray:
        if binary.shape[-1] <= np.iinfo(np.int16).max:  # the official int16 row sums cannot wrap
            flat = binary.reshape(*binary.shape[:-2], binary.shape[-2] * binary.shape[-1])  # -1 fails when N=0
            return np.count_nonzero(flat, axis=-1).astype(np.int32)
        return binary.sum(-1, dtype=np.int16).sum(-1, dtype=np.int32)  # wider than 32767: wrap as official

    with np.errstate(invalid="ignore", divide="ignore"):
        # torch divides int32 by int32 in float32 (its default float dtype).
        return count(masks > hi).astype(np.float32) / count(masks > lo).astype(np.float32)


def batched_mask_to_box(masks: np.ndarray) -> np.ndarray:
    """Tight XYXY boxes (inclusive max, no +1) of bool masks [..., H, W] -> int64 [..., 4].

    Empty masks give [0, 0, 0, 0]. Official quirk kept: an input with no elements gives float32 zeros.
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.size == 0:
        return np.zeros((*masks.shape[:-2], 4), dtype=np.float32)
    h, w = masks.shape[-2:]
    rows, cols = masks.any(axis=-1), masks.any(axis=-2)  # [..., H], [..., W]
    top, left = rows.argmax(-1), cols.argmax(-1)
    bottom, right = h - 1 - rows[..., ::-1].argmax(-1), w - 1 - cols[..., ::-1].argmax(-1)
    out = np.stack([left, top, right, bottom], axis=-1).astype(np.int64)
    out[~rows.any(-1)] = 0
    return out


def _offset_dtype(a: np.ndarray) -> np.dtype:
    # torch adds an int64 offset tensor: float inputs keep their dtype, integer inputs become int64.
    return a.dtype if np.issubdtype(a.dtype, np.floating) else np.result_type(a.dtype, np.int64)


def uncrop_boxes_xyxy(boxes: np.ndarray, crop_box: Sequence[int]) -> np.ndarray:
    """Boxes [..., 4] XYXY in crop coordinates -> image coordinates (int64, or the input float dtype)."""
    boxes = np.asarray(boxes)
    x0, y0 = crop_box[0], crop_box[1]
    return boxes + np.array([x0, y0, x0, y0], dtype=_offset_dtype(boxes))


def uncrop_points(points: np.ndarray, crop_box: Sequence[int]) -> np.ndarray:
    """Points [..., 2] (x, y) in crop coordinates -> image coordinates (int64, or the input float dtype)."""
    points = np.asarray(points)
    return points + np.array([crop_box[0], crop_box[1]], dtype=_offset_dtype(points))


def uncrop_masks(masks: np.ndarray, crop_box: Sequence[int], orig_h: int, orig_w: int) -> np.ndarray:
    """Masks [..., h, w] of a crop -> [..., orig_h, orig_w] zero-padded; the input itself for a full-image crop."""
    x0, y0, x1, y1 = crop_box
    if x0 == 0 and y0 == 0 and x1 == orig_w and y1 == orig_h:
        return masks
    pad_x, pad_y = orig_w - (x1 - x0), orig_h - (y1 - y0)
    if min(x0, y0, pad_x - x0, pad_y - y0) < 0:
        raise ValueError(f"crop box {list(crop_box)} does not lie inside the {orig_w}x{orig_h} (w x h) image")
    mh, mw = masks.shape[-2:]
    out = np.zeros((*masks.shape[:-2], mh + pad_y, mw + pad_x), dtype=masks.dtype)
    out[..., y0 : y0 + mh, x0 : x0 + mw] = masks
    return out


def is_box_near_crop_edge(
    boxes: np.ndarray, crop_box: Sequence[int], orig_box: Sequence[int], atol: float = 20.0
) -> np.ndarray:
    """[N] bool: does a box [N, 4] (crop coordinates) lie within atol of a crop edge that is not an image edge?"""
    crop = np.asarray(crop_box, dtype=np.float32)
    orig = np.asarray(orig_box, dtype=np.float32)
    boxes = uncrop_boxes_xyxy(boxes, crop_box).astype(np.float32)
    tol = np.float32(atol)  # torch.isclose compares |a - b| <= atol in the tensors' float32
    near_crop_edge = np.abs(boxes - crop[None, :]) <= tol
    near_image_edge = np.abs(boxes - orig[None, :]) <= tol
    return np.any(near_crop_edge & ~near_image_edge, axis=1)


def box_xyxy_to_xywh(box_xyxy: np.ndarray) -> np.ndarray:
    """A copy of box [..., 4] in XYWH. (Official indexes axis 0, so it is only right for one [4] box; same there.)"""
    box_xywh = np.array(box_xyxy, copy=True)
    box_xywh[..., 2] = box_xywh[..., 2] - box_xywh[..., 0]
    box_xywh[..., 3] = box_xywh[..., 3] - box_xywh[..., 1]
    return box_xywh


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Areas (x2 - x1) * (y2 - y1), no +1, of boxes [..., 4] -> [...].

    Dtypes as torchvision's `_upcast`: float32/float64 and int32/int64 kept, other floats -> float32,
    other ints -> int32.
    """
    boxes = np.asarray(boxes)
    if np.issubdtype(boxes.dtype, np.floating):
        boxes = boxes if boxes.dtype in (np.float32, np.float64) else boxes.astype(np.float32)
    elif boxes.dtype not in (np.int32, np.int64):
        boxes = boxes.astype(np.int32)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def batched_nms(boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy per-category NMS, as torchvision: boxes [N, 4] XYXY float, scores [N], idxs [N] -> kept [K] int64.

    Kept indices come in decreasing score order (ties in index order). A box is dropped when its IoU with a
    kept box of its category is > iou_threshold. IoU is computed in the boxes' float dtype exactly as the
    torchvision CPU kernel does, and compared to the threshold in float64 (a C++ float vs double compare).
    """
    boxes = np.asarray(boxes)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"batched_nms needs boxes of shape [N, 4], got {boxes.shape}")
    if not np.issubdtype(boxes.dtype, np.floating):
        boxes = boxes.astype(np.float32)
    scores, idxs = np.asarray(scores), np.asarray(idxs)
    if not (scores.shape == idxs.shape == boxes.shape[:1]):
        raise ValueError(f"batched_nms needs scores and idxs of shape [{len(boxes)}], got {scores.shape}, {idxs.shape}")
    if len(boxes) == 0:
        return np.zeros((0,), dtype=np.int64)

    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[order, k]) for k in range(4))
    cat = idxs[order]
    areas = (x2 - x1) * (y2 - y1)
    zero = boxes.dtype.type(0)
    suppressed = np.zeros(len(order), dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 for empty boxes: nan, never suppresses
        for i in range(len(order)):
            if suppressed[i]:
                continue
            s = slice(i + 1, None)
            w = np.maximum(zero, np.minimum(x2[i], x2[s]) - np.maximum(x1[i], x1[s]))
            h = np.maximum(zero, np.minimum(y2[i], y2[s]) - np.maximum(y1[i], y1[s]))
            inter = w * h
            iou = inter / (areas[i] + areas[s] - inter)
            suppressed[s] |= (iou.astype(np.float64) > iou_threshold) & (cat[s] == cat[i])
    return order[~suppressed].astype(np.int64)


# ---------------------------------------------------------------- run-length encoding


def _fortran_change_positions(mask: np.ndarray) -> np.ndarray:
    """Sorted p (int64) with f[p] != f[p+1], where f is the [H, W] bool mask flattened column-major.

    Found without transposing the mask: along a column consecutive pixels are vertical neighbours, and
    between columns the last pixel of column c is followed by the first of column c+1.
    """
    h, w = mask.shape
    row, col = np.divmod(np.flatnonzero(mask[1:] != mask[:-1]), w)
    wraps = np.flatnonzero(mask[-1, :-1] != mask[0, 1:]) * h + (h - 1)
    pos = np.concatenate([col * h + row, wraps])
    pos.sort()
    return pos


def mask_to_rle(masks: np.ndarray) -> List[Dict[str, Any]]:
    """Bool masks [N, H, W] -> N uncompressed RLEs {"size": [H, W], "counts": [python ints]}, column-major.

    Same output as the official `mask_to_rle_pytorch`: counts alternate 0-runs and 1-runs, starting with a
    0-run (so a mask whose first pixel is set starts with a count of 0).
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise ValueError(f"mask_to_rle needs masks of shape [N, H, W], got {masks.shape}")
    n, h, w = masks.shape
    out = []
    for i in range(n):
        bounds = np.concatenate([[0], _fortran_change_positions(masks[i]) + 1, [h * w]])
        counts = [] if not masks[i, 0, 0] else [0]
        counts.extend(np.diff(bounds).tolist())
        out.append({"size": [h, w], "counts": counts})
    return out


def rle_to_mask(rle: Dict[str, Any]) -> np.ndarray:
    """Uncompressed RLE -> bool mask [H, W] (a transposed view of a column-major buffer, as official)."""
    h, w = rle["size"]
    counts = np.asarray(rle["counts"], dtype=np.int64)
    mask = np.repeat(np.arange(len(counts)) % 2 == 1, counts)
    if mask.size != h * w:
        raise ValueError(f"RLE counts sum to {mask.size}, but its size {h}x{w} has {h * w} pixels")
    return mask.reshape(w, h).transpose()


def area_from_rle(rle: Dict[str, Any]) -> int:
    """Number of set pixels of an uncompressed RLE (python int)."""
    return sum(rle["counts"][1::2])


def coco_encode_rle(uncompressed_rle: Dict[str, Any]) -> Dict[str, Any]:
    """Uncompressed RLE -> COCO compressed RLE {"size": [H, W], "counts": str} (needs pycocotools)."""
    from pycocotools import mask as mask_utils  # optional dependency, as in the official code

    h, w = uncompressed_rle["size"]
    rle = mask_utils.frPyObjects(uncompressed_rle, h, w)
    rle["counts"] = rle["counts"].decode("utf-8")  # str, so records serialize to JSON
    return rle
