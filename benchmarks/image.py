"""Image segmentation latency, ours against the official SAM2ImagePredictor / SAM2AutomaticMaskGenerator.

    python -m benchmarks.image [--models ...] [--image-sizes 1024] [--image-size-px 1280x720] [--backends ...]
                               [--precision fp16] [--points-per-side N] [--device cuda|cpu]
                               [--checkpoint PT --model-dir DIR] [--out DIR]

Three numbers per model and side, each after explicit warm-up calls, as the median of timed repetitions:
  * encoder: `set_image(image)` (preprocessing, image encoder, features kept for predict);
  * predict: `predict(one click, multimask_output=True)` on the set image, masks at image resolution on the host;
  * amg: `generate(image)` of the automatic mask generator (--points-per-side points, the official defaults
    otherwise), records with boolean masks on the host.
Each side runs in a fresh child process. The official classes run on a GPU under bf16 autocast (as their README)
and in fp32 on a CPU. The official SAM2ImagePredictor hard-codes 1024 px feature sizes (_bb_feat_sizes), so at
another export size they are set from it. Results: a table and benchmarks/results/image-<machine>-<date>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.environment import describe, gpu_description, machine_label
from benchmarks.child import run_in_child
from benchmarks.models import bench_models
from benchmarks.results_file import RESULTS, write_result
from benchmarks.scene import MovingScene, frame_size

GPU_DEFAULTS = {"models": ["sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l"],
                "image_sizes": [1024], "points_per_side": 32, "warmup": 3, "reps": {"encoder": 20, "predict": 100,
                                                                                    "amg": 5}}
CPU_DEFAULTS = {"models": ["sam2.1_hiera_t"], "image_sizes": [1024], "points_per_side": 16, "warmup": 1,
                "reps": {"encoder": 3, "predict": 10, "amg": 1}}


def timed(fn, warmup: int, reps: int, sync) -> dict:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "reps": reps, "warmup": warmup}


def run_child(job: dict) -> dict:
    h, w = job["image_hw"]
    scene = MovingScene(h, w, 3)
    image = scene.frame(0)
    point = np.array([scene.centre(0, 0)], np.float32)
    label = np.array([1], np.int32)
    device, warmup, reps = job["device"], job["warmup"], job["reps"]
    amg_args = {"points_per_side": job["points_per_side"]}
    if job["side"] == "official":
        from benchmarks import official

        predictor_cls, generator_cls = official.image_classes()
        model = official.image_model(job["config"], job["checkpoint"], job["image_size"], device)
        predictor = predictor_cls(model)
        s = job["image_size"]
        predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
        generator = generator_cls(model, **amg_args)
        generator.predictor._bb_feat_sizes = predictor._bb_feat_sizes
        context = official.running(device)

        def sync():
            official.synchronize(device)
    else:
        from runtime import SAM2AutomaticMaskGenerator, SAM2ImagePredictor

        predictor = SAM2ImagePredictor.load(job["model_dir"], backend=job["backend"], device=device,
                                            precision=job["precision"])
        generator = SAM2AutomaticMaskGenerator(predictor.model, **amg_args)
        context = contextlib.nullcontext()

        def sync():
            pass

    def predict():  # both predictors return numpy masks on the host
        masks, _, _ = predictor.predict(point_coords=point, point_labels=label, multimask_output=True)
        return np.asarray(masks)

    out = {}
    with context:
        out["encoder"] = timed(lambda: predictor.set_image(image), warmup, reps["encoder"], sync)
        predictor.set_image(image)
        out["predict"] = timed(predict, warmup, reps["predict"], sync)
        records = []
        out["amg"] = timed(lambda: records.append(len(generator.generate(image))), min(warmup, 1), reps["amg"],
                           sync)
        out["amg"]["masks"] = records[-1]
    if job["side"] == "ours":
        out["backend"] = predictor.model.backend.name
    return out


def print_row(r: dict, header: bool) -> None:
    if header:
        print(f"{'model':16} {'px':>5} {'side':28} {'encoder ms':>10} {'predict ms':>10} {'amg s':>8} {'masks':>5} "
              f"{'x official (enc/pred/amg)':>26}")
    if "error" in r:
        print(f"{r['model']:16} {r['image_size']:5d} {r['label']:28} failed: {r['error']}")
        return
    ratios = r.get("speedup")
    ratio = "-" if not ratios else "/".join(f"{ratios[k]:.2f}" for k in ("encoder", "predict", "amg"))
    print(f"{r['model']:16} {r['image_size']:5d} {r['label']:28} {r['encoder']['median_ms']:10.1f} "
          f"{r['predict']['median_ms']:10.2f} {r['amg']['median_ms'] / 1000:8.2f} {r['amg']['masks']:5d} "
          f"{ratio:>26}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.image", description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default=None, help="cuda, cuda:N or cpu (default: cuda when there is a GPU)")
    ap.add_argument("--models", nargs="+", help="official model names (default: all four on a GPU, tiny on a CPU)")
    ap.add_argument("--image-sizes", type=int, nargs="+", help="export sizes (default 1024)")
    ap.add_argument("--image-px", type=frame_size, default=(720, 1280), help="WIDTHxHEIGHT of the test image")
    ap.add_argument("--backends", nargs="+", help="our backends (default: every one available here)")
    ap.add_argument("--precision", default="fp16", help="TensorRT engine precision (default fp16)")
    ap.add_argument("--points-per-side", type=int, help="automatic mask generator grid (default 32; 16 on a CPU)")
    ap.add_argument("--no-official", action="store_true", help="measure only our backends")
    ap.add_argument("--checkpoint", type=Path, help="an official checkpoint (with --model-dir: its export)")
    ap.add_argument("--model-dir", type=Path, help="our export of --checkpoint")
    ap.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON results")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return 0
    from benchmarks.video import available_backends, sides

    device = args.device or ("cuda" if gpu_description() else "cpu")
    defaults = GPU_DEFAULTS if device.startswith("cuda") else CPU_DEFAULTS
    models = bench_models(args.models or defaults["models"], args.image_sizes or defaults["image_sizes"],
                          args.checkpoint, args.model_dir)
    backends = available_backends(device, args.backends)
    pps = args.points_per_side or defaults["points_per_side"]
    h, w = args.image_px
    modes = [] if args.no_official else ["bf16" if device.startswith("cuda") else "fp32"]
    rows = []
    for model in models:
        official_row = None
        for side, label, settings in sides(device, backends, args.precision, modes):
            if side == "official":
                label = f"official {settings['mode']}"
            job = {"side": side, "config": model.config, "checkpoint": str(model.checkpoint),
                   "model_dir": str(model.model_dir), "image_size": model.image_size, "image_hw": [h, w],
                   "device": device, "warmup": defaults["warmup"], "reps": defaults["reps"],
                   "points_per_side": pps, **settings}
            print(f"measuring {model.name} {model.image_size}px: {label}", file=sys.stderr, flush=True)
            row = {"model": model.name, "image_size": model.image_size, "side": side, "label": label,
                   "device": job["device"], **{k: v for k, v in settings.items() if k != "device"},
                   **run_in_child("benchmarks.image", job)}
            if side == "official" and "error" not in row:
                official_row = row
            elif official_row is not None and "error" not in row:
                row["speedup"] = {k: official_row[k]["median_ms"] / row[k]["median_ms"]
                                  for k in ("encoder", "predict", "amg")}
            rows.append(row)
            print_row(row, header=len(rows) == 1)
    env = describe()
    result = {"benchmark": "image", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_label(env),
              "environment": env, "models": [m.describe() for m in models],
              "settings": {"image_size_px": f"{w}x{h}", "points_per_side": pps, "device": device,
                           "warmup": defaults["warmup"], "reps": defaults["reps"]}, "rows": rows}
    print(f"wrote {write_result(args.out, 'image', machine_label(env), result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
