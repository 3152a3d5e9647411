"""A detector's boxes for one video, read from the two JSON forms detectors write, filtered into box prompts.

Both forms are lists of one box each, told apart by their fields (coordinates in video pixels, frames 0-based):

  COCO-style   [{"frame_index": 3, "bbox": [x, y, w, h], "category_id": 1, "category": "dog", "score": 0.9}, ...]
               or {"annotations": [...], "categories": [{"id": 1, "name": "dog"}, ...]} (names for the ids).
               The frame may be given as "frame_index", "frame" or "frame_idx"; the box as COCO's "bbox"
               [x, y, w, h] or as "box" [x0, y0, x1, y1]; the class as "category_id" and/or "category" (or
               "class_name"); "score" defaults to 1.
  supervision  the list `sv.JSONSink` writes for `sv.Detections`: rows {"x_min", "y_min", "x_max", "y_max",
               "class_id", "confidence", "tracker_id", ...detections.data (e.g. "class_name"), ...custom_data},
               with the frame index passed as custom data: `sink.append(detections, {"frame_index": i})`.
               Empty fields ("") mean unknown; "tracker_id" is ignored (SAM 2 assigns the track ids).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

FRAME_KEYS = ("frame_index", "frame", "frame_idx")
SUPERVISION_KEYS = ("x_min", "y_min", "x_max", "y_max")


@dataclass(frozen=True)
class Detection:
    """One box of a detector on one frame."""
    frame: int
    box: tuple  # (x0, y0, x1, y1) float, video pixels
    score: float  # 1.0 when the file gives none
    category_id: int | None  # the detector's class id
    category: str | None  # its name

    def category_fields(self) -> dict:
        """{"category_id", "category"}: what a track started by this box keeps (runtime.track's categories)."""
        return {"category_id": self.category_id, "category": self.category}


@dataclass(frozen=True)
class DetectionFilter:
    """Which boxes may prompt: score >= score_threshold, and a class in `classes` (ids or names; empty: all)."""
    score_threshold: float = 0.5
    classes: tuple = ()

    def keeps(self, d: Detection) -> bool:
        if d.score < self.score_threshold:
            return False
        return not self.classes or d.category_id in self.classes or d.category in self.classes


def read_detections(path) -> list[Detection]:
    """Every box of a detections file (either form above), in file order. Raises ValueError naming the file,
    the entry and what is wrong."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"detections file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"detections file {path} is not readable JSON: {e}") from None
    names = {}
    if isinstance(doc, dict):
        names = {int(c["id"]): str(c["name"]) for c in doc.get("categories", []) if "id" in c and "name" in c}
        doc = doc.get("annotations", doc.get("detections"))
    if not isinstance(doc, list):
        raise ValueError(f"detections file {path}: expected a list of boxes (COCO-style or what sv.JSONSink writes), "
                         f"or an object with an \"annotations\" list")
    out = []
    for i, row in enumerate(doc):
        where = f"detections file {path}, entry {i}"
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected an object, got {row!r}")
        try:
            out.append(_supervision_row(row, where) if all(k in row for k in SUPERVISION_KEYS)
                       else _coco_row(row, where, names))
        except (TypeError, ValueError) as e:
            raise ValueError(e if str(e).startswith(where) else f"{where}: {e}") from None
    return out


def _frame(row: dict, where: str) -> int:
    key = next((k for k in FRAME_KEYS if k in row), None)
    if key is None:
        raise ValueError(f"{where} has no frame index: give one of {', '.join(FRAME_KEYS)} (0-based; with "
                         f"supervision, sink.append(detections, custom_data={{'frame_index': i}}))")
    frame = row[key]
    if isinstance(frame, str) and frame.strip().isdigit():  # CSV-minded writers store numbers as text
        frame = int(frame)
    if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
        raise ValueError(f"{where}: {key} must be a frame index >= 0, got {frame!r}")
    return frame


def _number(value, what: str, default=None):
    if value in ("", None):
        return default
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, got {value!r}")
    return float(value)


def _class_id(value):
    v = _number(value, "class id")
    if v is not None and v != int(v):
        raise ValueError(f"class id must be a whole number, got {value!r}")
    return None if v is None else int(v)


def _name(value):
    return None if value in ("", None) else str(value)


def _checked_box(x0, y0, x1, y1) -> tuple:
    if not x1 > x0 or not y1 > y0:
        raise ValueError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is empty: need x1 > x0 and y1 > y0")
    return (x0, y0, x1, y1)


def _supervision_row(row: dict, where: str) -> Detection:
    box = _checked_box(*(_number(row[k], k) for k in SUPERVISION_KEYS))
    return Detection(_frame(row, where), box, _number(row.get("confidence"), "confidence", 1.0),
                     _class_id(row.get("class_id")), _name(row.get("class_name")))


def _coco_row(row: dict, where: str, names: dict) -> Detection:
    if "bbox" in row:
        x, y, w, h = (_number(v, "bbox") for v in row["bbox"])
        box = _checked_box(x, y, x + w, y + h)
    elif "box" in row:
        box = _checked_box(*(_number(v, "box") for v in row["box"]))
    else:
        raise ValueError(f"{where} has no box: give \"bbox\": [x, y, w, h] (COCO) or \"box\": [x0, y0, x1, y1]")
    category_id = _class_id(row.get("category_id"))
    name = _name(row.get("category", row.get("class_name"))) or names.get(category_id)
    return Detection(_frame(row, where), box, _number(row.get("score"), "score", 1.0), category_id, name)


def prompts_by_frame(detections, keep: DetectionFilter, num_frames: int, width: int, height: int) -> dict:
    """{frame: [Detection]} of the boxes `keep` lets through, clipped to the width x height video (a detector's
    box may overhang the image by a pixel), frames ascending, each frame's boxes in file order. A box outside
    the video's frames raises ValueError; one that clipping leaves empty is dropped."""
    by_frame = {}
    for d in detections:
        if not keep.keeps(d):
            continue
        if d.frame >= num_frames:
            raise ValueError(f"a detection is on frame {d.frame}, but the video has frames 0..{num_frames - 1}")
        x0, y0, x1, y1 = d.box
        box = (min(max(x0, 0.0), width), min(max(y0, 0.0), height), min(max(x1, 0.0), width),
               min(max(y1, 0.0), height))
        if box[2] > box[0] and box[3] > box[1]:
            by_frame.setdefault(d.frame, []).append(Detection(d.frame, box, d.score, d.category_id, d.category))
    return dict(sorted(by_frame.items()))
