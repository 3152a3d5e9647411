"""`sam2-trt demo`: export a model (official weights if they can be downloaded) and track the shipped clip.

    sam2-trt demo        # -> sam2_trt_demo/overlay.mp4, masks/, demo.json, and an FPS line

The checkpoint and the export are cached (sam2_trt.export.cached_exports), so a second run only tracks.
Offline, the demo says so and falls back to seeded random weights, and labels every output as such (a stderr
line, a caption burned into the video, `weights` in demo.json): the pipeline and the speed are real, the masks
are not.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .engines import install_build_on_first_use
from .track import parse_prompts, positive_int

RANDOM_CAPTION = "RANDOM WEIGHTS (offline): the masks are meaningless, the speed is real"


def add_parser(sub) -> None:

    p = sub.add_parser(
        "demo", help="export a model and track the bundled clip: the first command to try",
        description="Download the official checkpoint (once), export it (once, cached), track three objects "
                    "through the bundled 48-frame clip and write OUT/overlay.mp4, OUT/masks/ and OUT/demo.json. "
                    "Without network access it falls back to seeded random weights and says so.")
    p.add_argument("--model", default="sam2.1_hiera_t", metavar="NAME",
                   help="official model (default sam2.1_hiera_t; sam2.1_hiera_s, _b+, _l, sam2_hiera_t, ...)")
    p.add_argument("--image-size", type=int, default=None, metavar="N",
                   help="input resolution, a multiple of 32 (default: the official 1024 on a GPU backend, 512 on "
                        "the CPU, where 1024 px memory attention costs ~16x more time and memory)")
    p.add_argument("--out", default="sam2_trt_demo", metavar="DIR", help="output directory (default sam2_trt_demo)")
    p.add_argument("--backend", default="auto", choices=("auto", "onnxruntime-cpu", "onnxruntime-cuda", "tensorrt"))
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (auto falls back to cpu)")
    p.add_argument("--random-weights", action="store_true", help="skip the download: seeded random weights")
    p.add_argument("--max-frames", type=positive_int, default=None, metavar="N",
                   help="track only the first N frames of the clip (it has 48)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def demo_prompts(path: Path | None = None) -> list:
    """The shipped prompts as ObjectPrompts, through the same parser as `sam2-trt track`'s flags."""
    from sam2_trt.export.cached_exports import PROMPTS

    d = json.loads(Path(path or PROMPTS).read_text())
    points = [f"{p['frame']},{p['x']},{p['y']},{p['obj_id']},{p.get('label', 1)}" for p in d.get("points", [])]
    boxes = [f"{b['frame']},{b['x0']},{b['y0']},{b['x1']},{b['y1']},{b['obj_id']}" for b in d.get("boxes", [])]
    return parse_prompts(points, boxes)


def default_image_size(backend: str, device: str, log) -> int:
    """1024 (the official size) when the backend runs on a GPU; 512 on the CPU, so the first command finishes
    in minutes there (memory attention at 1024 px is ~16x the work and ~1.3 GB per object)."""
    from sam2_trt.runtime.backends import select_backend

    chosen = select_backend(backend, device)
    if chosen.device == "cuda":
        return 1024
    log("sam2-trt demo: running on the CPU, so at 512 px (pass --image-size 1024 for the official size)")
    return 512


def run(args) -> int:
    import logging

    from sam2_trt.export.cached_exports import CLIP, prepare_model
    from sam2_trt.export.checkpoint import check_image_size
    from sam2_trt.export.configs import resolve_model_name
    from sam2_trt.runtime.track import track_to_dir

    install_build_on_first_use()
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the backend line of SAM2Model.load
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    model = resolve_model_name(args.model)
    if args.image_size is None:
        args.image_size = default_image_size(args.backend, args.device, log)
    check_image_size(args.image_size)
    prompts = demo_prompts()
    model_dir, weights = prepare_model(model, args.image_size, args.random_weights, log)
    random = weights != "official"

    def report(result) -> str:  # demo.json, written with the tracking outputs as one set
        return json.dumps({"model": model.short, "image_size": args.image_size, "weights": weights,
                           "model_dir": str(model_dir), "backend": result.backend, "clip": CLIP.name,
                           "objects": result.obj_ids, "frames": len(result.frames),
                           "seconds": round(result.seconds, 3), "fps": round(result.fps, 2),
                           "outputs": {k: str(v) for k, v in result.outputs.items()}}, indent=1) + "\n"

    result = track_to_dir(model_dir, CLIP, prompts, args.out, backend=args.backend, device=args.device,
                          progress=not args.quiet, max_frames=args.max_frames,
                          caption=RANDOM_CAPTION if random else None, extra_outputs={"demo.json": report})
    out = Path(args.out)
    print(result.summary() + (" -- RANDOM WEIGHTS, masks meaningless" if random else ""))
    print(f"wrote {out / 'overlay.mp4'}, {out / 'masks'}/, {out / 'demo.json'}")
    return 0
