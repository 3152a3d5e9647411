"""Peak memory against video length: does a 1000-frame video fit in what a 100-frame video needs?

    sam2-trt bench memory [--frames 100 1000] [--models sam2.1_hiera_t] [--image-size 256] [--backend auto]
                          [--device cuda|cpu] [--objects 1] [--frame-size 640x360] [--video-length]
                          [--no-official] [--checkpoint PT --model-dir DIR] [--results DIR]

Each (side, length) runs in a fresh child process, so that one run's peak cannot hide another's.
  * ours: the child opens the model and pushes N synthetic frames into a SAM2VideoStream (a moving scene drawn
    frame by frame, never all held) with --objects objects clicked on frame 0, as a camera feed or a long file
    is tracked. --video-length tells the stream its length in advance (as offline tracking does); by default it
    is unbounded.
  * official: the official SAM2VideoPredictor's own way: `init_state` on a folder of the same N frames as JPEGs
    (it decodes and keeps every frame at the model's input size), one click per object, `propagate_in_video`
    with each frame's masks moved to the host.
Each child reports its peak RSS (getrusage ru_maxrss, which includes the model), the VmHWM of its own address
space, VmRSS sampled after every frame (ours), and on a GPU the peak device memory (official: torch's allocator;
ours: the device's used memory, sampled). The target: our longest run's peak RSS within 10% of the shortest's.
FPS is reported too, but this benchmark is about memory; `sam2-trt bench video` measures speed.

Linux keeps in ru_maxrss the RSS a child had from its parent when it forked (exec_mmap in fs/exec.c), so the
parent stays small (exports run in a child of their own) and each child also reports VmHWM; the two agree unless
the parent grew. The default model is sam2.1_hiera_t with seeded random weights at 256 px (1000 frames take
minutes on a CPU; benchmarks/models.py). Results: a table and <--results>/video_memory-<machine>-<date>.json
(default ./benchmarks/results).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from sam2_trt.benchmarks.environment import describe, gpu_description, machine_label
from sam2_trt.benchmarks.child import peak_rss_mb, run_in_child
from sam2_trt.benchmarks.models import bench_models
from sam2_trt.benchmarks.results_file import write_result
from sam2_trt.benchmarks.scene import MovingScene, cached_clip, clicks

TARGET = 0.10  # our longest run's peak RSS may exceed the shortest's by at most this fraction


def vm_kb(field: str = "VmRSS") -> int | None:
    """A field of /proc/self/status in kB (VmRSS: resident now; VmHWM: its peak); None where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def device_used_mb(device: str) -> float | None:
    """Memory in use on the GPU of `device` ("cuda:N") now (all processes: cudaMemGetInfo), or None on the CPU."""
    if not device.startswith("cuda"):
        return None
    from sam2_trt.runtime.backends import parse_device
    from sam2_trt.runtime.gpu.device import check, cuda_runtime, use_device

    with use_device(parse_device(device)[1]):
        free, total = check(cuda_runtime().cudaMemGetInfo(), "cudaMemGetInfo")
    return (total - free) / 2**20


def _memory_fields(n: int, rss: np.ndarray, rss_loaded, seconds: float) -> dict:
    every = max(1, n // 50)
    hwm = vm_kb("VmHWM")
    return {
        "frames": n, "peak_rss_mb": peak_rss_mb(), "vm_hwm_mb": None if hwm is None else hwm / 1024,
        "rss_after_load_mb": None if rss_loaded is None else rss_loaded / 1024,
        "rss_max_sampled_mb": rss.max() / 1024, "rss_at_end_mb": rss[-1] / 1024,
        "rss_samples_mb": [[t, rss[t] / 1024] for t in range(0, n, every)] + [[n - 1, rss[-1] / 1024]],
        "seconds": seconds, "fps": n / seconds,
    }


def run_ours(job: dict) -> dict:
    """One stream of job["frames"] frames in this process; returns its measurements."""
    from sam2_trt.runtime.video.stream import SAM2VideoStream

    n, (h, w), device = job["frames"], job["frame_hw"], job["device"]
    stream = SAM2VideoStream.load(job["model_dir"], backend=job["backend"], device=device,
                                  video_length=n if job["video_length"] else None)
    scene = MovingScene(h, w, job["objects"])
    rss_loaded = vm_kb()
    rss = np.zeros(n, np.int64)  # kB after each frame: 8 bytes a frame, negligible next to what is measured
    gpu_peak = device_used_mb(device)
    push_s = np.zeros(n)
    for t in range(n):
        frame = scene.frame(t)
        t0 = time.perf_counter()
        stream.push(frame)
        if t == 0:
            for obj_id, points, labels in clicks(scene, job["objects"]):
                stream.add_new_points_or_box(obj_id, points=points, labels=labels)
        push_s[t] = time.perf_counter() - t0
        rss[t] = vm_kb() or 0
        if gpu_peak is not None and (t < 20 or t % 10 == 0):
            gpu_peak = max(gpu_peak, device_used_mb(device))
        if (t + 1) % 100 == 0 or t + 1 == n:
            print(f"  ours, {n} frames: frame {t + 1}/{n}, {rss[t] / 1024:.0f} MB, "
                  f"{(t + 1) / push_s[:t + 1].sum():.2f} FPS", file=sys.stderr, flush=True)
    out = _memory_fields(n, rss, rss_loaded, float(push_s.sum()))
    out.update(backend=stream.predictor.backend_name, peak_gpu_mb=gpu_peak,
               steady_fps=(n - 1) / float(push_s[1:].sum()) if n > 1 else None)
    return out


def run_official(job: dict) -> dict:
    """The official predictor over a folder of the same job["frames"] frames; returns its measurements."""
    from sam2_trt.benchmarks import official

    n, (h, w), device = job["frames"], job["frame_hw"], job["device"]
    predictor = official.video_predictor(job["config"], job["checkpoint"], job["image_size"], device,
                                         "fp32" if device == "cpu" else "eager-bf16")
    rss_loaded = vm_kb()
    rss = np.zeros(n, np.int64)
    t0 = time.perf_counter()
    with official.running(device):
        state = predictor.init_state(job["clip"])  # decodes and keeps all n frames, as the official code does
        for obj_id, points, labels in clicks(MovingScene(h, w, job["objects"]), job["objects"]):
            predictor.add_new_points_or_box(state, frame_idx=0, obj_id=obj_id, points=points, labels=labels)
        for t, (_, _, logits) in enumerate(predictor.propagate_in_video(state)):
            (logits > 0).cpu().numpy()
            rss[t] = vm_kb() or 0
            if (t + 1) % 100 == 0 or t + 1 == n:
                print(f"  official, {n} frames: frame {t + 1}/{n}, {rss[t] / 1024:.0f} MB", file=sys.stderr,
                      flush=True)
    out = _memory_fields(n, rss, rss_loaded, time.perf_counter() - t0)
    out.update(backend=f"official ({'fp32' if device == 'cpu' else 'eager-bf16'})",
               peak_gpu_mb=official.peak_gpu_mb(device), steady_fps=None)
    return out


def run_child(job: dict) -> dict:
    return run_official(job) if job["side"] == "official" else run_ours(job)


def run(args) -> int:
    """`sam2-trt bench memory` (args: its options, sam2_trt.cli.bench): one child per side and length, print the
    table and write the results file under args.results. Returns the exit code."""
    device = args.device or ("cuda" if gpu_description() else "cpu")
    model = bench_models(args.models, [args.image_size], args.checkpoint, args.model_dir)[0]
    h, w = args.frame_size
    runs = []
    for side in (["official"] if not args.no_official else []) + ["ours"]:
        for n in sorted(set(args.frames)):
            job = {"side": side, "frames": n, "model_dir": str(model.model_dir), "config": model.config,
                   "checkpoint": str(model.checkpoint), "image_size": model.image_size, "backend": args.backend,
                   "device": device, "objects": args.objects, "frame_hw": [h, w],
                   "video_length": args.video_length}
            if side == "official":
                job["clip"] = str(cached_clip(n, h, w, args.objects))
            runs.append({"side": side, "frames": n, **run_in_child("sam2_trt.benchmarks.video_memory", job)})
            print_row(runs[-1], header=len(runs) == 1)
            hwm = runs[-1].get("vm_hwm_mb")
            if hwm is not None and abs(runs[-1]["peak_rss_mb"] - hwm) > 0.05 * hwm:
                print(f"  note: ru_maxrss {runs[-1]['peak_rss_mb']:.0f} MB but VmHWM {hwm:.0f} MB: the child "
                      f"inherited this process's RSS at fork", file=sys.stderr)
    ratios = {}
    for side in ("official", "ours"):
        done = [r for r in runs if r["side"] == side and "error" not in r]
        if len(done) > 1:
            ratios[side] = done[-1]["peak_rss_mb"] / done[0]["peak_rss_mb"]
    lo, hi = min(args.frames), max(args.frames)
    target = f"our peak RSS at {hi} frames within {TARGET:.0%} of the peak at {lo}"
    met = ratios.get("ours") is not None and ratios["ours"] <= 1 + TARGET
    env = describe()
    result = {
        "benchmark": "video_memory", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_label(env),
        "environment": env, "model": model.describe(), "device": device, "objects": args.objects,
        "frame_size": f"{w}x{h}", "video_length_given": args.video_length, "runs": runs,
        "peak_ratio": ratios, "target": target, "target_met": met,
    }
    path = write_result(args.results, "video_memory", machine_label(env), result)
    for side, ratio in ratios.items():
        print(f"\n{side}: peak RSS {hi} / {lo} frames = {ratio:.3f}", end="")
    print(f"\n{'meets' if met else 'MISSES'} the target: {target}")
    print(f"{model.name} at {model.image_size}px on {device}, {machine_label(env)}: wrote {path}")
    return 0


def print_row(r: dict, header: bool) -> None:
    def mb(v):
        return f"{'-':>9}" if v is None else f"{v:9.1f}"

    if header:
        print(f"{'side':9} {'frames':>7} {'seconds':>9} {'FPS':>7} {'peak RSS MB':>11} {'VmHWM MB':>9} "
              f"{'loaded MB':>9} {'at end MB':>9} {'GPU MB':>9}")
    if "error" in r:
        print(f"{r['side']:9} {r['frames']:7d} failed: {r['error']}", flush=True)
        return
    print(f"{r['side']:9} {r['frames']:7d} {r['seconds']:9.1f} {r['fps']:7.2f} {r['peak_rss_mb']:11.1f} "
          f"{mb(r['vm_hwm_mb'])} {mb(r['rss_after_load_mb'])} {mb(r['rss_at_end_mb'])} {mb(r['peak_gpu_mb'])}",
          flush=True)

