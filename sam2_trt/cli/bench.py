"""`sam2-trt bench NAME`: the benchmarks (sam2_trt.benchmarks), one subcommand each, with their options here.

Each benchmark writes <results>/<benchmark>-<machine>-<date>.json under --results, by default benchmarks/results
in the current directory (never next to the installed code); `report` turns those files into the README's tables.
A benchmark module is imported only when it runs, so `sam2-trt bench [NAME] --help` imports neither torch nor
the runtime. Options whose default depends on the device (GPU or CPU) default to None here: the benchmark fills
them in, and raises ValueError for values it cannot run (exit 3).
"""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

from sam2_trt.benchmarks.results_file import DEFAULT_RESULTS  # stdlib-only module: --help stays light


# ---- argument types ------------------------------------------------------------------------------------------
def frame_size(text: str) -> tuple[int, int]:
    """"WxH" (e.g. 640x360) -> (H, W)."""
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m or min(int(m[1]), int(m[2])) < 8:
        raise argparse.ArgumentTypeError(f"frame size {text!r}: give WIDTHxHEIGHT in pixels, e.g. 640x360")
    return int(m[2]), int(m[1])


def at_least(low: int):
    """An argparse type: a whole number >= low."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if n < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {n}")
        return n

    return parse


# ---- options shared by the benchmarks that compare with the official predictors -------------------------------
def add_device(p) -> None:
    p.add_argument("--device", default=None, help="cuda, cuda:N or cpu (default: cuda when there is a GPU)")


def add_weights(p) -> None:
    p.add_argument("--checkpoint", type=Path, help="an official checkpoint (with --model-dir: its export)")
    p.add_argument("--model-dir", type=Path, help="our export of --checkpoint")


def add_int8(p) -> None:
    p.add_argument("--int8", action=argparse.BooleanOptionalAction, default=None,
                   help="also measure our int8 export of the same weights (export --int8) on a CPU with the "
                        "random weights (default: on for image, off for video)")


def add_results(p) -> None:
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, metavar="DIR",
                   help="directory for the JSON results (default: benchmarks/results in the current directory)")


# ---- one function per benchmark: its options -----------------------------------------------------------------
def video_options(p) -> None:
    add_device(p)
    p.add_argument("--models", nargs="+", help="official model names (default: all four on a GPU, tiny on a CPU)")
    p.add_argument("--image-sizes", type=int, nargs="+", help="export sizes (default 1024 512)")
    p.add_argument("--objects", type=int, nargs="+", help="objects tracked (default 1 3 10 on a GPU, 1 on a CPU)")
    p.add_argument("--frames", type=at_least(2), help="frames per pass (default 60 on a GPU, 16 on a CPU)")
    p.add_argument("--frame-size", type=frame_size, default=(480, 854), help="WIDTHxHEIGHT of the video")
    p.add_argument("--backends", nargs="+", help="our backends (default: every one available here)")
    p.add_argument("--precision", default="fp16", help="TensorRT engine precision (default fp16)")
    p.add_argument("--official-modes", nargs="*", help="official modes: eager-bf16 vos-bf16 on a GPU, fp32 on "
                                                       "a CPU (default: all of the device's; none: skip it)")
    p.add_argument("--warmup-frames", type=at_least(0), help="frames of the untimed warm-up pass")
    p.add_argument("--reps", type=at_least(1), help="timed passes (the median is reported)")
    p.add_argument("--threads", type=at_least(1), help="ONNX Runtime intra-op and torch threads of every side "
                                                       "on a CPU (default: the usable cores)")
    add_int8(p)
    add_weights(p)
    add_results(p)


def image_options(p) -> None:
    add_device(p)
    p.add_argument("--models", nargs="+", help="official model names (default: all four on a GPU, tiny on a CPU)")
    p.add_argument("--image-sizes", type=int, nargs="+", help="export sizes (default 1024)")
    p.add_argument("--image-px", type=frame_size, default=(720, 1280), help="WIDTHxHEIGHT of the test image")
    p.add_argument("--backends", nargs="+", help="our backends (default: every one available here)")
    p.add_argument("--precision", default="fp16", help="TensorRT engine precision (default fp16)")
    p.add_argument("--points-per-side", type=int, help="automatic mask generator grid (default 32; 16 on a CPU)")
    p.add_argument("--no-official", action="store_true", help="measure only our backends")
    p.add_argument("--peers", nargs="*", help="ONNX Runtime peers from PyPI to measure beside ours on a CPU: "
                                              "sam2-onnx, samexporter (default: both; none: skip them)")
    p.add_argument("--threads", type=at_least(1), help="ONNX Runtime intra-op and torch threads of every side "
                                                       "on a CPU (default: the usable cores)")
    add_int8(p)
    add_weights(p)
    add_results(p)


def memory_options(p) -> None:
    p.add_argument("--frames", type=at_least(1), nargs="+", default=[100, 1000],
                   help="video lengths, one child each")
    p.add_argument("--models", nargs="+", default=["sam2.1_hiera_t"], help="official model names")
    p.add_argument("--image-size", type=int, default=256, help="export size (256: 1000 frames take minutes on a "
                                                               "CPU)")
    p.add_argument("--backend", default="auto", help="auto, tensorrt, onnxruntime-cuda or onnxruntime-cpu")
    add_device(p)
    p.add_argument("--objects", type=at_least(1), default=1, help="objects tracked, clicked on frame 0")
    p.add_argument("--frame-size", type=frame_size, default=(360, 640), help="WIDTHxHEIGHT of the frames")
    p.add_argument("--video-length", action="store_true", help="give our stream its length in advance "
                                                               "(default: unbounded, as a live feed)")
    p.add_argument("--no-official", action="store_true", help="measure only ours")
    add_weights(p)
    add_results(p)


def precision_options(p) -> None:
    p.add_argument("--model", type=Path, help="an exported model directory (default: the cached random-weight "
                                              "sam2.1_hiera_t export at --image-size)")
    p.add_argument("--image-size", type=int, default=512)
    p.add_argument("--precisions", nargs="+", choices=("fp16", "bf16"), default=["fp16", "bf16"])
    p.add_argument("--seed", type=int, default=0)
    add_results(p)
    p.add_argument("--markdown", type=Path, metavar="JSON", help="print the README table of a results file, run "
                                                                  "nothing")


def int8_options(p) -> None:
    p.add_argument("--image-size", type=int, default=1024, help="export size of the image parity cases (the "
                                                                "official image predictor runs at 1024)")
    p.add_argument("--video-image-size", type=int, default=512, help="export size of the video parity scenarios")
    add_results(p)
    p.add_argument("--markdown", type=Path, metavar="JSON", help="print the README tables of a results file, run "
                                                                  "nothing")


def kernels_options(p) -> None:
    p.add_argument("--warmup", type=int, default=10, help="GPU calls before timing (compilation, pool growth)")
    p.add_argument("--reps", type=int, default=100, help="timed GPU calls per kernel")
    p.add_argument("--cpu-reps", type=int, default=3, help="timed calls of each numpy twin")
    p.add_argument("--only", action="append", help="run only this kernel (repeatable)")
    add_results(p)


def gpu_check_options(p) -> None:
    p.add_argument("--only", action="append", metavar="STEP",
                   help="run only this step (repeatable): kernels, kernels-memcheck, onnxruntime-cuda, tensorrt, "
                        "video, video-vos")
    add_results(p)


def many_options(p) -> None:
    add_device(p)
    p.add_argument("--videos", type=at_least(1), help="videos in the job (default 32 on a GPU, 6 on a CPU)")
    p.add_argument("--frames", type=at_least(1), help="frames per video (default 60 on a GPU, 8 on a CPU)")
    p.add_argument("--frame-size", type=frame_size, default=(240, 320), help="WIDTHxHEIGHT of the videos")
    p.add_argument("--objects", type=at_least(1), default=2, help="objects clicked on frame 0 of each video")
    p.add_argument("--image-size", type=int, default=512, help="export size (default 512)")
    p.add_argument("--modes", nargs="+", choices=("local", "ray"), default=["local", "ray"],
                   help="local: one process, one video after another; ray: a local Ray cluster (default: both)")
    p.add_argument("--workers", type=at_least(1), help="Ray workers (default: 2 on a CPU, one per GPU on a GPU)")
    p.add_argument("--backend", default="auto", help="auto, tensorrt, onnxruntime-cuda or onnxruntime-cpu")
    add_weights(p)
    add_results(p)


def serve_options(p) -> None:
    add_device(p)
    p.add_argument("--model-dir", type=Path, help="an exported model (default: sam2.1_hiera_t with random weights "
                                                  "at --image-size)")
    p.add_argument("--image-size", type=int, default=256, help="export size of the default model (default 256)")
    p.add_argument("--backend", default="auto", help="auto, tensorrt, onnxruntime-cuda or onnxruntime-cpu")
    p.add_argument("--image-clients", type=at_least(0), default=2, help="clients clicking on an image (default 2)")
    p.add_argument("--video-clients", type=at_least(0), default=3, help="clients tracking a video (default 3)")
    p.add_argument("--seconds", type=at_least(1), default=60, help="how long the clients run (default 60)")
    p.add_argument("--max-frames", type=at_least(1), default=8, help="frames per propagation (default 8)")
    p.add_argument("--frame-size", type=frame_size, default=(360, 640), help="WIDTHxHEIGHT of the clip")
    p.add_argument("--batching", nargs="+", choices=("on", "off"), default=["on", "off"],
                   help="server settings to measure: on (default batching), off (one session per step)")
    add_results(p)


def report_options(p) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="rewrite the tables in README.md")
    group.add_argument("--check", action="store_true", help="exit 1 if README.md's tables are not the generated ones")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, metavar="DIR",
                   help="the results directory (default: benchmarks/results in the current directory)")
    p.add_argument("--readme", type=Path, default=Path("README.md"), metavar="PATH",
                   help="the README that --write rewrites and --check compares (default: README.md in the current "
                        "directory)")


# name -> (module under sam2_trt.benchmarks, what it measures (the listing), its description, its options)
BENCHMARKS = {
    "video": ("video", "propagate_in_video FPS end to end, ours and official",
              "Video tracking FPS, end to end, ours against the official SAM2VideoPredictor in the same run.",
              video_options),
    "image": ("image", "set_image / predict latency and automatic mask generation, ours and official",
              "Image segmentation latency, ours against the official SAM2ImagePredictor / "
              "SAM2AutomaticMaskGenerator.", image_options),
    "memory": ("video_memory", "peak RSS (and GPU memory) against video length, ours and official",
               "Peak memory against video length: does a 1000-frame video fit in what a 100-frame video needs?",
               memory_options),
    "precision": ("precision", "fp16/bf16 error of the precision policy (ONNX Runtime, CPU)",
                  "How far reduced precision moves each graph's outputs, with and without the precision policy's "
                  "fp32 islands.", precision_options),
    "int8": ("int8", "error of the int8 export: per output against fp32, mask IoU against the official predictor",
             "How far the int8 export (export --int8) moves each graph's outputs and the masks of the "
             "image and video parity scenarios.", int8_options),
    "kernels": ("kernels", "the CUDA post-processing kernels against numpy and torch (GPU)",
                "Benchmark every runtime.gpu kernel against its numpy twin (CPU) and the torch equivalent (GPU), "
                "same inputs.", kernels_options),
    "gpu-check": ("gpu_check", "verify a GPU machine: kernels, parity, TensorRT, video FPS (under 8 minutes)",
                  "Print the GPU environment, then run every GPU test and benchmark step with "
                  "SAM2_TRT_REQUIRE_GPU=1, each within its time budget, skipping a step only with its reason.",
                  gpu_check_options),
    "many": ("many", "videos per minute of track-many, locally and on Ray",
             "Videos per minute of `sam2-trt track-many`, the same job locally and on a Ray cluster, in the same run.",
             many_options),
    "serve": ("serve", "sam2-trt serve under concurrent image and video clients on loopback",
              "Throughput, latency, errors and memory of sam2-trt serve with image and video clients at once, every "
              "result checked against the library, with and without batching across sessions.", serve_options),
    "report": ("report", "the README's result tables from the results files (benchmarks/results/*.json)",
               "The README's result tables, generated from the JSON files under benchmarks/results/ and nothing "
               "else.", report_options),
}


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="run a benchmark (sam2-trt bench NAME --help for its options)",
                       description="Benchmarks, side by side with the official predictors. Each writes a JSON file "
                                   "under --results (default: benchmarks/results in the current directory).")
    names = p.add_subparsers(dest="benchmark", metavar="NAME", required=True)
    for name, (module, what, description, add_options) in BENCHMARKS.items():
        b = names.add_parser(name, help=what, description=description)
        add_options(b)
        b.set_defaults(run=run, module=module)


def run(args) -> int:
    return importlib.import_module(f"sam2_trt.benchmarks.{args.module}").run(args)
