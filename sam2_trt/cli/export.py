"""`sam2-trt export`: an official checkpoint -> a model directory of four validated ONNX graphs (optionally
followed by `build`)."""

from __future__ import annotations

import sys
from pathlib import Path

from . import engines as engines_cli


def add_parser(sub) -> None:
    from sam2_trt.export.configs import ALL_MODELS  # torch-free

    p = sub.add_parser(
        "export", help="export an official checkpoint to four validated ONNX graphs",
        description="Trace an official SAM 2 / SAM 2.1 checkpoint into four ONNX graphs (image encoder, prompt "
                    "decoder, memory attention, memory encoder), validate each against PyTorch with ONNX Runtime, "
                    "and write them with their metadata into a new model directory.",
        epilog="models: " + ", ".join(m.short for m in ALL_MODELS) + ". Exit codes: 0 ok, 2 usage, 3 bad input, "
               "4 validation failed, 5 missing dependency, 130 interrupted.")
    p.add_argument("--config", required=True, metavar="CONFIG",
                   help="model name (sam2.1_hiera_t, sam2.1_hiera_base_plus, ...) or official config path "
                        "(configs/sam2.1/sam2.1_hiera_t.yaml)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="PATH|NAME",
                     help="official checkpoint file ({'model': state_dict}), or an official model name "
                          "(sam2.1_hiera_tiny, ...) to download that checkpoint once into the cache "
                          "($SAM2_TRT_CACHE/checkpoints, default ~/.cache/sam2-trt/checkpoints); a file wins")
    src.add_argument("--random-weights", nargs="?", const=0, type=int, metavar="SEED",
                     help="seeded random weights instead of a checkpoint (default seed 0): for trying the "
                          "pipeline offline; the masks mean nothing")
    p.add_argument("--out", required=True, metavar="DIR", help="model directory to create (new or empty)")
    p.add_argument("--image-size", type=int, default=None, metavar="N",
                   help="input resolution, a multiple of 32 (default: the config's, 1024); 512 is ~4x faster")
    p.add_argument("--opset", type=int, default=None, metavar="N", help="ONNX opset (default 17)")
    p.add_argument("--int8", action="store_true",
                   help="quantize the matrix multiplications to int8 for ONNX Runtime on CPUs: faster there, "
                        "validated with wider tolerances (README, 'int8 on CPUs'); the default export is fp32, exact")
    p.add_argument("--overwrite", action="store_true", help="replace DIR if it holds an earlier sam2-trt export")
    p.add_argument("--build", action="store_true",
                   help="then build TensorRT engines for this GPU, as `sam2-trt build DIR` with the options below")
    engines_cli.add_build_options(p.add_argument_group("engine options (with --build; see `sam2-trt build -h`)"),
                                  with_model_dir=False)
    p.set_defaults(run=run)


def run(args) -> int:
    from sam2_trt.core.specs import DEFAULT_OPSET
    from sam2_trt.export.exporter import export_model

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    build_options = None
    if args.build and args.int8:
        raise ValueError("--build makes TensorRT engines from fp32 graphs; an --int8 export runs on ONNX Runtime's "
                         "CPU backend (drop one of --int8 and --build)")
    if args.build:  # the engine options and TensorRT before minutes of export, not after
        from sam2_trt.engines.builder import require_tensorrt

        build_options = engines_cli.options_from_args(args)
        require_tensorrt()
    checkpoint = args.checkpoint
    if checkpoint is not None:
        from sam2_trt.export.checkpoint import check_image_size
        from sam2_trt.export.download import resolve_checkpoint
        from sam2_trt.export.exporter import check_output_dir

        # The cheap checks first, so a bad --out or --image-size never waits for a download.
        check_image_size(1024 if args.image_size is None else args.image_size)
        check_output_dir(Path(args.out).absolute(), args.overwrite)
        checkpoint = resolve_checkpoint(checkpoint, args.config, log=log)
    result = export_model(
        args.config, args.out, checkpoint=checkpoint, random_weights_seed=args.random_weights,
        image_size=args.image_size, opset=args.opset or DEFAULT_OPSET, overwrite=args.overwrite, log=log,
        precision="int8" if args.int8 else "fp32")
    print(f"exported {len(result.reports)} validated outputs to {result.model_dir} in {result.seconds:.0f}s")
    if build_options is not None:
        return engines_cli.build_and_check(result.model_dir, build_options, check=not args.no_check)
    return 0
