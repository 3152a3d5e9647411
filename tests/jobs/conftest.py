"""A small dataset for track-many: three 3-frame JPEG videos (explicit clicks and a box; a mask and a click on a
later frame; a detector's boxes, one starting a new object on frame 2), and two videos that must fail (a file
that is no video, a prompt past the video's end). Plus how to compare two job outputs."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.runtime.video_reference import write_jpeg_video

GOOD = ("a", "b", "c")
BAD = ("broken", "late")
FRAMES = 3


@pytest.fixture(scope="session")
def job_inputs(tmp_path_factory) -> Path:
    """A folder with the videos, good.jsonl (the three good videos) and all.jsonl (good, then the two bad)."""
    root = tmp_path_factory.mktemp("job")
    for seed, name in enumerate(GOOD, 1):
        write_jpeg_video(root / name, num_frames=FRAMES, seed=seed)
    mask = np.zeros((240, 320), np.uint8)
    mask[150:200, 200:260] = 255  # the green rectangle of frame 0
    Image.fromarray(mask).save(root / "b-mask.png")
    (root / "c.json").write_text(json.dumps([
        {"frame_index": 0, "bbox": [50, 30, 60, 60], "category_id": 1, "category": "ball", "score": 0.9},
        {"frame_index": 0, "bbox": [195, 145, 70, 55], "category_id": 2, "category": "block", "score": 0.8},
        {"frame_index": 1, "bbox": [0, 0, 30, 30], "category_id": 2, "score": 0.1},  # below the score threshold
        {"frame_index": 2, "bbox": [10, 200, 12, 12], "category_id": 3, "category": "pebble", "score": 0.7},
    ]))
    (root / "broken.mp4").write_bytes(b"this is not a video\n" * 50)
    lines = {
        "a": {"video": "a", "prompts": [{"frame": 0, "obj_id": 1, "points": [[80, 60]], "category": "ball"},
                                        {"frame": 0, "obj_id": 2, "box": [195, 145, 265, 200]}]},
        "b": {"video": "b", "prompts": [{"frame": 0, "obj_id": 4, "mask": "b-mask.png"},
                                        {"frame": 1, "obj_id": 2, "points": [[90, 70], [20, 20]], "labels": [1, 0]}]},
        "c": {"video": "c", "detections": "c.json"},
        "broken": {"video": "broken.mp4", "prompts": [{"frame": 0, "obj_id": 1, "points": [[5, 5]]}]},
        "late": {"video": "a", "id": "late", "prompts": [{"frame": 9, "obj_id": 1, "points": [[5, 5]]}]},
    }
    (root / "good.jsonl").write_text("".join(json.dumps(lines[k]) + "\n" for k in GOOD))
    (root / "all.jsonl").write_text("".join(json.dumps(lines[k]) + "\n" for k in GOOD + BAD))
    return root


def video_outputs(out: Path, video_id: str) -> tuple:
    """(every mask PNG's labels [F, H, W] uint8, masks.json) of one finished video."""
    folder = out / "videos" / video_id
    labels = np.stack([np.asarray(Image.open(p)) for p in sorted((folder / "masks").glob("*.png"))])
    return labels, json.loads((folder / "masks.json").read_text())


def assert_same_outputs(out: Path, reference: Path, video_ids=GOOD) -> None:
    for v in video_ids:
        labels, doc = video_outputs(out, v)
        want_labels, want_doc = video_outputs(reference, v)
        assert labels.shape == (FRAMES, 240, 320) and np.array_equal(labels, want_labels), f"{v}: masks differ"
        assert doc == want_doc, f"{v}: masks.json differs"


def assert_clean(out: Path, video_ids=GOOD) -> None:
    """Each video once, nothing half-written, no lock."""
    assert sorted(p.name for p in (out / "videos").iterdir()) == sorted(video_ids)
    assert not (out / ".partial").exists() or list((out / ".partial").iterdir()) == []
    assert not (out / ".lock").exists()
    for v in video_ids:
        assert sorted(p.name for p in (out / "videos" / v).iterdir()) == ["masks", "masks.json", "video.json"]
