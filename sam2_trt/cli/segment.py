"""`sam2-trt segment`: masks for one image from clicks, a box, or the automatic generator, as PNG (+ JSON)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from .flags import label, numbers


def _flag(flag: str, form: str, n_min: int, n_max: int):
    """An argparse type: comma-separated finite numbers (flags.numbers), errors naming the flag."""
    def parse(text: str) -> list:
        try:
            values = numbers(text, flag, form, n_min, n_max)
            if flag == "--point" and len(values) == 3:
                values[2] = label(values[2], flag, text)
            return values
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse


def add_parser(sub) -> None:
    p = sub.add_parser("segment", help="segment one image from clicks, a box, or automatically",
                       description="Run an exported model on one image and write the mask(s) as PNG, an overlay "
                                   "PNG, and (with --auto) COCO-RLE JSON into --out.")
    p.add_argument("image", help="image file (anything PIL reads)")
    p.add_argument("--model", required=True, metavar="DIR", help="model directory from `sam2-trt export`")
    p.add_argument("--point", action="append", default=[], type=_flag("--point", "X,Y[,LABEL]", 2, 3),
                   metavar="X,Y[,LABEL]",
                   help="a click in image pixels; label 1 (default) foreground, 0 background; repeatable")
    p.add_argument("--box", type=_flag("--box", "X0,Y0,X1,Y1", 4, 4), metavar="X0,Y0,X1,Y1",
                   help="a box prompt (XYXY pixels)")
    p.add_argument("--auto", action="store_true", help="automatic mask generation over the whole image")
    p.add_argument("--points-per-side", type=int, default=32, help="grid size for --auto (default 32)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if needed)")
    p.add_argument("--backend", default="auto", help="auto, tensorrt, onnxruntime-cuda or onnxruntime-cpu")
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (auto falls back to cpu)")
    p.set_defaults(run=run)


def run(args) -> int:
    import logging

    from sam2_trt.core.files import OutputSet
    from sam2_trt.runtime.images import read_image

    from .engines import install_build_on_first_use

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    install_build_on_first_use()
    if not args.auto and not args.point and not args.box:
        print("sam2-trt segment: error: give --point and/or --box, or --auto", file=sys.stderr)
        return 2
    image = read_image(args.image)  # ValueError naming the file: exit 3
    names = ["masks.json", "labels.png", "overlay.png"] if args.auto else ["mask.png", "overlay.png"]
    with OutputSet(args.out, names, tool="segment") as outputs:  # checked before the model loads
        t0 = time.time()
        summary = (_automatic if args.auto else _prompted)(args, image, outputs)
        summary += f" in {time.time() - t0:.2f}s"
    print(f"{summary} -> {outputs.out_dir}/{', '.join(names)}")
    return 0


def _automatic(args, image, outputs) -> str:
    """Every mask of the automatic generator: masks.json (COCO RLE), labels.png, overlay.png."""
    import numpy as np
    from PIL import Image

    from sam2_trt.runtime.amg_utils import coco_encode_rle, rle_to_mask
    from sam2_trt.runtime.automatic_mask_generator import SAM2AutomaticMaskGenerator
    from sam2_trt.runtime.overlay import draw_overlay

    gen = SAM2AutomaticMaskGenerator.load(args.model, backend=args.backend, device=args.device,
                                          points_per_side=args.points_per_side, output_mode="uncompressed_rle")
    records = sorted(gen.generate(image), key=lambda r: -r["area"])
    masks = [rle_to_mask(r["segmentation"]) for r in records]
    for r in records:
        r["segmentation"] = coco_encode_rle(r["segmentation"])
    outputs.path("masks.json").write_text(json.dumps(records))
    labels = np.zeros(image.shape[:2], np.uint16)
    for k, m in enumerate(masks):
        labels[m] = k + 1
    Image.fromarray(labels).save(outputs.path("labels.png"))
    Image.fromarray(draw_overlay(image, masks)).save(outputs.path("overlay.png"))
    return f"{len(records)} masks"


def _prompted(args, image, outputs) -> str:
    """The best mask for the clicks and/or box: mask.png, overlay.png."""
    import numpy as np
    from PIL import Image

    from sam2_trt.runtime.image_predictor import SAM2ImagePredictor
    from sam2_trt.runtime.overlay import draw_overlay

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
    Image.fromarray((mask * 255).astype(np.uint8)).save(outputs.path("mask.png"))
    Image.fromarray(draw_overlay(image, [mask], points=points)).save(outputs.path("overlay.png"))
    return f"mask with predicted IoU {ious[best]:.3f} ({int(mask.sum())} px)"
