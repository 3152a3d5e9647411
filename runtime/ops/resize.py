"""Resizes that match PyTorch's and PIL's numerics: numpy twins of the runtime's interpolation kernels.

Two torch interpolations appear in SAM 2 (see SAM2_REFERENCE.md section 4, "Interpolation sites"):
- `resize_bilinear`: `F.interpolate(mode="bilinear", align_corners=False)`, used for mask logits 256 -> 1024
  and 256 -> the video/image resolution;
- `resize_bilinear_antialias`: the same with `antialias=True`, used by torchvision's `Resize` in the image
  predictor's preprocessing and for mask inputs.
The video loader resizes uint8 frames with PIL's bicubic filter instead: `resize_pil_bicubic`.

Both torch twins work like the ATen CPU kernels (aten/src/ATen/native/cpu/UpSampleKernel.cpp): separable, W
first, then H, an unchanged size skipped; per-axis indices and weights computed in float32 with the same
expressions; and the same rounding, including the fused multiply-adds the compiler made of the kernels' sums.
They are bit-exact with torch 2.13's CPU (AVX2) kernels on every case tested; torch's channels-last variant,
which non-antialiased bilinear uses for tiny outputs (h + w <= 128), differs by an ulp. Each pass gathers the
taps of a block of output rows (sparse per-axis index/weight tables, no dense matrices).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image


def _hw(size) -> tuple[int, int]:
    """`size` as (h, w): an int means a square."""
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = (int(s) for s in size)
    return h, w


def _check_input(x: np.ndarray, size) -> tuple[np.ndarray, int, int]:
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"expected an array [..., H, W], got shape {x.shape}")
    if x.dtype != np.float32:
        raise TypeError(f"expected float32 [..., H, W], got {x.dtype}; cast with .astype(np.float32)")
    h, w = _hw(size)
    if h < 1 or w < 1 or x.shape[-2] < 1 or x.shape[-1] < 1:
        raise ValueError(f"cannot resize {x.shape[-2:]} to {(h, w)}: sizes must be >= 1")
    return x, h, w


# Output elements per block: a block's float64 temporaries stay in cache, which beats whole-array passes.
_BLOCK = 1 << 17


def _blocks(src: np.ndarray, n_out: int, axis: int):
    """Split one pass into blocks of output rows: yields (s, e, gather) with gather(i, buf) writing the taps
    `i` (indices into the resampled axis: [n_out] for axis 1, [e - s] for axis 0) of output rows s:e to buf.

    src: [R, W] resampled along axis 1 (W pass: rows independent) or [H, w] along axis 0 (H pass)."""
    n_rows = src.shape[0] if axis == 1 else n_out
    row_len = n_out if axis == 1 else src.shape[1]
    step = max(1, _BLOCK // max(row_len, 1))
    for s in range(0, n_rows, step):
        e = min(n_rows, s + step)
        if axis == 1:
            yield s, e, lambda i, buf, blk=src[s:e]: np.take(blk, i, axis=1, out=buf)
        else:
            yield s, e, lambda i, buf: np.take(src, i, axis=0, out=buf)


def _lerp_pass(src: np.ndarray, table, axis: int, out: np.ndarray | None = None) -> np.ndarray:
    """One linear pass of `resize_bilinear` along `axis` (see `_blocks`): fma(x[i0], w0, x[i1] * w1), the
    rounding of the kernel, which is compiled with FMA contraction. A float32 product is exact in float64
    (and so, in practice, is the sum), so a float64 multiply-add rounded once to float32 reproduces it."""
    i0, i1, w0, w1 = table
    n_out = len(i0)
    if out is None:
        out = np.empty((src.shape[0], n_out) if axis == 1 else (n_out, src.shape[1]), np.float32)
    step = max(1, _BLOCK // out.shape[1])
    a = np.empty((min(step, out.shape[0]), out.shape[1]), np.float32)
    b = np.empty_like(a)
    acc = np.empty(a.shape, np.float64)
    for s, e, gather in _blocks(src, n_out, axis):
        k = e - s
        if axis == 1:
            j0, j1, v0, v1 = i0, i1, w0, w1
        else:
            j0, j1, v0, v1 = i0[s:e], i1[s:e], w0[s:e, None], w1[s:e, None]
        gather(j0, a[:k])
        gather(j1, b[:k])
        np.multiply(a[:k], v0, out=acc[:k], dtype=np.float64)
        np.multiply(b[:k], v1, out=b[:k])
        acc[:k] += b[:k]
        out[s:e] = acc[:k]
    return out


@lru_cache(maxsize=64)
def _linear_table(in_size: int, out_size: int):
    """Per-output (i0, i1, w0, w1) of half-pixel linear interpolation, as ATen's
    `compute_source_index_and_lambda` computes them (float32, source index clamped at 0 below)."""
    scale = np.float32(in_size) / np.float32(out_size)
    dst = np.arange(out_size, dtype=np.float32) + np.float32(0.5)
    # src = fma(scale, dst + 0.5, -0.5): the float64 product and difference are exact, so one rounding.
    src = (np.float64(scale) * dst.astype(np.float64) - 0.5).astype(np.float32)
    src = np.maximum(src, np.float32(0.0))
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    w1 = np.clip(src - i0.astype(np.float32), np.float32(0.0), np.float32(1.0))
    w0 = np.float32(1.0) - w1
    i1 = i0 + (i0 < in_size - 1)
    for a in (i0, i1, w0, w1):
        a.setflags(write=False)
    return i0, i1, w0, w1


def resize_bilinear(x: np.ndarray, size) -> np.ndarray:
    """torch `F.interpolate(x, size, mode="bilinear", align_corners=False)` (no antialias).

    x: [..., H, W] float32 (e.g. mask logits [O, 1, 256, 256]); size: int or (h, w).
    Returns [..., h, w] float32 (a new array, also when the size is unchanged).
    Each pass computes fma(x0, w0, x1 * w1) like the kernel; bit-exact with torch 2.13's AVX2 CPU kernel here.
    """
    x, h, w = _check_input(x, size)
    if x.shape[-2:] == (h, w):
        return x.copy()
    lead = x.shape[:-2]
    x3 = x.reshape(-1, *x.shape[-2:])
    if x3.shape[-1] != w:  # W first: the kernel interpolates along W innermost
        t = _lerp_pass(x3.reshape(-1, x3.shape[-1]), _linear_table(x3.shape[-1], w), axis=1)
        x3 = t.reshape(x3.shape[0], x3.shape[1], w)
    if x3.shape[-2] != h:
        table, out = _linear_table(x3.shape[-2], h), np.empty((x3.shape[0], h, w), np.float32)
        for plane, o in zip(x3, out):
            _lerp_pass(plane, table, axis=0, out=o)
        x3 = out
    return x3.reshape(*lead, h, w)


@lru_cache(maxsize=64)
def _antialias_table(in_size: int, out_size: int):
    """Taps of ATen's antialiased linear filter: (index [out, K] int64, weight [out, K] float32, plain [K, out]).

    Mirrors `_compute_indices_min_size_weights_aa` (UpSampleKernel.cpp) in float32: the support is the scale
    when downsampling (1 otherwise), the triangle filter is evaluated at (j + xmin - center + 0.5) / scale,
    the window [xmin, xmin + xsize) is clamped to the input and its weights are normalised to sum to 1;
    K = 2 * ceil(support) + 1. Unused taps get weight 0 and a valid index, so they add exact zeros.
    `plain[t]` marks the outputs whose tap t is added as a rounded product rather than fused: the kernel's
    loop `out += x[j] * w[j]` (j = 1 .. xsize-1) is compiled with its products 4-wide vectorised and the
    remaining (xsize - 1) % 4 taps fused (found by matching torch 2.13's AVX2 kernel bit for bit).
    """
    f32 = np.float32
    scale = f32(in_size) / f32(out_size)
    support = f32(scale) if scale >= 1.0 else f32(1.0)
    k = int(np.ceil(support)) * 2 + 1
    invscale = f32(1.0 / float(scale)) if scale >= 1.0 else f32(1.0)
    center = (np.float64(scale) * (np.arange(out_size) + 0.5)).astype(f32)  # double product, stored as float
    # static_cast<int64_t> truncates toward zero; with the max/min below that equals floor here.
    xmin = np.maximum(np.trunc((center - support).astype(np.float64) + 0.5), 0).astype(np.int64)
    xmax = np.minimum(np.trunc((center + support).astype(np.float64) + 0.5).astype(np.int64), in_size)
    xsize = np.clip(xmax - xmin, 0, k)
    j = np.arange(k, dtype=np.int64)
    pos = (xmin[:, None] + j[None, :]).astype(f32) - center[:, None]  # int64 - float -> float
    arg = ((pos.astype(np.float64) + 0.5) * np.float64(invscale)).astype(f32)
    wts = np.maximum(f32(1.0) - np.abs(arg), f32(0.0))  # triangle filter: 1 - |x| for |x| < 1, else 0
    wts[j[None, :] >= xsize[:, None]] = 0
    total = np.zeros(out_size, dtype=f32)
    for t in range(k):  # sequential float32 sum, as the kernel accumulates it
        total += wts[:, t]
    nonzero = total != 0
    wts[nonzero] /= total[nonzero, None]
    idx = np.minimum(xmin[:, None] + j[None, :], in_size - 1)
    plain = j[:, None] <= ((xsize[None, :] - 1) // 4) * 4
    used = max(int(xsize.max()), 1)  # taps past every window only add exact zeros: drop them
    idx, wts, plain = idx[:, :used].copy(), wts[:, :used].copy(), plain[:used].copy()
    for a in (idx, wts, plain):
        a.setflags(write=False)
    return idx, wts, plain


def _aa_pass(src: np.ndarray, table, axis: int, out: np.ndarray | None = None) -> np.ndarray:
    """One pass of `resize_bilinear_antialias` along `axis` (see `_blocks`): sum_t x[idx[:, t]] * wts[:, t]
    accumulated in the kernel's order, each tap added as a rounded product or fused as `plain` says."""
    idx, wts, plain = table
    n_out = len(idx)
    if out is None:
        out = np.empty((src.shape[0], n_out) if axis == 1 else (n_out, src.shape[1]), np.float32)
    step = max(1, _BLOCK // out.shape[1])
    a = np.empty((min(step, out.shape[0]), out.shape[1]), np.float32)
    b = np.empty_like(a)
    acc = np.empty(a.shape, np.float64)
    for s, e, gather in _blocks(src, n_out, axis):
        k = e - s
        ids, ws, pl = (idx, wts, plain) if axis == 1 else (idx[s:e], wts[s:e, :, None], plain[:, s:e, None])
        o, ak, bk, acck = out[s:e], a[:k], b[:k], acc[:k]
        gather(ids[:, 0], ak)
        np.multiply(ak, ws[:, 0], out=o)
        for t in range(1, ids.shape[1]):
            gather(ids[:, t], ak)
            if pl[t].all():
                ak *= ws[:, t]
                o += ak
                continue
            np.multiply(ak, ws[:, t], out=acck, dtype=np.float64)
            acck += o
            if pl[t].any():  # mixed (near a border): compute both roundings and pick per output
                np.multiply(ak, ws[:, t], out=bk)
                bk += o
                o[...] = acck
                np.copyto(o, bk, where=np.broadcast_to(pl[t], o.shape))
            else:
                o[...] = acck
    return out


def resize_bilinear_antialias(x: np.ndarray, size) -> np.ndarray:
    """torch `F.interpolate(x, size, mode="bilinear", align_corners=False, antialias=True)`.

    x: [..., H, W] float32 (e.g. an image [3, 1080, 1920] or mask logits [1, 1, 1024, 1024]); size: int or
    (h, w); down- and upsampling. Returns [..., h, w] float32 (a new array).
    """
    x, h, w = _check_input(x, size)
    if x.shape[-2:] == (h, w):
        return x.copy()
    lead = x.shape[:-2]
    x3 = x.reshape(-1, *x.shape[-2:])
    if x3.shape[-1] != w:  # horizontal pass first, as the kernel does
        t = _aa_pass(x3.reshape(-1, x3.shape[-1]), _antialias_table(x3.shape[-1], w), axis=1)
        x3 = t.reshape(x3.shape[0], x3.shape[1], w)
    if x3.shape[-2] != h:
        table, out = _antialias_table(x3.shape[-2], h), np.empty((x3.shape[0], h, w), np.float32)
        for plane, o in zip(x3, out):
            _aa_pass(plane, table, axis=0, out=o)
        x3 = out
    return x3.reshape(*lead, h, w)


def resize_pil_bicubic(image_u8: np.ndarray, size: int) -> np.ndarray:
    """The official video loader's resize: `Image.fromarray(img).convert("RGB").resize((size, size))`.

    PIL's default filter for RGB is BICUBIC (a = -0.5, antialiased when downsampling), applied to uint8 with
    PIL's own rounding, so this calls PIL rather than re-implementing it.
    image_u8: [H, W, 3] uint8 RGB. Returns [size, size, 3] uint8.
    """
    image_u8 = np.asarray(image_u8)
    if image_u8.dtype != np.uint8 or image_u8.ndim != 3 or image_u8.shape[2] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3] uint8, got shape {image_u8.shape} {image_u8.dtype}")
    img = Image.fromarray(image_u8).convert("RGB").resize((int(size), int(size)))
    return np.asarray(img)
