"""sam2_trt.jobs: many videos tracked into one output folder, in this process or across a Ray cluster, with
explicit prompts or with a detector's boxes as prompts (`sam2-trt track-many`).

    from sam2_trt.jobs import JobOptions, read_tracks, track_many
    summary = track_many("videos.jsonl", "models/t", "out/", ray=True, options=JobOptions(score_threshold=0.4))
    detections = read_tracks("out/videos/street")     # {frame: supervision.Detections} (masks, boxes, track ids)

Parts: manifest.py (the JSON Lines manifest), detections.py (detector files), detector_prompts.py (which boxes
start tracks), video_job.py (one video, start to finish), layout.py (the output folder, atomic outputs, reruns),
summary.py (OUT/job.json), ray_pool.py (Ray workers, retries), job.py (track_many), tracks.py (supervision).
Built on the runtime (runtime/track.py tracks and writes each video); Ray and supervision are optional
(pip install 'sam2-trt[ray,supervision]').
"""

from .detections import Detection, DetectionFilter, read_detections
from .errors import JobError
from .job import track_many
from .manifest import VideoTask, read_manifest
from .tracks import FrameTracks, as_detections, read_tracks
from .video_job import JobOptions

__all__ = ["track_many", "JobOptions", "JobError", "read_manifest", "VideoTask", "read_detections", "Detection",
           "DetectionFilter", "read_tracks", "as_detections", "FrameTracks"]
