"""Videos per minute of `track-many`: the same job run locally (one process, one video after another) and on a
Ray cluster with --workers workers, in the same run, on the same videos.

    sam2-trt bench many [--videos N] [--frames N] [--frame-size 320x240] [--objects 2] [--image-size 512]
                        [--modes local ray] [--workers 2] [--backend auto] [--device cuda|cpu]
                        [--checkpoint PT --model-dir DIR] [--results DIR]

The job: a manifest of --videos videos (each the same synthetic clip of --frames frames, benchmarks/scene.py,
under its own id), --objects clicks on frame 0 of each, tracked into a fresh output folder (DAVIS PNGs and
masks.json per video, as a dataset job writes them). Each mode runs in a fresh child process. videos/min =
videos / the job's wall time (track_many from call to summary: the workers' start and model loading count; on
Ray the cluster's own start, ray.init here, is timed apart, as a real cluster is already up). On a CPU-only
machine each Ray worker gets one CPU and runs ONNX Runtime on one thread; the local job uses every core.
Results: a table and <--results>/many-<machine>-<date>.json (default ./benchmarks/results).
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from sam2_trt.benchmarks.child import run_in_child
from sam2_trt.benchmarks.environment import describe, gpu_description, machine_label
from sam2_trt.benchmarks.models import bench_models
from sam2_trt.benchmarks.results_file import write_result
from sam2_trt.benchmarks.scene import MovingScene, clicks, write_clip

CPU_DEFAULTS = {"videos": 6, "frames": 8, "workers": 2}
GPU_DEFAULTS = {"videos": 32, "frames": 60, "workers": None}  # None: one Ray worker per GPU


def write_manifest(folder: Path, videos: int, frames: int, h: int, w: int, objects: int) -> Path:
    """A manifest of `videos` lines over one synthetic clip, `objects` clicks on frame 0 of each."""
    clip = write_clip(folder / "clip", frames, h, w, objects)
    prompts = [{"frame": 0, "obj_id": obj_id, "points": points.tolist(), "labels": labels.tolist()}
               for obj_id, points, labels in clicks(MovingScene(h, w, objects), objects)]
    manifest = folder / "videos.jsonl"
    manifest.write_text("".join(json.dumps({"video": str(clip), "id": f"video{i:03d}", "prompts": prompts}) + "\n"
                                for i in range(videos)))
    return manifest


def run_child(job: dict) -> dict:
    """Child process: one job in job["mode"] ("local" or "ray"); returns its timings."""
    from sam2_trt.jobs import JobOptions, track_many

    cluster_start = None
    if job["mode"] == "ray":
        import ray

        t0 = time.perf_counter()
        ray.init(include_dashboard=False, log_to_driver=False)
        cluster_start = time.perf_counter() - t0
    out = Path(job["out"])
    t0 = time.perf_counter()
    summary = track_many(job["manifest"], job["model_dir"], out, ray=job["mode"] == "ray", workers=job["workers"],
                         options=JobOptions(backend=job["backend"], device=job["device"]), progress=False)
    seconds = time.perf_counter() - t0
    videos = [r for r in summary["videos"] if r["status"] == "done"]
    return {"mode": job["mode"], "workers": len(summary["workers"]), "backend": summary["workers"][0]["backend"],
            "videos": len(videos), "failed": summary["counts"]["failed"], "seconds": seconds,
            "videos_per_minute": 60 * len(videos) / seconds, "cluster_start_s": cluster_start,
            "video_seconds_median": statistics.median(r["seconds"] for r in videos) if videos else None,
            "video_fps_median": statistics.median(r["fps"] for r in videos) if videos else None,
            "per_video": [{k: r.get(k) for k in ("id", "worker", "seconds", "fps")} for r in videos]}


def print_row(r: dict, header: bool) -> None:
    if header:
        print(f"{'mode':<6} {'workers':>7} {'videos':>6} {'seconds':>8} {'videos/min':>10} {'x local':>8} "
              f"{'cluster start s':>15}")
    if "error" in r:
        print(f"{r['mode']:<6} error: {r['error']}")
        return
    start = "-" if r["cluster_start_s"] is None else f"{r['cluster_start_s']:.1f}"
    speedup = f"{r['speedup']:.2f}" if "speedup" in r else "-"
    print(f"{r['mode']:<6} {r['workers']:>7} {r['videos']:>6} {r['seconds']:>8.1f} {r['videos_per_minute']:>10.2f} "
          f"{speedup:>8} {start:>15}")


def run(args) -> int:
    """`sam2-trt bench many` (args: its options, sam2_trt.cli.bench): one child per mode, the table and the
    results file under args.results. Returns the exit code."""
    device = args.device or ("cuda" if gpu_description() else "cpu")
    defaults = GPU_DEFAULTS if device.startswith("cuda") else CPU_DEFAULTS
    videos, frames = args.videos or defaults["videos"], args.frames or defaults["frames"]
    workers = args.workers or defaults["workers"]
    model = bench_models(["sam2.1_hiera_t"], [args.image_size], args.checkpoint, args.model_dir)[0]
    h, w = args.frame_size
    rows = []
    work = Path(tempfile.mkdtemp(prefix="sam2-trt-bench-many-"))
    try:
        manifest = write_manifest(work, videos, frames, h, w, args.objects)
        for mode in args.modes:
            job = {"mode": mode, "manifest": str(manifest), "model_dir": str(model.model_dir), "out": str(work / mode),
                   "workers": workers if mode == "ray" else None, "backend": args.backend, "device": device}
            rows.append({"mode": mode, **run_in_child("sam2_trt.benchmarks.many", job)})
            local = next((r for r in rows if r["mode"] == "local" and "error" not in r), None)
            if local and rows[-1] is not local and "error" not in rows[-1]:
                rows[-1]["speedup"] = rows[-1]["videos_per_minute"] / local["videos_per_minute"]
            print_row(rows[-1], header=len(rows) == 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    env = describe()
    result = {"benchmark": "many", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_label(env),
              "environment": env, "model": model.describe(), "device": device,
              "settings": {"videos": videos, "frames": frames, "frame_size": f"{w}x{h}", "objects": args.objects,
                           "workers": workers, "backend": args.backend}, "rows": rows}
    path = write_result(args.results, "many", machine_label(env), result)
    print(f"{model.name} at {model.image_size}px on {device}, {machine_label(env)}: wrote {path}")
    return 0
