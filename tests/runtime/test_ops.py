"""runtime.ops (the numpy CPU twins) against the official PyTorch / PIL code they reproduce.

Interpolations must stay within 1e-5 of torch (measured: bit-exact with torch 2.13's AVX2 CPU kernels except
its channels-last kernel for tiny outputs, 1 ulp); where this torch runs the AVX2 kernels the tests also
require bit-exactness. Hole filling is compared with the official code with scipy's 8-connected labelling in
place of the missing CUDA extension (tests/official_reference.py), so it actually runs.
"""

import ast
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as F
from PIL import Image

from sam2_trt.runtime import ops
from tests.conftest import REPO
from tests.official_reference import connected_components_scipy, official_connected_components

TOL = 1e-5
# Bit-exactness is a property of the kernels this torch build dispatches to (FMA contraction, 4-wide products).
EXACT = torch.backends.cpu.get_cpu_capability() == "AVX2"


def torch_resize(x: np.ndarray, size, antialias: bool) -> np.ndarray:
    t = torch.from_numpy(x)
    lead = t.shape[:-2]
    t4 = t.reshape(-1, 1, *t.shape[-2:])
    out = F.interpolate(t4, size=size, mode="bilinear", align_corners=False, antialias=antialias)
    return out.reshape(*lead, *size).numpy()


def check_close(got: np.ndarray, want: np.ndarray, exact: bool):
    assert got.shape == want.shape and got.dtype == np.float32
    err = float(np.abs(got.astype(np.float64) - want).max()) if got.size else 0.0
    assert err <= TOL * max(1.0, float(np.abs(want).max()) / 32), err  # 1e-5 up to |x| = 32, then relative
    if exact and EXACT:
        np.testing.assert_array_equal(got, want)


def blobs(rng, n: int, h: int, w: int, smooth: float = 3.0, scale: float = 8.0) -> np.ndarray:
    """[n, 1, h, w] float32 logits with blob-shaped components, holes and specks of all sizes."""
    noise = rng.standard_normal((n, 1, h, w))
    return (scipy.ndimage.gaussian_filter(noise, (0, 0, smooth, smooth)) * scale * smooth).astype(np.float32)


# ---- interpolation --------------------------------------------------------------------------------------------
RESIZE_CASES = [
    ((8, 1, 256, 256), (1080, 1920)),  # low-res logits of 8 objects -> 1080p video
    ((1, 1, 256, 256), (1024, 1024)),
    ((2, 3, 257, 131), (64, 300)),  # odd sizes: H down, W up
    ((1, 1, 1024, 1024), (256, 256)),  # exact 4x down
    ((3, 1080, 1920), (1024, 1024)),  # image to model input
    ((3, 300, 400), (1024, 1024)),  # upsampling
    ((32, 1, 64, 64), (100, 37)),
    ((1, 1, 600, 1001), (256, 250)),  # windows of uneven width near the borders
    ((1, 1, 7, 9), (3, 2)),  # tiny output: torch's channels-last kernel (1 ulp)
    ((1, 1, 1, 1), (5, 3)),
    ((2, 5, 6), (5, 6)),  # unchanged size
]


@pytest.mark.parametrize("antialias", [False, True], ids=["bilinear", "antialias"])
@pytest.mark.parametrize("shape,size", RESIZE_CASES, ids=lambda v: "x".join(map(str, v)))
def test_resize_matches_torch(shape, size, antialias):
    x = np.clip(np.random.default_rng(0).standard_normal(shape) * 8, -32, 32).astype(np.float32)
    fn = ops.resize_bilinear_antialias if antialias else ops.resize_bilinear
    got = fn(x, size)
    assert got is not x and not np.shares_memory(got, x)
    check_close(got, torch_resize(x, size, antialias), exact=sum(size) > 128 or antialias)


@pytest.mark.parametrize("antialias", [False, True], ids=["bilinear", "antialias"])
def test_resize_large_magnitudes(antialias):
    """Video logits of absent objects are -1024 (NO_OBJ_SCORE): stay exact at large magnitudes too."""
    x = np.full((2, 1, 256, 256), -1024.0, np.float32)
    x[0, 0, 100:150, 30:90] = 20.0
    got = (ops.resize_bilinear_antialias if antialias else ops.resize_bilinear)(x, (540, 960))
    check_close(got, torch_resize(x, (540, 960), antialias), exact=True)
    assert (got[1] == -1024.0).all() or not EXACT


def test_antialias_4x_down_kernel():
    """SAM2_REFERENCE.md: for 1024 -> 256 the kernel is [1,3,5,7,7,5,3,1]/32 at 4i-2..4i+5, renormalised at the
    borders ([5,7,7,5,3,1]/28 for i = 0)."""
    basis = np.eye(1024, dtype=np.float32)[:, None, :]  # impulse at each input column
    weights = ops.resize_bilinear_antialias(basis, (1, 256))[:, 0, :].T  # [256 out, 1024 in]
    np.testing.assert_allclose(weights[5, 18:26] * 32, [1, 3, 5, 7, 7, 5, 3, 1], atol=1e-6)
    assert weights[5, :18].sum() == 0 and weights[5, 26:].sum() == 0
    np.testing.assert_allclose(weights[0, :6] * 28, [5, 7, 7, 5, 3, 1], atol=1e-6)
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-6)


def test_resize_rejects_bad_input():
    with pytest.raises(TypeError, match="float32"):
        ops.resize_bilinear(np.zeros((4, 4)), (2, 2))
    with pytest.raises(ValueError, match=">= 1"):
        ops.resize_bilinear_antialias(np.zeros((4, 4), np.float32), (0, 2))


# ---- preprocessing --------------------------------------------------------------------------------------------
def official_image_input(img: np.ndarray, size: int) -> np.ndarray:
    """SAM2Transforms: ToTensor -> Resize((size, size)) (bilinear, antialias) -> Normalize, built with torch."""
    x = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    if x.shape[-2:] != (size, size):  # torchvision returns the image untouched when the size already matches
        x = F.interpolate(x[None], (size, size), mode="bilinear", align_corners=False, antialias=True)[0]
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    return ((x - mean) / std)[None].numpy()


@pytest.mark.parametrize("hw,size", [((1080, 1920), 1024), ((257, 131), 1024), ((1024, 1024), 1024),
                                     ((480, 640), 512)])
def test_preprocess_image_matches_official(hw, size):
    img = np.random.default_rng(1).integers(0, 256, (*hw, 3), dtype=np.uint8)
    got = ops.preprocess_image(img, size)
    assert got.shape == (1, 3, size, size)
    check_close(got, official_image_input(img, size), exact=True)


@pytest.mark.parametrize("hw,size", [((540, 960), 1024), ((257, 131), 512)])
def test_preprocess_video_frame_matches_official_loader(tmp_path, hw, size):
    from sam2.utils.misc import load_video_frames

    rng = np.random.default_rng(2)
    frames = []
    for i in range(2):  # a smooth scene plus noise, so JPEG keeps some detail
        yy, xx = np.mgrid[0:hw[0], 0:hw[1]]
        base = np.stack([xx * 255 / hw[1], yy * 255 / hw[0], (xx + yy) % 256], -1)
        img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(tmp_path / f"{i}.jpg", quality=90)
        frames.append(np.asarray(Image.open(tmp_path / f"{i}.jpg").convert("RGB")))  # the decoded frame

    kwargs = dict(image_size=size, offload_video_to_cpu=True, compute_device=torch.device("cpu"))
    want, vh, vw = load_video_frames(str(tmp_path), **kwargs)
    assert (vh, vw) == hw
    got = np.concatenate([ops.preprocess_video_frame(f, size) for f in frames])
    assert got.shape == (2, 3, size, size) and got.dtype == np.float32
    np.testing.assert_array_equal(got, want.numpy())  # exact: PIL resize + one table lookup

    # The async loader normalises in float64 before the cast to float32: the same up to 1 ulp.
    lazy, _, _ = load_video_frames(str(tmp_path), async_loading_frames=True, **kwargs)
    async_first = lazy[0].float().numpy()
    assert np.abs(got[0] - async_first).max() <= 1e-6

    small = ops.resize_pil_bicubic(frames[0], size)
    assert small.shape == (size, size, 3) and small.dtype == np.uint8
    np.testing.assert_array_equal(small, np.asarray(Image.fromarray(frames[0]).resize((size, size),
                                                                                         Image.BICUBIC)))


def test_preprocess_rejects_non_rgb():
    with pytest.raises(ValueError, match=r"\[H, W, 3\] uint8"):
        ops.preprocess_image(np.zeros((10, 10, 4), np.uint8), 64)
    with pytest.raises(ValueError, match=r"\[H, W, 3\] uint8"):
        ops.preprocess_video_frame(np.zeros((10, 10, 3), np.float32), 64)


# ---- connected components -------------------------------------------------------------------------------------
def adversarial_logits(h: int, w: int) -> np.ndarray:
    """[6, 1, h, w] float32: empty, full, one-pixel holes (also on the border and in corners), a diagonal
    (8-connected) hole chain, a foreground speck touching the border, and a ring around a hole."""
    x = np.full((6, 1, h, w), 5.0, np.float32)
    x[0] = -5.0  # empty: one background component of area h * w
    # x[1] stays full
    x[2, 0, [0, 0, h - 1, h // 2, h // 2], [0, w - 1, w // 2, 0, w // 2]] = -1.0  # one-pixel holes
    for k in range(4):  # a diagonal chain of 4 pixels: one 8-connected hole of area 4
        x[3, 0, 10 + k, 10 + k] = -2.0
    x[3, 0, :3, :] = -3.0  # a border-touching background strip
    x[4] = -5.0
    x[4, 0, 0, 5:7] = 1.0  # a 2-pixel speck on the top border
    x[4, 0, h - 3:, w - 3:] = 2.0  # a 9-pixel corner speck
    x[5] = -5.0
    x[5, 0, 20:25, 20:25] = 3.0  # 5x5 ring (16 px) around a 3x3 hole (9 px)
    x[5, 0, 21:24, 21:24] = -4.0
    return x


@pytest.mark.parametrize("n,h,w", [(1, 256, 256), (32, 64, 48), (3, 257, 131)])
def test_component_areas_match_scipy(n, h, w):
    rng = np.random.default_rng(3)
    masks = np.concatenate([blobs(rng, n, h, w) > 0, adversarial_logits(h, w) <= 0,
                            (np.indices((1, 1, h, w)).sum(0) % 2).astype(bool)])  # checkerboard: 8-connected
    got = ops.component_areas(masks)
    assert got.shape == masks.shape and got.dtype == np.int32
    _, want = connected_components_scipy(torch.from_numpy(masks))
    np.testing.assert_array_equal(got, want.numpy())
    assert got[-1].max() == h * w // 2  # the checkerboard ((i + j) odd) is one component


@pytest.mark.parametrize("n,h,w,max_area", [(1, 256, 256, 8), (32, 256, 256, 30), (4, 257, 131, 100),
                                            (1, 64, 48, 64 * 48)])
def test_fill_holes_in_mask_scores_matches_official(n, h, w, max_area):
    from sam2.utils.misc import fill_holes_in_mask_scores

    logits = np.concatenate([blobs(np.random.default_rng(4), n, h, w), adversarial_logits(h, w)])
    with official_connected_components():
        want = fill_holes_in_mask_scores(torch.from_numpy(logits), max_area).numpy()
    assert (want != logits).any()  # the official filling ran and filled something
    got = ops.fill_holes_in_mask_scores(logits, max_area)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    assert got[-4, 0, h // 2, w // 2] == np.float32(0.1)  # a one-pixel hole
    with pytest.raises(ValueError, match="max_area must be positive"):
        ops.fill_holes_in_mask_scores(logits, 0)


def official_transforms(thr: float, hole: float, sprinkle: float):
    from tests import official_torchvision_stub

    official_torchvision_stub.install()  # sam2.utils.transforms imports torchvision at module level
    from sam2.utils.transforms import SAM2Transforms

    return SAM2Transforms(1024, mask_threshold=thr, max_hole_area=hole, max_sprinkle_area=sprinkle)


@pytest.mark.parametrize("thr,hole,sprinkle", [(0.0, 10, 12), (0.5, 25, 25), (-1.0, 100, 4), (0.0, 0, 0)])
def test_fill_holes_and_remove_sprinkles_match_official(thr, hole, sprinkle):
    """At orig_hw = 256 x 256 the official postprocess_masks is the filtering alone (its resize is a copy)."""
    logits = np.concatenate([blobs(np.random.default_rng(5), 6, 256, 256), adversarial_logits(256, 256)])
    logits = logits.reshape(4, 3, 256, 256)  # [B, C, H, W], as the image predictor's multimask output
    x = torch.from_numpy(logits)
    with official_connected_components():
        want_both = official_transforms(thr, hole, sprinkle).postprocess_masks(x, (256, 256)).numpy()
        want_holes = official_transforms(thr, hole, 0).postprocess_masks(x, (256, 256)).numpy()
        want_sprinkles = official_transforms(thr, 0, sprinkle).postprocess_masks(x, (256, 256)).numpy()
    np.testing.assert_array_equal(ops.postprocess_image_masks(logits, (256, 256), thr, hole, sprinkle), want_both)
    np.testing.assert_array_equal(ops.fill_holes(logits, hole, thr), want_holes)
    np.testing.assert_array_equal(ops.remove_sprinkles(logits, sprinkle, thr), want_sprinkles)
    filled, removed = want_holes != logits, want_sprinkles != logits
    assert filled.any() == (hole > 0) and removed.any() == (sprinkle > 0)  # the official filtering ran
    assert (want_holes[filled] == np.float32(thr + 10.0)).all()
    assert (want_sprinkles[removed] == np.float32(thr - 10.0)).all()


@pytest.mark.parametrize("b,c,orig_hw", [(1, 3, (1080, 1920)), (32, 1, (257, 131)), (2, 3, (480, 640))])
def test_postprocess_image_masks_matches_official(b, c, orig_hw):
    low = blobs(np.random.default_rng(6), b * c, 256, 256).reshape(b, c, 256, 256)
    with official_connected_components():
        want = official_transforms(0.0, 20, 20).postprocess_masks(torch.from_numpy(low), orig_hw).numpy()
    got = ops.postprocess_image_masks(low, orig_hw, 0.0, 20, 20)
    check_close(got, want, exact=True)
    plain = ops.resize_bilinear(low, orig_hw)
    assert ((got > 0) != (plain > 0)).any()  # the filtering changed the masks


def test_postprocess_labels_the_input_for_both_passes():
    """Official quirk: sprinkles are found on the input logits, not on the hole-filled ones, so a small ring
    around a small hole is removed while its hole is filled."""
    ring = adversarial_logits(64, 64)[5:6]  # ring of 16 px around a hole of 9 px
    with official_connected_components():
        want = official_transforms(0.0, 10, 20).postprocess_masks(torch.from_numpy(ring), (64, 64)).numpy()
    got = ops.postprocess_image_masks(ring, (64, 64), 0.0, 10, 20)
    np.testing.assert_array_equal(got, want)
    assert (got[0, 0, 21:24, 21:24] == 10.0).all() and got[0, 0, 20, 20:25].max() == -10.0
    sequential = ops.remove_sprinkles(ops.fill_holes(ring, 10), 20)
    assert (sequential[0, 0, 20:25, 20:25] > 0).all()  # filled first, the ring + hole (25 px) would stay


# ---- per-frame mask logic -------------------------------------------------------------------------------------
@pytest.mark.parametrize("o", [1, 2, 32])
def test_apply_non_overlapping_constraints_matches_official(o):
    from sam2.modeling.sam2_base import SAM2Base

    rng = np.random.default_rng(7)
    logits = rng.choice(np.float32([-12.0, -3.0, 0.0, 3.0, 15.0]), (o, 1, 67, 45))  # many ties
    logits[:, :, :10] = rng.standard_normal((o, 1, 10, 45)).astype(np.float32) * 20
    logits[o - 1, 0, 0, 0] = np.nan  # torch.argmax takes NaN as the max
    want = SAM2Base._apply_non_overlapping_constraints(None, torch.from_numpy(logits)).numpy()
    got = ops.apply_non_overlapping_constraints(logits)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    if o == 1:
        assert got is logits
    else:
        assert (got != logits).any() and ((got > -10).sum(0) <= 1).all()  # at most one object above -10


@pytest.mark.parametrize("o,h,w,thr", [(1, 256, 256, 0.0), (32, 64, 48, 0.0), (5, 257, 131, 0.7)])
def test_threshold_masks_matches_official_boxes(o, h, w, thr):
    from sam2.utils.amg import batched_mask_to_box

    logits = np.concatenate([blobs(np.random.default_rng(8), o, h, w), adversarial_logits(h, w)])
    logits[-1] = -5.0
    logits[-1, 0, h - 1, w - 1] = 1.0  # a single pixel in the bottom-right corner
    masks, areas, boxes = ops.threshold_masks(logits, thr)
    want_masks = torch.from_numpy(logits[:, 0]) > thr
    np.testing.assert_array_equal(masks, want_masks.numpy())
    np.testing.assert_array_equal(areas, want_masks.flatten(1).sum(1).numpy())
    assert areas.dtype == np.int64 and boxes.dtype == np.int64 and boxes.shape == (len(logits), 4)
    np.testing.assert_array_equal(boxes, batched_mask_to_box(want_masks).numpy())
    assert (boxes[o] == 0).all() and (boxes[o + 1] == [0, 0, w - 1, h - 1]).all()  # empty, full
    assert (boxes[-1] == [w - 1, h - 1, w - 1, h - 1]).all()


# ---- no torch under runtime/ ----------------------------------------------------------------------------------
def test_ops_import_no_torch():
    for path in sorted((REPO / "runtime" / "ops").glob("*.py")):
        for node in ast.walk(ast.parse(Path(path).read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            assert not any(n.split(".")[0] in ("torch", "torchvision", "sam2") for n in names), (path, names)
