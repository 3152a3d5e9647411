"""Host-side tables the kernels read: per-output taps and weights, computed once per size pair (numpy only).

The torch-matching resizes use their numpy twins' own tables, so kernel and twin cannot disagree on a weight.
PIL's bicubic coefficients are computed here as Pillow computes them (src/libImaging/Resample.c:
`precompute_coeffs` in double, `normalize_coeffs_8bpc` to fixed point), which leaves the kernels only Pillow's
integer arithmetic. tests/runtime/test_kernels_compile.py replays that arithmetic in numpy with these tables
and checks it against PIL bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..ops.preprocess import _VIDEO_LUT
from ..ops.resize import _antialias_table, _linear_table

PRECISION_BITS = 22  # Resample.c: 32 - 8 - 2
BICUBIC_SUPPORT = 2.0


def _bicubic(x: np.ndarray) -> np.ndarray:
    """Resample.c `bicubic_filter` (a = -0.5) in float64, with its operation order."""
    a = -0.5
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


@lru_cache(maxsize=64)
def pil_bicubic_coeffs(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's taps for resizing an axis in_size -> out_size (box = the whole axis):
    (bounds [out, 2] int32 (first input index, number of taps), coeffs [out, ksize] int32 in 2^-22 units)."""
    scale = float(np.float32(in_size)) / out_size  # (double)(in1 - in0) / outSize, in1 - in0 a float
    filterscale = max(scale, 1.0)
    support = BICUBIC_SUPPORT * filterscale
    ksize = int(np.ceil(support)) * 2 + 1
    center = (np.arange(out_size) + 0.5) * scale
    xmin = np.maximum(np.trunc(center - support + 0.5), 0).astype(np.int64)  # (int) truncates toward 0
    xmax = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size) - xmin
    j = np.arange(ksize)
    used = j[None, :] < xmax[:, None]
    w = np.where(used, _bicubic(((j[None, :] + xmin[:, None]) - center[:, None] + 0.5) * (1.0 / filterscale)), 0.0)
    ww = np.zeros(out_size)
    for t in range(ksize):  # sequential double sum, as the C loop
        ww += w[:, t]
    w = np.where(ww[:, None] != 0.0, w / np.where(ww == 0.0, 1.0, ww)[:, None], w)
    fixed = w * (1 << PRECISION_BITS)
    coeffs = np.trunc(np.where(w < 0, -0.5 + fixed, 0.5 + fixed)).astype(np.int32)
    bounds = np.stack([xmin, xmax], 1).astype(np.int32)
    for a in (bounds, coeffs):
        a.setflags(write=False)
    return bounds, coeffs


def _pillow_orders_passes() -> bool:
    """Pillow >= 13 picks the pass order (python-pillow/Pillow#9549); older versions always went horizontal
    first. The kernels follow the installed PIL, which is the twin."""
    import PIL

    return int(PIL.__version__.split(".")[0]) >= 13


@dataclass(frozen=True)
class PilPass:
    """One of Pillow's resampling passes over an RGB uint8 image (the `pil_bicubic_pass` kernel's arguments)."""
    vertical: bool
    bounds: np.ndarray  # [out, 2] int32 (first source index along the axis, number of taps)
    coeffs: np.ndarray  # [out, ksize] int32, 2^-22 units
    row0: int  # first source row read by a horizontal pass (Pillow skips rows the vertical pass never reads)
    src_w: int  # source row length in pixels
    out_h: int
    out_w: int


@lru_cache(maxsize=64)
def pil_bicubic_passes(in_h: int, in_w: int, size: int) -> tuple[PilPass, ...]:
    """Pillow's passes for resizing (in_h, in_w) -> (size, size), as `ImagingResampleInner` runs them.

    Horizontal first (always before Pillow 13, and since then unless the height shrinks more than twice as
    much as the width): the horizontal pass makes only rows [row0, row0 + rows) and the vertical bounds are
    shifted by row0. Otherwise vertical first, then horizontal on its result. With no pass needed (the size is
    unchanged), one identity pass (a single tap of weight 2^22, exact) stands in for PIL's copy.
    """
    need_h, need_v = in_w != size, in_h != size
    # Pillow 13 goes vertical first when the height shrinks more than twice as much as the width (matched to
    # the installed Pillow 13.0 on random sizes; python-pillow/Pillow#9549).
    v_first = _pillow_orders_passes() and in_h >= size and in_h - size > (in_w - size) * 2
    h_first = not v_first
    passes = []
    if need_h and h_first:
        v_bounds, v_coeffs = pil_bicubic_coeffs(in_h, size)
        row0 = int(v_bounds[0, 0])
        rows = int(v_bounds[-1, 0] + v_bounds[-1, 1]) - row0
        h_bounds, h_coeffs = pil_bicubic_coeffs(in_w, size)
        passes.append(PilPass(False, h_bounds, h_coeffs, row0, in_w, rows, size))
        if need_v:
            v_bounds = v_bounds.copy()
            v_bounds[:, 0] -= row0
            passes.append(PilPass(True, v_bounds, v_coeffs, 0, size, size, size))
    else:
        if need_v:
            v_bounds, v_coeffs = pil_bicubic_coeffs(in_h, size)
            passes.append(PilPass(True, v_bounds, v_coeffs, 0, in_w, size, in_w))
        if need_h:
            h_bounds, h_coeffs = pil_bicubic_coeffs(in_w, size)
            passes.append(PilPass(False, h_bounds, h_coeffs, 0, in_w, size, size))
    if not passes:
        identity_bounds = np.stack([np.arange(size), np.ones(size)], 1).astype(np.int32)
        identity = np.full((size, 1), 1 << PRECISION_BITS, np.int32)
        passes.append(PilPass(True, identity_bounds, identity, 0, size, size, size))
    return tuple(passes)


def video_lut() -> np.ndarray:
    """[3, 256] float32: the video loader's (v / 255 - mean) / std per channel and uint8 value (the twin's)."""
    return _VIDEO_LUT


@lru_cache(maxsize=64)
def antialias_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The twin's antialias taps as the kernel reads them: (idx [out, k] int32, w [out, k] float32,
    plain [out, k] uint8)."""
    idx, wts, plain = _antialias_table(in_size, out_size)
    return (idx.astype(np.int32), np.ascontiguousarray(wts, np.float32),
            np.ascontiguousarray(plain.T, np.uint8))


@lru_cache(maxsize=64)
def linear_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The twin's half-pixel linear taps: (i0, i1 [out] int32, w0, w1 [out] float32)."""
    i0, i1, w0, w1 = _linear_table(in_size, out_size)
    return i0.astype(np.int32), i1.astype(np.int32), w0.astype(np.float32), w1.astype(np.float32)
