"""Detector-driven tracking gives the masks of the same boxes given as explicit prompts through
SAM2VideoPredictor: boxes on frame 0 start objects, a later box that matches a tracked mask starts nothing (one
pass), one that matches none starts an object on its frame (a discovery pass, then a pass with every prompt).
Each track keeps its box's class, in masks.json and as supervision.Detections."""

import json

import numpy as np
import pytest

from sam2_trt.jobs import FrameTracks, JobOptions, read_tracks, track_many
from sam2_trt.jobs.detector_prompts import box_iou, mask_boxes
from tests.runtime.video_reference import CLIP_FRAMES

BOX1, BOX2 = (50.0, 30.0, 110.0, 90.0), (195.0, 145.0, 265.0, 200.0)
NEW = (12.0, 200.0, 24.0, 212.0)  # a 12 px box: far below IoU 0.5 with any tracked mask's box


def explicit_run(predictor, clip, prompts) -> dict:
    """{frame: DAVIS labels [H, W] uint8} of box prompts [(frame, obj_id, box)] through the predictor's API,
    forward from frame 0 (as track-many runs them: the earliest prompt is on frame 0)."""
    state = predictor.init_state(str(clip))
    for frame, obj_id, box in prompts:
        predictor.add_new_points_or_box(state, frame, obj_id, box=np.array(box, np.float32))
    out = {}
    for f, ids, logits in predictor.propagate_in_video(state):
        labels = np.zeros(logits.shape[2:], np.uint8)
        for o, m in sorted(zip(ids, logits[:, 0] > 0), key=lambda om: -om[0]):  # the smaller id wins, as the PNGs
            labels[m] = o
        out[f] = labels
    return out


@pytest.fixture(scope="module")
def detector_job(tiny512_dir, clip, tmp_path_factory):
    """Two detector runs over the clip in one local job: "same" (frame 2's box is a tracked object's: nothing new)
    and "new" (frame 2 adds an object), with the explicit-prompt references."""
    import supervision as sv

    from sam2_trt.runtime import SAM2VideoPredictor

    root = tmp_path_factory.mktemp("detector")
    predictor = SAM2VideoPredictor.load(tiny512_dir, backend="onnxruntime-cpu")
    first = explicit_run(predictor, clip, [(0, 1, BOX1), (0, 2, BOX2)])
    masks2 = np.stack([first[2] == 1, first[2] == 2])
    tracked_box = tuple(float(v) for v in mask_boxes(masks2)[0])  # what a detector would report for object 1
    assert masks2.any(axis=(1, 2)).all() and box_iou(NEW, mask_boxes(masks2)).max() < 0.5  # the test's premise

    (root / "same.json").write_text(json.dumps({"categories": [{"id": 0, "name": "person"}], "annotations": [
        {"frame": 0, "box": list(BOX1), "category_id": 0, "score": 0.9},
        {"frame": 0, "box": list(BOX2), "category_id": 2, "category": "car", "score": 0.8},
        {"frame": 2, "box": list(tracked_box), "category_id": 0, "score": 0.9}]}))
    with sv.JSONSink(str(root / "new.json")) as sink:  # what a supervision user's detector loop writes
        rows = {0: [(BOX1, 0.9, 0, "person"), (BOX2, 0.8, 2, "car"), ((60, 40, 100, 80), 0.3, 0, "person"),
                    ((0, 0, 40, 40), 0.9, 5, "kite")],
                2: [(tracked_box, 0.9, 0, "person"), (NEW, 0.85, 1, "dog")]}
        for frame_index, boxes in rows.items():
            sink.append(sv.Detections(xyxy=np.array([b for b, *_ in boxes], np.float32),
                                      confidence=np.array([s for _, s, *_ in boxes]),
                                      class_id=np.array([c for *_, c, _ in boxes]),
                                      data={"class_name": np.array([n for *_, n in boxes])}),
                        custom_data={"frame_index": frame_index})
    manifest = root / "m.jsonl"
    manifest.write_text("".join(json.dumps({"video": str(clip), "id": k, "detections": f"{k}.json"}) + "\n"
                                for k in ("same", "new")))
    summary = track_many(manifest, tiny512_dir, root / "out", progress=False,
                         options=JobOptions(backend="onnxruntime-cpu", classes=(0, 2, "dog")))
    new = explicit_run(predictor, clip, [(0, 1, BOX1), (0, 2, BOX2), (2, 3, NEW)])
    return root / "out", summary, {"same": first, "new": new}


def job_labels(out, video_id) -> dict:
    from PIL import Image

    return {int(p.stem): np.asarray(Image.open(p)) for p in sorted((out / "videos" / video_id / "masks").iterdir())}


@pytest.mark.parametrize("video_id, passes", [("same", 1), ("new", 2)])
def test_detections_track_as_the_same_explicit_prompts(detector_job, video_id, passes):
    out, summary, reference = detector_job
    row = next(r for r in summary["videos"] if r["id"] == video_id)
    assert (row["status"], row["frames"], row["passes"]) == ("done", CLIP_FRAMES, passes)
    labels = job_labels(out, video_id)
    assert sorted(labels) == list(range(CLIP_FRAMES))
    for f, want in reference[video_id].items():
        assert np.array_equal(labels[f], want), f"{video_id}, frame {f}: masks differ from the explicit prompts'"
    assert any(np.isin(3, labels[f]) for f in labels) == (video_id == "new")


def test_each_track_keeps_the_class_of_the_box_that_started_it(detector_job):
    out, _, _ = detector_job
    doc = json.loads((out / "videos" / "new" / "masks.json").read_text())
    assert doc["tracks"] == [{"obj_id": 1, "category_id": 0, "category": "person"},
                             {"obj_id": 2, "category_id": 2, "category": "car"},
                             {"obj_id": 3, "category_id": 1, "category": "dog"}]
    for frame in doc["frames"]:
        assert [(o["obj_id"], o["category"]) for o in frame["objects"]] == [(1, "person"), (2, "car"), (3, "dog")]
    record = json.loads((out / "videos" / "new" / "video.json").read_text())
    assert [(t["obj_id"], t["first_frame"], t["box"], t["score"]) for t in record["tracks"]] == \
        [(1, 0, list(BOX1), pytest.approx(0.9)), (2, 0, list(BOX2), pytest.approx(0.8)),
         (3, 2, list(NEW), pytest.approx(0.85))]
    same = json.loads((out / "videos" / "same" / "masks.json").read_text())
    assert same["tracks"] == [{"obj_id": 1, "category_id": 0, "category": "person"},  # its name from "categories"
                              {"obj_id": 2, "category_id": 2, "category": "car"}]


def test_tracks_read_back_as_supervision_detections(detector_job):
    import supervision as sv

    out, _, reference = detector_job
    tracks = read_tracks(out / "videos" / "new")
    assert sorted(tracks) == list(range(CLIP_FRAMES))
    for f, det in tracks.items():
        assert isinstance(det, sv.Detections)
        want = reference["new"][f]
        ids = [o for o in (1, 2, 3) if (want == o).any()]  # an object hidden under a smaller id keeps its own mask
        assert set(ids) <= set(det.tracker_id.tolist())
        names = dict(zip(det.tracker_id.tolist(), det.data["class_name"].tolist()))
        classes = dict(zip(det.tracker_id.tolist(), det.class_id.tolist()))
        assert all(names[o] == {1: "person", 2: "car", 3: "dog"}[o] for o in names)
        assert all(classes[o] == {1: 0, 2: 2, 3: 1}[o] for o in classes)
        for o, m, box in zip(det.tracker_id, det.mask, det.xyxy):
            assert m.any() and np.array_equal(box, mask_boxes(m[None])[0])
            assert (m >= (want == o)).all()  # the PNG shows each object where no smaller id covers it
    plain = read_tracks(out / "videos" / "new", supervision=False)[0]
    assert isinstance(plain, FrameTracks) and np.array_equal(plain.mask, tracks[0].mask)
