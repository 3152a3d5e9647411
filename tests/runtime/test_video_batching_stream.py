"""Our own invariants: objects batched through each graph give the masks each object gets alone, and a live
stream gives the masks of offline forward propagation on the same frames with the same prompts."""

import numpy as np
import pytest

from tests.official_reference import mask_iou
from tests.runtime.video_reference import CLIP_FRAMES

NUM_FRAMES = CLIP_FRAMES


@pytest.fixture(scope="module")
def predictor(tiny512_dir):
    from sam2_trt.runtime.video.predictor import SAM2VideoPredictor

    return SAM2VideoPredictor.load(tiny512_dir, backend="onnxruntime-cpu")


PROMPTS = {  # obj_id -> (frame, kwargs)
    1: (0, dict(points=[[95, 70]], labels=[1])),
    2: (0, dict(box=[195, 95, 265, 205])),
    3: (2, dict(points=[[60, 40], [150, 100]], labels=[1, 0])),
}


def track(predictor, clip, obj_ids):
    state = predictor.init_state(str(clip))
    for obj in obj_ids:
        frame, kw = PROMPTS[obj]
        predictor.add_new_points_or_box(state, frame, obj, **kw)
    # the same start for every run: objects prompted later are tracked on the frames before their prompt
    out = {f: (ids, m) for f, ids, m in predictor.propagate_in_video(state, start_frame_idx=0)}
    out.update({f: (ids, m) for f, ids, m in predictor.propagate_in_video(state, start_frame_idx=2, reverse=True)})
    state.close()
    return out


def test_batched_objects_equal_one_by_one(predictor, clip):
    batched = track(predictor, clip, [1, 2, 3])
    for k, obj in enumerate([1, 2, 3]):
        alone = track(predictor, clip, [obj])
        assert sorted(alone) == sorted(batched) == list(range(NUM_FRAMES))
        for f in batched:
            ids, masks = batched[f]
            assert ids == [1, 2, 3] and alone[f][0] == [obj]
            a, b = masks[k, 0], alone[f][1][0, 0]
            # batch-size-dependent kernels differ in the last float bits, which can move a bf16 rounding
            # of a memory; anything more would be a batching bug
            assert mask_iou(a > 0, b > 0) >= 0.999, f"object {obj} frame {f}: batched mask differs"
            assert np.abs(a - b).mean() < 1e-3, f"object {obj} frame {f}: batched logits differ"


def frames_of(clip):
    from PIL import Image

    return [np.asarray(Image.open(clip / f"{t:05d}.jpg").convert("RGB")) for t in range(NUM_FRAMES)]


def test_stream_equals_offline_forward_propagation(predictor, clip):
    from sam2_trt.runtime.video.stream import SAM2VideoStream

    # offline: object 1 from frame 0; object 2 appears on frame 2, tracked from there
    state = predictor.init_state(str(clip))
    predictor.add_new_points_or_box(state, 0, 1, **PROMPTS[1][1])
    offline = {f: m for f, _, m in predictor.propagate_in_video(state, max_frame_num_to_track=2)}
    _, _, prompt2_offline = predictor.add_new_points_or_box(state, 2, 2, **PROMPTS[2][1])
    offline.update({f: m for f, _, m in predictor.propagate_in_video(state, start_frame_idx=2)})
    state.close()

    stream = SAM2VideoStream(predictor, video_length=NUM_FRAMES)
    live = {}
    for t, frame in enumerate(frames_of(clip)):
        f, ids, masks = stream.push(frame)
        assert f == t
        if t == 0:
            assert ids == [] and masks.shape == (0, 1, 240, 320)
            _, ids, masks = stream.add_new_points_or_box(1, **PROMPTS[1][1])
        if t == 2:  # object 2 appears: the push tracked object 1, the click gives object 2
            assert ids == [1]
            _, ids, prompted = stream.add_new_points_or_box(2, **PROMPTS[2][1])
            np.testing.assert_array_equal(prompted[1], prompt2_offline[1])
            masks = np.concatenate([masks, prompted[1:]])
        live[t] = masks
    for t in range(NUM_FRAMES):
        assert live[t].shape == offline[t].shape, t
        np.testing.assert_allclose(live[t], offline[t], atol=1e-5, rtol=0, err_msg=f"frame {t}")

@pytest.mark.parametrize("video_length", [None, 1000])
def test_stream_keeps_a_bounded_history(predictor, video_length):
    """A stream keeps per-object outputs in a ring: 40 frames leave 16 stored, not 40, even when its length
    is known in advance."""
    from sam2_trt.runtime.video.stream import SAM2VideoStream
    from tests.official_reference import scene

    stream = SAM2VideoStream(predictor, video_length=video_length)
    base = scene(64, 96)
    for t in range(40):
        stream.push(np.roll(base, t, axis=1))
        if t == 0:
            stream.add_new_points_or_box(1, points=[[40, 30]], labels=[1])
    obj = stream.session.objects[0]
    assert obj.non_cond.frames() == list(range(24, 40))
    assert len(obj.tracked) <= 17 and list(obj.cond) == [0]
    capacity = stream.session.bank.capacity
    stream.push(base)
    assert stream.session.bank.capacity == capacity  # no growth in steady state
