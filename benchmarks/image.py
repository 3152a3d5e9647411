"""Image segmentation latency, ours against the official SAM2ImagePredictor / SAM2AutomaticMaskGenerator.

    sam2-trt bench image [--models ...] [--image-sizes 1024] [--image-px 1280x720] [--backends ...]
                         [--precision fp16] [--points-per-side N] [--no-official] [--device cuda|cpu]
                         [--checkpoint PT --model-dir DIR] [--results DIR]

Three numbers per model and side, each after explicit warm-up calls, as the median of timed repetitions:
  * encoder: `set_image(image)` (preprocessing, image encoder, features kept for predict);
  * predict: `predict(one click, multimask_output=True)` on the set image, masks at image resolution on the host;
  * amg: `generate(image)` of the automatic mask generator (--points-per-side points, the official defaults
    otherwise), records with boolean masks on the host.
Each side runs in a fresh child process. The official classes run on a GPU under bf16 autocast (as their README)
and in fp32 on a CPU. The official SAM2ImagePredictor hard-codes 1024 px feature sizes (_bb_feat_sizes), so at
another export size they are set from it. Results: a table and <--results>/image-<machine>-<date>.json (default
./benchmarks/results).
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import sys
import time

import numpy as np

from sam2_trt.benchmarks.environment import describe, gpu_description, machine_label
from sam2_trt.benchmarks.child import run_in_child
from sam2_trt.benchmarks.models import bench_models
from sam2_trt.benchmarks.results_file import write_result
from sam2_trt.benchmarks.scene import MovingScene

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
        from sam2_trt.benchmarks import official

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
        from sam2_trt.runtime import SAM2AutomaticMaskGenerator, SAM2ImagePredictor

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


def with_defaults(args):
    """A copy of `args` (the options of `sam2-trt bench image`) with the device's defaults filled in where an
    option is None: the device itself and GPU_DEFAULTS or CPU_DEFAULTS, which also give `warmup` (untimed calls)
    and `reps` ({measurement: timed calls}), which have no option."""
    args = copy.copy(args)
    if args.device is None:
        args.device = "cuda" if gpu_description() else "cpu"
    defaults = GPU_DEFAULTS if args.device.startswith("cuda") else CPU_DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


def run(args) -> int:
    """`sam2-trt bench image` (args: its options, sam2_trt.cli.bench): measure every model and side, print the
    table and write the results file under args.results. Returns the exit code."""
    from sam2_trt.benchmarks.video import available_backends, sides

    args = with_defaults(args)
    device = args.device
    models = bench_models(args.models, args.image_sizes, args.checkpoint, args.model_dir)
    backends = available_backends(device, args.backends)
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
                   "device": device, "warmup": args.warmup, "reps": args.reps,
                   "points_per_side": args.points_per_side, **settings}
            print(f"measuring {model.name} {model.image_size}px: {label}", file=sys.stderr, flush=True)
            row = {"model": model.name, "image_size": model.image_size, "side": side, "label": label,
                   "device": job["device"], **{k: v for k, v in settings.items() if k != "device"},
                   **run_in_child("sam2_trt.benchmarks.image", job)}
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
              "settings": {"image_size_px": f"{w}x{h}", "points_per_side": args.points_per_side, "device": device,
                           "warmup": args.warmup, "reps": args.reps}, "rows": rows}
    print(f"wrote {write_result(args.results, 'image', machine_label(env), result)}")
    return 0

