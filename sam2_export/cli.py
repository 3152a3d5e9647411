"""The `sam2-trt` command. Each subcommand imports its heavy dependencies only when it runs, so `--help`
works without torch, TensorRT or a GPU.

This dispatcher lives in the first stage of the pipeline (sam2_export) because it is the one package allowed
to reach every later stage; the runtime never imports it.
"""

from __future__ import annotations

import argparse
import sys

from .configs import ALL_MODELS
from runtime.command import run_command


def _add_export(sub) -> None:
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
    p.add_argument("--overwrite", action="store_true", help="replace DIR if it holds an earlier sam2-trt export")
    p.add_argument("--build", action="store_true",
                   help="then build TensorRT engines for this GPU, as `sam2-trt build DIR` with the options below")
    from engines.cli import add_build_options

    add_build_options(p.add_argument_group("engine options (with --build; see `sam2-trt build -h`)"),
                      with_model_dir=False)
    p.set_defaults(run=_run_export)


def _run_export(args) -> int:
    from runtime.specs import DEFAULT_OPSET

    from .exporter import export_model

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    build_options = None
    if args.build:  # the engine options and TensorRT before minutes of export, not after
        from engines.builder import require_tensorrt
        from engines.cli import options_from_args

        build_options = options_from_args(args)
        require_tensorrt()
    checkpoint = args.checkpoint
    if checkpoint is not None:
        from pathlib import Path

        from .checkpoint import check_image_size
        from .download import resolve_checkpoint
        from .exporter import check_output_dir

        # The cheap checks first, so a bad --out or --image-size never waits for a download.
        check_image_size(1024 if args.image_size is None else args.image_size)
        check_output_dir(Path(args.out).absolute(), args.overwrite)
        checkpoint = resolve_checkpoint(checkpoint, args.config, log=log)
    result = export_model(
        args.config, args.out, checkpoint=checkpoint, random_weights_seed=args.random_weights,
        image_size=args.image_size, opset=args.opset or DEFAULT_OPSET, overwrite=args.overwrite, log=log)
    print(f"exported {len(result.reports)} validated outputs to {result.model_dir} in {result.seconds:.0f}s")
    if build_options is not None:
        from engines.cli import build_and_check

        return build_and_check(result.model_dir, build_options, check=not args.no_check)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sam2-trt", description="SAM 2 / SAM 2.1 export and inference "
                                     "without PyTorch: ONNX graphs, TensorRT engines, a drop-in runtime.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_export(sub)
    from runtime import segment_cli, track_cli

    from . import demo

    from engines import cli as engines_cli

    engines_cli.add_parsers(sub)
    segment_cli.add_parser(sub)
    track_cli.add_parser(sub)
    demo.add_parser(sub)
    from benchmarks import cli as bench_cli

    bench_cli.add_parser(sub)
    return parser


def main(argv=None) -> int:
    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
