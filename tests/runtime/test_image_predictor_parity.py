"""Our SAM2ImagePredictor against the official one, run here on the same checkpoint (CPU, fp32)."""

import numpy as np
import pytest

from tests.official_reference import mask_iou, official_connected_components, official_image_classes, scene

IMAGE = scene(360, 480)


def assert_same_prediction(ours, theirs, logits=False):
    (m1, i1, l1), (m2, i2, l2) = ours, theirs
    m2, i2, l2 = (t.numpy() if hasattr(t, "numpy") else t for t in (m2, i2, l2))
    assert m1.shape == m2.shape and i1.shape == i2.shape and l1.shape == l2.shape
    np.testing.assert_allclose(i1, i2, atol=1e-3)
    np.testing.assert_allclose(l1, l2, atol=1e-3, rtol=1e-4)
    if logits:
        np.testing.assert_allclose(m1, m2, atol=1e-3, rtol=1e-4)
        m1, m2 = m1 > 0, m2 > 0
    assert m1.dtype == bool
    flat1, flat2 = m1.reshape(-1, *m1.shape[-2:]), m2.reshape(-1, *m2.shape[-2:])
    assert all(f.any() for f in flat2), "reference masks should not be empty (weights are nudged)"
    ious = [mask_iou(a, b) for a, b in zip(flat1, flat2)]
    assert min(ious) >= 0.99, ious


@pytest.fixture(scope="module")
def predictors(tiny1024_dir, official_tiny):
    from sam2_trt.runtime import SAM2ImagePredictor

    Official, _ = official_image_classes()
    ours = SAM2ImagePredictor.load(tiny1024_dir, backend="onnxruntime-cpu", device="cpu")
    theirs = Official(official_tiny)
    ours.set_image(IMAGE)
    theirs.set_image(IMAGE)
    return ours, theirs


CASES = {
    "single click": dict(point_coords=np.array([[300.0, 130.0]]), point_labels=np.array([1])),
    "single click, one mask": dict(point_coords=np.array([[300.0, 130.0]]), point_labels=np.array([1]),
                                   multimask_output=False),
    "several clicks": dict(point_coords=np.array([[300.0, 130.0], [100.0, 250.0], [320, 150]]),
                           point_labels=np.array([1, 0, 1]), multimask_output=False),
    "several clicks, multimask": dict(point_coords=np.array([[300.0, 130.0], [100.0, 250.0]]),
                                      point_labels=np.array([1, 0])),
    "box": dict(box=np.array([230.0, 80.0, 340.0, 190.0]), multimask_output=False),
    "box and clicks": dict(box=np.array([230.0, 80.0, 340.0, 190.0]), point_coords=np.array([[250.0, 100.0]]),
                           point_labels=np.array([0]), multimask_output=False),
    "batched clicks": dict(point_coords=np.array([[[300.0, 130.0]], [[60.0, 60.0]], [[400.0, 300.0]]]),
                           point_labels=np.array([[1], [1], [1]])),
    "batched boxes": dict(box=np.array([[230.0, 80.0, 340.0, 190.0], [10.0, 10.0, 200.0, 300.0]]),
                          multimask_output=False),
    "normalized coords": dict(point_coords=np.array([[0.6, 0.4]]), point_labels=np.array([1]),
                              normalize_coords=False),
}


def assert_every_case_matches_official(ours, official_model):
    """`ours` (a SAM2ImagePredictor on any backend) against the official predictor on IMAGE, every case of CASES:
    how the GPU backends' parity tests check themselves."""
    Official, _ = official_image_classes()
    theirs = Official(official_model)
    ours.set_image(IMAGE)
    theirs.set_image(IMAGE)
    for case in CASES.values():
        assert_same_prediction(ours.predict(**case), theirs.predict(**case))


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_predict_matches_official(predictors, case):
    ours, theirs = predictors
    assert_same_prediction(ours.predict(**CASES[case]), theirs.predict(**CASES[case]))


def test_return_logits_matches_official(predictors):
    ours, theirs = predictors
    args = dict(point_coords=np.array([[300.0, 130.0]]), point_labels=np.array([1]), return_logits=True)
    assert_same_prediction(ours.predict(**args), theirs.predict(**args), logits=True)


def test_mask_input_refinement_matches_official(predictors):
    ours, theirs = predictors
    first = dict(point_coords=np.array([[300.0, 130.0]]), point_labels=np.array([1]))
    _, ious, low = theirs.predict(**first)
    prev = low[np.argmax(ious)][None]  # 1x256x256, the official README's refinement recipe
    args = dict(point_coords=np.array([[300.0, 130.0], [120.0, 200.0]]), point_labels=np.array([1, 1]),
                mask_input=prev, multimask_output=False)
    assert_same_prediction(ours.predict(**args), theirs.predict(**args))


def test_hole_and_sprinkle_filtering_match_official(tiny1024_dir, official_tiny):
    from sam2_trt.runtime import SAM2ImagePredictor

    Official, _ = official_image_classes()
    kwargs = dict(max_hole_area=25.0, max_sprinkle_area=25.0)
    ours = SAM2ImagePredictor.load(tiny1024_dir, backend="onnxruntime-cpu", device="cpu", **kwargs)
    theirs = Official(official_tiny, **kwargs)
    ours.set_image(IMAGE)
    theirs.set_image(IMAGE)
    args = dict(point_coords=np.array([[300.0, 130.0]]), point_labels=np.array([1]))
    with official_connected_components():
        expected = theirs.predict(**args)
    got = ours.predict(**args)
    assert_same_prediction(got, expected)
    # the filtering did something: without it the masks differ
    ours.max_hole_area = ours.max_sprinkle_area = 0.0  # same image, read at predict time
    assert not np.array_equal(ours.predict(**args)[0], got[0])


def test_predict_batch_matches_official(tiny1024_dir, official_tiny, predictors):
    ours, theirs = predictors
    second = scene(300, 200, seed=3)
    ours.set_image_batch([IMAGE, second])
    theirs.set_image_batch([IMAGE, second])
    args = dict(point_coords_batch=[np.array([[300.0, 130.0]]), np.array([[100.0, 150.0], [50.0, 50.0]])],
                point_labels_batch=[np.array([1]), np.array([1, 0])], multimask_output=True)
    got, expected = ours.predict_batch(**args), theirs.predict_batch(**args)
    for k in range(2):
        assert_same_prediction(tuple(r[k] for r in got), tuple(r[k] for r in expected))
    np.testing.assert_allclose(ours.get_image_embedding(), theirs.get_image_embedding().numpy(), atol=1e-4)
    ours.set_image(IMAGE)  # leave the module fixture as it was
    theirs.set_image(IMAGE)
