"""Tracking a video into a folder: objects through a video from clicks, boxes and masks, written as DAVIS PNGs,
an overlay video and COCO RLE. The job behind `sam2-trt track`, `sam2-trt demo` and each video of
`sam2-trt track-many` (sam2_trt.jobs), usable from Python.

The tracking loop follows the official video notebook: prompts first, then propagation forward from the
earliest prompted frame to the end, then (when that frame is not frame 0) in reverse from it back to frame 0, as
`propagate_in_video(reverse=True)` does by default. Every frame is written once: frames before the earliest
prompt come from the reverse pass.

A run's outputs are one set (sam2_trt.core.files.OutputSet): written beside --out and moved in when tracking
finished, replacing the previous run's outputs (and removing those this run does not make again); a user's own
file in the way is refused before the model loads, never moved.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

DIRECTIONS = ("both", "forward", "backward")


@dataclass
class ObjectPrompt:
    """The clicks and/or box of one object on one frame, in video pixels (one add_new_points_or_box call), or
    its mask (one add_new_mask call)."""
    frame: int
    obj_id: int
    points: list = field(default_factory=list)  # [(x, y)]
    labels: list = field(default_factory=list)  # 1 foreground, 0 background, one per point
    box: tuple | None = None  # (x0, y0, x1, y1)
    mask: object = None  # [H, W] bool at the video's size, instead of points and box


@dataclass
class TrackResult:
    obj_ids: list  # every prompted object id, ascending
    frames: list  # indices of the frames written, ascending
    seconds: float  # time spent in the predictor (prompts + propagation), not in loading or writing
    backend: str
    outputs: dict  # name -> path written

    @property
    def fps(self) -> float:
        return len(self.frames) / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        return (f"tracked {len(self.obj_ids)} object{'s' * (len(self.obj_ids) != 1)} through {len(self.frames)} "
                f"frames in {self.seconds:.1f} s: {self.fps:.1f} FPS (backend {self.backend})")


# ---- prompts ---------------------------------------------------------------------------------------------------
def check_prompts(prompts, num_frames: int, width: int, height: int, max_frames: int | None = None) -> None:
    """Every prompt on a frame that will be tracked; raises ValueError. A point outside the [width, height] video
    is used as the official code uses it, with a warning (the same rule as the predictors')."""
    from .prompts import warn_outside

    if not prompts:
        raise ValueError("give at least one prompt: --point F,X,Y,OBJ (a click) or --box F,X0,Y0,X1,Y1,OBJ")
    for p in prompts:
        if not 0 <= p.frame < num_frames:
            limit = f" (--max-frames {max_frames})" if max_frames is not None else ""
            raise ValueError(f"object {p.obj_id} is prompted on frame {p.frame}, but the video has frames "
                             f"0..{num_frames - 1}{limit}")
        if p.mask is not None:
            if p.points or p.box:
                raise ValueError(f"object {p.obj_id} on frame {p.frame}: give a mask or clicks and a box, not both "
                                 f"(a mask prompt replaces the object's clicks on that frame)")
            if tuple(p.mask.shape) != (height, width):
                raise ValueError(f"object {p.obj_id} on frame {p.frame}: its mask is {p.mask.shape[1]}x"
                                 f"{p.mask.shape[0]}, the video is {width}x{height}; give a mask of the video's size")
        xy = list(p.points) + ([p.box[:2], p.box[2:]] if p.box else [])
        warn_outside(f"object {p.obj_id} on frame {p.frame}", xy, (height, width), stacklevel=3)


# ---- tracking --------------------------------------------------------------------------------------------------
def _passes(prompts, num_frames: int, direction: str) -> list:
    """[(start_frame, reverse, max_frame_num_to_track)] in the official meaning of those arguments."""
    first, last = min(p.frame for p in prompts), max(p.frame for p in prompts)
    if direction == "backward":  # from frame 0 the official reverse pass tracks nothing: frame 0 alone, forward
        return [(last, True, last)] if last > 0 else [(0, False, 0)]
    passes = [(first, False, num_frames - 1 - first)]
    if direction == "both" and first > 0:
        passes.append((first, True, first))
    return passes


def propagate(predictor, state, prompts, num_frames: int, direction: str = "both", timer=None):
    """Add `prompts` to `state`, then yield (frame_idx, obj_ids, masks [O, H, W] bool) once per tracked frame
    of the first `num_frames`, in processing order. `timer` (a list) accumulates the seconds spent in the
    predictor."""
    import numpy as np

    timer = timer if timer is not None else [0.0]
    t = time.perf_counter()
    for p in prompts:
        if p.mask is not None:
            predictor.add_new_mask(state, p.frame, p.obj_id, p.mask)
            continue
        predictor.add_new_points_or_box(
            state, p.frame, p.obj_id,
            points=np.array(p.points, np.float32) if p.points else None,
            labels=np.array(p.labels, np.int32) if p.points else None,
            box=np.array(p.box, np.float32) if p.box else None, clear_old_points=True, normalize_coords=True)
    timer[0] += time.perf_counter() - t
    seen = set()
    for start, reverse, n in _passes(prompts, num_frames, direction):
        results = iter(predictor.propagate_in_video(state, start_frame_idx=start, max_frame_num_to_track=n,
                                                    reverse=reverse))
        while True:
            t = time.perf_counter()
            try:
                frame_idx, obj_ids, logits = next(results)
            except StopIteration:
                break
            finally:
                timer[0] += time.perf_counter() - t
            if frame_idx in seen or not 0 <= frame_idx < num_frames:
                continue
            seen.add(frame_idx)
            yield int(frame_idx), [int(o) for o in obj_ids], np.asarray(logits)[:, 0] > 0.0


def output_names(overlay: bool, coco_json: bool, extra=()) -> list:
    """The outputs of one run, in the order they are written."""
    return ["masks"] + ["overlay.mp4"] * overlay + ["masks.json"] * coco_json + list(extra)


def track_video(predictor, video, frames, prompts, out_dir, *, max_frames: int | None = None,
                direction: str = "both", coco_json: bool = False, overlay: bool = True, caption: str | None = None,
                progress: bool = True, extra_outputs=None, categories: dict | None = None, state=None,
                inspect=None, into_empty_folder: bool = False) -> TrackResult:
    """Track `prompts` through `video` (a JPEG folder or video file) with a loaded SAM2VideoPredictor and write
    out_dir/masks/{frame:05d}.png, out_dir/overlay.mp4 (unless overlay=False), out_dir/masks.json (coco_json),
    and extra_outputs ({name: callable(TrackResult) -> str}, e.g. a report), as one set.

    frames: the same video opened with runtime.video.frames.open_video (for the overlay and the size checks).
    categories: {obj_id: {"category_id": int | None, "category": str | None}} written into masks.json.
    state: the predictor's init_state of `video` to add the prompts to (default: a new one); the caller keeps
        it, with every frame tracked so far, when `inspect` stops the pass.
    inspect: called as inspect(frame_idx, obj_ids, masks [O, H, W] bool) on each frame before it is written; an
        exception it raises ends the pass and nothing is written (sam2_trt.jobs stops there when a detection
        starts a new object).
    into_empty_folder: out_dir is a fresh folder the caller owns and commits itself (a job runner's attempt
        folder): written straight into, without the OutputSet's staging, lock and record.
    """
    from sam2_trt.core.files import FolderOutputs, OutputSet

    num_frames = frames.num_frames if max_frames is None else min(frames.num_frames, max_frames)
    check_prompts(prompts, num_frames, frames.width, frames.height, max_frames)
    extra_outputs = dict(extra_outputs or {})
    names = output_names(overlay, coco_json, extra_outputs)
    with (FolderOutputs(out_dir, names) if into_empty_folder else OutputSet(out_dir, names, tool="track")) as outputs:
        return _track_into(predictor, video, frames, prompts, outputs, num_frames, direction, coco_json, overlay,
                           caption, progress, extra_outputs, categories, state, inspect)


def _track_into(predictor, video, frames, prompts, outputs, num_frames: int, direction: str, coco_json: bool,
                overlay: bool, caption, progress: bool, extra_outputs: dict, categories=None, state=None,
                inspect=None) -> TrackResult:
    import numpy as np
    from tqdm import tqdm

    from .video_writers import CocoRleWriter, DavisMaskWriter, OverlayVideoWriter

    own_state = state is None  # a caller's state stays open for it (it may inspect and continue)
    state = predictor.init_state(str(video)) if own_state else state
    try:
        todo = len({f for start, reverse, n in _passes(prompts, num_frames, direction)
                    for f in range(start - n if reverse else start, (start if reverse else start + n) + 1)})
        timer, written = [0.0], []
        coco = (CocoRleWriter(outputs.path("masks.json"), video=Path(video).name, categories=categories)
                if coco_json else None)
        with DavisMaskWriter(outputs.path("masks")) as masks_out:
            with tqdm(total=todo, desc="tracking", unit="frame", file=sys.stderr, disable=not progress) as bar:
                for frame_idx, obj_ids, masks in propagate(predictor, state, prompts, num_frames, direction, timer):
                    if inspect is not None:
                        inspect(frame_idx, obj_ids, masks)
                    masks_out.write(frame_idx, obj_ids, masks)
                    if coco is not None:
                        coco.add(frame_idx, obj_ids, masks)
                    written.append(frame_idx)
                    bar.update()
            if not written:  # never a successful run with no frame: it would be an empty set of outputs
                raise ValueError(f"no frame was tracked (direction {direction!r} from the prompts on frames "
                                 f"{sorted({p.frame for p in prompts})}); use --direction both or forward")
            written.sort()
            if overlay:
                # From the written PNGs, in frame order: the reverse pass delivers frames backwards.
                ids = np.array(sorted({p.obj_id for p in prompts}), np.uint8)
                with OverlayVideoWriter(outputs.path("overlay.mp4"), video_fps(video), frames.width, frames.height,
                                        caption=caption) as video_out:
                    for f in tqdm(written, desc="overlay", unit="frame", file=sys.stderr, disable=not progress):
                        video_out.write(frames.get(f), ids, masks_out.labels(f)[None] == ids[:, None, None])
        if coco is not None:
            coco.close()
    finally:
        if own_state:
            state.close()
    final = {name: outputs.out_dir / name for name in outputs.names}
    result = TrackResult(sorted({p.obj_id for p in prompts}), written, timer[0],
                         str(getattr(predictor, "backend_name", "?")), final)
    for name, render in extra_outputs.items():
        outputs.path(name).write_text(render(result))
    return result


def video_fps(video) -> float:
    """Frame rate of a video file (its average rate); 24, the DAVIS rate, for a JPEG folder or an unknown rate."""
    if Path(video).is_file():
        import av

        try:
            with av.open(str(video)) as container:
                rate = container.streams.video[0].average_rate
            if rate:
                return float(rate)
        except (av.FFmpegError, IndexError):
            pass
    return 24.0


def track_to_dir(model_dir, video, prompts, out_dir, *, backend: str = "auto", device: str = "cuda",
                 non_overlap: bool = False, progress: bool = True, max_frames: int | None = None,
                 direction: str = "both", coco_json: bool = False, overlay: bool = True, caption: str | None = None,
                 extra_outputs=None) -> TrackResult:
    """Open `video`, check the prompts and the output folder, then load the predictor from `model_dir` and track
    (track_video's options): every input is checked before the slow load."""
    from sam2_trt.core.files import OutputSet

    from .video.frames import open_video

    frames = open_video(str(video))  # raises VideoError naming the path when it is neither folder nor video
    try:
        n = frames.num_frames if max_frames is None else min(frames.num_frames, max_frames)
        check_prompts(prompts, n, frames.width, frames.height, max_frames)
        extra_outputs = dict(extra_outputs or {})
        with OutputSet(out_dir, output_names(overlay, coco_json, extra_outputs), tool="track") as outputs:
            from . import SAM2VideoPredictor

            predictor = SAM2VideoPredictor.load(model_dir, backend=backend, device=device,
                                                non_overlap_masks=non_overlap)
            return _track_into(predictor, video, frames, prompts, outputs, n, direction, coco_json, overlay,
                               caption, progress, extra_outputs)
    finally:
        frames.close()
