"""The `sam2-trt` command: the dispatcher and every subcommand's arguments, on top of the stages.

Each subcommand is one module here with `add_parser(subparsers)` and `run(args) -> exit code`; it imports the
stage it drives (export, engines, runtime, jobs, benchmarks) only inside `run`, so `sam2-trt --help` and every
`sam2-trt COMMAND --help` work without torch, TensorRT, ONNX or a GPU. Nothing below imports this package.
"""

from __future__ import annotations

import argparse
import importlib

from .runner import run_command

# command modules, in the order `sam2-trt --help` lists them: the pipeline's order, then tools
COMMANDS = ("export", "engines", "segment", "track", "track_many", "demo", "serve", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sam2-trt", description="SAM 2 / SAM 2.1 export and inference "
                                     "without PyTorch: ONNX graphs, TensorRT engines, a drop-in runtime.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv=None) -> int:
    return run_command(build_parser().parse_args(argv))
