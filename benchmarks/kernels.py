"""Benchmark every runtime.gpu kernel against its numpy twin (CPU) and the torch equivalent (GPU), same inputs.

    sam2-trt bench kernels [--warmup 10] [--reps 100] [--cpu-reps 3] [--only NAME] [--results DIR]

GPU times are per call, from CUDA events around `reps` back-to-back calls after `warmup` calls on one stream:
what a pipeline sees, launch overhead and stream-ordered allocations included (`host_ms` is the wall time per
call, i.e. whether Python keeps up). CPU twins are timed with perf_counter (`cpu_reps` calls after one warm-up).
torch runs on its current stream with torch.cuda events; "-" where torch has no equivalent (the official
hole filling needs the sam2._C extension), and the PIL-bicubic row compares with torch's bicubic+antialias,
which is similar work but not the same numerics. Each row also records the kernel's max |difference| from
its twin on these inputs. Results: a table on stdout and <--results>/kernels-<gpu>-<date>.json (default
./benchmarks/results) naming the GPU, driver, CUDA, NVRTC and library versions. Needs a CUDA GPU: without one it
exits with status 2.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from sam2_trt.benchmarks.environment import describe
from sam2_trt.benchmarks.results_file import write_result
from sam2_trt.runtime import ops
from sam2_trt.runtime.gpu import DeviceArray, Stream, kernels, unavailable_reason
from sam2_trt.runtime.gpu.device import check, cuda_runtime



@dataclass
class Case:
    name: str  # the kernel wrapper / twin
    inputs: str  # shapes, for the table
    gpu: Callable[[], object]  # one call of the kernel wrapper on device inputs
    cpu: Callable[[], object]  # one call of the numpy twin on the same host inputs
    torch: Callable[[], object] | None = None  # the torch GPU equivalent, if any
    torch_note: str = ""


class Event:
    def __init__(self):
        self.rt = cuda_runtime()
        self.handle = check(self.rt.cudaEventCreate(), "cudaEventCreate")

    def record(self, stream: Stream):
        check(self.rt.cudaEventRecord(self.handle, stream.handle), "cudaEventRecord")

    def ms_since(self, start: "Event") -> float:
        check(self.rt.cudaEventSynchronize(self.handle), "cudaEventSynchronize")
        return float(check(self.rt.cudaEventElapsedTime(start.handle, self.handle), "cudaEventElapsedTime"))


def time_gpu(fn, stream: Stream, warmup: int, reps: int) -> tuple[float, float]:
    """(GPU ms per call from events, host wall ms per call)."""
    for _ in range(warmup):
        fn()
    stream.synchronize()
    start, end = Event(), Event()
    t0 = time.perf_counter()
    start.record(stream)
    for _ in range(reps):
        fn()
    end.record(stream)
    gpu_ms = end.ms_since(start) / reps
    return gpu_ms, (time.perf_counter() - t0) * 1000 / reps


def time_cpu(fn, reps: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) * 1000 / reps


def time_torch(fn, torch, warmup: int, reps: int) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / reps


def max_diff(gpu_out, cpu_out) -> float:
    """Max |difference| over all outputs (masks count as 0/1); NaNs in the same places are equal."""
    gpu_out = gpu_out if isinstance(gpu_out, tuple) else (gpu_out,)
    cpu_out = cpu_out if isinstance(cpu_out, tuple) else (cpu_out,)
    worst = 0.0
    for g, c in zip(gpu_out, cpu_out):
        if g is None or c is None:
            continue
        g = (g.to_host() if isinstance(g, DeviceArray) else np.asarray(g)).astype(np.float64)
        c = np.asarray(c).astype(np.float64).reshape(g.shape)
        d = np.abs(g - c)
        d[np.isnan(g) & np.isnan(c)] = 0
        if np.isnan(d).any():
            return float("inf")
        worst = max(worst, float(d.max(initial=0.0)))
    return worst


def load_torch():
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None, None
    return (torch, F) if torch.cuda.is_available() else (None, None)


def torch_cases(torch, F, host: dict) -> dict:
    """The torch equivalents, on the same inputs copied to torch's GPU memory."""
    t = {k: torch.from_numpy(np.ascontiguousarray(v)).cuda() for k, v in host.items()}
    mean = torch.tensor(ops.IMG_MEAN, device="cuda")[:, None, None]
    std = torch.tensor(ops.IMG_STD, device="cuda")[:, None, None]

    def non_overlap(p):  # SAM2Base._apply_non_overlapping_constraints
        keep = torch.argmax(p, 0, keepdim=True) == torch.arange(p.shape[0], device=p.device)[:, None, None, None]
        return torch.where(keep, p, torch.clamp(p, max=-10.0))

    def threshold(p):  # masks, areas, XYXY boxes (amg batched_mask_to_box convention)
        m = p[:, 0] > 0
        rows, cols = m.any(2).to(torch.uint8), m.any(1).to(torch.uint8)
        boxes = torch.stack([cols.argmax(1), rows.argmax(1), m.shape[2] - 1 - cols.flip(1).argmax(1),
                             m.shape[1] - 1 - rows.flip(1).argmax(1)], 1)
        return m, m.flatten(1).sum(1), boxes

    def up(p, size):
        return F.interpolate(p, size, mode="bilinear", align_corners=False)

    def image_input(img, mode):
        x = img.permute(2, 0, 1)[None].float()
        if mode == "bicubic":  # ~ PIL: bicubic with antialias on 0..255, rounded back to uint8 levels
            x = F.interpolate(x, (1024, 1024), mode="bicubic", align_corners=False, antialias=True)
            return (x.round().clamp(0, 255) / 255 - mean) / std
        x = F.interpolate(x / 255, (1024, 1024), mode="bilinear", align_corners=False, antialias=True)
        return (x - mean) / std

    return {
        "preprocess_video_frame": (lambda: image_input(t["frame"], "bicubic"), "bicubic+antialias, not PIL-exact"),
        "preprocess_image": (lambda: image_input(t["frame"], "bilinear"), ""),
        "resize_bilinear": (lambda: up(t["low8"], (1080, 1920)), ""),
        "resize_bilinear_antialias": (lambda: F.interpolate(
            t["image"][None], (1024, 1024), mode="bilinear", align_corners=False, antialias=True), ""),
        "apply_non_overlapping_constraints": (lambda: non_overlap(t["full32"]), ""),
        "threshold_masks": (lambda: threshold(t["full32"]), ""),
        "frame_masks": (lambda: threshold(non_overlap(up(t["low8"], (1080, 1920)))), "3 ops unfused"),
    }


def build_cases(stream: Stream, torch, F) -> list[Case]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:1080, 0:1920]
    scene = np.stack([xx * 255 / 1920, yy * 255 / 1080, (xx + yy) % 256], -1) + rng.normal(0, 20, (1080, 1920, 3))
    coarse = rng.standard_normal((32, 1, 34, 34)).astype(np.float32)
    low32 = ops.resize_bilinear(coarse, (256, 256)) * np.float32(10)
    host = {
        "frame": np.clip(scene, 0, 255).astype(np.uint8),  # a decoded 1080p RGB frame
        "image": (np.clip(scene, 0, 255).astype(np.float32) / 255).transpose(2, 0, 1).copy(),  # [3, 1080, 1920]
        "low8": low32[:8],  # low-res mask logits of 8 objects
        "low32": low32,
        "mask32": low32 > 0,
        "image_low": low32[:3].reshape(1, 3, 256, 256),  # the image predictor's multimask output
        "full32": ops.resize_bilinear(low32, (1080, 1920)),  # 32 objects at video resolution
    }
    d = {k: DeviceArray.from_host(v, stream) for k, v in host.items()}
    s = dict(stream=stream)
    cases = [
        Case("preprocess_video_frame", "1080x1920x3 u8 -> 1x3x1024x1024",
             lambda: kernels.preprocess_video_frame(d["frame"], 1024, **s),
             lambda: ops.preprocess_video_frame(host["frame"], 1024)),
        Case("preprocess_image", "1080x1920x3 u8 -> 1x3x1024x1024",
             lambda: kernels.preprocess_image(d["frame"], 1024, **s),
             lambda: ops.preprocess_image(host["frame"], 1024)),
        Case("resize_bilinear", "8x1x256x256 -> 1080x1920",
             lambda: kernels.resize_bilinear(d["low8"], (1080, 1920), **s),
             lambda: ops.resize_bilinear(host["low8"], (1080, 1920))),
        Case("resize_bilinear_antialias", "3x1080x1920 -> 1024x1024",
             lambda: kernels.resize_bilinear_antialias(d["image"], 1024, **s),
             lambda: ops.resize_bilinear_antialias(host["image"], 1024)),
        Case("component_areas", "32x1x256x256 bool", lambda: kernels.component_areas(d["mask32"], **s),
             lambda: ops.component_areas(host["mask32"])),
        Case("fill_holes_in_mask_scores", "32x1x256x256, area 8",
             lambda: kernels.fill_holes_in_mask_scores(d["low32"], 8, **s),
             lambda: ops.fill_holes_in_mask_scores(host["low32"], 8)),
        Case("postprocess_image_masks", "1x3x256x256 -> 1080x1920, hole/sprinkle 20",
             lambda: kernels.postprocess_image_masks(d["image_low"], (1080, 1920), 0.0, 20, 20, **s),
             lambda: ops.postprocess_image_masks(host["image_low"], (1080, 1920), 0.0, 20, 20)),
        Case("apply_non_overlapping_constraints", "32x1x1080x1920",
             lambda: kernels.apply_non_overlapping_constraints(d["full32"], **s),
             lambda: ops.apply_non_overlapping_constraints(host["full32"])),
        Case("threshold_masks", "32x1x1080x1920", lambda: kernels.threshold_masks(d["full32"], 0.0, **s),
             lambda: ops.threshold_masks(host["full32"], 0.0)),
        Case("frame_masks", "8x1x256x256 -> 1080x1920, non-overlap, > 0",
             lambda: kernels.frame_masks(d["low8"], (1080, 1920), 0.0, True, **s)[:3],
             lambda: ops.threshold_masks(ops.apply_non_overlapping_constraints(
                 ops.resize_bilinear(host["low8"], (1080, 1920))), 0.0)),
    ]
    if torch is not None:
        equivalents = torch_cases(torch, F, host)
        for case in cases:
            case.torch, case.torch_note = equivalents.get(case.name, (None, ""))
    stream.synchronize()
    return cases


def cuda_fields(torch) -> dict:
    """What benchmarks.environment.describe cannot know without CUDA: the device, CUDA and NVRTC versions."""
    import cuda.bindings
    import cv2

    from sam2_trt.runtime.gpu import compiler, device

    rt = cuda_runtime()
    dev_id = device.current_device()
    props = check(rt.cudaGetDeviceProperties(dev_id), "cudaGetDeviceProperties")
    name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)

    def version(v: int) -> str:
        return f"{v // 1000}.{v % 1000 // 10}"

    return {
        "gpu_name": name.rstrip("\0"), "compute_capability": "%d.%d" % device.compute_capability(dev_id),
        "driver_cuda_version": version(check(rt.cudaDriverGetVersion(), "cudaDriverGetVersion")),
        "cuda_runtime_version": version(check(rt.cudaRuntimeGetVersion(), "cudaRuntimeGetVersion")),
        "nvrtc": "%d.%d" % compiler.nvrtc_version(), "cuda_bindings_module": cuda.bindings.__version__,
        "opencv": cv2.__version__, "torch_cuda": None if torch is None else torch.version.cuda,
    }


def run(args) -> int:
    """`sam2-trt bench kernels` (args: its options, sam2_trt.cli.bench): time every kernel, print the table and
    write the results file under args.results. Returns the exit code (2: no usable CUDA GPU)."""
    reason = unavailable_reason()
    if reason is not None:
        print(f"sam2-trt bench kernels needs a CUDA GPU, and there is none usable here: {reason}", file=sys.stderr)
        return 2
    torch, F = load_torch()
    stream = Stream.create()
    rows = []
    for case in build_cases(stream, torch, F):
        if args.only and case.name not in args.only:
            continue
        gpu_ms, host_ms = time_gpu(case.gpu, stream, args.warmup, args.reps)
        cpu_ms = time_cpu(case.cpu, args.cpu_reps)
        torch_ms = time_torch(case.torch, torch, args.warmup, args.reps) if case.torch else None
        diff = max_diff(case.gpu(), case.cpu())
        rows.append({"kernel": case.name, "inputs": case.inputs, "gpu_ms": gpu_ms, "host_ms": host_ms,
                     "cpu_twin_ms": cpu_ms, "torch_ms": torch_ms, "torch_note": case.torch_note,
                     "speedup_vs_cpu": cpu_ms / gpu_ms, "speedup_vs_torch": torch_ms / gpu_ms if torch_ms else None,
                     "max_abs_diff_vs_twin": diff})
        print_row(rows[-1], header=len(rows) == 1)

    env = describe(**cuda_fields(torch))
    result = {"benchmark": "kernels", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": env["gpu_name"],
              "environment": env,
              "warmup": args.warmup, "reps": args.reps, "cpu_reps": args.cpu_reps, "results": rows}
    path = write_result(args.results, "kernels", env["gpu_name"], result)
    print(f"\n{env['gpu_name']} (sm {env['compute_capability']}), driver CUDA {env['driver_cuda_version']}, "
          f"NVRTC {env['nvrtc']}, torch {env['torch']}: wrote {path}")
    return 0


def print_row(r: dict, header: bool) -> None:
    def ms(v):
        return f"{'-':>9}" if v is None else f"{v:9.3f}"

    if header:
        print(f"{'kernel':34} {'inputs':42} {'gpu ms':>9} {'host ms':>9} {'cpu ms':>9} {'torch ms':>9} "
              f"{'x cpu':>7} {'x torch':>7} {'max diff':>9}")
    xt = "-" if r["speedup_vs_torch"] is None else f"{r['speedup_vs_torch']:7.1f}"
    print(f"{r['kernel']:34} {r['inputs']:42} {ms(r['gpu_ms'])} {ms(r['host_ms'])} {ms(r['cpu_twin_ms'])} "
          f"{ms(r['torch_ms'])} {r['speedup_vs_cpu']:7.1f} {xt:>7} {r['max_abs_diff_vs_twin']:9.2g}"
          + (f"  ({r['torch_note']})" if r["torch_note"] else ""))

