"""Image segmentation latency: ours, the official SAM2ImagePredictor / SAM2AutomaticMaskGenerator and the ONNX
Runtime peers on PyPI (benchmarks/peers.py), measured in turn on the same machine.

    sam2-trt bench image [--models ...] [--image-sizes 1024] [--image-px 1280x720] [--backends ...]
                         [--precision fp16] [--points-per-side N] [--no-official] [--peers NAME ...]
                         [--threads N] [--device cuda|cpu] [--checkpoint PT --model-dir DIR] [--results DIR]

Three numbers per model and side, each after explicit warm-up calls, as the median of timed repetitions:
  * encoder: `set_image(image)` (preprocessing, image encoder, features kept for predict);
  * predict: `predict(one click, multimask_output=True)` on the set image, masks at image resolution on the host;
  * amg: `generate(image)` of the automatic mask generator (--points-per-side points, the official defaults
    otherwise), records with boolean masks on the host (ours and the official one: the peers have none).
Every side is loaded once in its own child process (benchmarks/workers.py; the official side's torch never
shares a process with ours), then the repetitions are interleaved: each round runs every side once, so a change
in the machine's load hits all sides alike. On a CPU every ONNX Runtime side (ours and the peers) runs with
the same session options (--threads intra-op threads, ORT_ENABLE_ALL) and torch with the same thread count.
The masks of the click are compared across sides (IoU). The official classes run on a GPU under bf16 autocast
(as their README) and in fp32 on a CPU; the official SAM2ImagePredictor hard-codes 1024 px feature sizes
(_bb_feat_sizes), so at another export size they are set from it. Results: a table and
<--results>/image-<machine>-<date>.json (default ./benchmarks/results).
"""

from __future__ import annotations

import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sam2_trt.benchmarks.environment import describe, gpu_description, machine_label
from sam2_trt.benchmarks.models import bench_models, random_model
from sam2_trt.benchmarks.results_file import write_result
from sam2_trt.benchmarks.scene import MovingScene
from sam2_trt.benchmarks.workers import Worker, interleaved

GPU_DEFAULTS = {"models": ["sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l"],
                "image_sizes": [1024], "points_per_side": 32, "warmup": 3,
                "reps": {"encoder": 20, "predict": 100, "amg": 5}, "peers": [], "int8": False}
CPU_DEFAULTS = {"models": ["sam2.1_hiera_t"], "image_sizes": [1024], "points_per_side": 16, "warmup": 1,
                "reps": {"encoder": 11, "predict": 15, "amg": 1}, "peers": ["sam2-onnx", "samexporter"], "int8": True}
CALLS = ("encoder", "predict", "amg")


def _scene(job: dict):
    """(image [H,W,3] uint8, click [1,2] float32 (x, y), label [1] int32): the same on every side."""
    h, w = job["image_hw"]
    scene = MovingScene(h, w, 3)
    return scene.frame(0), np.array([scene.centre(0, 0)], np.float32), np.array([1], np.int32)


def _save_masks(path: str, masks, ious) -> str:
    np.savez(path, masks=np.asarray(masks, bool), ious=np.asarray(ious if ious is not None else [], np.float32))
    return path


def open_side(job: dict) -> dict:
    """Child process (benchmarks/workers.py): load one side; {call name: fn} for encoder, predict, amg, masks."""
    image, point, label = _scene(job)
    side, device = job["side"], job["device"]
    if side == "peer":
        from sam2_trt.benchmarks import peers

        peer = peers.PEERS[job["peer"]]
        predictor = peers.PeerPredictor(peer, peers.install(peer), Path(job["export_dir"]), job["threads"])
        predictor.set_image(image)
        return {"encoder": lambda: predictor.set_image(image),
                "predict": lambda: predictor.predict(point, label) is None,
                "masks": lambda: _save_masks(job["masks_path"], *predictor.predict(point, label))}
    amg_args = {"points_per_side": job["points_per_side"]}
    if side == "official":
        from sam2_trt.benchmarks import official

        import torch

        if device == "cpu":
            torch.set_num_threads(job["threads"])
        predictor_cls, generator_cls = official.image_classes()
        model = official.image_model(job["config"], job["checkpoint"], job["image_size"], device)
        predictor = predictor_cls(model)
        s = job["image_size"]
        predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
        generator = generator_cls(model, **amg_args)
        generator.predictor._bb_feat_sizes = predictor._bb_feat_sizes
        context = official.running(device)
        context.__enter__()  # for the life of this child: inference mode, autocast, the CPU stand-ins

        def sync():
            official.synchronize(device)
    else:
        if device == "cpu":
            os.environ["SAM2_TRT_THREADS"] = str(job["threads"])  # read by the ONNX Runtime CPU backend
        from sam2_trt.runtime import SAM2AutomaticMaskGenerator, SAM2ImagePredictor

        predictor = SAM2ImagePredictor.load(job["model_dir"], backend=job["backend"], device=device,
                                            precision=job["precision"])
        generator = SAM2AutomaticMaskGenerator(predictor.model, **amg_args)

        def sync():
            pass

    def predict():  # both predictors return numpy masks on the host
        return predictor.predict(point_coords=point, point_labels=label, multimask_output=True)

    def timed(fn):
        def call():
            out = fn()
            sync()
            return out
        return call

    predictor.set_image(image)
    return {"encoder": timed(lambda: predictor.set_image(image)),
            "predict": timed(lambda: np.asarray(predict()[0]) is None),
            "amg": timed(lambda: len(generator.generate(image))),
            "masks": lambda: _save_masks(job["masks_path"], *(np.asarray(x) for x in predict()[:2]))}


# -- comparing masks -------------------------------------------------------------------------------------------
def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def mask_agreement(saved: dict) -> dict:
    """{"A vs B": [IoU per mask]} for every pair of sides, from their saved masks of the click: multimask sets
    mask by mask; a side that returns only its best mask (samexporter) against the other's best by its IoU."""
    loaded = {label: np.load(path) for label, path in saved.items()}
    out = {}
    labels = list(loaded)
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            ma, mb = loaded[a]["masks"], loaded[b]["masks"]
            if len(ma) != len(mb):
                (one, one_masks), (many, many_masks) = sorted(((a, ma), (b, mb)), key=lambda s: len(s[1]))
                ious = loaded[many]["ious"]
                if len(ious) != len(many_masks):
                    raise ValueError(f"{many}: {len(many_masks)} masks but {len(ious)} predicted IoUs to pick its best")
                best = many_masks[int(np.argmax(ious))]
                out[f"{a} vs {b}"] = [_iou(one_masks[0], best)]
            else:
                out[f"{a} vs {b}"] = [_iou(x, y) for x, y in zip(ma, mb)]
    return out


# -- the run ---------------------------------------------------------------------------------------------------
def print_row(r: dict, header: bool) -> None:
    if header:
        print(f"{'model':16} {'px':>5} {'side':28} {'encoder ms':>10} {'predict ms':>10} {'amg s':>8} {'masks':>5} "
              f"{'x official (enc/pred/amg)':>26}")
    if "error" in r:
        print(f"{r['model']:16} {r['image_size']:5d} {r['label']:28} skipped: {r['error']}")
        return
    ratios = r.get("speedup")
    ratio = "-" if not ratios else "/".join("-" if ratios.get(k) is None else f"{ratios[k]:.2f}" for k in CALLS)
    amg = r.get("amg")
    print(f"{r['model']:16} {r['image_size']:5d} {r['label']:28} {r['encoder']['median_ms']:10.1f} "
          f"{r['predict']['median_ms']:10.2f} {'-' if not amg else format(amg['median_ms'] / 1000, '8.2f'):>8} "
          f"{'-' if not amg else amg['masks']:>5} {ratio:>26}", flush=True)


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
    if args.device != "cpu":
        args.int8 = False  # the int8 graphs are ONNX Runtime CPU kernels
    if getattr(args, "threads", None) is None:
        args.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return args


def _sides(model, args, backends: list) -> list:
    """[(label, job or None, reason)] of one model: official, each backend of ours, each peer."""
    from sam2_trt.benchmarks import peers
    from sam2_trt.benchmarks.video import sides

    h, w = args.image_px
    base = {"config": model.config, "checkpoint": str(model.checkpoint), "model_dir": str(model.model_dir),
            "image_size": model.image_size, "image_hw": [h, w], "device": args.device, "threads": args.threads,
            "points_per_side": args.points_per_side}
    modes = [] if args.no_official else ["bf16" if args.device.startswith("cuda") else "fp32"]
    out = []
    for side, label, settings in sides(args.device, backends, args.precision, modes):
        out.append((f"official {settings['mode']}" if side == "official" else label,
                    {**base, "side": side, **settings}, None))
    if args.int8 and args.device == "cpu":
        label = "ours onnxruntime-cpu int8"
        if model.weights.startswith("random"):
            int8 = random_model(model.name, model.image_size, precision="int8")
            out.append((label, {**base, "side": "ours", "backend": "onnxruntime-cpu", "precision": None,
                                "model_dir": str(int8.model_dir), "graphs": "int8"}, None))
        else:
            out.append((label, None, "int8 is measured on the benchmark's random weights (export your checkpoint "
                                     "with --int8 and pass it as --model-dir)"))
    for name in args.peers:
        label = f"peer {name}"
        if name not in peers.PEERS:
            out.append((label, None, f"unknown peer (known: {', '.join(peers.PEERS)})"))
            continue
        peer = peers.PEERS[name]
        try:
            export_dir = peers.export(peer, model)
            out.append((f"peer {peer.label}", {**base, "side": "peer", "peer": name, "device": "cpu",
                                               "export_dir": str(export_dir)}, None))
        except peers.PeerUnavailable as e:
            out.append((f"peer {peer.label}", None, str(e)))
    return out


def measure_model(model, args, backends: list) -> tuple[list, dict]:
    """Rows (one per side) and the masks' agreement of one model, all sides loaded at once and interleaved."""
    planned = _sides(model, args, backends)
    rows, workers = [], []
    with tempfile.TemporaryDirectory(prefix="sam2-trt-bench-image-") as tmp:
        for k, (label, job, reason) in enumerate(planned):
            row = {"model": model.name, "image_size": model.image_size, "label": label}
            if job is not None:
                job["masks_path"] = str(Path(tmp) / f"side{k}.npz")
                row.update(side=job["side"], device=job["device"],
                           **{key: job[key] for key in ("mode", "backend", "precision", "peer", "graphs")
                              if key in job})
                print(f"loading {model.name} {model.image_size}px: {label}", file=sys.stderr, flush=True)
                worker = Worker(label, "sam2_trt.benchmarks.image", job)
                workers.append(worker)
                reason = worker.error
            if reason is not None:
                row["error"] = reason
            rows.append(row)
        try:
            for call in CALLS:
                able = [w for w in workers if call != "amg" or "peer" not in w.label]
                warmup = min(args.warmup, 1) if call == "amg" else args.warmup
                print(f"timing {call}: {args.reps[call]} interleaved rounds of {len(able)} sides", file=sys.stderr,
                      flush=True)
                for label, stats in interleaved(able, call, warmup, args.reps[call]).items():
                    results = stats.pop("results")
                    if call == "amg":
                        stats["masks"] = results[-1]  # records generated
                    next(r for r in rows if r["label"] == label)[call] = stats
            saved = {}
            for w in workers:
                answer = w.call("masks")
                if answer is not None:
                    saved[w.label] = answer["result"]
            agreement = mask_agreement(saved)
        finally:
            for w in workers:
                w.close()
        for w in workers:
            row = next(r for r in rows if r["label"] == w.label)
            if w.error is not None:
                row["error"] = w.error
    _ratios(rows)
    return rows, agreement


def _ratios(rows: list) -> None:
    """Each measured row of ours gets `speedup` (official median / ours per call) and `vs_fastest_peer` (the
    fastest peer's median / ours per call: >= 1 means ours is at least as fast); the int8 row also `vs_fp32`."""
    official = next((r for r in rows if r.get("side") == "official" and "error" not in r), None)
    fp32 = next((r for r in rows if r.get("side") == "ours" and "graphs" not in r and "error" not in r), None)
    peers = [r for r in rows if r.get("side") == "peer" and "error" not in r]
    for r in rows:
        if r.get("side") != "ours" or "error" in r:
            continue
        if official is not None:
            r["speedup"] = {k: official[k]["median_ms"] / r[k]["median_ms"] for k in CALLS if k in official and k in r}
        if fp32 is not None and r.get("graphs") == "int8":
            r["vs_fp32"] = {k: fp32[k]["median_ms"] / r[k]["median_ms"] for k in CALLS if k in fp32 and k in r}
        if peers:
            fastest = {k: min(peers, key=lambda p: p[k]["median_ms"]) for k in ("encoder", "predict")}
            r["vs_fastest_peer"] = {k: {"peer": p["label"], "ratio": p[k]["median_ms"] / r[k]["median_ms"],
                                        **_round_by_round(p[k]["times_ms"], r[k]["times_ms"])}
                                    for k, p in fastest.items()}


def _round_by_round(theirs: list, ours: list) -> dict:
    """The two sides' times of the same interleaved rounds compared pairwise (a round's sides ran seconds apart,
    under the same load, so a pair's ratio is steadier than a ratio of medians): {paired_ratio: median of
    theirs / ours per round, rounds_ahead: rounds in which ours was at least as fast, rounds}; {} when a side
    missed a round (its rounds no longer pair up)."""
    if len(theirs) != len(ours) or not ours:
        return {}
    return {"paired_ratio": statistics.median(t / o for t, o in zip(theirs, ours)),
            "rounds_ahead": sum(o <= t for t, o in zip(theirs, ours)), "rounds": len(ours)}


def run(args) -> int:
    """`sam2-trt bench image` (args: its options, sam2_trt.cli.bench): measure every model and side, print the
    table and write the results file under args.results. Returns the exit code."""
    from sam2_trt.benchmarks.video import available_backends

    load_before = [round(x, 2) for x in os.getloadavg()]  # describe() below reads it again at the end
    args = with_defaults(args)
    if args.device.startswith("cuda"):
        args.peers = []  # the peers run ONNX Runtime on the CPU: no comparison with a GPU run
    models = bench_models(args.models, args.image_sizes, args.checkpoint, args.model_dir)
    backends = available_backends(args.device, args.backends)
    h, w = args.image_px
    rows, agreement = [], {}
    for model in models:
        model_rows, agreement[f"{model.name} {model.image_size}px"] = measure_model(model, args, backends)
        for r in model_rows:
            print_row(r, header=not rows)
            rows.append(r)
    for case, pairs in agreement.items():
        print(f"mask IoU of the click, {case}: " + "; ".join(f"{pair} {min(v):.4f}" for pair, v in pairs.items()))
    env = describe(load_average_before=load_before)
    result = {"benchmark": "image", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_label(env),
              "environment": env, "models": [m.describe() for m in models],
              "settings": {"image_size_px": f"{w}x{h}", "points_per_side": args.points_per_side, "device": args.device,
                           "warmup": args.warmup, "reps": args.reps, "interleaved": True,
                           "threads": args.threads, "onnxruntime_graph_optimization": "ORT_ENABLE_ALL"},
              "rows": rows, "mask_agreement": agreement}
    print(f"wrote {write_result(args.results, 'image', machine_label(env), result)}")
    return 0
