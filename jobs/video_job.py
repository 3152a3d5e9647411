"""One video of a job, start to finish: prompts (explicit or from a detector), tracking, outputs into an attempt
folder, the video's record, and the rename that makes it done. A VideoRunner holds the loaded model for a
worker's whole life: the local job has one, each Ray worker is one (sam2_trt.jobs.ray_pool).

A video that cannot be done (unreadable, bad prompts or detections, a failure inside tracking) comes back as a
record with status "failed" and its reason, and its attempt folder is removed; the runner stays usable.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from sam2_trt.core.errors import Sam2TrtError
from sam2_trt.runtime.track import track_video

from .detections import DetectionFilter, prompts_by_frame, read_detections
from .detector_prompts import NEW_OBJECT_IOU, track_detections
from .layout import RECORD, commit, read_json, write_json
from .manifest import VideoTask, load_mask

UNKNOWN_CATEGORY = {"category_id": None, "category": None}


@dataclass(frozen=True)
class JobOptions:
    """How every video of a job is tracked (the `sam2-trt track-many` options)."""
    backend: str = "auto"  # runtime backend: auto, tensorrt, onnxruntime-cuda, onnxruntime-cpu
    device: str = "cuda"  # cuda, cuda:N or cpu (a Ray worker's GPU is its cuda)
    non_overlap: bool = False  # at most one object per pixel (the official non_overlap_masks)
    overlay: bool = False  # also write overlay.mp4 per video
    score_threshold: float = 0.5  # detections below this score prompt nothing
    classes: tuple = ()  # detections of these class ids / names only (empty: all)
    new_object_iou: float = NEW_OBJECT_IOU  # a later box below this IoU with every tracked mask's box is new
    max_attempts: int = 3  # attempts per video when its worker dies (Ray)

    def settings(self) -> dict:
        """What decides the outputs (a video's fingerprint): everything but how often to retry."""
        out = dataclasses.asdict(self)
        del out["max_attempts"]
        out["classes"] = sorted(map(str, self.classes))
        return out


class VideoRunner:
    """A loaded SAM2VideoPredictor and the per-video job.

    name: the worker's name in the records. threads: cap ONNX Runtime's CPU threads (a Ray worker given N CPUs
    uses N, so that workers sharing a machine do not oversubscribe it); None leaves the default.
    setup: called first, in the worker's process (e.g. the CLI's hook that builds missing TensorRT engines).
    """

    def __init__(self, model_dir, options: JobOptions, name: str = "local", threads: int | None = None,
                 setup=None):
        from sam2_trt.runtime import SAM2VideoPredictor

        if threads:
            os.environ["SAM2_TRT_THREADS"] = str(threads)  # read when the backend opens (onnxruntime_cpu.py)
        if setup is not None:
            setup()
        self.options = options
        self.predictor = SAM2VideoPredictor.load(model_dir, backend=options.backend, device=options.device,
                                                 non_overlap_masks=options.non_overlap)
        self.where = {"worker": name, "host": socket.gethostname(), "pid": os.getpid()}

    def describe(self) -> dict:
        return {**self.where, "backend": self.predictor.backend_name}

    def run(self, task: VideoTask, fingerprint: str, attempt_dir, final_dir) -> dict:
        """Track one video into attempt_dir (an empty folder), then rename it to final_dir; returns its record
        (status "done", or "failed" with a reason)."""
        start = time.perf_counter()
        attempt, final = Path(attempt_dir), Path(final_dir)
        earlier = read_json(final / RECORD)
        if earlier and earlier.get("fingerprint") == fingerprint:
            shutil.rmtree(attempt, ignore_errors=True)  # done by an attempt whose worker died after the rename
            return earlier
        base = {"id": task.id, "video": task.video, **self.where, "backend": self.predictor.backend_name}
        try:
            record = {**base, **self._track(task, attempt)}
            seconds = time.perf_counter() - start
            record.update(status="done", seconds=round(seconds, 3), fps=round(record["frames"] / seconds, 3),
                          fingerprint=fingerprint, finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            write_json(attempt / RECORD, record)
            commit(attempt, final)
            return record
        except Exception as e:  # noqa: BLE001 - any failure of one video is recorded, and the job goes on
            shutil.rmtree(attempt, ignore_errors=True)
            failed = {**base, "status": "failed", "seconds": round(time.perf_counter() - start, 3)}
            if isinstance(e, (ValueError, Sam2TrtError)):  # bad input: the message says what to fix
                return {**failed, "reason": str(e)}
            return {**failed, "reason": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=-8)}
        except BaseException:
            shutil.rmtree(attempt, ignore_errors=True)
            raise

    def _track(self, task: VideoTask, out_dir: Path) -> dict:
        """Track the video's objects into out_dir; the record's fields about what was tracked."""
        from sam2_trt.runtime.video.frames import open_video

        if task.error:
            raise ValueError(task.error)
        options = dict(coco_json=True, overlay=self.options.overlay, progress=False)
        with open_video(task.video) as frames:
            if task.detections:
                keep = DetectionFilter(self.options.score_threshold, tuple(self.options.classes))
                by_frame = prompts_by_frame(read_detections(task.detections), keep, frames.num_frames, frames.width,
                                            frames.height)
                result, starts, passes = track_detections(self.predictor, task.video, frames, by_frame, out_dir,
                                                          self.options.new_object_iou, **options)
                tracks = [{"obj_id": o, "first_frame": d.frame, "box": [round(v, 2) for v in d.box],
                           "score": d.score, **d.category_fields()} for o, d in starts]
            else:
                prompts = [dataclasses.replace(p, mask=load_mask(p.mask, p.obj_id, p.frame)) if p.mask else p
                           for p in task.prompts]
                categories = {p.obj_id: task.categories.get(p.obj_id, UNKNOWN_CATEGORY) for p in prompts}
                result = track_video(self.predictor, task.video, frames, prompts, out_dir, categories=categories,
                                     into_empty_folder=True, **options)
                passes = 1
                tracks = [{"obj_id": o, "first_frame": min(p.frame for p in prompts if p.obj_id == o),
                           **categories[o]} for o in result.obj_ids]
        return {"prompts_from": "detections" if task.detections else "prompts", "frames": len(result.frames),
                "objects": len(tracks), "tracks": tracks, "passes": passes}
