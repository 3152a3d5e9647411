"""`sam2-trt track-many MANIFEST --model DIR --out DIR [--ray [ADDRESS]]`: every video of a JSON Lines manifest,
prompted explicitly or by a detector's boxes, tracked here one after another or across a Ray cluster
(sam2_trt.jobs)."""

from __future__ import annotations

import argparse

from .track import positive_int


def fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text!r}")
    return v


def non_negative(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return v


def class_filter(values) -> tuple:
    """--classes 0 2 person -> (0, 2, "person"): whole numbers are class ids, anything else a class name."""
    return tuple(int(v) if v.lstrip("-").isdigit() else v for v in values or ())


def add_parser(sub) -> None:
    p = sub.add_parser(
        "track-many", help="track every video of a manifest, here or across a Ray cluster",
        description="Track every video of MANIFEST (JSON Lines, one video a line: its path and either explicit "
                    "\"prompts\" or a detector's \"detections\" file) into OUT/videos/<id>/ (DAVIS PNGs, "
                    "masks.json with track ids and classes, video.json), with the summary in OUT/job.json. Videos "
                    "done by an earlier run with the same inputs are skipped; a video that fails is recorded with "
                    "its reason and the job goes on.",
        epilog="Detections: every box on the first frame with boxes starts a track; a later box starts a new one "
               "when its IoU with the box of every tracked mask on that frame is below --new-object-iou. "
               "Exit codes: 0 every video done, 2 usage, 3 bad manifest or options, or some videos failed (see "
               "OUT/job.json; a rerun retries them), 5 Ray missing, 130 interrupted (a rerun goes on).")
    p.add_argument("manifest", help="JSON Lines file, one video a line (README: track-many)")
    p.add_argument("--model", required=True, metavar="DIR", help="model directory from `sam2-trt export`")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if needed)")
    p.add_argument("--ray", nargs="?", const=True, default=False, metavar="ADDRESS",
                   help="run on Ray: the cluster at ADDRESS (e.g. head-node:6379 or ray://head-node:10001), or "
                        "without ADDRESS the one `ray start`/RAY_ADDRESS points at, else a new local one")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="Ray workers, each holding a loaded model (default: one per GPU, or one per "
                        "--cpus-per-worker CPUs on a cluster without GPUs)")
    p.add_argument("--gpus-per-worker", type=non_negative, metavar="G",
                   help="GPUs per Ray worker, e.g. 0.5 for two workers a GPU (default 1 where there are GPUs)")
    p.add_argument("--cpus-per-worker", type=non_negative, default=1, metavar="C",
                   help="CPUs per Ray worker (default 1); a CPU-only worker runs ONNX Runtime on that many threads")
    g = p.add_argument_group("detections (lines with a \"detections\" file)")
    g.add_argument("--score-threshold", type=fraction, default=0.5, metavar="S",
                   help="boxes with a lower score prompt nothing (default 0.5)")
    g.add_argument("--classes", nargs="+", metavar="CLASS",
                   help="only boxes of these classes: class ids (whole numbers) and/or names (default: all)")
    g.add_argument("--new-object-iou", type=fraction, default=0.5, metavar="IOU",
                   help="a later box starts a new track when its IoU with every tracked mask's box is below this "
                        "(default 0.5)")
    p.add_argument("--max-attempts", type=positive_int, default=3, metavar="N",
                   help="attempts per video when its Ray worker dies (default 3)")
    p.add_argument("--backend", default="auto", choices=("auto", "onnxruntime-cpu", "onnxruntime-cuda", "tensorrt"))
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (auto falls back to cpu; a Ray worker's "
                                                    "GPU is its cuda)")
    p.add_argument("--non-overlap", action="store_true",
                   help="at most one object per pixel (the official non_overlap_masks)")
    p.add_argument("--overlay", action="store_true", help="also write OUT/videos/<id>/overlay.mp4")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args) -> int:
    import logging

    from sam2_trt.jobs import JobOptions, track_many

    from .engines import install_build_on_first_use

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    install_build_on_first_use()
    options = JobOptions(backend=args.backend, device=args.device, non_overlap=args.non_overlap, overlay=args.overlay,
                         score_threshold=args.score_threshold, classes=class_filter(args.classes),
                         new_object_iou=args.new_object_iou, max_attempts=args.max_attempts)
    summary = track_many(args.manifest, args.model, args.out, ray=args.ray, workers=args.workers,
                         gpus_per_worker=args.gpus_per_worker, cpus_per_worker=args.cpus_per_worker,
                         options=options, progress=not args.quiet, worker_setup=install_build_on_first_use)
    print(one_line(summary))
    for row in summary["videos"]:
        if row["status"] == "failed":
            print(f"  failed: {row['id']}: {row.get('reason')}")
    return 0 if summary["status"] == "complete" else 3


def one_line(summary: dict) -> str:
    c = summary["counts"]
    return (f"{sum(c.values())} videos: {c['done']} done, {c['skipped']} skipped (done before), {c['failed']} failed "
            f"in {summary['seconds']:.1f} s ({summary['videos_per_minute']:.2f} videos/min); summary in "
            f"{summary['out']}/job.json")
