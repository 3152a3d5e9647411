"""`sam2-trt track`: objects through a video from clicks and boxes (`--point F,X,Y,OBJ[,LABEL]`, `--box
F,X0,Y0,X1,Y1,OBJ`), written by sam2_trt.runtime.track as DAVIS PNGs, an overlay video and COCO RLE."""

from __future__ import annotations

import argparse

from sam2_trt.runtime.track import DIRECTIONS, ObjectPrompt  # stdlib-only module: --help stays light

from .flags import label as click_label
from .flags import numbers, whole


# ---- the prompt flags ----------------------------------------------------------------------------------------
def _object_id(value: float, flag: str, text: str) -> int:
    obj = whole(value, flag, text, "the object id")
    if not 1 <= obj <= 255:
        raise ValueError(f"{flag} {text!r}: object id {obj} is outside 1..255 (ids are the pixel values of the "
                         f"DAVIS mask PNGs, 0 being the background)")
    return obj


def parse_prompts(points=(), boxes=()) -> list:
    """--point F,X,Y,OBJ[,LABEL] and --box F,X0,Y0,X1,Y1,OBJ strings -> ObjectPrompts, one per (frame, object).

    Several points on the same frame and object are the clicks of one prompt; a box there joins them (the box
    goes first, as the official add_new_points_or_box puts it). Raises ValueError naming the bad argument.
    """
    grouped = {}
    for text in points:
        v = numbers(text, "--point", "F,X,Y,OBJ[,LABEL]", 4, 5)
        frame = whole(v[0], "--point", text, "the frame index")
        label = click_label(v[4], "--point", text) if len(v) == 5 else 1
        obj = _object_id(v[3], "--point", text)
        p = grouped.setdefault((frame, obj), ObjectPrompt(frame, obj))
        p.points.append((v[1], v[2]))
        p.labels.append(label)
    for text in boxes:
        v = numbers(text, "--box", "F,X0,Y0,X1,Y1,OBJ", 6, 6)
        frame = whole(v[0], "--box", text, "the frame index")
        x0, y0, x1, y1 = v[1:5]
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"--box {text!r}: the corner X1,Y1 must be right of and below X0,Y0 (x1 > x0, y1 > y0)")
        obj = _object_id(v[5], "--box", text)
        p = grouped.setdefault((frame, obj), ObjectPrompt(frame, obj))
        if p.box is not None:
            raise ValueError(f"--box {text!r}: object {p.obj_id} already has a box on frame {frame}; give one box "
                             f"per object and frame")
        p.box = (x0, y0, x1, y1)
    return [grouped[k] for k in sorted(grouped)]


# ---- the command -----------------------------------------------------------------------------------------------
def positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return n


def add_parser(sub) -> None:
    p = sub.add_parser(
        "track", help="track objects through a video from clicks and boxes",
        description="Prompt objects with clicks and/or boxes on any frames, track them through the whole video "
                    "with an exported model, and write OUT/masks/{frame:05d}.png (DAVIS palette PNGs, pixel = "
                    "object id), OUT/overlay.mp4 and, with --coco-json, OUT/masks.json (COCO RLE per frame).",
        epilog="Coordinates are video pixels. Propagation runs forward from the earliest prompted frame, then "
               "backward from it to frame 0. Exit codes: 0 ok, 2 usage, 3 bad input, 130 interrupted.")
    p.add_argument("video", help="video file (mp4, ...) or folder of JPEG frames")
    p.add_argument("--model", required=True, metavar="DIR", help="model directory from `sam2-trt export`")
    p.add_argument("--point", action="append", default=[], metavar="F,X,Y,OBJ[,LABEL]",
                   help="a click on frame F for object OBJ (1..255); LABEL 1 (default) foreground, 0 background. "
                        "Several on one frame and object form one prompt; repeatable")
    p.add_argument("--box", action="append", default=[], metavar="F,X0,Y0,X1,Y1,OBJ",
                   help="a box on frame F for object OBJ; combines with that object's clicks on that frame")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if needed)")
    p.add_argument("--backend", default="auto", choices=("auto", "onnxruntime-cpu", "onnxruntime-cuda", "tensorrt"))
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (auto falls back to cpu)")
    p.add_argument("--direction", default="both", choices=DIRECTIONS,
                   help="both (default): forward from the earliest prompt, then back to frame 0; forward: only "
                        "from the earliest prompt on; backward: from the latest prompt back to frame 0")
    p.add_argument("--max-frames", type=positive_int, default=None, metavar="N",
                   help="track only the first N frames of the video (prompts must lie in them)")
    p.add_argument("--non-overlap", action="store_true",
                   help="at most one object per pixel (the official non_overlap_masks)")
    p.add_argument("--coco-json", action="store_true", help="also write OUT/masks.json (COCO RLE per frame/object)")
    p.add_argument("--no-overlay", action="store_true", help="skip OUT/overlay.mp4")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args) -> int:
    import logging

    from sam2_trt.runtime.track import track_to_dir

    from .engines import install_build_on_first_use

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    install_build_on_first_use()
    prompts = parse_prompts(args.point, args.box)
    if not prompts:
        raise ValueError("give at least one prompt: --point F,X,Y,OBJ (a click) or --box F,X0,Y0,X1,Y1,OBJ")
    result = track_to_dir(args.model, args.video, prompts, args.out, backend=args.backend, device=args.device,
                          non_overlap=args.non_overlap, progress=not args.quiet, max_frames=args.max_frames,
                          direction=args.direction, coco_json=args.coco_json, overlay=not args.no_overlay)
    print(result.summary())
    print("wrote " + ", ".join(str(p) for p in result.outputs.values()))
    return 0
