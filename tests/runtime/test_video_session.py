"""The tracking session owns a video's state: its operations used directly equal the official-API facade, a
copy is an independent session, and a session refuses a predictor of another model or with other options (and
stays usable for its own)."""

import copy

import numpy as np
import pytest

from sam2_trt.core.errors import TrackingError

CLICK = dict(points=[[95, 70]], labels=[1])
BOX = dict(box=[195, 95, 265, 205])


@pytest.fixture(scope="module")
def model(tiny512_dir):
    from sam2_trt.runtime.model import SAM2Model

    return SAM2Model.load(tiny512_dir, backend="onnxruntime-cpu", device="cpu")


@pytest.fixture(scope="module")
def predictor(model):
    from sam2_trt.runtime.video.predictor import SAM2VideoPredictor

    return SAM2VideoPredictor(model)


def test_session_operations_are_the_predictor_calls(predictor, clip):
    from sam2_trt.runtime.video.prompts import point_prompt
    from sam2_trt.runtime.video.session import TrackingSession

    state = predictor.init_state(str(clip))
    assert isinstance(state, TrackingSession) and state["num_frames"] == state.num_frames == 5
    predictor.add_new_points_or_box(state, 0, 1, **CLICK)
    direct = copy.deepcopy(state, {id(state.frames): state.frames})
    assert direct.tracker is state.tracker and direct.bank is not state.bank  # the engine is shared, state is not

    _, ids, via_facade = predictor.add_new_points_or_box(state, 0, 2, **BOX)
    box = point_prompt(None, None, BOX["box"], True, True, (state.video_height, state.video_width),
                       predictor.image_size)
    np.testing.assert_array_equal(direct.add_points(0, 2, box, clear_old_points=True), via_facade)
    assert direct.obj_ids == ids == [1, 2]

    expected = {t: m for t, _, m in predictor.propagate_in_video(state, max_frame_num_to_track=2)}
    direct.consolidate()
    assert direct.first_conditioning_frame() == 0
    for t in range(3):
        np.testing.assert_array_equal(direct.track_frame(t, reverse=False), expected[t])
    assert [sorted(o.tracked) for o in direct.objects] == [[0, 1, 2]] * 2
    direct.close()
    state.close()


def test_a_state_refuses_a_predictor_with_other_options_and_stays_usable(model, predictor, clip):
    from sam2_trt.runtime.video.predictor import SAM2VideoPredictor

    other = SAM2VideoPredictor(model, non_overlap_masks=True)
    state = predictor.init_state(str(clip))
    with pytest.raises(ValueError, match=r"this state was made by a predictor with other options .*"
                                         r"non_overlap_masks=False.*non_overlap_masks=True"):
        other.add_new_points_or_box(state, 0, 1, **CLICK)
    assert state.obj_ids == []
    same_model = SAM2VideoPredictor(model)  # another predictor with the same graphs and options may drive it
    _, ids, masks = same_model.add_new_points_or_box(state, 0, 1, **CLICK)
    fresh = predictor.init_state(str(clip))
    np.testing.assert_array_equal(masks, predictor.add_new_points_or_box(fresh, 0, 1, **CLICK)[2])
    with pytest.raises(TypeError, match="inference_state must be the state init_state returned, not dict"):
        predictor.propagate_in_video_preflight({"num_frames": 5})
    state.close()
    with pytest.raises(TrackingError, match="this state was closed; open the video again with init_state"):
        next(predictor.propagate_in_video(state))
    fresh.close()


def test_a_state_refuses_a_predictor_of_another_model(predictor, tiny1024_dir, clip):
    """A 512 px state driven by a 1024 px predictor failed deep inside ONNX Runtime and was unusable after."""
    from sam2_trt.runtime.video.predictor import SAM2VideoPredictor

    big = SAM2VideoPredictor.load(tiny1024_dir, backend="onnxruntime-cpu", device="cpu")
    state = predictor.init_state(str(clip))
    predictor.add_new_points_or_box(state, 0, 1, **CLICK)
    for call in (lambda: big.add_new_points_or_box(state, 0, 2, **BOX), lambda: next(big.propagate_in_video(state)),
                 lambda: big.remove_object(state, 1), lambda: big.reset_state(state)):
        with pytest.raises(ValueError, match=r"this state was made by a predictor of sam2.1_hiera_t at 512 px .*, and "
                                             r"this predictor runs sam2.1_hiera_t at 1024 px .*; pass it to the "
                                             r"predictor that made it"):
            call()
    assert state.obj_ids == [1]
    assert [t for t, _, _ in predictor.propagate_in_video(state, max_frame_num_to_track=1)] == [0, 1]
    state.close()
