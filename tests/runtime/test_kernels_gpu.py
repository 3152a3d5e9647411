"""Every CUDA kernel (runtime.gpu.kernels) against its numpy twin (runtime.ops), on random and adversarial
inputs: empty and full masks, one-pixel holes, masks touching the border, odd sizes, 1 and 32 objects.

Tolerances (issue 6): labels and areas exact; interpolations within 1e-5 (relative beyond |x| = 32, as
test_ops); pre-processing within one 8-bit level (1 / 255 / std in normalised units) on >= 99.9% of pixels.
The kernels are written to reproduce their twins bit for bit, so most checks here are exact.
Skipped without a CUDA device and driver; needs only numpy, Pillow and OpenCV besides cuda-bindings.
"""

import numpy as np
import pytest

from sam2_trt.runtime import ops
from sam2_trt.runtime.gpu import DeviceArray, Stream, kernels, unavailable_reason

REASON = unavailable_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(REASON is not None, reason=f"no CUDA: {REASON}")]

TOL = 1e-5
LEVEL = 1 / 255 / ops.IMG_STD.min()  # one 8-bit level after normalisation (the largest of the 3 channels)


@pytest.fixture(scope="module")
def stream():
    return Stream.create()


def dev(x, stream) -> DeviceArray:
    return DeviceArray.from_host(np.ascontiguousarray(x), stream)


def check_close(got: np.ndarray, want: np.ndarray):
    assert got.shape == want.shape and got.dtype == want.dtype == np.float32
    if got.size:
        err = float(np.abs(got.astype(np.float64) - want).max())
        assert err <= TOL * max(1.0, float(np.abs(want).max()) / 32), err


def check_preprocessed(got: np.ndarray, want: np.ndarray):
    assert got.shape == want.shape and got.dtype == np.float32
    close = np.abs(got.astype(np.float64) - want) <= LEVEL * 1.001
    assert close.mean() >= 0.999, f"{(~close).sum()} of {close.size} values off by more than one 8-bit level"


# ---- inputs -----------------------------------------------------------------------------------------------------
def blobs(rng, n: int, h: int, w: int, cell: int = 8, scale: float = 10.0) -> np.ndarray:
    """[n, 1, h, w] float32 logits with blob-shaped components of many sizes (smooth noise) plus specks."""
    coarse = rng.standard_normal((n, 1, h // cell + 2, w // cell + 2)).astype(np.float32)
    x = ops.resize_bilinear(coarse, (h, w)) * np.float32(scale)
    specks = rng.random((n, 1, h, w)) < 0.01
    return np.where(specks, -x, x).astype(np.float32)


def adversarial(h: int, w: int) -> np.ndarray:
    """[8, 1, h, w] float32: empty, full, one-pixel holes (corners, borders, centre), a diagonal 8-connected
    hole chain and a border strip, specks on the border and in a corner, a ring around a hole, a 1-px-wide
    spiral (one long component: the worst case for union-find), a checkerboard (one 8-connected component)."""
    x = np.full((8, 1, h, w), 5.0, np.float32)
    x[0] = -5.0
    x[2, 0, [0, 0, h - 1, h - 1, h // 2, h // 2], [0, w - 1, 0, w - 1, 0, w // 2]] = -1.0
    for k in range(4):
        x[3, 0, 10 + k, 10 + k] = -2.0
    x[3, 0, :3, :] = -3.0
    x[4] = -5.0
    x[4, 0, 0, 5:7] = 1.0
    x[4, 0, h - 3:, w - 3:] = 2.0
    x[5] = -5.0
    x[5, 0, 20:25, 20:25] = 3.0
    x[5, 0, 21:24, 21:24] = -4.0
    x[6] = -5.0
    top, left, bottom, right = 0, 0, h - 1, w - 1
    while top <= bottom and left <= right:  # spiral with a 1-pixel gap between turns
        x[6, 0, top, left:right + 1] = 5.0
        x[6, 0, top:bottom + 1, right] = 5.0
        if top + 2 <= bottom:
            x[6, 0, bottom, left:right + 1] = 5.0
        if left + 2 <= right:
            x[6, 0, top + 2:bottom + 1, left] = 5.0
        top, left, bottom, right = top + 2, left + 2, bottom - 2, right - 2
        if top <= bottom:
            x[6, 0, top, left - 1] = 5.0  # connect to the next turn
    x[7] = np.where(np.indices((h, w)).sum(0) % 2 == 1, 5.0, -5.0)
    return x


def logits_cases(rng, n: int, h: int, w: int) -> np.ndarray:
    return np.concatenate([blobs(rng, n, h, w), adversarial(h, w)])


# ---- pre-processing ---------------------------------------------------------------------------------------------
def frames(rng, h: int, w: int):
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = np.stack([xx * 255 / max(w, 1), yy * 255 / max(h, 1), (xx + yy) % 256], -1)
    yield "scene", np.clip(smooth + rng.normal(0, 20, smooth.shape), 0, 255).astype(np.uint8)
    yield "noise", rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    yield "extremes", rng.choice(np.uint8([0, 255]), (h, w, 3))  # overshoot and clipping of the cubic


PRE_CASES = [((540, 960), 1024), ((1080, 1920), 1024), ((257, 131), 1024), ((1024, 1024), 1024),
             ((720, 1280), 512), ((131, 257), 64), ((2160, 3840), 1024)]


@pytest.mark.parametrize("hw,size", PRE_CASES, ids=str)
def test_preprocess_video_frame(stream, hw, size):
    rng = np.random.default_rng(hw[0] + size)
    for name, img in frames(rng, *hw):
        want = ops.preprocess_video_frame(img, size)
        from_device = kernels.preprocess_video_frame(dev(img, stream), size, stream=stream).to_host()
        from_host = kernels.preprocess_video_frame(img, size, stream=stream).to_host()
        check_preprocessed(from_device, want)
        np.testing.assert_array_equal(from_host, from_device)
        # PIL is integer arithmetic and the kernel replays it: expected exact (not only within a level)
        resized = kernels.resize_pil_bicubic(dev(img, stream), size, stream=stream).to_host()
        np.testing.assert_array_equal(resized, ops.resize_pil_bicubic(img, size), err_msg=name)


@pytest.mark.parametrize("hw,size", PRE_CASES, ids=str)
def test_preprocess_image(stream, hw, size):
    rng = np.random.default_rng(hw[1] + size)
    for name, img in frames(rng, *hw):
        want = ops.preprocess_image(img, size)
        got = kernels.preprocess_image(dev(img, stream), size, stream=stream).to_host()
        check_preprocessed(got, want)
        assert np.abs(got - want).max() <= 1e-4, name  # the same taps and rounding as the twin: no wrong weight
        np.testing.assert_array_equal(kernels.preprocess_image(img, size, stream=stream).to_host(), got)


def test_preprocess_from_pinned_host_memory(stream):
    """A frame in page-locked host memory (what a decoder writes into) is copied in on the stream."""
    from sam2_trt.runtime.gpu.device import check, cuda_runtime

    rt = cuda_runtime()
    h, w = 480, 640
    ptr = check(rt.cudaMallocHost(h * w * 3), "cudaMallocHost")
    try:
        import ctypes

        pinned = np.ctypeslib.as_array((ctypes.c_uint8 * (h * w * 3)).from_address(int(ptr))).reshape(h, w, 3)
        pinned[:] = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
        got = kernels.preprocess_video_frame(pinned, 1024, stream=stream).to_host()
        check_preprocessed(got, ops.preprocess_video_frame(pinned.copy(), 1024))
    finally:
        stream.synchronize()
        check(rt.cudaFreeHost(ptr), "cudaFreeHost")


# ---- interpolation ----------------------------------------------------------------------------------------------
RESIZE_CASES = [((8, 1, 256, 256), (1080, 1920)), ((1, 1, 256, 256), (1024, 1024)), ((2, 3, 257, 131), (64, 300)),
                ((1, 1, 1024, 1024), (256, 256)), ((3, 1080, 1920), (1024, 1024)), ((32, 1, 64, 64), (100, 37)),
                ((1, 1, 600, 1001), (256, 250)), ((1, 1, 7, 9), (3, 2)), ((1, 1, 1, 1), (5, 3)),
                ((2, 5, 6), (5, 6)), ((2, 1, 40, 33), (40, 70)), ((2, 1, 40, 33), (90, 33))]


@pytest.mark.parametrize("antialias", [False, True], ids=["bilinear", "antialias"])
@pytest.mark.parametrize("shape,size", RESIZE_CASES, ids=lambda v: "x".join(map(str, v)))
def test_resize(stream, shape, size, antialias):
    x = np.clip(np.random.default_rng(0).standard_normal(shape) * 8, -32, 32).astype(np.float32)
    x.reshape(-1)[: x.size // 7] = -1024.0  # NO_OBJ_SCORE rows: large magnitudes
    gpu = kernels.resize_bilinear_antialias if antialias else kernels.resize_bilinear
    twin = ops.resize_bilinear_antialias if antialias else ops.resize_bilinear
    check_close(gpu(dev(x, stream), size, stream=stream).to_host(), twin(x, size))


# ---- connected components ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,h,w", [(1, 256, 256), (32, 256, 256), (3, 257, 131), (2, 1, 1), (1, 1, 300)])
def test_component_areas(stream, n, h, w):
    rng = np.random.default_rng(n * h)
    masks = logits_cases(rng, n, max(h, 32), max(w, 32))[:, :, :h, :w] > 0
    for m in (masks, ~masks):
        want = ops.component_areas(m)
        got = kernels.component_areas(dev(m, stream), stream=stream).to_host()
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(kernels.component_areas(dev(m.astype(np.uint8), stream),
                                                              stream=stream).to_host(), want)
    if min(h, w) >= 32:
        areas = kernels.component_areas(dev(masks, stream), stream=stream).to_host()
        assert (areas[-1][masks[-1]] == h * w // 2).all()  # the checkerboard is one 8-connected component
        spiral = areas[-2][masks[-2]]
        assert spiral.min() == spiral.max() > h * w // 3  # the spiral too, and a long one


@pytest.mark.parametrize("n,h,w,max_area", [(1, 256, 256, 8), (32, 256, 256, 30), (4, 257, 131, 100),
                                            (1, 64, 48, 64 * 48)])
def test_fill_holes_in_mask_scores(stream, n, h, w, max_area):
    x = logits_cases(np.random.default_rng(4), n, h, w)
    x[0, 0, 0, 0] = np.nan
    want = ops.fill_holes_in_mask_scores(x, max_area)
    got = kernels.fill_holes_in_mask_scores(dev(x, stream), max_area, stream=stream).to_host()
    np.testing.assert_array_equal(got, want)
    assert (want != x)[1:].any()  # something was filled
    with pytest.raises(ValueError, match="max_area must be positive"):
        kernels.fill_holes_in_mask_scores(dev(x, stream), 0, stream=stream)


@pytest.mark.parametrize("thr,hole,sprinkle", [(0.0, 10, 12), (0.5, 25, 25), (-1.0, 100, 4), (0.0, 0, 0),
                                               (0.0, 0, 40)])
@pytest.mark.parametrize("b,c,hw", [(4, 3, (256, 256)), (32, 1, (256, 256)), (3, 1, (257, 131))])
def test_hole_and_sprinkle_filters(stream, thr, hole, sprinkle, b, c, hw):
    x = logits_cases(np.random.default_rng(5), b * c, *hw)[-b * c:]  # the last planes are the adversarial ones
    x = x.reshape(b, c, *hw)
    d = dev(x, stream)
    np.testing.assert_array_equal(kernels.fill_holes(d, hole, thr, stream=stream).to_host(),
                                  ops.fill_holes(x, hole, thr))
    np.testing.assert_array_equal(kernels.remove_sprinkles(d, sprinkle, thr, stream=stream).to_host(),
                                  ops.remove_sprinkles(x, sprinkle, thr))
    same_size = kernels.postprocess_image_masks(d, hw, thr, hole, sprinkle, stream=stream).to_host()
    np.testing.assert_array_equal(same_size, ops.postprocess_image_masks(x, hw, thr, hole, sprinkle))
    for orig_hw in [(1080, 1920), (257, 131)]:
        got = kernels.postprocess_image_masks(d, orig_hw, thr, hole, sprinkle, stream=stream).to_host()
        check_close(got, ops.postprocess_image_masks(x, orig_hw, thr, hole, sprinkle))


def test_filters_on_adversarial_inputs(stream):
    x = adversarial(64, 48)
    got = kernels.fill_holes_in_mask_scores(dev(x, stream), 9, stream=stream).to_host()
    np.testing.assert_array_equal(got, ops.fill_holes_in_mask_scores(x, 9))
    assert (got[2, 0, [0, 0, 63, 63, 32], [0, 47, 0, 47, 24]] == np.float32(0.1)).all()  # one-pixel holes
    assert (got[0] == -5.0).all()  # an empty mask is one big background component: not a hole
    ring = kernels.postprocess_image_masks(dev(x[5:6], stream), (64, 48), 0.0, 10, 20, stream=stream).to_host()
    assert (ring[0, 0, 21:24, 21:24] == 10.0).all() and ring[0, 0, 20, 20:25].max() == -10.0  # official quirk


# ---- non-overlap, thresholding, the fused frame output ---------------------------------------------------------
@pytest.mark.parametrize("o", [1, 2, 32])
def test_apply_non_overlapping_constraints(stream, o):
    rng = np.random.default_rng(7)
    x = rng.choice(np.float32([-12.0, -3.0, 0.0, 3.0, 15.0]), (o, 1, 67, 45))  # many ties
    x[:, :, :10] = rng.standard_normal((o, 1, 10, 45)).astype(np.float32) * 20
    x[o - 1, 0, 0, 0] = np.nan
    x[:, 0, 1, 1] = -np.inf
    got = kernels.apply_non_overlapping_constraints(dev(x, stream), stream=stream).to_host()
    np.testing.assert_array_equal(got, ops.apply_non_overlapping_constraints(x))


@pytest.mark.parametrize("o,h,w,thr", [(1, 256, 256, 0.0), (32, 64, 48, 0.0), (5, 257, 131, 0.7),
                                       (32, 1080, 1920, 0.0), (2, 1, 1, 0.0)])
def test_threshold_masks(stream, o, h, w, thr):
    x = logits_cases(np.random.default_rng(8), o, max(h, 32), max(w, 32))[:, :, :h, :w].copy()
    x[-1] = -5.0
    x[-1, 0, h - 1, w - 1] = 1.0  # a single pixel in the bottom-right corner
    masks, areas, boxes = kernels.threshold_masks(dev(x, stream), thr, stream=stream)
    want = ops.threshold_masks(x, thr)
    for got, ref in zip((masks.to_host(), areas.to_host(), boxes.to_host()), want):
        assert got.dtype == ref.dtype
        np.testing.assert_array_equal(got, ref)
    if h > 1:
        assert (want[2][o] == 0).all() and (want[2][o + 1] == [0, 0, w - 1, h - 1]).all()  # empty, full


@pytest.mark.parametrize("non_overlap", [True, False])
@pytest.mark.parametrize("o,size", [(1, (1080, 1920)), (32, (720, 1280)), (3, (257, 131)), (2, (256, 256))])
def test_frame_masks(stream, o, size, non_overlap):
    """Fused upsample + non-overlap + threshold + stats against the three twins in sequence."""
    x = blobs(np.random.default_rng(9), o, 256, 256)
    x[0, 0, :, :40] = -1024.0  # an absent region (NO_OBJ_SCORE), touching the border
    up = ops.resize_bilinear(x, size)
    want_logits = ops.apply_non_overlapping_constraints(up) if non_overlap else up
    want_masks, _, _ = ops.threshold_masks(want_logits, 0.0)
    masks, areas, boxes, logits = kernels.frame_masks(dev(x, stream), size, 0.0, non_overlap, return_logits=True,
                                                      stream=stream)
    logits, masks = logits.to_host(), masks.to_host()
    check_close(logits, want_logits)
    np.testing.assert_array_equal(masks, logits[:, 0] > 0)  # thresholded in the same kernel, exactly
    own_masks, own_areas, own_boxes = ops.threshold_masks(logits, 0.0)  # stats exact for the kernel's masks
    np.testing.assert_array_equal(areas.to_host(), own_areas)
    np.testing.assert_array_equal(boxes.to_host(), own_boxes)
    differ = masks != want_masks  # only where the twin's logit is within the interpolation tolerance of 0
    assert (np.abs(want_logits[:, 0][differ]) <= TOL).all()
    plain = kernels.frame_masks(dev(x, stream), size, 0.0, non_overlap, stream=stream)
    assert plain[3] is None
    np.testing.assert_array_equal(plain[0].to_host(), masks)


def test_wrappers_reject_host_arrays_and_bad_shapes(stream):
    x = np.zeros((2, 1, 8, 8), np.float32)
    with pytest.raises(TypeError, match="DeviceArray.from_host"):
        kernels.threshold_masks(x)
    with pytest.raises(ValueError, match=r"\[O, 1, H, W\]"):
        kernels.apply_non_overlapping_constraints(dev(np.zeros((2, 3, 8, 8), np.float32), stream))
    with pytest.raises(ValueError, match=">= 1"):
        kernels.resize_bilinear(dev(x, stream), (0, 4))


def test_raw_stream_handles(stream):
    """A raw cudaStream_t (as the backends pass it) works like a Stream."""
    x = logits_cases(np.random.default_rng(10), 2, 64, 64)
    got = kernels.fill_holes(dev(x, stream), 20, stream=stream.handle)
    np.testing.assert_array_equal(got.to_host(stream), ops.fill_holes(x, 20))
