"""Several tracking sessions advanced together (runtime/video/batch.py) give each session exactly what it gets
alone, bit for bit, with one call per graph per step: the graphs take a batch of frames and each object's frame
index, and are batch-invariant (sam2_export/modules/layer_norm.py)."""

import numpy as np
import pytest

from sam2_trt.core.errors import VideoError
from sam2_trt.runtime.video.batch import track_sessions
from sam2_trt.runtime.video.predictor import SAM2VideoPredictor

STEPS = 5


@pytest.fixture(scope="module")
def model(tiny512_dir):
    from sam2_trt.runtime.model import SAM2Model

    return SAM2Model.load(tiny512_dir, backend="onnxruntime-cpu")


# Three sessions with different objects, prompts and memory extents: one object; two objects (a box and a
# click); prompts on two frames, so its memories use one more bank slot than the others' (padded in the batch).
PROMPTS = [
    [dict(frame_idx=0, obj_id=1, points=[[95, 70]], labels=[1])],
    [dict(frame_idx=0, obj_id=1, box=[195, 95, 265, 205]), dict(frame_idx=0, obj_id=4, points=[[60, 40]], labels=[1])],
    [dict(frame_idx=0, obj_id=2, points=[[230, 150]], labels=[1]),
     dict(frame_idx=2, obj_id=2, points=[[240, 160]], labels=[1], clear_old_points=False)],
]


def open_session(predictor, clip, k):
    state = predictor.init_state(str(clip))
    for prompt in PROMPTS[k]:
        predictor.add_new_points_or_box(state, **prompt)
    return state


def test_sessions_together_equal_each_alone_with_one_call_per_graph_per_step(model, clip):
    predictor = SAM2VideoPredictor(model)
    alone = []
    for k in range(len(PROMPTS)):
        state = open_session(predictor, clip, k)
        alone.append([m for _, _, m in predictor.propagate_in_video(state)])
        state.close()
    states = [open_session(predictor, clip, k) for k in range(len(PROMPTS))]
    for state in states:
        state.consolidate()
    before = dict(model.calls)
    together = [[] for _ in states]
    for frame in range(STEPS):
        for k, result in enumerate(track_sessions([(s, frame, False) for s in states])):
            assert result.error is None and result.frame_idx == frame
            together[k].append(result.masks)
    for state in states:
        state.close()
    for k in range(len(states)):
        assert len(together[k]) == len(alone[k]) == STEPS
        for f, (a, b) in enumerate(zip(alone[k], together[k])):
            assert a.dtype == b.dtype == np.float32 and np.array_equal(a, b), f"session {k}, frame {f}"
    calls = {g: model.calls[g] - before.get(g, 0) for g in model.calls}
    # frame 0 is every session's conditioning frame (no graph work); each later frame is one call per graph for
    # every object of the three sessions; alone, the same frames take three calls per graph.
    assert calls == {"image_encoder": STEPS - 1, "memory_attention": STEPS - 1, "prompt_decoder": STEPS - 1,
                     "memory_encoder": STEPS - 1}


def test_one_session_that_cannot_read_its_frame_does_not_stop_the_others(model, clip):
    predictor = SAM2VideoPredictor(model)
    good, broken = open_session(predictor, clip, 0), open_session(predictor, clip, 0)
    for state in (good, broken):
        state.consolidate()
    broken.frames.close()  # its frames cannot be read any more
    results = track_sessions([(good, 1, False), (broken, 1, False)])
    assert results[0].error is None and results[0].masks.shape == (1, 1, 240, 320)
    assert isinstance(results[1].error, VideoError) and results[1].masks is None
    good.close()


def test_sessions_of_other_predictors_or_twice_are_refused(model, clip):
    a, b = SAM2VideoPredictor(model), SAM2VideoPredictor(model)
    s1, s2 = open_session(a, clip, 0), open_session(b, clip, 0)
    with pytest.raises(ValueError, match="one predictor"):
        track_sessions([(s1, 1, False), (s2, 1, False)])
    with pytest.raises(ValueError, match="appears twice"):
        track_sessions([(s1, 1, False), (s1, 2, False)])
    s1.close()
    s2.close()
