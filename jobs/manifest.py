"""The manifest of a track-many job: JSON Lines, one video a line.

    {"video": "clips/cat.mp4", "prompts": [{"frame": 0, "obj_id": 1, "points": [[210, 350]], "labels": [1]},
                                           {"frame": 0, "obj_id": 2, "box": [300, 0, 500, 400], "category": "dog"},
                                           {"frame": 4, "obj_id": 3, "mask": "masks/cat-3.png"}]}
    {"video": "clips/street", "detections": "detections/street.json", "id": "street-north"}

  video       a video file or a folder of JPEG frames (what `sam2-trt track` takes)
  prompts     explicit prompts, as `sam2-trt track --point/--box` gives them: per frame and object, clicks
              ("points" [[x, y], ...] with "labels", 1 foreground (default) or 0 background) and/or a "box"
              [x0, y0, x1, y1], or a "mask" (an image of the video's size, nonzero = the object); object ids 1..255;
              an optional "category" (a name, or an integer class id) is kept for the object
  detections  or: a detector's boxes (sam2_trt.jobs.detections: COCO-style or supervision JSON)
  id          the video's output folder name (default: the video's file or folder name without its suffix)

Relative paths are relative to the manifest's folder. Blank lines and lines starting with # are skipped.
A line that is not a JSON object with a "video", and ids that repeat, stop the job before it starts (exit 3,
naming the line). Prompts that cannot be used make only that video fail, with the reason in the job summary.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from sam2_trt.runtime.track import ObjectPrompt

from .errors import JobError

_ID = re.compile(r"[^/\\\x00]+")
PROMPT_KEYS = {"frame", "obj_id", "points", "labels", "box", "mask", "category"}


@dataclass
class VideoTask:
    """One line of the manifest, resolved."""
    id: str  # output folder name under OUT/videos
    video: str  # absolute path of the video file or JPEG folder
    line: int  # 1-based line in the manifest
    entry: dict  # the line as given (part of the video's fingerprint)
    prompts: list = field(default_factory=list)  # ObjectPrompt; a mask prompt holds its image's path until run
    categories: dict = field(default_factory=dict)  # {obj_id: {"category_id", "category"}} of explicit prompts
    detections: str | None = None  # absolute path of the detections file
    error: str | None = None  # why the prompts cannot be used: the video fails with this reason

    def input_files(self) -> list:
        """Files besides the video whose contents decide the outputs (the detections, the mask prompts)."""
        return ([self.detections] if self.detections else []) + [p.mask for p in self.prompts if p.mask]


def read_manifest(path) -> list[VideoTask]:
    """Every video of a manifest, in order; raises JobError for lines that do not name a video, and repeated ids."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise JobError(f"cannot read the manifest {path}: {e}") from None
    tasks, seen = [], {}
    for number, text in enumerate(lines, 1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        where = f"{path}, line {number}"
        try:
            entry = json.loads(text)
        except json.JSONDecodeError as e:
            raise JobError(f"{where} is not JSON ({e.msg} at column {e.colno}); each line is one video, e.g. "
                           f'{{"video": "clip.mp4", "detections": "clip.json"}}') from None
        if not isinstance(entry, dict) or not isinstance(entry.get("video"), str) or not entry["video"]:
            raise JobError(f'{where}: expected an object with a "video" path, e.g. {{"video": "clip.mp4", '
                           f'"prompts": [...]}} or {{"video": "clip.mp4", "detections": "clip.json"}}')
        task = _task(entry, number, path.parent)
        if task.id in seen:
            raise JobError(f'{where}: video id {task.id!r} is already used on line {seen[task.id]}; give one of them '
                           f'an "id" (its output folder name)')
        seen[task.id] = number
        tasks.append(task)
    if not tasks:
        raise JobError(f"the manifest {path} lists no video")
    return tasks


def _task(entry: dict, line: int, base: Path) -> VideoTask:
    video = (base / entry["video"]).resolve()
    video_id = entry.get("id", video.stem if video.suffix else video.name)
    if not isinstance(video_id, str) or not _ID.fullmatch(video_id) or video_id.startswith("."):
        raise JobError(f'{base}, line {line}: id {video_id!r} cannot be a folder name; give an "id" without "/" '
                       f'that does not start with "."')
    task = VideoTask(video_id, str(video), line, entry)
    try:
        unknown = set(entry) - {"video", "id", "prompts", "detections"}
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}; a line has video, prompts or "
                             f"detections, and id")
        if ("prompts" in entry) == ("detections" in entry):
            raise ValueError('give either "prompts" (explicit) or "detections" (a detector\'s boxes)')
        if "detections" in entry:
            if not isinstance(entry["detections"], str):
                raise ValueError(f'"detections" must be a path, got {entry["detections"]!r}')
            task.detections = str((base / entry["detections"]).resolve())
        else:
            task.prompts, task.categories = parse_prompts(entry["prompts"], base)
    except (TypeError, ValueError) as e:
        task.error = f"line {line}: {e}"
    return task


def _xy_list(value, what: str) -> list:
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                              for v in value):
        raise ValueError(f"{what} must be a list of numbers, got {value!r}")
    return [float(v) for v in value]


def _integer(value, what: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        span = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{what} must be a whole number {span}, got {value!r}")
    return value


def parse_prompts(prompts, base: Path) -> tuple[list, dict]:
    """The "prompts" list of a line -> (ObjectPrompts, {obj_id: category fields}); raises ValueError."""
    if not isinstance(prompts, list) or not prompts:
        raise ValueError('"prompts" must be a non-empty list of {"frame", "obj_id", "points"/"box"/"mask"}')
    out, categories, seen = [], {}, set()
    for i, p in enumerate(prompts):
        what = f"prompt {i}"
        if not isinstance(p, dict) or set(p) - PROMPT_KEYS:
            raise ValueError(f"{what}: expected an object with {', '.join(sorted(PROMPT_KEYS))}, got {p!r}")
        frame = _integer(p.get("frame"), f"{what}: frame", 0)
        obj = _integer(p.get("obj_id"), f"{what}: obj_id", 1, 255)
        if (frame, obj) in seen:
            raise ValueError(f"{what}: object {obj} has another prompt on frame {frame}; put its clicks and box in one")
        seen.add((frame, obj))
        prompt = ObjectPrompt(frame, obj)
        if "points" in p:
            prompt.points = [tuple(_xy_list(xy, f"{what}: each point")) for xy in p["points"]]
            if not prompt.points or any(len(xy) != 2 for xy in prompt.points):
                raise ValueError(f"{what}: points must be [[x, y], ...], got {p['points']!r}")
            prompt.labels = [_integer(v, f"{what}: each label", 0, 1) for v in p.get("labels", [1] * len(p["points"]))]
            if len(prompt.labels) != len(prompt.points):
                raise ValueError(f"{what}: {len(prompt.points)} points but {len(prompt.labels)} labels")
        elif "labels" in p:
            raise ValueError(f"{what}: labels without points")
        if "box" in p:
            box = _xy_list(p["box"], f"{what}: box")
            if len(box) != 4 or not (box[2] > box[0] and box[3] > box[1]):
                raise ValueError(f"{what}: box must be [x0, y0, x1, y1] with x1 > x0 and y1 > y0, got {p['box']!r}")
            prompt.box = tuple(box)
        if "mask" in p:
            if not isinstance(p["mask"], str) or prompt.points or prompt.box:
                raise ValueError(f"{what}: mask must be an image path, and alone (no points or box)")
            prompt.mask = str((base / p["mask"]).resolve())
        if not (prompt.points or prompt.box or prompt.mask):
            raise ValueError(f"{what}: give points, a box or a mask")
        if "category" in p:
            categories[obj] = _category(p["category"], categories.get(obj), f"{what}: category")
        out.append(prompt)
    return out, categories


def _category(value, earlier: dict | None, what: str) -> dict:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
        raise ValueError(f"{what} must be a name or an integer class id, got {value!r}")
    fields = {"category_id": value, "category": None} if isinstance(value, int) else \
        {"category_id": None, "category": value}
    if earlier is not None and earlier != fields:
        raise ValueError(f"{what} {value!r} differs from the object's category on another frame")
    return fields


def load_mask(path: str, obj_id: int, frame: int):
    """A mask prompt's image -> [H, W] bool (nonzero pixels); ValueError naming it when it cannot be read."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as im:  # a palette PNG (DAVIS) by its indices, anything else by its brightness
            return np.asarray(im if im.mode == "P" else im.convert("L")) > 0
    except (OSError, ValueError) as e:
        raise ValueError(f"the mask of object {obj_id} on frame {frame} ({path}) cannot be read: {e}") from None
