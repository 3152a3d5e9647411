"""The CUDA kernels of `cuda/` behind their numpy twins' signatures (runtime/ops): DeviceArrays in and out,
launched on the caller's stream (`stream=`: a Stream, a cudaStream_t handle or None for the legacy default).

Each wrapper computes what its twin computes, on the device; the twin named in each docstring is the oracle
of tests/runtime/test_kernels_gpu.py. Temporaries are stream-ordered allocations freed on the same stream, so
nothing here synchronises; `DeviceArray.to_host` does. Only the pre-processing wrappers also accept host
arrays (a decoded frame in pageable or pinned memory; from pinned memory the copy overlaps other work, so
leave the buffer unchanged until the stream has passed it).
"""

from __future__ import annotations

import math

import numpy as np

from ..ops.preprocess import IMG_MEAN, IMG_STD
from . import tables
from .device import DeviceArray, as_stream
from .launch import TABLES, blocks, f32, f64, i32, kernel, ptr

BLOCK_2D = (32, 8)  # 32 consecutive pixels of a row per warp: coalesced, and mask_frame relies on it
BLOCK_1D = 256  # a multiple of 32: ccl_flatten_count's warp collectives need whole warps
MAX_SHARED = 48 * 1024  # dynamic shared memory available without opting in


def _hw(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = (int(s) for s in size)
    return h, w


def _resize_sizes(x: DeviceArray, size, what: str):
    """((h, w), (in_h, in_w), lead dims) with the twin's checks (`ops.resize._check_input`)."""
    x = _require(x, np.float32, None, what)
    if x.ndim < 2:
        raise ValueError(f"{what}: expected an array [..., H, W], got shape {x.shape}")
    h, w = _hw(size)
    if h < 1 or w < 1 or min(x.shape[-2:]) < 1:
        raise ValueError(f"{what}: cannot resize {x.shape[-2:]} to {(h, w)}: sizes must be >= 1")
    return (h, w), x.shape[-2:], x.shape[:-2]


def _require(x, dtype, ndim: int | None, what: str) -> DeviceArray:
    if not isinstance(x, DeviceArray):
        raise TypeError(f"{what}: expected a DeviceArray, got {type(x).__name__}; copy it in with "
                        "DeviceArray.from_host(array, stream) (or use the numpy twin in runtime.ops)")
    if x.dtype != np.dtype(dtype) or (ndim is not None and x.ndim != ndim):
        dims = f"{ndim}-D " if ndim is not None else ""
        raise ValueError(f"{what}: expected a {dims}{np.dtype(dtype)} array, got shape {x.shape} {x.dtype}")
    return x


def _rgb_frame(image, stream) -> DeviceArray:
    """[H, W, 3] uint8 on the device (host frames are copied in on `stream`)."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB image [H, W, 3] uint8, got shape {image.shape} {image.dtype}")
        return DeviceArray.from_host(image, stream)
    image = _require(image, np.uint8, 3, "image")
    if image.shape[2] != 3 or min(image.shape) < 1:
        raise ValueError(f"expected an RGB image [H, W, 3] uint8, got shape {image.shape}")
    return image


# ---- pre-processing -------------------------------------------------------------------------------------------
def _pil_bicubic(image, size: int, stream, normalize: bool) -> DeviceArray:
    s = as_stream(stream)
    src = _rgb_frame(image, s)
    h, w, _ = src.shape
    passes = tables.pil_bicubic_passes(h, w, int(size))
    run = kernel("pil_bicubic", "pil_bicubic_pass")
    lut = TABLES.get(("video_lut",), lambda: (tables.video_lut(),))[0] if normalize else None
    for i, p in enumerate(passes):
        last = i == len(passes) - 1
        bounds, coeffs = TABLES.get(("pil_bicubic", h, w, int(size), i), lambda p=p: (p.bounds, p.coeffs))
        out_u8 = None if last and normalize else DeviceArray.empty((p.out_h, p.out_w, 3), np.uint8, s)
        out_f32 = DeviceArray.empty((1, 3, p.out_h, p.out_w), np.float32, s) if last and normalize else None
        run((blocks(p.out_w, BLOCK_2D[0]), blocks(p.out_h, BLOCK_2D[1])), BLOCK_2D,
            ptr(src), i32(p.src_w), i32(p.row0), i32(p.vertical), i32(p.out_h), i32(p.out_w), ptr(bounds),
            ptr(coeffs), i32(coeffs.shape[1]), ptr(out_u8), ptr(out_f32), ptr(lut if last else None), stream=s)
        src = out_u8 if out_u8 is not None else out_f32  # a dropped intermediate is freed after this launch
    return src


def resize_pil_bicubic(image, size: int, *, stream=None) -> DeviceArray:
    """Twin `ops.resize_pil_bicubic` (PIL BICUBIC): [H, W, 3] uint8 (device or host) -> [size, size, 3] uint8."""
    return _pil_bicubic(image, size, stream, normalize=False)


def preprocess_video_frame(image, size: int, *, stream=None) -> DeviceArray:
    """Twin `ops.preprocess_video_frame`: [H, W, 3] uint8 RGB (device or host) -> [1, 3, size, size] float32,
    PIL's bicubic resize then the loader's / 255 and Normalize (fused into the last pass)."""
    return _pil_bicubic(image, size, stream, normalize=True)


def _aa_tables(in_size: int, out_size: int):
    """(idx, w, plain, k) on the device, or (None, None, None, 0) for an unchanged size (identity pass)."""
    if in_size == out_size:
        return None, None, None, 0
    idx, w, plain = TABLES.get(("antialias", in_size, out_size), lambda: tables.antialias_taps(in_size, out_size))
    return idx, w, plain, idx.shape[1]


def preprocess_image(image, size: int, *, stream=None) -> DeviceArray:
    """Twin `ops.preprocess_image`: [H, W, 3] uint8 RGB (device or host) -> [1, 3, size, size] float32:
    / 255, antialiased bilinear resize (W pass, then H pass fused with Normalize)."""
    s = as_stream(stream)
    src = _rgb_frame(image, s)
    h, w, _ = src.shape
    size = int(size)
    tmp = DeviceArray.empty((3, h, size), np.float32, s)
    idx, wt, plain, k = _aa_tables(w, size)
    kernel("resize_antialias", "aa_rows_rgb")(
        (blocks(size, BLOCK_2D[0]), blocks(h, BLOCK_2D[1]), 3), BLOCK_2D,
        ptr(src), ptr(tmp), i32(h), i32(w), i32(size), ptr(idx), ptr(wt), ptr(plain), i32(k), i32(w == size),
        stream=s)
    out = DeviceArray.empty((1, 3, size, size), np.float32, s)
    idx, wt, plain, k = _aa_tables(h, size)
    kernel("resize_antialias", "aa_cols_normalize")(
        (blocks(size, BLOCK_2D[0]), blocks(size, BLOCK_2D[1]), 3), BLOCK_2D,
        ptr(tmp), ptr(out), i32(h), i32(size), i32(size), ptr(idx), ptr(wt), ptr(plain), i32(k), i32(h == size),
        *(f32(m) for m in IMG_MEAN), *(f32(v) for v in IMG_STD), stream=s)
    return out


def resize_bilinear_antialias(x: DeviceArray, size, *, stream=None) -> DeviceArray:
    """Twin `ops.resize_bilinear_antialias`: [..., H, W] float32 -> [..., h, w] float32 (a new array)."""
    s = as_stream(stream)
    (h, w), (in_h, in_w), lead = _resize_sizes(x, size, "resize_bilinear_antialias")
    if (in_h, in_w) == (h, w):
        return x.copy(s)
    planes = math.prod(lead)
    if planes == 0:
        return DeviceArray.empty((*lead, h, w), np.float32, s)
    if planes > 65535:
        raise ValueError(f"resize_bilinear_antialias: at most 65535 planes per call, got {planes}")
    cur = x.reshape(planes, in_h, in_w)
    if in_w != w:
        idx, wt, plain, k = _aa_tables(in_w, w)
        nxt = DeviceArray.empty((planes, in_h, w), np.float32, s)
        kernel("resize_antialias", "aa_rows")(
            (blocks(w, BLOCK_2D[0]), blocks(in_h, BLOCK_2D[1]), planes), BLOCK_2D,
            ptr(cur), ptr(nxt), i32(in_h), i32(in_w), i32(w), ptr(idx), ptr(wt), ptr(plain), i32(k), stream=s)
        cur = nxt
    if in_h != h:
        idx, wt, plain, k = _aa_tables(in_h, h)
        nxt = DeviceArray.empty((planes, h, w), np.float32, s)
        kernel("resize_antialias", "aa_cols")(
            (blocks(w, BLOCK_2D[0]), blocks(h, BLOCK_2D[1]), planes), BLOCK_2D,
            ptr(cur), ptr(nxt), i32(in_h), i32(h), i32(w), ptr(idx), ptr(wt), ptr(plain), i32(k), stream=s)
        cur = nxt
    return cur.reshape(*lead, h, w)


# ---- upsampling, non-overlap, thresholding (one kernel: cuda/mask_frame.cu) -----------------------------------
def _linear_tables(in_size: int, out_size: int):
    if in_size == out_size:
        return (None,) * 4
    return TABLES.get(("linear", in_size, out_size), lambda: tables.linear_taps(in_size, out_size))


def _mask_frame(src: DeviceArray, out_hw, s, *, non_overlap: bool, logits_out: DeviceArray | None,
                threshold: float = 0.0, masks: DeviceArray | None = None, stats=None) -> None:
    """Launch mask_frame on src [O, in_h, in_w] float32; stats = (area [O] int64, box32 [O, 4] int32)."""
    objects, in_h, in_w = src.shape
    h, w = out_hw
    n_local = objects if non_overlap else 1
    shared = 5 * 4 * n_local if stats is not None else 0
    if shared > MAX_SHARED:
        raise ValueError(f"{objects} objects need {shared} B of shared memory for their statistics (max "
                         f"{MAX_SHARED}); split the objects into chunks of at most {MAX_SHARED // 20}")
    if not non_overlap and objects > 65535:
        raise ValueError(f"at most 65535 planes per call, got {objects}")
    area, box = stats if stats is not None else (None, None)
    run = kernel("mask_frame", "mask_frame")
    run((blocks(w, BLOCK_2D[0]), blocks(h, BLOCK_2D[1]), 1 if non_overlap else objects), BLOCK_2D,
        ptr(src), i32(objects), i32(in_h), i32(in_w), i32(h), i32(w),
        *(ptr(t) for t in _linear_tables(in_h, h)), *(ptr(t) for t in _linear_tables(in_w, w)),
        i32(non_overlap), ptr(logits_out), f32(threshold), ptr(masks), ptr(area), ptr(box),
        stream=s, shared=shared)


def resize_bilinear(x: DeviceArray, size, *, stream=None) -> DeviceArray:
    """Twin `ops.resize_bilinear` (torch bilinear, align_corners=False, no antialias):
    [..., H, W] float32 -> [..., h, w] float32 (a new array)."""
    s = as_stream(stream)
    (h, w), (in_h, in_w), lead = _resize_sizes(x, size, "resize_bilinear")
    if (in_h, in_w) == (h, w):
        return x.copy(s)
    out = DeviceArray.empty((*lead, h, w), np.float32, s)
    if out.size:
        planes = math.prod(lead)
        _mask_frame(x.reshape(planes, in_h, in_w), (h, w), s, non_overlap=False,
                    logits_out=out.reshape(planes, h, w))
    return out


def apply_non_overlapping_constraints(logits: DeviceArray, *, stream=None) -> DeviceArray:
    """Twin `ops.apply_non_overlapping_constraints`: [O, 1, H, W] float32 -> [O, 1, H, W] float32 (the input
    itself when O == 1, as the twin)."""
    logits = _require(logits, np.float32, 4, "apply_non_overlapping_constraints")
    if logits.shape[1] != 1:
        raise ValueError(f"expected mask logits [O, 1, H, W], got shape {logits.shape}")
    o, _, h, w = logits.shape
    if o == 1:
        return logits
    s = as_stream(stream)
    out = DeviceArray.empty(logits.shape, np.float32, s)
    if out.size:
        _mask_frame(logits.reshape(o, h, w), (h, w), s, non_overlap=True, logits_out=out.reshape(o, h, w))
    return out


def _thresholded(src: DeviceArray, out_hw, s, threshold: float, non_overlap: bool, return_logits: bool):
    """(masks [O, h, w] bool, areas [O] int64, boxes [O, 4] int64, logits [O, 1, h, w] float32 or None).
    Every output is written: mask_frame skips only an empty src or output, where masks and logits are empty too,
    and the stats kernels always run."""
    o = src.shape[0]
    h, w = out_hw
    masks = DeviceArray.empty((o, h, w), np.bool_, s)
    areas = DeviceArray.empty((o,), np.int64, s)
    boxes = DeviceArray.empty((o, 4), np.int64, s)
    logits = DeviceArray.empty((o, 1, h, w), np.float32, s) if return_logits else None
    if o == 0:
        return masks, areas, boxes, logits
    box32 = DeviceArray.empty((o, 4), np.int32, s)
    grid = (blocks(o, BLOCK_1D),)
    kernel("mask_frame", "mask_stats_init")(grid, (BLOCK_1D,), ptr(areas), ptr(box32), i32(o), stream=s)
    if h * w and src.size:
        _mask_frame(src, (h, w), s, non_overlap=non_overlap,
                    logits_out=None if logits is None else logits.reshape(o, h, w), threshold=threshold,
                    masks=masks, stats=(areas, box32))
    kernel("mask_frame", "mask_stats_finalize")(grid, (BLOCK_1D,), ptr(areas), ptr(box32), ptr(boxes), i32(o),
                                                stream=s)
    return masks, areas, boxes, logits


def threshold_masks(logits: DeviceArray, threshold: float = 0.0, *, stream=None):
    """Twin `ops.threshold_masks`: logits [O, 1, H, W] float32 -> (masks [O, H, W] bool (logits > threshold),
    areas [O] int64, boxes [O, 4] int64 XYXY inclusive, zeros for an empty mask)."""
    logits = _require(logits, np.float32, 4, "threshold_masks")
    if logits.shape[1] != 1:
        raise ValueError(f"expected mask logits [O, 1, H, W], got shape {logits.shape}")
    o, _, h, w = logits.shape
    masks, areas, boxes, _ = _thresholded(logits.reshape(o, h, w), (h, w), as_stream(stream), threshold,
                                          non_overlap=False, return_logits=False)
    return masks, areas, boxes


def frame_masks(low_res: DeviceArray, size, threshold: float = 0.0, non_overlap: bool = True,
                return_logits: bool = False, *, stream=None):
    """The video predictor's per-frame output in one kernel: low-res logits [O, 1, h, w] float32 ->
    (masks [O, H, W] bool, areas [O] int64, boxes [O, 4] int64, logits [O, 1, H, W] float32 or None), (H, W) =
    size. Twin: `threshold_masks(apply_non_overlapping_constraints(resize_bilinear(low_res, size)), threshold)`
    (without the constraint when non_overlap is False); the full-size logits are written only on request."""
    low_res = _require(low_res, np.float32, 4, "frame_masks")
    if low_res.shape[1] != 1:
        raise ValueError(f"expected mask logits [O, 1, h, w], got shape {low_res.shape}")
    # as the twin's resize: an empty input or output size is refused (else the masks would never be written)
    out_hw, _, _ = _resize_sizes(low_res, size, "frame_masks")
    o, _, in_h, in_w = low_res.shape
    masks, areas, boxes, logits = _thresholded(low_res.reshape(o, in_h, in_w), out_hw, as_stream(stream),
                                               threshold, non_overlap, return_logits)
    return masks, areas, boxes, logits


# ---- connected components (cuda/connected_components.cu) ------------------------------------------------------
def _labels(x: DeviceArray, s, threshold: float | None):
    """Label x ([N, C, H, W] logits at `threshold`, or a [..., H, W] bool/uint8 mask when threshold is None):
    returns (cls [total] int8, label [total] int32, count [total] int32) with per-root component sizes."""
    h, w = x.shape[-2:]
    total = x.size
    if total >= 2 ** 31:
        raise ValueError(f"at most 2^31 - 1 pixels per call, got {x.shape}")
    cls = DeviceArray.empty((total,), np.int8, s)
    label = DeviceArray.empty((total,), np.int32, s)
    count = DeviceArray.zeros((total,), np.int32, s)
    grid, block = (blocks(total, BLOCK_1D),), (BLOCK_1D,)
    if threshold is None:
        kernel("connected_components", "ccl_init_mask")(grid, block, ptr(x), ptr(cls), ptr(label), i32(total),
                                                        stream=s)
    else:
        kernel("connected_components", "ccl_init_logits")(grid, block, ptr(x), f32(threshold), ptr(cls),
                                                          ptr(label), i32(total), stream=s)
    kernel("connected_components", "ccl_merge")(grid, block, ptr(cls), ptr(label), i32(h), i32(w), i32(total),
                                                stream=s)
    kernel("connected_components", "ccl_flatten_count")(grid, block, ptr(cls), ptr(label), ptr(count),
                                                        i32(total), stream=s)
    return cls, label, count


def component_areas(mask: DeviceArray, *, stream=None) -> DeviceArray:
    """Twin `ops.component_areas`: [..., H, W] bool/uint8 -> [..., H, W] int32, the area of each pixel's
    8-connected component, 0 where the mask is False."""
    if not isinstance(mask, DeviceArray) or mask.dtype.itemsize != 1 or mask.ndim < 2:
        raise ValueError(f"component_areas: expected a [..., H, W] bool/uint8 DeviceArray, got {mask!r}")
    s = as_stream(stream)
    areas = DeviceArray.empty(mask.shape, np.int32, s)
    if mask.size:
        cls, label, count = _labels(mask, s, None)
        kernel("connected_components", "ccl_areas")((blocks(mask.size, BLOCK_1D),), (BLOCK_1D,), ptr(cls),
                                                    ptr(label), ptr(count), ptr(areas), i32(mask.size), stream=s)
    return areas


def _filtered(logits: DeviceArray, s, threshold: float, max_hole: float, hole_value: float,
              max_sprinkle: float, sprinkle_value: float) -> DeviceArray:
    """logits [N, C, H, W] with small background (hole) and/or foreground (sprinkle) components replaced;
    a max_* <= 0 disables that filter. Both filters use one labelling of the input logits."""
    out = DeviceArray.empty(logits.shape, np.float32, s)
    if not logits.size:
        return out
    cls, label, count = _labels(logits, s, threshold)
    kernel("connected_components", "ccl_filter")(
        (blocks(logits.size, BLOCK_1D),), (BLOCK_1D,), ptr(logits), ptr(cls), ptr(label), ptr(count), ptr(out),
        i32(logits.size), f64(max_hole if max_hole > 0 else -1.0), f32(hole_value),
        f64(max_sprinkle if max_sprinkle > 0 else -1.0), f32(sprinkle_value), stream=s)
    return out


def fill_holes(logits: DeviceArray, max_area: float, threshold: float = 0.0, fill_value: float | None = None, *,
               stream=None) -> DeviceArray:
    """Twin `ops.fill_holes`: [N, C, H, W] float32 -> [N, C, H, W] float32 (a new array)."""
    logits = _require(logits, np.float32, 4, "fill_holes")
    s = as_stream(stream)
    if max_area <= 0:
        return logits.copy(s)
    fill = threshold + 10.0 if fill_value is None else fill_value
    return _filtered(logits, s, threshold, max_area, fill, -1.0, 0.0)


def remove_sprinkles(logits: DeviceArray, max_area: float, threshold: float = 0.0, *,
                     stream=None) -> DeviceArray:
    """Twin `ops.remove_sprinkles`: [N, C, H, W] float32 -> [N, C, H, W] float32 (a new array)."""
    logits = _require(logits, np.float32, 4, "remove_sprinkles")
    s = as_stream(stream)
    if max_area <= 0:
        return logits.copy(s)
    return _filtered(logits, s, threshold, -1.0, 0.0, max_area, threshold - 10.0)


def fill_holes_in_mask_scores(logits: DeviceArray, max_area: float, *, stream=None) -> DeviceArray:
    """Twin `ops.fill_holes_in_mask_scores` (video): [N, 1, H, W] float32 -> [N, 1, H, W] float32."""
    if not max_area > 0:
        raise ValueError(f"max_area must be positive, got {max_area} (the official code asserts this; "
                         "skip the call when fill_hole_area is 0)")
    return fill_holes(logits, max_area, threshold=0.0, fill_value=0.1, stream=stream)


def postprocess_image_masks(low_res: DeviceArray, orig_hw, mask_threshold: float = 0.0,
                            max_hole_area: float = 0.0, max_sprinkle_area: float = 0.0, *,
                            stream=None) -> DeviceArray:
    """Twin `ops.postprocess_image_masks`: low-res logits [B, C, h, w] float32 -> [B, C, H, W] float32:
    hole filling and sprinkle removal (one labelling of the input, the official quirk), then bilinear."""
    low_res = _require(low_res, np.float32, 4, "postprocess_image_masks")
    s = as_stream(stream)
    out = low_res
    if max_hole_area > 0 or max_sprinkle_area > 0:
        out = _filtered(low_res, s, mask_threshold, max_hole_area, mask_threshold + 10.0, max_sprinkle_area,
                        mask_threshold - 10.0)
    return resize_bilinear(out, orig_hw, stream=s)
