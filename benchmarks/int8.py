"""How far the int8 export (`sam2-trt export --int8`, sam2_export/int8.py) moves each graph's outputs
and the masks, on the benchmark's random weights.

    sam2-trt bench int8 [--image-size 1024] [--video-image-size 512] [--results DIR]
    sam2-trt bench int8 --markdown JSON      # the README tables of a results file

  * per output, like the TensorRT precisions (benchmarks/precision.py): every graph's validation cases run through
    the fp32 and the int8 graph in ONNX Runtime; max |int8 - fp32| / max |fp32|, the worst case, beside the int8
    tolerance the export holds each graph to;
  * masks: the image parity cases (tests/runtime/test_image_predictor_parity.py, at --image-size) and the video
    parity scenarios (tests/runtime/test_video_parity.py, at --video-image-size) played by the official predictor,
    our fp32 export and our int8 export of the same checkpoint: the IoU of every mask with the official one.
Random weights are not trained ones: their activations have other ranges, so a real checkpoint's error is what its
own export's validation.json records. Speed is measured by `sam2-trt bench image` and `video` (their int8 rows).
Run it in the root of a source checkout: the official side and the scenarios come from tests/. Results: tables on
stdout and <--results>/int8-<machine>-<date>.json.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from sam2_trt.benchmarks.results_file import write_result


def output_errors(fp32_dir: Path, int8_dir: Path) -> list:
    """[{graph, output, max_rel_err, tolerance_rtol, within_tolerance}] of the int8 graphs against the fp32 ones."""
    import onnx

    from sam2_trt.benchmarks.precision import _run
    from sam2_trt.core.graph_check import sample_inputs
    from sam2_trt.core.metadata import load_metadata
    from sam2_trt.core.specs import GRAPHS
    from sam2_trt.export.int8 import tolerance

    fp32, int8 = load_metadata(fp32_dir), load_metadata(int8_dir)
    rows = []
    for graph, spec in GRAPHS.items():
        ref_model, q_model = onnx.load(str(fp32.graph_path(graph))), onnx.load(str(int8.graph_path(graph)))
        worst = {o: 0.0 for o in spec.output_names}
        for k, case in enumerate(spec.validation_cases):
            inputs = sample_inputs(spec, fp32.image_size, case, k)
            ref, out = _run(ref_model, inputs), _run(q_model, inputs)
            for o in spec.output_names:
                err = float(np.abs(out[o] - ref[o]).max() / max(np.abs(ref[o]).max(), 1e-30))
                worst[o] = max(worst[o], err if np.isfinite(out[o]).all() else float("inf"))
        for o, err in worst.items():
            tol = tolerance(spec, o)
            rows.append({"graph": graph, "output": o, "image_size": fp32.image_size, "max_rel_err": err,
                         "tolerance_rtol": tol.rtol, "within_tolerance": err <= tol.rtol})
            print(f"{graph}.{o}: int8 vs fp32 {err:.1e} (tolerance {tol.rtol:g})", flush=True)
    return rows


def _ious(ours: list, official: list) -> list:
    from tests.official_reference import mask_iou

    return [mask_iou(a[k, 0] > 0, b[k, 0] > 0) for (_, _, ids, a), (_, _, _, b) in zip(ours, official)
            for k in range(len(ids))]


def _summary(ious: list) -> dict:
    return {"masks": len(ious), "min_iou": float(min(ious)), "mean_iou": float(np.mean(ious))}


def image_masks(checkpoint: Path, config: str, dirs: dict, image_size: int) -> dict:
    """{"fp32"|"int8": {masks, min_iou, mean_iou}} over the image parity cases, against the official predictor."""
    import torch

    from sam2_trt.benchmarks import official
    from sam2_trt.runtime import SAM2ImagePredictor
    from tests.official_reference import mask_iou
    from tests.runtime.test_image_predictor_parity import CASES, IMAGE

    predictor_cls, _ = official.image_classes()
    theirs = predictor_cls(official.image_model(config, checkpoint, image_size, "cpu"))
    s = image_size
    theirs._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
    with torch.inference_mode():
        theirs.set_image(IMAGE)
        expected = {name: theirs.predict(**case)[0] for name, case in CASES.items()}
    out = {}
    for precision, model_dir in dirs.items():
        ours = SAM2ImagePredictor.load(model_dir, backend="onnxruntime-cpu", device="cpu")
        ours.set_image(IMAGE)
        ious = []
        for name, case in CASES.items():
            got, want = ours.predict(**case)[0], np.asarray(expected[name])
            ious += [mask_iou(a, b) for a, b in zip(got.reshape(-1, *got.shape[-2:]),
                                                    want.reshape(-1, *want.shape[-2:]))]
        out[precision] = _summary(ious)
        print(f"image parity cases, {precision}: {out[precision]}", flush=True)
    return out


def video_masks(checkpoint: Path, config: str, dirs: dict, image_size: int) -> dict:
    """{"fp32"|"int8": {masks, min_iou, mean_iou}} over the video parity scenarios (every mask of every call)."""
    import torch

    from sam2_trt.runtime.model import SAM2Model
    from sam2_trt.runtime.video.predictor import SAM2VideoPredictor
    from tests.runtime.test_video_parity import SCENARIOS
    from tests.runtime.video_reference import build_official_video_predictor, run_script, write_jpeg_video

    models = {p: SAM2Model.load(d, backend="onnxruntime-cpu", device="cpu") for p, d in dirs.items()}
    ious = {p: [] for p in dirs}
    with tempfile.TemporaryDirectory(prefix="sam2-trt-int8-") as tmp:
        clip = write_jpeg_video(Path(tmp) / "clip")
        for name, script in SCENARIOS.items():
            reference = build_official_video_predictor(config, checkpoint, image_size)
            with torch.inference_mode():
                state = reference.init_state(str(clip))
            expected = run_script(reference, state, script, official=True)
            for precision, model in models.items():
                ours = SAM2VideoPredictor(model)
                state = ours.init_state(str(clip))
                try:
                    got = run_script(ours, state, script, official=False)
                finally:
                    state.close()
                ious[precision] += _ious(got, expected)
            print(f"video scenario {name}: " + ", ".join(f"{p} min IoU {min(v):.4f}" for p, v in ious.items()),
                  flush=True)
    return {p: _summary(v) for p, v in ious.items()}


def markdown(result: dict) -> str:
    """The README's tables from a results file: per-output error, then mask IoU against the official predictor."""
    env = result["environment"]
    lines = [f"Measured by `sam2-trt bench int8` on {result['model']} (random weights) with ONNX Runtime "
             f"{env['onnxruntime']} on {env['cpu']}. Per output: max |int8 - fp32| / max |fp32| over the validation "
             f"cases, beside the tolerance the int8 export is validated with (against PyTorch).", "",
             "| output | px | int8 vs fp32 | int8 tolerance |", "|---|---|---|---|"]
    for r in result["outputs"]:
        lines.append(f"| {r['graph']}.{r['output']} | {r['image_size']} | {r['max_rel_err']:.1e} | "
                     f"{r['tolerance_rtol']:.2g} |")
    lines += ["", "| masks against the official predictor | px | masks | fp32: min IoU | int8: min IoU | "
                  "int8: mean IoU |", "|---|---|---|---|---|---|"]
    for what, key, size in (("image parity cases", "image", result["image_size"]),
                            ("video parity scenarios (every mask of every call)", "video",
                             result["video_image_size"])):
        m = result["masks"][key]
        lines.append(f"| {what} | {size} | {m['int8']['masks']} | {m['fp32']['min_iou']:.4f} | "
                     f"{m['int8']['min_iou']:.4f} | {m['int8']['mean_iou']:.4f} |")
    return "\n".join(lines)


def run(args) -> int:
    """`sam2-trt bench int8` (args: its options, sam2_trt.cli.bench): measure, print and write the results file;
    with args.markdown, only print that file's README tables."""
    if args.markdown is not None:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    from sam2_trt.benchmarks.environment import describe, machine_label
    from sam2_trt.benchmarks.models import random_model

    start = time.time()
    name = "sam2.1_hiera_t"
    image = {p: random_model(name, args.image_size, precision=p) for p in ("fp32", "int8")}
    video = {p: random_model(name, args.video_image_size, precision=p) for p in ("fp32", "int8")}
    ref = image["fp32"]
    outputs = output_errors(image["fp32"].model_dir, image["int8"].model_dir)
    if args.video_image_size != args.image_size:
        outputs += output_errors(video["fp32"].model_dir, video["int8"].model_dir)
    masks = {"image": image_masks(ref.checkpoint, ref.config, {p: m.model_dir for p, m in image.items()},
                                  args.image_size),
             "video": video_masks(ref.checkpoint, ref.config, {p: m.model_dir for p, m in video.items()},
                                  args.video_image_size)}
    env = describe(backend="onnxruntime-cpu")
    result = {"benchmark": "int8", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_label(env),
              "model": name, "weights": ref.weights, "image_size": args.image_size,
              "video_image_size": args.video_image_size, "seconds": time.time() - start, "environment": env,
              "outputs": outputs, "masks": masks}
    print(markdown({**result, "_file": ""}))
    print(f"wrote {write_result(args.results, 'int8', machine_label(env), result)}")
    return 0
