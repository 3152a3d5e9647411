"""What a job reads: the manifest (what stops the job, what fails one video), the detectors' two JSON forms (the
supervision one written by supervision itself), the filter, the box matching that starts new objects, and the
output folder's lock and commit. No model: milliseconds."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sam2_trt.jobs import Detection, DetectionFilter, JobError, read_detections, read_manifest
from sam2_trt.jobs.detections import prompts_by_frame
from sam2_trt.jobs.detector_prompts import box_iou, mask_boxes, unmatched
from sam2_trt.jobs.layout import JobFolder, commit
from sam2_trt.runtime.track import ObjectPrompt
from tests.conftest import run_cli


def write_lines(path, *lines):
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


# ---- the manifest --------------------------------------------------------------------------------------------
def test_manifest_lines_become_tasks(tmp_path):
    manifest = write_lines(
        tmp_path / "m.jsonl", "# a comment", "",
        {"video": "clips/a.mp4", "prompts": [{"frame": 0, "obj_id": 1, "points": [[10, 20], [30, 40]],
                                              "labels": [1, 0]},
                                             {"frame": 0, "obj_id": 2, "box": [1, 2, 50, 60], "category": "dog"},
                                             {"frame": 3, "obj_id": 3, "mask": "m/3.png", "category": 7}]},
        {"video": "clips/b", "detections": "dets/b.json", "id": "b-north"})
    a, b = read_manifest(manifest)
    assert (a.id, a.video, a.line, a.error) == ("a", str(tmp_path / "clips/a.mp4"), 3, None)
    assert a.prompts == [ObjectPrompt(0, 1, [(10.0, 20.0), (30.0, 40.0)], [1, 0]),
                         ObjectPrompt(0, 2, box=(1.0, 2.0, 50.0, 60.0)),
                         ObjectPrompt(3, 3, mask=str(tmp_path / "m/3.png"))]
    assert a.categories == {2: {"category_id": None, "category": "dog"}, 3: {"category_id": 7, "category": None}}
    assert a.input_files() == [str(tmp_path / "m/3.png")]
    assert (b.id, b.detections, b.prompts) == ("b-north", str(tmp_path / "dets/b.json"), [])


@pytest.mark.parametrize("line, message", [
    ("{not json", "line 1 is not JSON"),
    ('["a.mp4"]', 'line 1: expected an object with a "video" path'),
    ('{"video": ""}', 'expected an object with a "video" path'),
    ('{"video": "a", "id": "x/y", "prompts": []}', "id 'x/y' cannot be a folder name"),
])
def test_lines_that_name_no_video_stop_the_job(tmp_path, line, message):
    with pytest.raises(JobError, match=message):
        read_manifest(write_lines(tmp_path / "m.jsonl", line))


def test_repeated_ids_stop_the_job(tmp_path):
    manifest = write_lines(tmp_path / "m.jsonl", {"video": "x/a.mp4", "detections": "d.json"},
                           {"video": "y/a", "detections": "d.json"})
    with pytest.raises(JobError, match="line 2: video id 'a' is already used on line 1; give one of them an \"id\""):
        read_manifest(manifest)
    with pytest.raises(JobError, match="lists no video"):
        read_manifest(write_lines(tmp_path / "empty.jsonl", "# nothing"))


@pytest.mark.parametrize("entry, message", [
    ({"video": "a"}, 'give either "prompts" (explicit) or "detections"'),
    ({"video": "a", "prompts": [], "detections": "d.json"}, 'give either "prompts"'),
    ({"video": "a", "detection": "d.json"}, "unknown field(s) detection"),
    ({"video": "a", "prompts": [{"frame": 0, "obj_id": 300, "box": [0, 0, 5, 5]}]},
     "obj_id must be a whole number 1..255"),
    ({"video": "a", "prompts": [{"frame": -1, "obj_id": 1, "box": [0, 0, 5, 5]}]},
     "frame must be a whole number >= 0"),
    ({"video": "a", "prompts": [{"frame": 0, "obj_id": 1, "box": [9, 0, 5, 5]}]}, "x1 > x0 and y1 > y0"),
    ({"video": "a", "prompts": [{"frame": 0, "obj_id": 1, "points": [[1, 2]], "labels": [1, 1]}]},
     "1 points but 2 labels"),
    ({"video": "a", "prompts": [{"frame": 0, "obj_id": 1, "points": [[1, 2]], "mask": "m.png"}]}, "alone"),
    ({"video": "a", "prompts": [{"frame": 0, "obj_id": 1}]}, "give points, a box or a mask"),
    ({"video": "a", "prompts": [{"frame": 0, "obj_id": 1, "box": [0, 0, 5, 5]},
                                {"frame": 0, "obj_id": 1, "points": [[1, 1]]}]}, "another prompt on frame 0"),
])
def test_bad_prompts_fail_only_their_video(tmp_path, entry, message):
    (task,) = read_manifest(write_lines(tmp_path / "m.jsonl", entry))
    assert task.error is not None and message in task.error and task.error.startswith("line 1: ")


# ---- detections ----------------------------------------------------------------------------------------------
def test_coco_style_detections(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"categories": [{"id": 3, "name": "car"}], "annotations": [
        {"frame_index": 2, "bbox": [10, 20, 30, 40], "category_id": 3, "score": 0.75},
        {"frame": 0, "box": [1, 2, 3, 4], "category": "dog"},
    ]}))
    assert read_detections(path) == [Detection(2, (10.0, 20.0, 40.0, 60.0), 0.75, 3, "car"),
                                     Detection(0, (1.0, 2.0, 3.0, 4.0), 1.0, None, "dog")]
    path.write_text(json.dumps([{"frame_idx": 1, "bbox": [0, 0, 5, 5], "category_id": 1, "score": 0.5}]))
    assert read_detections(path) == [Detection(1, (0.0, 0.0, 5.0, 5.0), 0.5, 1, None)]


def test_supervision_detections_as_its_json_sink_writes_them(tmp_path):
    import supervision as sv

    with sv.JSONSink(str(tmp_path / "sv.json")) as sink:
        for frame_index in range(2):
            detections = sv.Detections(xyxy=np.array([[10, 20, 50, 60], [5, 5, 9, 9]], np.float32) + frame_index,
                                       confidence=np.array([0.9, 0.3]), class_id=np.array([2, 0]),
                                       data={"class_name": np.array(["car", "person"])})
            sink.append(detections, custom_data={"frame_index": frame_index})
    got = read_detections(tmp_path / "sv.json")
    assert got[0] == Detection(0, (10.0, 20.0, 50.0, 60.0), pytest.approx(0.9), 2, "car")
    assert [(d.frame, d.box[0], d.category) for d in got] == [(0, 10, "car"), (0, 5, "person"), (1, 11, "car"),
                                                             (1, 6, "person")]
    with sv.JSONSink(str(tmp_path / "bare.json")) as sink:  # no class, no confidence: unknown, score 1
        sink.append(sv.Detections(xyxy=np.array([[1, 2, 3, 4]], np.float32)), custom_data={"frame_index": 4})
    assert read_detections(tmp_path / "bare.json") == [Detection(4, (1.0, 2.0, 3.0, 4.0), 1.0, None, None)]


@pytest.mark.parametrize("doc, message", [
    ([{"bbox": [0, 0, 5, 5]}], "entry 0 has no frame index: give one of frame_index, frame, frame_idx"),
    ([{"frame": 0}], "entry 0 has no box"),
    ([{"frame": 0, "box": [5, 0, 5, 5]}], "is empty"),
    ([{"frame": "x", "box": [0, 0, 5, 5]}], "frame must be a frame index >= 0"),
    ({"images": []}, "expected a list of boxes"),
])
def test_bad_detection_files_are_named(tmp_path, doc, message):
    path = tmp_path / "d.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="detections file .*d.json") as e:
        read_detections(path)
    assert message in str(e.value)
    with pytest.raises(ValueError, match="does not exist"):
        read_detections(tmp_path / "missing.json")


def test_the_filter_and_clipping_pick_the_prompts():
    dets = [Detection(0, (-3.0, 5.0, 20.0, 30.0), 0.9, 1, "dog"), Detection(0, (0.0, 0.0, 9.0, 9.0), 0.4, 1, "dog"),
            Detection(2, (10.0, 10.0, 90.0, 70.0), 0.8, 2, "car"), Detection(1, (70.0, 0.0, 90.0, 9.0), 0.9, 1, None),
            Detection(3, (0.0, 0.0, 9.0, 9.0), 0.9, 3, "cat")]
    got = prompts_by_frame(dets, DetectionFilter(0.5, (1, "car")), 10, 64, 48)
    assert list(got) == [0, 2]  # frame 1's box lies outside the 64-wide video, frame 3's class is filtered
    assert got[0][0].box == (0.0, 5.0, 20.0, 30.0) and got[2][0].box == (10.0, 10.0, 64.0, 48.0)
    assert len(got[0]) == 1  # the 0.4 box is below the threshold
    with pytest.raises(ValueError, match="a detection is on frame 3, but the video has frames 0..2"):
        prompts_by_frame(dets, DetectionFilter(0.0), 3, 64, 48)


def test_a_box_is_new_when_it_matches_no_tracked_mask():
    masks = np.zeros((2, 40, 60), bool)
    masks[0, 10:20, 5:25] = True  # box (5, 10, 25, 20)
    assert mask_boxes(masks).tolist() == [[5, 10, 25, 20], [0, 0, 0, 0]]
    assert box_iou((5, 10, 25, 20), mask_boxes(masks)).tolist() == [1.0, 0.0]
    assert box_iou((5, 10, 15, 20), mask_boxes(masks))[0] == pytest.approx(0.5)
    same, half, elsewhere = (Detection(4, b, 1.0, None, None) for b in ((6, 10, 25, 21), (5, 10, 15, 20),
                                                                        (40, 25, 55, 38)))
    assert unmatched([same, half, elsewhere], masks, 0.5) == [elsewhere]
    assert unmatched([same, half, elsewhere], masks, 0.51) == [half, elsewhere]


# ---- the output folder ---------------------------------------------------------------------------------------
def test_one_job_per_output_folder_and_a_killed_jobs_lock_is_taken_over(tmp_path):
    folder = JobFolder(tmp_path / "out")
    with folder.locked():
        with pytest.raises(JobError, match=rf"in use by another track-many job \(pid {os.getpid()} on"):
            with JobFolder(tmp_path / "out").locked():
                pass
    assert not folder.lock_path.exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folder.root.mkdir(exist_ok=True)
    folder.lock_path.write_text(json.dumps({"host": os.uname().nodename, "pid": int(dead.stdout)}))
    with folder.locked():
        assert json.loads(folder.lock_path.read_text())["pid"] == os.getpid()


def test_commit_replaces_an_earlier_output_in_one_step(tmp_path):
    folder = JobFolder(tmp_path / "out")
    final = folder.video_dir("a")
    for content in ("first", "second"):
        attempt = folder.new_attempt("a", 1)
        (attempt / "video.json").write_text(content)
        commit(attempt, final)
        assert (final / "video.json").read_text() == content
    assert list(folder.partial.iterdir()) == []


def test_track_many_cli_refuses_a_job_it_cannot_start(tmp_path):
    manifest = write_lines(tmp_path / "m.jsonl", {"video": "a.mp4", "detections": "a.json"})
    model = tmp_path / "no-model"
    proc = run_cli("track-many", manifest, "--model", model, "--out", tmp_path / "out", "--workers", 2, timeout=120)
    assert proc.returncode == 3 and "--workers and --gpus-per-worker place Ray workers: add --ray" in proc.stderr
    proc = run_cli("track-many", manifest, "--model", model, "--out", tmp_path / "out", timeout=120)
    assert proc.returncode == 3 and f"model directory not found: {model}" in proc.stderr
    write_lines(manifest, "{oops")
    proc = run_cli("track-many", manifest, "--model", model, "--out", tmp_path / "out", timeout=120)
    assert proc.returncode == 3 and "m.jsonl, line 1 is not JSON" in proc.stderr
    assert not (tmp_path / "out").exists()
