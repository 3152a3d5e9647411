"""Peak host memory of a streamed video: does a 1000-frame stream fit in what a 100-frame stream needs?

    python -m benchmarks.video_memory [--frames 100 1000] [--model DIR] [--image-size 256] [--backend auto]
                                      [--objects 3] [--frame-size 360x640] [--video-length] [--out DIR]

Each length runs in a fresh child process (`--child N`), so that one run's peak cannot hide another's: the child
opens the model, pushes N synthetic frames into a SAM2VideoStream (a moving scene drawn frame by frame, never all
held) with --objects objects clicked on frame 0, and reports its peak RSS (getrusage ru_maxrss, which includes
the model's sessions) and the VmRSS of /proc/self/status sampled after every frame. The target: the longest
stream's peak within 10% of the shortest's. Only the pushes are timed (not drawing the frames); the first push
includes the backend's warm-up, so `steady_fps` leaves it out. --video-length tells the stream its length in
advance (as offline tracking does); by default it is unbounded, as a camera feed is.

Linux keeps in ru_maxrss the RSS a child had from its parent when it forked (exec_mmap in fs/exec.c), so the
parent stays small (the export runs in a child of its own) and each child also reports VmHWM, the peak of its
own address space only; the two agree unless the parent grew.

Without --model, sam2.1_hiera_t with seeded random weights (the speed and memory are those of the real model) is
exported once at --image-size into the sam2-trt cache ($SAM2_TRT_CACHE, default ~/.cache/sam2-trt), which needs
the export dependencies (torch, sam2). Results: a table on stdout and
benchmarks/results/video_memory-<host>-<date>.json naming the machine, the backend and the versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.results_file import RESULTS, write_result

REPO = Path(__file__).resolve().parents[1]
MODEL = "sam2.1_hiera_t"  # random weights with sam2_export.demo.RANDOM_SEED, cached where the demo caches
TARGET = 0.10  # the longest stream's peak RSS may exceed the shortest's by at most this fraction


class MovingScene:
    """Frame t ([H, W, 3] uint8 RGB) of a synthetic clip: a panning background and `objects` discs, each moving
    on its own path and bouncing off the borders. Frames are drawn on demand; nothing per frame is kept."""

    def __init__(self, h: int, w: int, objects: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.h, self.w = h, w
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        self.background = np.stack([80 + 60 * np.sin(x / 37), 90 + 50 * np.cos(y / 29), 120 + 40 * np.sin(
            (x + y) / 53)], -1).astype(np.uint8)
        self.ys, self.xs = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
        self.radius = max(4.0, min(h, w) / 10)
        self.colors = rng.integers(30, 230, (objects, 3)).astype(np.uint8)
        cols = int(np.ceil(np.sqrt(objects)))
        rows = int(np.ceil(objects / cols))
        self.start = np.array([((k // cols + 0.5) * h / rows, (k % cols + 0.5) * w / cols) for k in range(objects)],
                              np.float32)  # (y, x): spread on a grid, so that frame 0's clicks hit one disc each
        self.velocity = rng.uniform(-4, 4, (objects, 2)).astype(np.float32)  # pixels per frame

    def centre(self, k: int, t: int) -> tuple[float, float]:
        """(x, y) of disc k on frame t: straight motion folded back at the borders (a triangle wave)."""
        lo = self.radius
        out = []
        for v, span in zip(self.start[k] + t * self.velocity[k], (self.h, self.w)):
            period = 2 * (span - 2 * lo)
            p = (v - lo) % period
            out.append(lo + (p if p <= period / 2 else period - p))
        return out[1], out[0]

    def frame(self, t: int) -> np.ndarray:
        img = np.roll(self.background, shift=(t % self.h, (3 * t) % self.w), axis=(0, 1))
        for k, color in enumerate(self.colors):
            cx, cy = self.centre(k, t)
            img[(self.ys - cy) ** 2 + (self.xs - cx) ** 2 < self.radius ** 2] = color
        return img


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


def peak_rss_mb() -> float:
    """ru_maxrss of this process: kB on Linux, bytes on macOS."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def run_child(args) -> dict:
    """One stream of args.child frames in this process; returns its measurements (printed as JSON by main)."""
    from runtime.video.stream import SAM2VideoStream

    n, (h, w) = args.child, args.frame_size
    stream = SAM2VideoStream.load(args.model, backend=args.backend, device=args.device,
                                  video_length=n if args.video_length else None)
    scene = MovingScene(h, w, args.objects)
    rss_loaded = vm_kb()
    rss = np.zeros(n, np.int64)  # kB after each frame: 8 bytes a frame, negligible next to what is measured
    push_s = np.zeros(n)
    for t in range(n):
        frame = scene.frame(t)
        t0 = time.perf_counter()
        stream.push(frame)
        if t == 0:
            for k in range(args.objects):
                stream.add_new_points_or_box(k + 1, points=[scene.centre(k, 0)], labels=[1])
        push_s[t] = time.perf_counter() - t0
        rss[t] = vm_kb() or 0
        if (t + 1) % 100 == 0 or t + 1 == n:
            print(f"  {n}-frame stream: frame {t + 1}/{n}, {rss[t] / 1024:.0f} MB, "
                  f"{(t + 1) / push_s[:t + 1].sum():.2f} FPS", file=sys.stderr, flush=True)
    every = max(1, n // 50)
    seconds = float(push_s.sum())
    hwm = vm_kb("VmHWM")
    return {
        "frames": n, "backend": stream.predictor.backend_name, "obj_ids": stream.obj_ids,
        "peak_rss_mb": peak_rss_mb(), "vm_hwm_mb": None if hwm is None else hwm / 1024,
        "rss_after_load_mb": None if rss_loaded is None else rss_loaded / 1024,
        "rss_after_first_frame_mb": rss[0] / 1024, "rss_max_sampled_mb": rss.max() / 1024,
        "rss_at_end_mb": rss[-1] / 1024,
        "rss_samples_mb": [[t, rss[t] / 1024] for t in range(0, n, every)] + [[n - 1, rss[-1] / 1024]],
        "seconds": seconds, "fps": n / seconds,
        "steady_fps": (n - 1) / float(push_s[1:].sum()) if n > 1 else None,
    }


def cached_model(image_size: int) -> Path:
    """The random-weight export at image_size in the sam2-trt cache, exported on first use."""
    from sam2_export.configs import resolve_model_name
    from sam2_export.demo import RANDOM_SEED, cached_export_dir, cached_export_usable

    model_dir = cached_export_dir(resolve_model_name(MODEL), image_size, official=False)
    if cached_export_usable(model_dir, lambda m: print(m, file=sys.stderr)):
        return model_dir
    print(f"exporting {MODEL} (random weights, seed {RANDOM_SEED}) at {image_size}px to {model_dir} (once)",
          file=sys.stderr)
    # in a child: importing torch and exporting would grow this process, and its children inherit its RSS
    cmd = [sys.executable, "-m", "benchmarks.video_memory", "--export-to", str(model_dir), "--image-size",
           str(image_size)]
    if subprocess.run(cmd, cwd=REPO).returncode != 0:
        raise SystemExit(f"the export failed: {' '.join(cmd)}")
    return model_dir


def export(model_dir: Path, image_size: int) -> None:
    from sam2_export.demo import RANDOM_SEED
    from sam2_export.exporter import export_model

    export_model(MODEL, model_dir, random_weights_seed=RANDOM_SEED, image_size=image_size, overwrite=True,
                 log=lambda m: print(m, file=sys.stderr))


def measure(args, n: int) -> dict:
    """Run the n-frame stream in a child process and return its measurements."""
    cmd = [sys.executable, "-m", "benchmarks.video_memory", "--child", str(n), "--model", str(args.model),
           "--backend", args.backend, "--device", args.device, "--objects", str(args.objects),
           "--frame-size", "{1}x{0}".format(*args.frame_size)] + (["--video-length"] if args.video_length else [])
    proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)  # stderr: the child's progress
    if proc.returncode != 0:
        raise SystemExit(f"the {n}-frame child failed with status {proc.returncode}: {' '.join(cmd)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def environment(backend: str) -> dict:
    import onnxruntime
    import PIL

    def first(path: str, key: str) -> str | None:
        try:
            with open(path) as f:
                return next((line.split(":", 1)[1].strip() for line in f if line.startswith(key)), None)
        except OSError:
            return None

    mem = first("/proc/meminfo", "MemTotal")
    env = {
        "host": platform.node(), "os": platform.platform(), "cpu": first("/proc/cpuinfo", "model name")
        or platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_total_gb": None if mem is None else round(int(mem.split()[0]) / 2**20, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
        "numpy": np.__version__, "onnxruntime": onnxruntime.__version__, "pillow": PIL.__version__,
        "backend": backend, "gpu": None,
    }
    if backend != "onnxruntime-cpu":
        try:
            env["gpu"] = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                                        capture_output=True, text=True, timeout=30).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            pass
    return env


def frame_size(text: str) -> tuple[int, int]:
    """"WxH" (e.g. 640x360) -> (H, W)."""
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m or min(int(m[1]), int(m[2])) < 8:
        raise argparse.ArgumentTypeError(f"--frame-size {text!r}: give WIDTHxHEIGHT in pixels, e.g. 640x360")
    return int(m[2]), int(m[1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.video_memory", description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[100, 1000], help="stream lengths, one child each")
    ap.add_argument("--model", type=Path, help="an exported model directory (default: a cached random-weight "
                                               "sam2.1_hiera_t export at --image-size)")
    ap.add_argument("--image-size", type=int, default=256, help="export size when no --model is given (256: "
                                                                "1000 frames take minutes on a CPU)")
    ap.add_argument("--backend", default="auto", help="auto, tensorrt, onnxruntime-cuda or onnxruntime-cpu")
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (auto falls back to the CPU)")
    ap.add_argument("--objects", type=int, default=3, help="objects tracked, clicked on frame 0")
    ap.add_argument("--frame-size", type=frame_size, default=(360, 640), help="WIDTHxHEIGHT of the frames")
    ap.add_argument("--video-length", action="store_true", help="give the stream its length in advance "
                                                                "(default: unbounded, as a live feed)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON results")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)  # internal: run one stream of this length
    ap.add_argument("--export-to", type=Path, help=argparse.SUPPRESS)  # internal: export the default model there
    args = ap.parse_args(argv)
    if args.child is not None:
        print(json.dumps(run_child(args)))
        return 0
    if args.export_to is not None:
        export(args.export_to, args.image_size)
        return 0
    if min(args.frames) < 1 or args.objects < 1:
        ap.error("--frames and --objects must be >= 1")

    args.model = args.model if args.model is not None else cached_model(args.image_size)
    from runtime.metadata import load_metadata

    meta = load_metadata(args.model)
    runs = []
    for n in sorted(set(args.frames)):
        runs.append(measure(args, n))
        print_row(runs[-1], header=len(runs) == 1)
        hwm = runs[-1]["vm_hwm_mb"]
        if hwm is not None and abs(runs[-1]["peak_rss_mb"] - hwm) > 0.05 * hwm:
            print(f"  note: ru_maxrss {runs[-1]['peak_rss_mb']:.0f} MB but VmHWM {hwm:.0f} MB: the child "
                  f"inherited this process's RSS at fork", file=sys.stderr)
    shortest, longest = runs[0], runs[-1]
    ratio = longest["peak_rss_mb"] / shortest["peak_rss_mb"]
    met = ratio <= 1 + TARGET
    target = (f"peak RSS of the {longest['frames']}-frame stream within {TARGET:.0%} of the "
              f"{shortest['frames']}-frame stream's")
    env = environment(runs[0]["backend"])
    result = {
        "benchmark": "video_memory", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "environment": env,
        "model": {"dir": str(args.model), "name": meta.model_name, "image_size": meta.image_size,
                  "random_weights_seed": meta.raw["checkpoint"]["random_weights_seed"]},
        "objects": args.objects, "frame_size": "{1}x{0}".format(*args.frame_size),
        "video_length_given": args.video_length, "runs": runs,
        "peak_ratio": ratio, "target": target, "target_met": met,
    }
    path = write_result(args.out, "video_memory", platform.node(), result)
    print(f"\npeak RSS {longest['frames']} / {shortest['frames']} frames: {ratio:.3f} "
          f"({'meets' if met else 'MISSES'} the target: {target})")
    print(f"{meta.model_name} at {meta.image_size}px on {env['backend']}, {env['cpu']} ({env['cpus_usable']} CPUs): "
          f"wrote {path}")
    return 0


def print_row(r: dict, header: bool) -> None:
    def mb(v):
        return f"{'-':>9}" if v is None else f"{v:9.1f}"

    if header:
        print(f"{'frames':>7} {'seconds':>9} {'FPS':>7} {'steady FPS':>10} {'peak RSS MB':>11} {'VmHWM MB':>9} "
              f"{'loaded MB':>9} {'at end MB':>9}")
    steady = "-" if r["steady_fps"] is None else f"{r['steady_fps']:10.2f}"
    print(f"{r['frames']:7d} {r['seconds']:9.1f} {r['fps']:7.2f} {steady:>10} {r['peak_rss_mb']:11.1f} "
          f"{mb(r['vm_hwm_mb'])} {mb(r['rss_after_load_mb'])} {mb(r['rss_at_end_mb'])}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
