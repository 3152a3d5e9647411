"""Detector-driven tracking: a detector's boxes become SAM 2 box prompts, and track ids come back.

Which boxes start objects:
  * every box on the first frame that has boxes starts an object (track ids 1, 2, ... in file order);
  * a box on a later frame starts a new object on that frame when it matches no tracked object: its IoU with
    the bounding box of every tracked object's mask on that frame is below `new_object_iou` (default 0.5, the
    usual COCO match; lower it when detections of tracked objects are loose, raise it when new objects appear
    next to tracked ones). A box that matches starts nothing: SAM 2 keeps tracking that object from its memory.
    Boxes of one frame are not compared with each other (detectors already suppress duplicates).
  * the track keeps the class (id and name) of the box that started it.

Tracking with explicit prompts is not causal: propagation tracks every object on every frame, also on frames
before its first prompt, from memories of its later conditioning frame, and those memories change its later
frames too. So the masks equal those of the same boxes given as explicit prompts only when the final pass
knows every prompt. The plan:
  1. One pass with the first frame's boxes, written as it goes, that looks at each later frame's boxes. When
     none starts an object, that pass is the result: one pass, as with explicit prompts.
  2. At the first box that starts an object, the pass stops (nothing is written) and becomes a discovery pass:
     on the same state the new object is added there and tracking goes on forward, adding objects where boxes
     start them, up to the last frame with boxes.
  3. A second full pass with every prompt writes the result.
Cost: with new objects, the frames from the first box to the last box's frame are tracked once more than with
explicit prompts (up to 2x for a detector run on every frame); without, nothing more.
"""

from __future__ import annotations

import numpy as np

from sam2_trt.runtime.track import ObjectPrompt, track_video

NEW_OBJECT_IOU = 0.5
MAX_OBJECTS = 255  # track ids are the pixel values of the DAVIS PNGs


def box_iou(box, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x0, y0, x1, y1) box with each of boxes [N, 4] float (0 where a box is empty)."""
    x0, y0, x1, y1 = box
    iw = np.clip(np.minimum(x1, boxes[:, 2]) - np.maximum(x0, boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(y1, boxes[:, 3]) - np.maximum(y0, boxes[:, 1]), 0, None)
    inter = iw * ih
    union = (x1 - x0) * (y1 - y0) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """masks [O, H, W] bool -> [O, 4] float32 (x0, y0, x1, y1) around each mask's pixels (x1 = last column + 1,
    as COCO's x + w); all zeros for an empty mask."""
    out = np.zeros((len(masks), 4), np.float32)
    for i, m in enumerate(masks):
        cols, rows = np.flatnonzero(m.any(axis=0)), np.flatnonzero(m.any(axis=1))
        if cols.size:
            out[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return out


def unmatched(detections: list, masks: np.ndarray, new_object_iou: float) -> list:
    """The detections of one frame whose box IoU with every tracked mask's box (masks [O, H, W] bool) is below
    new_object_iou."""
    boxes = mask_boxes(masks)
    return [d for d in detections if not len(boxes) or box_iou(d.box, boxes).max() < new_object_iou]


class NewObjects(Exception):
    """Raised by the watching pass at the first frame where boxes start objects."""

    def __init__(self, frame: int, detections: list):
        super().__init__(f"{len(detections)} new object(s) on frame {frame}")
        self.frame, self.detections = frame, detections


def _starts_to_prompts(starts: list) -> tuple[list, dict]:
    """[(obj_id, Detection)] -> (box ObjectPrompts, {obj_id: category fields})."""
    prompts = [ObjectPrompt(d.frame, obj_id, box=tuple(float(v) for v in d.box)) for obj_id, d in starts]
    return prompts, {obj_id: d.category_fields() for obj_id, d in starts}


def _start(starts: list, detections: list) -> None:
    if len(starts) + len(detections) > MAX_OBJECTS:
        raise ValueError(f"the detections start more than {MAX_OBJECTS} objects in this video (track ids are the "
                         f"pixel values of the DAVIS PNGs); raise --score-threshold or filter --classes")
    first_id = len(starts) + 1
    starts.extend((first_id + k, d) for k, d in enumerate(detections))


def _discover(predictor, state, found: NewObjects, by_frame: dict, last: int, new_object_iou: float,
              starts: list) -> None:
    """Go on tracking forward on `state` (tracked up to found.frame) to frame `last`, starting objects where
    boxes match none; appends to `starts`."""
    frame, new = found.frame, found.detections
    while new:
        ids = len(starts) + 1
        _start(starts, new)
        for k, d in enumerate(new):
            predictor.add_new_points_or_box(state, frame, ids + k, box=np.array(d.box, np.float32))
        new = []
        if frame == last:
            break
        # The old objects are tracked through `frame` already; the new ones start from their prompt there.
        for f, _, logits in predictor.propagate_in_video(state, start_frame_idx=frame + 1,
                                                         max_frame_num_to_track=last - frame - 1):
            new = unmatched(by_frame.get(f, []), np.asarray(logits)[:, 0] > 0.0, new_object_iou)
            if new:
                frame = f
                break


def track_detections(predictor, video, frames, by_frame: dict, out_dir, new_object_iou: float = NEW_OBJECT_IOU,
                     **track_options):
    """Track the objects that the boxes `by_frame` ({frame: [Detection]}, prompts_by_frame) start through
    `video` and write runtime.track.track_video's outputs to out_dir (masks.json with each track's class).
    Returns (TrackResult, [(obj_id, Detection that started it)], passes: 1 or 2)."""
    if not by_frame:
        raise ValueError("no detection passes the score threshold and class filter, so nothing starts an object; "
                         "lower --score-threshold or widen --classes")
    first, last = min(by_frame), max(by_frame)
    starts = []
    _start(starts, by_frame[first])

    def watch(frame_idx, obj_ids, masks):
        if first < frame_idx <= last and frame_idx in by_frame:
            new = unmatched(by_frame[frame_idx], masks, new_object_iou)
            if new:
                raise NewObjects(frame_idx, new)

    prompts, categories = _starts_to_prompts(starts)
    state = predictor.init_state(str(video))
    try:
        result = track_video(predictor, video, frames, prompts, out_dir, categories=categories, state=state,
                             inspect=watch, into_empty_folder=True, **track_options)
        return result, starts, 1
    except NewObjects as found:
        _discover(predictor, state, found, by_frame, last, new_object_iou, starts)
    finally:
        state.close()
    prompts, categories = _starts_to_prompts(starts)
    result = track_video(predictor, video, frames, prompts, out_dir, categories=categories,
                         into_empty_folder=True, **track_options)
    return result, starts, 2
