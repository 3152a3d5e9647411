"""A tracked video as detections, for people who work with `supervision`: per frame, each visible track's mask,
box, track id and class, as `supervision.Detections` when supervision is importable (the supervision extra),
else as FrameTracks with the same fields.

    from sam2_trt.jobs import read_tracks
    for frame_idx, detections in read_tracks("out/videos/street").items():
        detections.mask, detections.xyxy, detections.tracker_id, detections.class_id, detections.data["class_name"]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class FrameTracks:
    """sv.Detections' fields, for when supervision is not installed."""
    xyxy: np.ndarray  # [N, 4] float32 (x0, y0, x1, y1), the masks' boxes (x1 = x0 + width, as COCO)
    mask: np.ndarray  # [N, H, W] bool
    tracker_id: np.ndarray  # [N] int64, the track ids (pixel values of the DAVIS PNGs)
    class_id: np.ndarray | None = None  # [N] int64, -1 for a track without a class id; None when no track has one
    confidence: np.ndarray | None = None  # always None: SAM 2's masks carry no detector score
    data: dict = field(default_factory=dict)  # {"class_name": [N] str, "" when unknown} when a track has a name

    def __len__(self) -> int:
        return len(self.tracker_id)


def _supervision():
    try:
        import supervision

        return supervision
    except ImportError:
        return None


def as_detections(obj_ids, masks, categories: dict | None = None, supervision: bool | None = None):
    """One frame's tracks -> sv.Detections (or FrameTracks): obj_ids [N], masks [N, H, W] bool, categories
    {obj_id: {"category_id", "category"}}. Tracks with an empty mask on the frame are left out, as a detector
    reports only what it sees. supervision: None uses it when importable, False never, True requires it."""
    from .detector_prompts import mask_boxes

    masks = np.asarray(masks, bool)
    visible = [i for i, m in enumerate(masks) if m.any()]
    ids = np.array([int(obj_ids[i]) for i in visible], np.int64)
    masks = masks[visible] if visible else np.zeros((0, *masks.shape[1:]), bool)
    cats = [(categories or {}).get(int(o), {}) for o in ids]
    class_ids = [c.get("category_id") for c in cats]
    names = [c.get("category") for c in cats]
    class_id = None if all(c is None for c in class_ids) else np.array([-1 if c is None else c for c in class_ids],
                                                                        np.int64)
    data = {"class_name": np.array([n or "" for n in names], dtype=str)} if any(names) else {}
    sv = _supervision() if supervision is not False else None
    if supervision and sv is None:
        raise ImportError("supervision is not installed: pip install supervision")
    make = sv.Detections if sv is not None else FrameTracks
    return make(xyxy=mask_boxes(masks), mask=masks, tracker_id=ids, class_id=class_id, data=data)


def read_tracks(video_dir, supervision: bool | None = None) -> dict:
    """{frame_idx: sv.Detections (or FrameTracks)} of a video done by track-many (OUT/videos/<id>), or of any
    folder with the masks.json that `sam2-trt track --coco-json` writes."""
    from pycocotools import mask as mask_utils

    path = Path(video_dir) / "masks.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} cannot be read ({e}); is {video_dir} a finished video of track-many?") from None
    categories = {t["obj_id"]: t for t in doc.get("tracks", [])}
    out = {}
    for frame in doc["frames"]:
        objects = frame["objects"]
        masks = np.zeros((len(objects), doc["height"], doc["width"]), bool)
        for i, o in enumerate(objects):
            rle = {"size": o["segmentation"]["size"], "counts": o["segmentation"]["counts"].encode("ascii")}
            masks[i] = mask_utils.decode(rle).astype(bool)
        out[frame["frame"]] = as_detections([o["obj_id"] for o in objects], masks, categories, supervision)
    return out
