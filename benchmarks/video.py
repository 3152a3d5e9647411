"""Video tracking FPS, end to end, ours against the official SAM2VideoPredictor in the same run.

    sam2-trt bench video [--models sam2.1_hiera_t ...] [--image-sizes 1024 512] [--objects 1 3 10]
                         [--frames N] [--frame-size 854x480] [--backends ...] [--precision fp16]
                         [--official-modes ...] [--warmup-frames N] [--reps N] [--device cuda|cpu]
                         [--checkpoint PT --model-dir DIR] [--results DIR]

One pass is what an application does: `init_state` on a folder of JPEG frames (decode and resize), one click per
object on frame 0, `propagate_in_video` over every frame, and each frame's masks at video resolution on the host
as booleans (`logits > 0`). FPS = frames / the pass's wall time. Every side of a case is loaded once in its own
child process (benchmarks/workers.py: the official side's torch never shares a process with ours), runs one
untimed warm-up pass over --warmup-frames frames (ONNX Runtime's first-run planning, CUDA graph capture,
torch.compile for vos_optimized), then the sides take turns: --reps rounds, each running one timed pass of every
side, so a change in the machine's load hits every side alike; the median is reported. On a CPU every side runs
with --threads threads (ONNX Runtime intra-op, torch).

Measured side by side: the official predictor (on a GPU under bf16 autocast, eager and vos_optimized, as its
README; on a CPU in fp32) and each of our backends that can run here. Both load the same weights
(benchmarks/models.py: seeded random weights by default). Targets: the official numbers of the same run are the
baseline (README: CPU >= 1.5x official at tiny 1024 with one object; GPU >= 2x official vos_optimized, and
10 objects at most 3x the time of one). Results: a table on stdout and <--results>/video-<machine>-<date>.json
(default ./benchmarks/results).
"""

from __future__ import annotations

import copy
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from sam2_trt.benchmarks.environment import describe, gpu_description, machine_label
from sam2_trt.benchmarks.child import peak_rss_mb, run_in_child
from sam2_trt.benchmarks.models import BenchModel, bench_models
from sam2_trt.benchmarks.results_file import write_result
from sam2_trt.benchmarks.scene import MovingScene, cached_clip, clicks

DISCS = 10  # the clip always has 10 discs; a case with k objects clicks the first k
GPU_DEFAULTS = {"models": ["sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l"],
                "image_sizes": [1024, 512], "objects": [1, 3, 10], "frames": 60, "warmup_frames": 8, "reps": 3}
# A 2-core CPU takes seconds per frame at 1024 px: the target case (tiny, one object) and 512 px by default
CPU_DEFAULTS = {"models": ["sam2.1_hiera_t"], "image_sizes": [1024, 512], "objects": [1], "frames": 16,
                "warmup_frames": 2, "reps": 2}
CPU_TARGET, GPU_TARGET, OBJECT_SCALING_TARGET = 1.5, 2.0, 3.0


# -- one pass -------------------------------------------------------------------------------------------------
def one_pass(predictor, clip: Path, prompts: list, frames: int | None, host_masks) -> dict:
    """init_state -> clicks -> propagate (up to `frames` frames) -> masks on the host; returns its timings."""
    t0 = time.perf_counter()
    state = predictor.init_state(str(clip))
    for obj_id, points, labels in prompts:
        predictor.add_new_points_or_box(state, frame_idx=0, obj_id=obj_id, points=points, labels=labels)
    t_prompted = time.perf_counter()
    n = 0
    limit = None if frames is None else frames - 1
    for _, _, logits in predictor.propagate_in_video(state, max_frame_num_to_track=limit):
        host_masks(logits)
        n += 1
    seconds = time.perf_counter() - t0
    close = getattr(state, "close", None)
    if close is not None:
        close()
    return {"frames": n, "seconds": seconds, "init_and_prompt_s": t_prompted - t0, "fps": n / seconds}


def measure(predictor, clip: Path, prompts: list, warmup_frames: int, reps: int, host_masks, context) -> dict:
    with context():
        warm = one_pass(predictor, clip, prompts, warmup_frames, host_masks) if warmup_frames else None
        passes = [one_pass(predictor, clip, prompts, None, host_masks) for _ in range(reps)]
    return {"warmup_s": None if warm is None else warm["seconds"], "passes": passes,
            "fps": statistics.median(p["fps"] for p in passes)}


# -- the two sides, each in its own child process ---------------------------------------------------------------
def _opened(job: dict):
    """One side, loaded: (predictor, host_masks(logits) -> bool masks on the host, context() to run it in,
    seconds it took to load, info() -> what the side reports after its passes)."""
    import contextlib

    t0 = time.perf_counter()
    if job["side"] == "official":
        from sam2_trt.benchmarks import official

        device = job["device"]
        if device == "cpu" and job.get("threads"):
            import torch

            torch.set_num_threads(job["threads"])
        predictor = official.video_predictor(job["config"], job["checkpoint"], job["image_size"], device,
                                             job["mode"])

        def info():
            import torch

            return {"peak_rss_mb": peak_rss_mb(), "peak_gpu_mb": official.peak_gpu_mb(device),
                    "torch_threads": torch.get_num_threads()}

        return (predictor, lambda logits: (logits > 0).cpu().numpy(), lambda: official.running(device),
                time.perf_counter() - t0, info)
    if job["device"] == "cpu" and job.get("threads"):
        os.environ["SAM2_TRT_THREADS"] = str(job["threads"])  # read by the ONNX Runtime CPU backend
    from sam2_trt.runtime import SAM2VideoPredictor

    predictor = SAM2VideoPredictor.load(job["model_dir"], backend=job["backend"], device=job["device"],
                                        precision=job["precision"])
    return (predictor, lambda logits: np.asarray(logits) > 0, contextlib.nullcontext, time.perf_counter() - t0,
            lambda: {"peak_rss_mb": peak_rss_mb(), "peak_gpu_mb": None, "backend": predictor.backend_name})


def run_child(job: dict) -> dict:
    """Child process (benchmarks/child.py): load one side, one warm-up pass, job["reps"] timed passes."""
    predictor, host_masks, context, load_s, info = _opened(job)
    out = measure(predictor, Path(job["clip"]), _prompts(job), job["warmup_frames"], job["reps"], host_masks,
                  context)
    return {**out, "load_s": load_s, **info()}


def open_side(job: dict) -> dict:
    """Child process (benchmarks/workers.py): load one side; its calls are one warm-up pass, one timed pass and
    its info, so the parent can interleave the passes of every side."""
    predictor, host_masks, context, load_s, info = _opened(job)
    context().__enter__()  # for the life of this child
    clip, prompts = Path(job["clip"]), _prompts(job)
    return {"warmup": lambda: one_pass(predictor, clip, prompts, job["warmup_frames"], host_masks)["seconds"],
            "pass": lambda: one_pass(predictor, clip, prompts, None, host_masks),
            "info": lambda: {"load_s": load_s, **info()}}


def _prompts(job: dict) -> list:
    h, w = job["frame_hw"]
    return clicks(MovingScene(h, w, DISCS), job["objects"])


# -- what to measure -------------------------------------------------------------------------------------------
def available_backends(device: str, wanted: list | None) -> list:
    """Our backends to measure: `wanted`, or every one that can run on `device` (on a GPU, ONNX Runtime on the
    CPU is left out when a GPU backend runs: minutes per pass, and not what a GPU user runs)."""
    from sam2_trt.runtime.backends import unavailable_reasons

    if wanted:
        return wanted
    found = []
    for name, reason in unavailable_reasons(device).items():
        if reason is None:
            found.append(name)
        else:
            print(f"skipping backend {name}: {reason}", file=sys.stderr)
    if device.startswith("cuda") and len(found) > 1 and "onnxruntime-cpu" in found:
        found.remove("onnxruntime-cpu")
    return found


def sides(device: str, backends: list, precision: str, modes: list) -> list:
    """[(side, label, settings)] for one case."""
    out = [("official", f"official {mode}", {"mode": mode}) for mode in modes]
    for b in backends:
        label = f"ours {b}" + (f" {precision}" if b == "tensorrt" else "")
        dev = "cpu" if b == "onnxruntime-cpu" else device
        out.append(("ours", label, {"backend": b, "precision": precision if b == "tensorrt" else None,
                                    "device": dev}))
    return out


def summarize(rows: list) -> list:
    """Speed-ups against the official baseline of the same case, and the object scaling of each side."""
    notes = []
    by_case = {}
    for r in rows:
        by_case.setdefault((r["model"], r["image_size"], r["objects"]), []).append(r)
    for (model, size, objects), case in by_case.items():
        official = {r["label"]: r["fps"] for r in case if r["side"] == "official" and r.get("fps")}
        if not official:
            continue
        base_label = "official vos-bf16" if "official vos-bf16" in official else max(official, key=official.get)
        for r in case:
            if r["side"] == "ours" and r.get("fps"):
                r["speedup_vs"] = base_label
                r["speedup"] = r["fps"] / official[base_label]
    for r in rows:
        one = next((o for o in rows if o["label"] == r["label"] and o["model"] == r["model"]
                    and o["image_size"] == r["image_size"] and o["objects"] == 1 and o.get("fps")), None)
        if one is not None and r.get("fps") and r["objects"] > 1:
            r["time_vs_one_object"] = one["fps"] / r["fps"]
    for r in rows:
        if r["side"] != "ours" or "speedup" not in r:
            continue
        target = CPU_TARGET if r["device"] == "cpu" else GPU_TARGET
        notes.append(f"{r['model']} {r['image_size']}px {r['objects']} obj, {r['label']}: {r['speedup']:.2f}x "
                     f"{r['speedup_vs']} ({'meets' if r['speedup'] >= target else 'MISSES'} the {target}x target)")
        if "time_vs_one_object" in r and r["objects"] == 10:
            ok = r["time_vs_one_object"] <= OBJECT_SCALING_TARGET
            notes.append(f"  10 objects cost {r['time_vs_one_object']:.2f}x one object "
                         f"({'meets' if ok else 'MISSES'} the <= {OBJECT_SCALING_TARGET}x target)")
    return notes


def print_row(r: dict, header: bool) -> None:
    if header:
        print(f"{'model':16} {'px':>5} {'obj':>3} {'side':28} {'FPS':>8} {'x official':>10} {'x 1 obj':>8} "
              f"{'load s':>7} {'peak RSS MB':>11}")
    if "error" in r:
        print(f"{r['model']:16} {r['image_size']:5d} {r['objects']:3d} {r['label']:28} failed: {r['error']}")
        return
    speed = f"{r['speedup']:.2f}" if "speedup" in r else "-"
    scale = f"{r['time_vs_one_object']:.2f}" if "time_vs_one_object" in r else "-"
    print(f"{r['model']:16} {r['image_size']:5d} {r['objects']:3d} {r['label']:28} {r['fps']:8.3f} {speed:>10} "
          f"{scale:>8} {r['load_s']:7.1f} {r['peak_rss_mb']:11.0f}", flush=True)


def measure_side(model: BenchModel, clip: Path, frame_hw, objects: int, side: str, label: str, settings: dict,
                 args, timeout: float | None = None) -> dict:
    """One row: `side` (official or ours, with its settings) tracking `objects` objects of the clip, measured in a
    child process (at most `timeout` seconds: then the row holds the error)."""
    job = {"side": side, "config": model.config, "checkpoint": str(model.checkpoint),
           "model_dir": str(model.model_dir), "image_size": model.image_size, "clip": str(clip),
           "frame_hw": list(frame_hw), "objects": objects, "warmup_frames": args.warmup_frames,
           "reps": args.reps, "device": args.device, **settings}
    print(f"measuring {model.name} {model.image_size}px, {objects} object(s): {label}", file=sys.stderr, flush=True)
    result = run_in_child("sam2_trt.benchmarks.video", job, timeout=timeout)
    return {"model": model.name, "image_size": model.image_size, "objects": objects, "side": side, "label": label,
            "device": job["device"], **{k: v for k, v in settings.items() if k != "device"}, **result}


def measure_interleaved(planned: list, clip: Path, frame_hw, objects: int, args) -> list:
    """Rows of one case, every side ([(model, side, label, settings)]) loaded once in its own process and its
    passes interleaved with the others' (benchmarks/workers.py): one warm-up pass each, then args.reps rounds in
    which every side runs one timed pass, so a change in the machine's load hits every side alike."""
    from sam2_trt.benchmarks.workers import Worker, interleaved

    workers, rows = [], []
    try:
        for model, side, label, settings in planned:
            job = {"side": side, "config": model.config, "checkpoint": str(model.checkpoint),
                   "model_dir": str(model.model_dir), "image_size": model.image_size, "clip": str(clip),
                   "frame_hw": list(frame_hw), "objects": objects, "warmup_frames": args.warmup_frames,
                   "device": args.device, "threads": args.threads, **settings}
            print(f"loading {model.name} {model.image_size}px, {objects} object(s): {label}", file=sys.stderr,
                  flush=True)
            workers.append(Worker(label, "sam2_trt.benchmarks.video", job))
            rows.append({"model": model.name, "image_size": model.image_size, "objects": objects, "side": side,
                         "label": label, "device": job["device"],
                         **{k: v for k, v in settings.items() if k != "device"}})
        warm = interleaved(workers, "warmup", 0, 1) if args.warmup_frames else {}
        timed = interleaved(workers, "pass", 0, args.reps)
        for worker, row in zip(workers, rows):
            if worker.label in timed:
                passes = timed[worker.label]["results"]
                row.update(passes=passes, fps=statistics.median(p["fps"] for p in passes), interleaved=True,
                           warmup_s=warm[worker.label]["results"][0] if worker.label in warm else None,
                           **(worker.call("info") or {}).get("result", {}))
            if worker.error is not None:
                row["error"] = worker.error
    finally:
        for worker in workers:
            worker.close()
    return rows


def _with_int8(model: BenchModel, args, planned: list) -> list:
    """[(model, side, label, settings)]: the planned sides on `model`, then with --int8 (a CPU, random weights) our
    int8 export of the same weights (sam2-trt export --int8) on ONNX Runtime's CPU backend."""
    out = [(model, *side) for side in planned]
    if args.int8 and args.device == "cpu" and model.weights.startswith("random"):
        from sam2_trt.benchmarks.models import random_model

        int8 = random_model(model.name, model.image_size, precision="int8")
        out.append((int8, "ours", "ours onnxruntime-cpu int8", {"backend": "onnxruntime-cpu", "precision": None,
                                                                "device": "cpu"}))
    return out


def with_defaults(args):
    """A copy of `args` (the options of `sam2-trt bench video`) with the device's defaults filled in where an
    option is None: the device itself, GPU_DEFAULTS or CPU_DEFAULTS, and the official modes of the device kind.
    Raises ValueError for object counts the clip cannot give."""
    args = copy.copy(args)
    if args.device is None:
        args.device = "cuda" if gpu_description() else "cpu"
    defaults = GPU_DEFAULTS if args.device.startswith("cuda") else CPU_DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.int8 = bool(getattr(args, "int8", False))  # opt-in here: one more pass of minutes per case on a CPU
    if getattr(args, "threads", None) is None:  # every side, ONNX Runtime and torch, with the same thread count
        args.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if args.official_modes is None:
        from sam2_trt.benchmarks.official import MODES

        args.official_modes = list(MODES["cuda" if args.device.startswith("cuda") else "cpu"])
    if min(args.objects) < 1 or max(args.objects) > DISCS:
        raise ValueError(f"--objects must be between 1 and {DISCS} (the clip has {DISCS} discs to click)")
    return args


def run(args) -> int:
    """`sam2-trt bench video` (args: its options, sam2_trt.cli.bench): measure every model, object count and
    side, print the table and write the results file under args.results. Returns the exit code."""
    args = with_defaults(args)
    models: list[BenchModel] = bench_models(args.models, args.image_sizes, args.checkpoint, args.model_dir)
    backends = available_backends(args.device, args.backends)
    h, w = args.frame_size
    clip = cached_clip(args.frames, h, w, DISCS)
    rows = []
    for model in models:
        for objects in args.objects:
            planned = _with_int8(model, args, sides(args.device, backends, args.precision, args.official_modes))
            for row in measure_interleaved(planned, clip, (h, w), objects, args):
                rows.append(row)
                summarize(rows)
                print_row(rows[-1], header=len(rows) == 1)
    notes = summarize(rows)
    env = describe()
    result = {"benchmark": "video", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_label(env),
              "environment": env, "models": [m.describe() for m in models],
              "settings": {"frames": args.frames, "frame_size": f"{w}x{h}", "warmup_frames": args.warmup_frames,
                           "reps": args.reps, "device": args.device, "clip": str(clip), "interleaved": True,
                           "threads": args.threads},
              "rows": rows, "summary": notes}
    path = write_result(args.results, "video", machine_label(env), result)
    print("\n" + "\n".join(notes))
    print(f"wrote {path}")
    return 0

