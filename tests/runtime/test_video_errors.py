"""Bad input to the video predictor and the stream: an error that names the value and the fix, and a state left
exactly as it was, so the next valid call gives what it gives on a state that never saw the bad one."""

import copy
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from sam2_trt.core.errors import FrameDecodeError, TrackingError, VideoError
from tests.runtime.video_reference import CLIP_FRAMES, CLIP_H, CLIP_W, write_jpeg_video

H, W, NUM_FRAMES = CLIP_H, CLIP_W, CLIP_FRAMES
CLICK = dict(points=[[95, 70]], labels=[1])  # object 1 on frame 0
BOX = dict(box=[195, 95, 265, 205])  # object 2 on frame 0
NEXT_CLICK = dict(frame_idx=0, obj_id=1, points=[[120, 90]], labels=[0], clear_old_points=False)
MASK = np.zeros((H, W), bool)
MASK[40:100, 60:130] = True


@pytest.fixture(scope="module")
def predictor(tiny512_dir):
    from sam2_trt.runtime.video.predictor import SAM2VideoPredictor

    return SAM2VideoPredictor.load(tiny512_dir, backend="onnxruntime-cpu")


def prompt(predictor, state):
    """The prompts of every state here: object 1 clicked and object 2 boxed on frame 0; returns the click's result."""
    first = predictor.add_new_points_or_box(state, 0, 1, **CLICK)
    predictor.add_new_points_or_box(state, 0, 2, **BOX)
    return first


def fork(state):
    """An independent copy of a state; the frame source (a decoder thread, no tracking results) is shared."""
    return copy.deepcopy(state, {id(state.frames): state.frames})


def summary(state) -> list:
    """Everything a state holds per object: its prompts, and which frames have results of each kind."""
    return [(o.obj_id, {t: (p.coords.tolist(), p.labels.tolist()) for t, p in o.points.items()},
             {t: m.tolist() for t, m in o.masks.items()}, list(o.cond), list(o.temp_cond), list(o.temp_non_cond),
             o.non_cond.frames(), dict(o.tracked)) for o in state.objects]


def assert_same_result(result, expected):
    """(frame_idx, obj_ids, mask logits) results are equal, masks bit for bit."""
    assert result[:2] == expected[:2]
    np.testing.assert_array_equal(result[2], expected[2])


@pytest.fixture(scope="module")
def base(predictor, clip):
    """The prompted state that the tests fork (never changed itself), with the results a clean state gives:
    `first_click` (the click of `prompt`), `next_click` (NEXT_CLICK after `prompt`) and `tracked` (frames 0..2
    propagated; `tracked_state` is the state after it)."""
    state = predictor.init_state(str(clip))
    first = prompt(predictor, state)
    next_click = predictor.add_new_points_or_box(fork(state), **NEXT_CLICK)
    tracked_state = fork(state)
    tracked = list(predictor.propagate_in_video(tracked_state, max_frame_num_to_track=2))
    yield SimpleNamespace(state=state, first_click=first, next_click=next_click, tracked=tracked,
                          tracked_state=tracked_state)
    state.close()


# -- opening a video ----------------------------------------------------------------------------------------
def write_frame(path, h, w, seed=0):
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), np.uint8)).save(path)


def truncate_after_header(path):
    """Keep the JPEG header (so the frame opens and its size is known) and cut the scan data in half."""
    data = path.read_bytes()
    start_of_scan = data.index(b"\xff\xda")
    path.write_bytes(data[:(start_of_scan + len(data)) // 2])


def missing(tmp):
    return tmp / "nope"


def empty_folder(tmp):
    (tmp / "empty").mkdir()
    return tmp / "empty"


def folder_without_jpegs(tmp):
    (tmp / "pngs").mkdir()
    write_frame(tmp / "pngs" / "00000.png", H, W)
    return tmp / "pngs"


def garbage_video_file(tmp):
    (tmp / "clip.mp4").write_bytes(b"\x00\x01not a video" * 100)
    return tmp / "clip.mp4"


def mixed_sizes(tmp):
    folder = write_jpeg_video(tmp / "mixed", 3, H, W)
    write_frame(folder / "00002.jpg", H // 2, W // 2)
    return folder


def mixed_sizes_in_memory(tmp):
    return [np.zeros((H, W, 3), np.uint8), np.zeros((H // 2, W, 3), np.uint8)]


def first_frame_corrupt(tmp):
    folder = write_jpeg_video(tmp / "corrupt0", 2, H, W)
    truncate_after_header(folder / "00000.jpg")
    return folder


def not_a_path(tmp):
    return 3


OPEN_CASES = [
    (missing, VideoError, r"video path .*nope does not exist; pass a folder of JPEG frames"),
    (empty_folder, VideoError, r"empty has no JPEG frames .*it is empty\); extract them with ffmpeg"),
    (folder_without_jpegs, VideoError, r"pngs has no JPEG frames .*e\.g\. 00000\.png"),
    (garbage_video_file, VideoError, r"PyAV cannot open .*clip\.mp4 as a video"),
    (mixed_sizes, VideoError, r"frame 2 \(.*00002\.jpg\) is 160x120 but frame 0 \(.*00000\.jpg\) is 320x240; "
                              r"all frames of a video must have one size"),
    (mixed_sizes_in_memory, VideoError, r"frame 1 of the sequence is 320x120 but frame 0 is 320x240"),
    (first_frame_corrupt, FrameDecodeError, r"frame 0 \(.*00000\.jpg\) cannot be decoded: .*re-extract"),
    (not_a_path, TypeError, r"video_path must be a path .* got a int"),
]


@pytest.mark.parametrize("make, error, match", OPEN_CASES, ids=[make.__name__ for make, _, _ in OPEN_CASES])
def test_videos_that_cannot_be_opened(predictor, tmp_path, make, error, match):
    with pytest.raises(error, match=match):
        predictor.init_state(make(tmp_path))


# -- prompts ------------------------------------------------------------------------------------------------
def frame_cases(method: str, extra: dict) -> list:
    return [
        pytest.param(method, dict(frame_idx=-1, obj_id=1, **extra), IndexError,
                     r"frame_idx -1 is out of range: the video has 5 frames \(0\.\.4\)", id=f"{method}-frame=-1"),
        pytest.param(method, dict(frame_idx=5, obj_id=1, **extra), IndexError,
                     r"frame_idx 5 is out of range: the video has 5 frames", id=f"{method}-frame=5"),
        pytest.param(method, dict(frame_idx=1.0, obj_id=1, **extra), TypeError,
                     r"frame_idx must be an int frame index, not float 1\.0", id=f"{method}-frame=1.0"),
        pytest.param(method, dict(frame_idx="0", obj_id=1, **extra), TypeError,
                     r"frame_idx must be an int frame index, not str '0'", id=f"{method}-frame='0'"),
    ]


# Values that are not object ids. A call that creates an object says what an id must be; a call on existing objects
# may instead say that no object has this id; none may take True or 1.0 (both == 1) for object 1.
BAD_IDS = [(-1, "-1"), (True, "True"), (1.0, r"1\.0"), ("1", "'1'")]
BAD_ID_ERRORS = (TypeError, ValueError, TrackingError)


PROMPT_CASES = [
    *frame_cases("add_new_points_or_box", CLICK),
    *frame_cases("add_new_mask", dict(mask=MASK)),
    *frame_cases("clear_all_prompts_in_frame", {}),
    pytest.param("add_new_points_or_box", dict(frame_idx=0, obj_id=-1, **CLICK), ValueError,
                 r"obj_id -1 is out of range: use 0\.\.2147483647", id="add_new_points_or_box-obj=-1"),
    pytest.param("add_new_points_or_box", dict(frame_idx=0, obj_id=True, **CLICK), TypeError,
                 r"obj_id must be an int \(e\.g\. 1, 2, \.\.\.\), not bool True", id="add_new_points_or_box-obj=True"),
    pytest.param("add_new_points_or_box", dict(frame_idx=0, obj_id="1", **CLICK), TypeError,
                 r"obj_id must be an int .*not str '1'", id="add_new_points_or_box-obj='1'"),
    pytest.param("add_new_points_or_box", dict(frame_idx=0, obj_id=1.0, **CLICK), TypeError,
                 r"obj_id must be an int .*not float 1\.0", id="add_new_points_or_box-obj=1.0"),
    pytest.param("add_new_mask", dict(frame_idx=0, obj_id=True, mask=MASK), TypeError,
                 r"obj_id must be an int .*not bool True", id="add_new_mask-obj=True"),
    pytest.param("add_new_mask", dict(frame_idx=0, obj_id=-3, mask=MASK), ValueError,
                 r"obj_id -3 is out of range", id="add_new_mask-obj=-3"),
    *[pytest.param("clear_all_prompts_in_frame", dict(frame_idx=0, obj_id=obj_id), BAD_ID_ERRORS, match,
                   id=f"clear_all_prompts_in_frame-obj={obj_id!r}") for obj_id, match in BAD_IDS],
    pytest.param("clear_all_prompts_in_frame", dict(frame_idx=0, obj_id=7), TrackingError,
                 r"object id 7 does not exist; existing object ids: \[1, 2\]", id="clear-unknown-obj"),
    # points, labels, boxes
    pytest.param("add_new_points_or_box", dict(frame_idx=0, obj_id=1, points=[[10, 20]]), ValueError,
                 "points and labels must be provided together", id="points-without-labels"),
    pytest.param("add_new_points_or_box", dict(frame_idx=0, obj_id=1, labels=[1]), ValueError,
                 "points and labels must be provided together", id="labels-without-points"),
    pytest.param("add_new_points_or_box", dict(frame_idx=0, obj_id=1), ValueError,
                 "at least one of points or box must be provided", id="no-prompt"),
    pytest.param("add_new_points_or_box", dict(frame_idx=0, obj_id=1, points=[[10, 20], [30, 40]], labels=[1]),
                 ValueError, r"labels has shape \(1,\) but points has shape \(2, 2\): give one label per point",
                 id="mismatched-lengths"),
    pytest.param("add_new_points_or_box", dict(frame_idx=0, obj_id=1, points=[10, 20], labels=[1]), ValueError,
                 r"points has shape \(2,\); expected Nx2", id="points-not-Nx2"),
    pytest.param("add_new_points_or_box", dict(frame_idx=0, obj_id=1, points=[[10, 20], [30, 40]], labels=[1, 7]),
                 ValueError, r"labels must be in \{-1, 0, 1, 2, 3\} \(1 positive, 0 negative\); got \[7\]",
                 id="bad-label"),
    pytest.param("add_new_points_or_box", dict(frame_idx=0, obj_id=1, points=[[np.nan, 20]], labels=[1]),
                 ValueError, r"points contains NaN or infinite values: \[\[nan, 20\.0\]\]", id="nan-point"),
    pytest.param("add_new_points_or_box", dict(frame_idx=0, obj_id=1, points=[["left", "top"]], labels=[1]),
                 ValueError, r"points", id="text-point"),  # not numpy's "could not convert string to float"
    pytest.param("add_new_points_or_box", dict(frame_idx=0, obj_id=3, points=np.zeros((0, 2)), labels=[]),
                 ValueError, r"points has shape \(0, 2\): give at least one point \(x, y\) with its label, or a box",
                 id="empty-points"),  # the image predictor rejects it too; it used to create an object
    pytest.param("add_new_points_or_box", dict(frame_idx=0, obj_id=1, points=[[10, 20], [30]], labels=[1, 1]),
                 ValueError, r"points must be a rectangular array of numbers", id="ragged-points"),
    pytest.param("add_new_points_or_box", dict(frame_idx=0, obj_id=1, points=[[10, 20]], labels=["1"]), ValueError,
                 r"labels must be numbers, got str", id="text-label"),
    pytest.param("add_new_points_or_box", dict(frame_idx=0, obj_id=2, box="0,0,10,10"), ValueError,
                 r"box must be numbers, got str", id="text-box"),
    pytest.param("add_new_points_or_box", dict(frame_idx=0, obj_id=2, box=[0, 0, np.inf, 9]), ValueError,
                 "box contains NaN or infinite values", id="inf-box"),
    pytest.param("add_new_points_or_box", dict(frame_idx=0, obj_id=2, box=[100, 10, 50, 60]), ValueError,
                 r"box \[100\.0, 10\.0, 50\.0, 60\.0\] has x1 < x0 or y1 < y0; boxes are XYXY", id="flipped-box"),
    pytest.param("add_new_points_or_box", dict(frame_idx=0, obj_id=2, box=[1, 2, 3]), ValueError,
                 r"box has shape \(3,\); expected 4 values", id="short-box"),
    pytest.param("add_new_points_or_box", dict(frame_idx=0, obj_id=1, clear_old_points=False, **BOX), ValueError,
                 r"cannot add box without clearing old points.*use clear_old_points=True", id="box-keeping-points"),
    # masks
    pytest.param("add_new_mask", dict(frame_idx=0, obj_id=1, mask=MASK[None]), ValueError,
                 r"mask has shape \(1, 240, 320\); expected a 2-D mask of the video's size 240x320 \(HxW\) or of "
                 r"the model's input size 512x512", id="mask-3d"),
    pytest.param("add_new_mask", dict(frame_idx=0, obj_id=1, mask=np.ones((100, 100), bool)), ValueError,
                 r"mask has shape \(100, 100\); expected .*240x320 .*512x512", id="mask-other-size"),
    pytest.param("add_new_mask", dict(frame_idx=0, obj_id=1, mask=MASK.T), ValueError,
                 r"mask has shape \(320, 240\)", id="mask-transposed"),
    pytest.param("add_new_mask", dict(frame_idx=0, obj_id=1, mask=np.full((H, W), "yes")), TypeError,
                 r"mask has dtype <U3; pass a bool array", id="mask-text"),
    pytest.param("add_new_mask", dict(frame_idx=0, obj_id=1, mask=np.full((H, W), None)), TypeError,
                 r"mask has dtype object; pass a bool array", id="mask-objects"),
    pytest.param("add_new_mask", dict(frame_idx=3, obj_id=1, mask=np.full((H, W), np.nan, np.float32)),
                 ValueError, "mask contains NaN", id="mask-nan"),
    # removing objects
    pytest.param("remove_object", dict(obj_id=7, strict=True), TrackingError,
                 r"Cannot remove object id 7 as it doesn't exist\. All existing object ids: \[1, 2\]",
                 id="remove-unknown-strict"),
    *[pytest.param("remove_object", dict(obj_id=obj_id, strict=strict), BAD_ID_ERRORS, match,
                   id=f"remove_object-obj={obj_id!r}-strict={strict}")
      for obj_id, match in BAD_IDS for strict in (True, False)
      if strict or isinstance(obj_id, (bool, float))],  # not strict: unknown ids are ignored, but not True or 1.0
]


@pytest.mark.parametrize("method, kwargs, error, match", PROMPT_CASES)
def test_rejected_prompt_leaves_the_state_as_it_was(predictor, base, method, kwargs, error, match):
    state = fork(base.state)
    before = summary(state)
    with pytest.raises(error, match=match):
        getattr(predictor, method)(state, **kwargs)
    assert summary(state) == before
    assert_same_result(predictor.add_new_points_or_box(state, **NEXT_CLICK), base.next_click)


def test_unknown_object_is_ignored_by_remove_object_unless_strict(predictor, base):
    state = fork(base.state)
    assert predictor.remove_object(state, 7) == ([1, 2], [])
    assert_same_result(predictor.add_new_points_or_box(state, **NEXT_CLICK), base.next_click)


# -- propagation --------------------------------------------------------------------------------------------
def test_propagating_before_any_prompt(predictor, clip, base):
    state = predictor.init_state(str(clip))
    with pytest.raises(TrackingError, match=r"No input points or masks are provided for any object; please add "
                                            r"inputs first \(add_new_points_or_box or add_new_mask\)"):
        next(predictor.propagate_in_video(state))
    assert_same_result(predictor.add_new_points_or_box(state, 0, 1, **CLICK), base.first_click)
    state.close()


def test_propagating_an_object_whose_prompts_were_cleared(predictor, base):
    state = fork(base.state)
    predictor.clear_all_prompts_in_frame(state, 0, 1)
    before = summary(state)
    with pytest.raises(TrackingError, match="No input points or masks are provided for object id 1; please add"):
        next(predictor.propagate_in_video(state))
    assert summary(state) == before


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(max_frame_num_to_track=-1), ValueError, "max_frame_num_to_track must be a non-negative int or None, got -1"),
    (dict(max_frame_num_to_track=1.5), ValueError, r"max_frame_num_to_track must be .*, got 1\.5"),
    (dict(start_frame_idx=-1), IndexError, r"start_frame_idx -1 is out of range: the video has 5 frames"),
    (dict(start_frame_idx=5), IndexError, r"start_frame_idx 5 is out of range"),
    (dict(start_frame_idx=2.0), TypeError, r"start_frame_idx must be an int frame index, not float 2\.0"),
])
def test_bad_propagation_argument_is_rejected(predictor, base, kwargs, error, match):
    state = fork(base.state)
    before = summary(state)
    with pytest.raises(error, match=match):
        next(predictor.propagate_in_video(state, **kwargs))
    assert summary(state) == before


def test_propagation_after_rejected_arguments_tracks_as_on_a_clean_state(predictor, base):
    state = fork(base.state)
    for kwargs in (dict(max_frame_num_to_track=-1), dict(start_frame_idx=5), dict(start_frame_idx=0.0)):
        with pytest.raises((ValueError, IndexError, TypeError)):
            next(predictor.propagate_in_video(state, **kwargs))
    tracked = list(predictor.propagate_in_video(state, max_frame_num_to_track=1))
    assert [t for t, _, _ in tracked] == [0, 1]
    for result, expected in zip(tracked, base.tracked):
        assert_same_result(result, expected)


def test_corrupt_frame_stops_propagation_and_keeps_the_frames_before_it(predictor, clip, base, tmp_path):
    folder = shutil.copytree(clip, tmp_path / "frames")  # frames 0..2 are the clip's own
    truncate_after_header(folder / "00003.jpg")
    state = predictor.init_state(str(folder))  # frame 3's header reads: the video opens
    prompt(predictor, state)
    tracked = []
    with pytest.raises(FrameDecodeError, match=r"frame 3 \(.*00003\.jpg\) cannot be decoded: .*; re-extract") as e:
        for result in predictor.propagate_in_video(state):
            tracked.append(result)
    assert (e.value.frame_index, e.value.path) == (3, str(folder / "00003.jpg"))
    assert [t for t, _, _ in tracked] == [0, 1, 2]
    for result, expected in zip(tracked, base.tracked):
        assert_same_result(result, expected)

    # a click on the corrupt frame is rejected too, and changes nothing
    before = summary(state)
    with pytest.raises(FrameDecodeError, match="frame 3"):
        predictor.add_new_points_or_box(state, 3, 1, **CLICK)
    assert summary(state) == before

    # the frames tracked before it are kept and tracking them again gives what it gave
    again = list(predictor.propagate_in_video(state, max_frame_num_to_track=2))
    assert [t for t, _, _ in again] == [0, 1, 2]
    for result, expected in zip(again, base.tracked):
        assert_same_result(result, expected)
    # and a correction click on a tracked frame uses their memories as on a state that tracked a clean clip
    correction = dict(frame_idx=1, obj_id=2, points=[[230, 150]], labels=[1])
    assert_same_result(predictor.add_new_points_or_box(state, **correction),
                       predictor.add_new_points_or_box(fork(base.tracked_state), **correction))
    state.close()


# -- the stream ---------------------------------------------------------------------------------------------
def test_stream_rejects_bad_frames_and_early_prompts_and_goes_on(predictor, clip):
    from sam2_trt.runtime.video.stream import SAM2VideoStream

    frames = [np.asarray(Image.open(clip / f"{t:05d}.jpg").convert("RGB")) for t in range(2)]
    stream = SAM2VideoStream(predictor)
    with pytest.raises(TrackingError, match="push a frame before adding prompts: prompts apply to the current frame"):
        stream.add_new_points_or_box(1, **CLICK)
    with pytest.raises(TrackingError, match="push a frame before adding prompts"):
        stream.add_new_mask(1, MASK)
    assert (stream.frame_idx, stream.obj_ids) == (-1, [])
    assert stream.push(frames[0])[0] == 0
    stream.add_new_points_or_box(1, **CLICK)
    clean = copy.deepcopy(stream, {id(predictor): predictor})

    before = summary(stream.session)
    for frame, error, match in [
        (frames[0][::2, ::2], ValueError, r"frame 1 is 160x120 but the stream's frames are 320x240; resize it or "
                                          r"start a new stream"),
        (frames[0].astype(np.float32) / 255, ValueError, "frame has dtype float32; expected uint8"),
        (frames[0].astype(np.uint16) * 257, ValueError, r"frame has dtype uint16.*\(image >> 8\)"),
        (frames[0][..., 0], ValueError, r"frame has shape \(240, 320\) \(grayscale\)"),
        (frames[0].tolist(), TypeError, "frame must be an HxWx3 uint8 numpy array or a PIL image, not list"),
    ]:
        with pytest.raises(error, match=match):
            stream.push(frame)
    with pytest.raises(TypeError, match="obj_id must be an int"):
        stream.add_new_points_or_box(True, **CLICK)
    with pytest.raises(ValueError, match="points and labels must be provided together"):
        stream.add_new_points_or_box(2, points=[[10, 20]])
    assert (stream.frame_idx, stream.obj_ids) == (0, [1])
    assert summary(stream.session) == before

    assert_same_result(stream.push(frames[1]), clean.push(frames[1]))


# -- changes while a propagation runs -------------------------------------------------------------------------
def test_a_change_during_propagation_stops_it_instead_of_emitting_wrong_masks(predictor, base):
    """An object added while propagate_in_video's generator runs used to come out as all background on the
    later frames; reset_state there raised a raw numpy error."""
    state = fork(base.state)
    frames = predictor.propagate_in_video(state)
    assert next(frames)[1] == [1, 2]
    predictor.add_new_points_or_box(state, 1, 3, **CLICK)
    with pytest.raises(TrackingError, match=r"the state changed while propagate_in_video was running \(object 3 was "
                                            r"added on frame 1\), so its remaining frames would be wrong and it "
                                            r"stopped; call propagate_in_video again"):
        next(frames)
    assert [ids for _, ids, _ in predictor.propagate_in_video(state, max_frame_num_to_track=1)] == [[1, 2, 3]] * 2

    frames = predictor.propagate_in_video(state)
    next(frames)
    predictor.reset_state(state)
    with pytest.raises(TrackingError, match=r"\(the state was reset\)"):
        next(frames)
    first, second = predictor.propagate_in_video(fork(base.state)), predictor.propagate_in_video(fork(base.state))
    next(first), next(second)  # two generators on two states: independent
    next(first), next(second)


def test_stream_video_length_is_checked(predictor):
    from sam2_trt.runtime.video.stream import SAM2VideoStream

    for value, error, match in [("100", TypeError, r"video_length must be an int .* not str '100'"),
                                (2.5, TypeError, "not float 2.5"), (True, TypeError, "not bool True"),
                                (0, ValueError, r"video_length must be >= 1 .*got 0; pass None")]:
        with pytest.raises(error, match=match):
            SAM2VideoStream(predictor, video_length=value)
    assert SAM2VideoStream(predictor, video_length=np.int64(7))._frames.num_frames == 7
