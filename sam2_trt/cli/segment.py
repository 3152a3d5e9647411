"""`sam2-trt segment`: masks for one image from clicks, a box, or the automatic generator, as PNG (+ JSON)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _floats(n_min: int, n_max: int, what: str):
    def parse(text: str):
        try:
            vals = [float(v) for v in text.split(",")]
        except ValueError:
            vals = []
        if not n_min <= len(vals) <= n_max:
            raise argparse.ArgumentTypeError(f"{what} must be {what.upper()} numbers separated by commas, got {text!r}")
        return vals
    return parse


def add_parser(sub) -> None:
    p = sub.add_parser("segment", help="segment one image from clicks, a box, or automatically",
                       description="Run an exported model on one image and write the mask(s) as PNG, an overlay "
                                   "PNG, and (with --auto) COCO-RLE JSON into --out.")
    p.add_argument("image", help="image file (anything PIL reads)")
    p.add_argument("--model", required=True, metavar="DIR", help="model directory from `sam2-trt export`")
    p.add_argument("--point", action="append", default=[], type=_floats(2, 3, "x,y[,label]"), metavar="X,Y[,LABEL]",
                   help="a click in image pixels; label 1 (default) foreground, 0 background; repeatable")
    p.add_argument("--box", type=_floats(4, 4, "x0,y0,x1,y1"), metavar="X0,Y0,X1,Y1", help="a box prompt (XYXY pixels)")
    p.add_argument("--auto", action="store_true", help="automatic mask generation over the whole image")
    p.add_argument("--points-per-side", type=int, default=32, help="grid size for --auto (default 32)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if needed)")
    p.add_argument("--backend", default="auto", help="auto, tensorrt, onnxruntime-cuda or onnxruntime-cpu")
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (auto falls back to cpu)")
    p.set_defaults(run=run)


def run(args) -> int:
    import logging

    import numpy as np
    from PIL import Image

    from sam2_trt.runtime.overlay import draw_overlay

    from .engines import install_build_on_first_use

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    install_build_on_first_use()
    if not args.auto and not args.point and not args.box:
        print("sam2-trt segment: error: give --point and/or --box, or --auto", file=sys.stderr)
        return 2
    try:
        image = np.asarray(Image.open(args.image).convert("RGB"))
    except (OSError, ValueError) as e:
        print(f"sam2-trt segment: error: cannot read image {args.image}: {e}", file=sys.stderr)
        return 3
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if args.auto:
        from sam2_trt.runtime.automatic_mask_generator import SAM2AutomaticMaskGenerator

        gen = SAM2AutomaticMaskGenerator.load(args.model, backend=args.backend, device=args.device,
                                              points_per_side=args.points_per_side, output_mode="uncompressed_rle")
        from sam2_trt.runtime.amg_utils import coco_encode_rle, rle_to_mask

        records = sorted(gen.generate(image), key=lambda r: -r["area"])
        masks = [rle_to_mask(r["segmentation"]) for r in records]
        for r in records:
            r["segmentation"] = coco_encode_rle(r["segmentation"])
        (out / "masks.json").write_text(json.dumps(records))
        labels = np.zeros(image.shape[:2], np.uint16)
        for k, m in enumerate(masks):
            labels[m] = k + 1
        Image.fromarray(labels).save(out / "labels.png")
        Image.fromarray(draw_overlay(image, masks)).save(out / "overlay.png")
        print(f"{len(records)} masks in {time.time() - t0:.2f}s -> {out}/masks.json, labels.png, overlay.png")
        return 0
    from sam2_trt.runtime.image_predictor import SAM2ImagePredictor

    predictor = SAM2ImagePredictor.load(args.model, backend=args.backend, device=args.device)
    predictor.set_image(image)
    points = [(p[0], p[1], int(p[2]) if len(p) == 3 else 1) for p in args.point]
    coords = np.array([p[:2] for p in points], np.float32) if points else None
    labels = np.array([p[2] for p in points], np.int32) if points else None
    multimask = len(points) == 1 and args.box is None  # one click is ambiguous: pick the best of three
    masks, ious, _ = predictor.predict(coords, labels, box=np.array(args.box, np.float32) if args.box else None,
                                       multimask_output=multimask)
    best = int(np.argmax(ious))
    mask = masks[best]
    Image.fromarray((mask * 255).astype(np.uint8)).save(out / "mask.png")
    Image.fromarray(draw_overlay(image, [mask], points=points)).save(out / "overlay.png")
    print(f"mask with predicted IoU {ious[best]:.3f} ({int(mask.sum())} px) in {time.time() - t0:.2f}s "
          f"-> {out}/mask.png, overlay.png")
    return 0
