"""Property-based: whatever prompts and images a caller passes, the predictors give a valid result or a
ValueError/TypeError that names the argument, and afterwards a valid call gives bit-identical results (a
rejected call changed nothing)."""

import copy
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.official_reference import scene

IMAGE = scene(96, 128)
CLICK = dict(point_coords=np.array([[60.0, 40.0]]), point_labels=np.array([1]))
PROPERTY = settings(deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(-10**4, 10**4),
                    st.sampled_from([0, 1, -1, 0.5, 127.5, 96, 128]))
point = st.lists(numbers, min_size=0, max_size=3)  # mostly 2 values; 0, 1 or 3 make it ragged or the wrong shape
strange = st.one_of(st.text(max_size=4), st.just({"x": 1}), st.just(object()), st.booleans())


coords = st.one_of(st.none(), strange, st.lists(point, min_size=0, max_size=4),
                   st.lists(st.lists(point, min_size=1, max_size=2), min_size=1, max_size=2))  # batched BxNx2
labels = st.one_of(st.none(), strange, st.lists(st.one_of(st.integers(-2, 4), st.floats(0, 1), st.text(max_size=1)),
                                                min_size=0, max_size=4))
boxes = st.one_of(st.none(), strange, st.lists(numbers, min_size=0, max_size=5),
                  st.lists(st.lists(numbers, min_size=4, max_size=4), min_size=1, max_size=2))


def names_an_argument(error: Exception, names) -> bool:
    return isinstance(error, (ValueError, TypeError)) and any(n in str(error) for n in names)


def same(a, b) -> None:
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def image_predictor(tiny512_dir):
    from sam2_trt import SAM2ImagePredictor

    p = SAM2ImagePredictor.load(tiny512_dir, device="cpu")
    p.set_image(IMAGE)
    return p, p.predict(**CLICK)


@settings(PROPERTY, max_examples=60)
@given(point_coords=coords, point_labels=labels, box=boxes, multimask_output=st.booleans(),
       normalize_coords=st.booleans(),
       mask_input=st.one_of(st.none(), st.sampled_from(["low_res", "wrong_shape", "nan", "text"])))
def test_image_predict_valid_or_named_error(image_predictor, point_coords, point_labels, box, multimask_output,
                                            normalize_coords, mask_input):
    predictor, baseline = image_predictor
    low = baseline[2][:1]
    mask = {None: None, "low_res": low, "wrong_shape": low[:, :10], "nan": np.full_like(low, np.nan),
            "text": [["a"]]}[mask_input]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # points outside the image: warned, and used
            masks, ious, low_res = predictor.predict(point_coords, point_labels, box, mask, multimask_output,
                                                     normalize_coords=normalize_coords)
    except Exception as e:  # noqa: BLE001 (the property is about which exceptions)
        assert names_an_argument(e, ("point_coords", "point_labels", "box", "mask_input")), repr(e)
    else:
        assert masks.dtype == bool and masks.shape[-2:] == IMAGE.shape[:2]
        assert ious.shape == masks.shape[:-2] and low_res.shape[:-2] == masks.shape[:-2]
    same(predictor.predict(**CLICK), baseline)


@settings(PROPERTY, max_examples=12)
@given(image=st.one_of(
    strange,
    st.tuples(st.integers(1, 40), st.integers(1, 40), st.sampled_from([0, 1, 2, 3, 4]),
              st.sampled_from(["uint8", "uint16", "float32", "int64", "bool"])),
))
def test_set_image_valid_or_named_error(image_predictor, image):
    predictor, baseline = image_predictor
    if isinstance(image, tuple):
        h, w, c, dtype = image
        image = np.random.default_rng(h * w).integers(0, 255, (h, w, c) if c else (h, w)).astype(dtype)
    try:
        predictor.set_image(image)
    except Exception as e:  # noqa: BLE001
        assert names_an_argument(e, ("image",)), repr(e)
    else:
        assert predictor.predict(**CLICK)[0].shape[-2:] == image.shape[:2]
    predictor.set_image(IMAGE)
    same(predictor.predict(**CLICK), baseline)


@pytest.fixture(scope="module")
def video(tiny512_dir):
    from sam2_trt import SAM2VideoPredictor

    predictor = SAM2VideoPredictor.load(tiny512_dir, device="cpu")
    frames = [np.roll(IMAGE, 4 * t, axis=1) for t in range(3)]
    state = predictor.init_state(frames)
    predictor.add_new_points_or_box(state, 0, 1, points=[[60, 40]], labels=[1])
    check = dict(frame_idx=1, obj_id=2, points=[[30, 50]], labels=[1])
    baseline = predictor.add_new_points_or_box(copy.deepcopy(state), **check)
    return predictor, state, check, baseline


@settings(PROPERTY, max_examples=40)
@given(points=coords, labels=labels, box=boxes, frame_idx=st.integers(0, 2), obj_id=st.integers(1, 3),
       clear_old_points=st.booleans(), normalize_coords=st.booleans())
def test_video_prompt_valid_or_named_error(video, points, labels, box, frame_idx, obj_id, clear_old_points,
                                           normalize_coords):
    predictor, base, check, baseline = video
    state = copy.deepcopy(base)
    before = [(o.obj_id, sorted(o.points), sorted(o.temp_cond), sorted(o.temp_non_cond)) for o in state.objects]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            frame, ids, logits = predictor.add_new_points_or_box(state, frame_idx, obj_id, points, labels,
                                                                 clear_old_points, normalize_coords, box)
    except Exception as e:  # noqa: BLE001
        assert names_an_argument(e, ("points", "labels", "box")), repr(e)
        after = [(o.obj_id, sorted(o.points), sorted(o.temp_cond), sorted(o.temp_non_cond)) for o in state.objects]
        assert after == before
        result = predictor.add_new_points_or_box(state, **check)
        assert result[:2] == baseline[:2]
        np.testing.assert_array_equal(result[2], baseline[2])
    else:
        assert frame == frame_idx and obj_id in ids and logits.shape == (len(ids), 1) + IMAGE.shape[:2]
