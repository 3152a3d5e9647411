"""runtime.amg_utils against the official sam2.utils.amg (torch) and the torchvision stub, on seeded random inputs."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests import official_torchvision_stub as tv_stub

tv_stub.install()  # before any sam2 module that imports torchvision

from sam2.utils import amg as official  # noqa: E402

from sam2_trt.runtime import amg_utils as amg  # noqa: E402


def _blob_masks(rng, n, h, w):
    """[n, h, w] bool: random ellipses (some cut by the borders), plus empty, full, corner and edge cases."""
    yy, xx = np.mgrid[:h, :w]
    masks = np.zeros((n, h, w), bool)
    for i in range(n):
        cx, cy = rng.uniform(-0.2 * w, 1.2 * w), rng.uniform(-0.2 * h, 1.2 * h)
        rx, ry = rng.uniform(1, w / 2), rng.uniform(1, h / 2)
        masks[i] = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1
    masks[0] = False  # empty
    masks[1] = True  # full
    masks[2] = False
    masks[2, 0, 0] = masks[2, -1, -1] = True  # first and last pixel (Fortran order) only
    masks[3] = False
    masks[3, :, -1] = True  # right column: touches three borders
    masks[4] = rng.random((h, w)) < 0.5  # noise: many runs, runs across column wraps
    return masks


def _np(t):
    return t.detach().cpu().numpy()


def _assert_same(ours, theirs):
    """Same values and dtype as an official torch result."""
    theirs = _np(theirs) if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("n_per_side, n_layers, scale", [(32, 0, 1), (16, 2, 2), (8, 3, 2), (7, 1, 3)])
def test_point_grids(n_per_side, n_layers, scale):
    ours = amg.build_all_layer_point_grids(n_per_side, n_layers, scale)
    theirs = official.build_all_layer_point_grids(n_per_side, n_layers, scale)
    assert len(ours) == len(theirs) == n_layers + 1
    for a, b in zip(ours, theirs):
        _assert_same(a, b)


@pytest.mark.parametrize("im_size", [(1080, 1920), (480, 640), (333, 517), (100, 100), (1500, 1000)])
@pytest.mark.parametrize("overlap", [512 / 1500, 0.0, 0.25])
def test_generate_crop_boxes(im_size, overlap):
    for n_layers in range(4):
        ours = amg.generate_crop_boxes(im_size, n_layers, overlap)
        assert ours == official.generate_crop_boxes(im_size, n_layers, overlap)
        assert len(ours[0]) == sum(4**i for i in range(n_layers + 1))


def test_batch_iterator():
    a, b = np.arange(130), list(range(130, 260))
    for bs in (1, 3, 64, 130, 200):
        ours, theirs = list(amg.batch_iterator(bs, a, b)), list(official.batch_iterator(bs, a, b))
        assert len(ours) == len(theirs) == -(-130 // bs)
        for (oa, ob), (ta, tb) in zip(ours, theirs):
            np.testing.assert_array_equal(oa, ta)
            assert ob == tb
    assert list(amg.batch_iterator(4, np.zeros((0, 2)))) == []
    with pytest.raises(ValueError, match="one length"):
        next(amg.batch_iterator(4, a, b[:-1]))


def test_calculate_stability_score():
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((12, 37, 53)) * 3).astype(np.float32)
    for thr, off in [(0.0, 1.0), (0.1, 0.3), (-0.7, 0.05)]:
        x = logits.copy()
        # Logits exactly on the float32-rounded thresholds: a python-float compare would differ here.
        x[:, ::5, ::7] = np.float32(thr + off)
        x[:, 1::5, ::3] = np.float32(thr - off)
        x[5] = -10.0  # empty at both thresholds: 0/0 = nan in both
        ours = amg.calculate_stability_score(x, thr, off)
        _assert_same(ours, official.calculate_stability_score(torch.from_numpy(x), thr, off))
        assert np.isnan(ours[5]) and np.isfinite(np.delete(ours, 5)).all() and (ours[:5] < 1).all()


def test_calculate_stability_score_wraps_wide_rows_as_official():
    x = np.full((2, 2, 40000), 5.0, np.float32)
    x[:, :, :5000] = 0.5  # above 0 - 1, below 0 + 1: row counts 35000 and 40000 both overflow int16
    ours = amg.calculate_stability_score(x, 0.0, 1.0)
    _assert_same(ours, official.calculate_stability_score(torch.from_numpy(x), 0.0, 1.0))


def test_batched_mask_to_box():
    rng = np.random.default_rng(1)
    masks = _blob_masks(rng, 24, 41, 57)
    ours = amg.batched_mask_to_box(masks)
    _assert_same(ours, official.batched_mask_to_box(torch.from_numpy(masks)))
    # empty -> zeros; full; the right column only (max coordinates are inclusive)
    assert ours[0].tolist() == [0, 0, 0, 0] and ours[1].tolist() == [0, 0, 56, 40]
    assert ours[3].tolist() == [56, 0, 56, 40]
    batched = masks.reshape(2, 12, 41, 57)
    _assert_same(amg.batched_mask_to_box(batched), official.batched_mask_to_box(torch.from_numpy(batched)))
    _assert_same(amg.batched_mask_to_box(masks[6]), official.batched_mask_to_box(torch.from_numpy(masks[6])))
    empty = np.zeros((0, 41, 57), bool)  # official quirk: float32 zeros
    _assert_same(amg.batched_mask_to_box(empty), official.batched_mask_to_box(torch.from_numpy(empty)))


def test_uncrop_boxes_points_masks():
    rng = np.random.default_rng(2)
    crop = [96, 40, 400, 300]
    boxes = rng.integers(0, 300, (9, 4))
    for b in (boxes, boxes.reshape(3, 3, 4), boxes.astype(np.float32) + 0.25):
        _assert_same(amg.uncrop_boxes_xyxy(b, crop), official.uncrop_boxes_xyxy(torch.from_numpy(b), crop))
    points = rng.uniform(0, 300, (9, 2)).astype(np.float32)
    for p in (points, points.reshape(3, 3, 2), points.astype(np.int64)):
        _assert_same(amg.uncrop_points(p, crop), official.uncrop_points(torch.from_numpy(p), crop))

    masks = _blob_masks(rng, 6, 260, 304)
    ours = amg.uncrop_masks(masks, crop, 480, 640)
    _assert_same(ours, official.uncrop_masks(torch.from_numpy(masks), crop, 480, 640))
    assert ours.shape == (6, 480, 640) and ours.sum() == masks.sum()
    assert amg.uncrop_masks(masks, [0, 0, 304, 260], 260, 304) is masks
    with pytest.raises(ValueError, match="inside"):
        amg.uncrop_masks(masks, crop, 200, 640)


def test_is_box_near_crop_edge():
    rng = np.random.default_rng(3)
    crop, orig = [200, 100, 700, 500], [0, 0, 700, 800]  # right edge is an image edge too
    boxes = np.sort(rng.integers(0, 400, (200, 4)).reshape(200, 2, 2), axis=1).transpose(0, 2, 1).reshape(200, 4)
    boxes = boxes[:, [0, 2, 1, 3]]  # sorted x0 <= x1, y0 <= y1 per box
    boxes[:8] = [[20, 30, 40, 50], [21, 30, 40, 50], [0, 30, 40, 50], [30, 20, 40, 50],
                 [30, 21, 40, 380], [30, 21, 40, 379], [30, 30, 499, 50], [30, 30, 480, 50]]
    for b in (boxes, boxes.astype(np.float32) - 0.5):
        ours = amg.is_box_near_crop_edge(b, crop, orig)
        _assert_same(ours, official.is_box_near_crop_edge(torch.from_numpy(b), crop, orig))
        assert 0 < ours.sum() < len(b)
    # atol = 20 inclusive on the crop's left (x0 = 200) and top edges; the image's right edge never counts.
    near = amg.is_box_near_crop_edge(boxes[:8], crop, orig)
    assert near.tolist() == [True, False, True, True, True, False, False, False]


def test_mask_to_rle_rle_to_mask_area_coco():
    rng = np.random.default_rng(4)
    for shape in [(20, 33, 47), (6, 1, 30), (6, 30, 1), (6, 64, 64)]:
        masks = _blob_masks(rng, *shape) if min(shape[1:]) > 1 else rng.random(shape) < 0.5
        ours = amg.mask_to_rle(masks)
        theirs = official.mask_to_rle_pytorch(torch.from_numpy(masks))
        assert ours == theirs
        assert all(type(c) is int for r in ours for c in r["counts"])
        for rle, m in zip(ours, masks):
            decoded = amg.rle_to_mask(rle)
            assert decoded.dtype == bool and decoded.shape == m.shape
            np.testing.assert_array_equal(decoded, m)
            np.testing.assert_array_equal(decoded, official.rle_to_mask(rle))
            assert amg.area_from_rle(rle) == official.area_from_rle(rle) == int(m.sum())
            assert amg.coco_encode_rle(rle) == official.coco_encode_rle(rle)
    # Counts start with a 0-run; a mask whose first pixel is set starts with a 0-length one.
    assert ours[0]["counts"] == [64 * 64] and ours[1]["counts"] == [0, 64 * 64]
    with pytest.raises(ValueError, match="sum to"):
        amg.rle_to_mask({"size": [4, 4], "counts": [3, 4]})


def test_box_xyxy_to_xywh():
    for box in (np.array([3.0, 5.5, 10.0, 20.25], np.float32), np.array([3, 5, 10, 20])):
        ours = amg.box_xyxy_to_xywh(box)
        _assert_same(ours, official.box_xyxy_to_xywh(torch.from_numpy(box)))
        assert ours.tolist() == [box[0], box[1], box[2] - box[0], box[3] - box[1]] and box[2] in (10, 10.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int64, np.int32, np.int16])
def test_box_area(dtype):
    rng = np.random.default_rng(5)
    boxes = np.sort(rng.integers(0, 150, (30, 2, 2)), axis=1).transpose(0, 2, 1).reshape(30, 4).astype(dtype)
    _assert_same(amg.box_area(boxes), tv_stub.box_area(torch.from_numpy(boxes)))
    expected = (boxes[:, 2].astype(float) - boxes[:, 0]) * (boxes[:, 3].astype(float) - boxes[:, 1])
    np.testing.assert_array_equal(amg.box_area(boxes).astype(float), expected)


def _random_boxes(rng, n, integer):
    xy = rng.uniform(0, 200, (n, 2))
    wh = rng.uniform(1, 60, (n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    return (np.round(boxes) if integer else boxes).astype(np.float32)


@pytest.mark.parametrize("n, n_cats, integer", [(300, 1, False), (300, 4, True), (1500, 3, True), (1200, 1, False)])
def test_batched_nms_matches_torchvision_semantics(n, n_cats, integer):
    """Both torchvision paths: coordinate trick (<= 1000 boxes on CPU) and per-category loop (> 1000)."""
    rng = np.random.default_rng(n + n_cats)
    boxes = _random_boxes(rng, n, integer)
    scores = rng.permutation(np.linspace(0.01, 1.0, n)).astype(np.float32)  # distinct: no ties
    idxs = rng.integers(0, n_cats, n)
    for thr in (0.3, 0.7):
        ours = amg.batched_nms(boxes, scores, idxs, thr)
        theirs = tv_stub.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idxs), thr)
        _assert_same(ours, theirs)
        assert 0 < len(ours) < n and np.all(np.diff(scores[ours]) < 0)


def test_batched_nms_hand_checked():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 8], [20, 20, 30, 30], [21, 20, 31, 30], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.95, 0.7, 0.5], np.float32)
    idxs = np.array([0, 0, 0, 0, 1])
    # IoU(0, 1) = 80/100 = 0.8f = 0.80000001 > 0.8 (float vs double, as the C++ kernel): suppressed at 0.8.
    # IoU(2, 3) = 90/110 = 0.818. Box 4 equals box 0 but is another category.
    expected = {0.8: [2, 0, 4], 0.81: [2, 0, 1, 4], 0.85: [2, 0, 1, 3, 4], 0.0: [2, 0, 4]}
    for thr, keep in expected.items():
        assert amg.batched_nms(boxes, scores, idxs, thr).tolist() == keep
        t = [torch.from_numpy(a) for a in (boxes, scores, idxs)]
        assert tv_stub.batched_nms(*t, thr).tolist() == keep
    # Equal scores: the lower index wins, as the stable sort of current torchvision kernels.
    twins = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    assert amg.batched_nms(twins, np.ones(2, np.float32), np.zeros(2), 0.5).tolist() == [0]
    empty = amg.batched_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0), 0.7)
    assert empty.shape == (0,) and empty.dtype == np.int64


def test_mask_data_filter_and_cat_match_official():
    rng = np.random.default_rng(6)
    cols = lambda: dict(a=rng.standard_normal((7, 3)).astype(np.float32), b=[{"i": i} for i in range(7)])  # noqa: E731
    first, second = cols(), cols()
    ours, theirs = amg.MaskData(**first), official.MaskData(**first)
    ours.cat(amg.MaskData(**second)), theirs.cat(official.MaskData(**second))
    keep_bool = rng.random(14) < 0.5
    keep_idx = np.array([5, 0, 3])
    ours.filter(keep_bool), theirs.filter(torch.from_numpy(keep_bool))
    ours.filter(keep_idx), theirs.filter(torch.from_numpy(keep_idx))
    np.testing.assert_array_equal(ours["a"], theirs["a"])
    assert ours["b"] == theirs["b"] and len(ours["b"]) == 3
    with pytest.raises(TypeError, match="only lists and numpy arrays"):
        amg.MaskData(x=torch.zeros(2))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")  # called by the official SAM2Transforms
def test_stub_scripts_official_sam2_transforms():
    from sam2.utils.transforms import SAM2Transforms

    assert tv_stub.install() is True  # idempotent
    transforms = SAM2Transforms(1024, 0.0)
    assert isinstance(transforms.transforms, torch.jit.ScriptModule)
    image = np.random.default_rng(7).integers(0, 256, (1100, 1300, 3), dtype=np.uint8)
    ours = transforms(image)

    x = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    mean, std = torch.tensor([0.485, 0.456, 0.406])[:, None, None], torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    resized = F.interpolate(x[None], (1024, 1024), mode="bilinear", align_corners=False, antialias=True)[0]
    assert ours.shape == (3, 1024, 1024) and ours.dtype == torch.float32
    torch.testing.assert_close(ours, (resized - mean) / std, rtol=0, atol=0)
    aliased = F.interpolate(x[None], (1024, 1024), mode="bilinear", align_corners=False)[0]
    assert ((ours - (aliased - mean) / std).abs().max() > 0.05)  # the check above really tests antialiasing


def test_stub_modules_import_like_torchvision():
    from torchvision.ops import batched_nms
    from torchvision.ops.boxes import batched_nms as boxes_batched_nms, box_area
    from torchvision.transforms import ToTensor

    assert batched_nms is boxes_batched_nms and box_area is tv_stub.box_area
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    t = ToTensor()(gray)
    assert t.shape == (1, 3, 4) and t.dtype == torch.float32 and t[0, 2, 3] == 11 / 255


def test_empty_batches_pass_through_every_stage():
    """A batch whose masks were all filtered out still flows through the later stages (AMG on a plain image)."""
    empty = np.zeros((0, 12, 16), np.float32)
    assert amg.calculate_stability_score(empty, 0.0, 1.0).shape == (0,)
    assert amg.batched_mask_to_box(empty > 0).shape == (0, 4)
    assert amg.mask_to_rle(empty > 0) == []
