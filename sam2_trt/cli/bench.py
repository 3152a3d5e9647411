"""`sam2-trt bench NAME [ARGS]`: run one benchmark script, the same as `python -m benchmarks.<module> ARGS`."""

from __future__ import annotations

import argparse
import importlib

SCRIPTS = {  # bench name -> (module, what it measures)
    "video": ("sam2_trt.benchmarks.video", "propagate_in_video FPS end to end, ours and official"),
    "image": ("sam2_trt.benchmarks.image", "set_image / predict latency and automatic mask generation, ours and official"),
    "memory": ("sam2_trt.benchmarks.video_memory", "peak RSS (and GPU memory) against video length, ours and official"),
    "precision": ("sam2_trt.benchmarks.precision", "fp16/bf16 error of the precision policy (ONNX Runtime, CPU)"),
    "kernels": ("sam2_trt.benchmarks.kernels", "the CUDA post-processing kernels against numpy and torch (GPU)"),
    "report": ("sam2_trt.benchmarks.report", "the README's result tables from sam2_trt.benchmarks/results/*.json"),
}


def add_parser(sub) -> None:
    listing = "; ".join(f"{name}: {what}" for name, (_, what) in SCRIPTS.items())
    p = sub.add_parser("bench", help="run a benchmark script (sam2-trt bench NAME --help for its options)",
                       description=f"Benchmarks: {listing}. Each writes a JSON file under benchmarks/results/.")
    p.add_argument("name", choices=sorted(SCRIPTS), help="which benchmark")
    p.add_argument("args", nargs=argparse.REMAINDER, help="its options (see sam2-trt bench NAME --help)")
    p.set_defaults(run=run)


def run(args) -> int:
    module = importlib.import_module(SCRIPTS[args.name][0])
    return module.main(args.args)
