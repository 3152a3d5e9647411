"""`sam2-trt build` and `sam2-trt check`: TensorRT engines for a model directory, and their error against ONNX
Runtime. `export --build` shares the engine options and `build_and_check`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sam2_trt.core.engine_record import DEFAULT_PRECISION, PRECISIONS
from sam2_trt.core.specs import GRAPHS

EXIT_CODES = "Exit codes: 0 ok, 2 usage, 3 bad input, 4 an engine beyond its tolerance, 5 TensorRT missing, " \
             "6 TensorRT failed to build, 130 interrupted."


def add_build_options(p, with_model_dir: bool = True) -> None:
    """The engine options, shared by `build` and `export --build`."""
    from sam2_trt.engines.profiles import DEFAULT_MAX_OBJECTS, ProfileLimits

    d = ProfileLimits()
    if with_model_dir:
        p.add_argument("model_dir", metavar="MODEL_DIR", help="a model directory made by `sam2-trt export`")
    p.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION,
                   help=f"fp32, tf32 (fp32 with TF32 matmuls), fp16 or bf16 with the fp32 islands of the precision "
                        f"policy (default {DEFAULT_PRECISION})")
    p.add_argument("--max-objects", type=int, default=DEFAULT_MAX_OBJECTS, metavar="N",
                   help=f"objects per engine call (default {DEFAULT_MAX_OBJECTS}); more are run in chunks of N")
    p.add_argument("--max-points", type=int, default=d.max_points, metavar="N",
                   help=f"prompt points per object (default {d.max_points})")
    p.add_argument("--max-slots", type=int, default=d.max_slots, metavar="N",
                   help=f"memory slots per object: conditioning frames + 6 recent frames (default {d.max_slots})")
    p.add_argument("--max-pointers", type=int, default=d.max_pointers, metavar="N",
                   help=f"object pointers per object (default {d.max_pointers})")
    p.add_argument("--max-images", type=int, default=d.max_images, metavar="N",
                   help=f"images per set_image_batch call (default {d.max_images})")
    p.add_argument("--max-frames", type=int, default=d.max_frames, metavar="N",
                   help=f"videos whose objects share one call in sam2-trt serve (default {d.max_frames})")
    p.add_argument("--workspace", type=float, default=None, metavar="GB",
                   help="TensorRT workspace limit in GB (default: TensorRT's, up to the GPU's memory)")
    p.add_argument("--timing-cache", type=Path, default=None, metavar="PATH",
                   help="TensorRT timing cache to read and update (rebuilds and other models build faster)")
    p.add_argument("--no-check", action="store_true", help="skip the check against ONNX Runtime after building")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "build", help="compile a model directory's graphs into TensorRT engines for this GPU",
        description="Compile the four ONNX graphs of an exported model into TensorRT engines for this GPU and "
                    "TensorRT version, in MODEL_DIR/engines/<trt version>-<gpu>-<precision>/, with each engine's "
                    "record (TensorRT version, GPU, precision policy, profiles, the ONNX sha256). Up-to-date "
                    "engines are kept. Then checks every engine against ONNX Runtime (as `sam2-trt check`).",
        epilog=EXIT_CODES)
    add_build_options(p)
    p.add_argument("--graphs", nargs="+", choices=list(GRAPHS), default=None, metavar="GRAPH",
                   help=f"only these graphs ({', '.join(GRAPHS)})")
    p.add_argument("--force", action="store_true", help="rebuild engines that are up to date")
    p.add_argument("--device", default="cuda", help="GPU to build for: cuda or cuda:N (default cuda)")
    p.set_defaults(run=run_build)

    c = sub.add_parser(
        "check", help="run every engine against ONNX Runtime and report the error per output",
        description="Run each graph of MODEL_DIR with a backend (default: its TensorRT engines) and with the fp32 "
                    "ONNX graph in ONNX Runtime on the CPU, on seeded inputs covering the dynamic sizes; print "
                    "max abs / relative error per output against the tolerance the engine's precision policy "
                    "recorded.", epilog=EXIT_CODES)
    c.add_argument("model_dir", metavar="MODEL_DIR")
    c.add_argument("--backend", default="tensorrt", choices=("tensorrt", "onnxruntime-cuda", "onnxruntime-cpu"))
    c.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="which TensorRT engines (default: the ones built for this GPU)")
    c.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    c.add_argument("--graphs", nargs="+", choices=list(GRAPHS), default=None, metavar="GRAPH")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the reports as JSON")
    c.set_defaults(run=run_check)


def options_from_args(args):
    from sam2_trt.engines.builder import BuildError, BuildOptions
    from sam2_trt.engines.profiles import ProfileLimits

    try:
        limits = ProfileLimits(max_objects=args.max_objects, max_points=args.max_points, max_slots=args.max_slots,
                               max_pointers=args.max_pointers, max_images=args.max_images,
                               max_frames=args.max_frames)
        return BuildOptions(precision=args.precision, limits=limits, workspace_gb=args.workspace,
                            timing_cache=args.timing_cache, force=getattr(args, "force", False))
    except ValueError as e:
        raise BuildError(str(e)) from None


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_and_check(model_dir, options, graphs=None, device: str = "cuda", check: bool = True) -> int:
    from sam2_trt.runtime.backends import parse_device

    from sam2_trt.engines.builder import BuildError, build_engines

    kind, device_id = parse_device(device)
    if kind != "cuda":
        raise BuildError(f"TensorRT engines are built on a GPU; --device {device!r} is not one")
    engine_dir = build_engines(model_dir, options, graphs=graphs, device_id=device_id, log=_log)
    print(f"engines in {engine_dir}")
    if not check:
        return 0
    return _report(model_dir, "tensorrt", device, options.precision, graphs, 0, None)


def _report(model_dir, backend, device, precision, graphs, seed, json_path) -> int:
    from sam2_trt.core.graph_check import format_reports, reports_to_json

    from sam2_trt.engines.check import check_model

    reports = check_model(model_dir, backend=backend, device=device, precision=precision, graphs=graphs, seed=seed,
                          log=_log)
    print(format_reports(reports))
    if json_path is not None:
        json_path.write_text(json.dumps(reports_to_json(reports), indent=1))
    failed = sorted({f"{r.graph}.{r.output}" for r in reports if not r.passed})
    if failed:
        print(f"{len(failed)} output(s) beyond tolerance: {', '.join(failed)}; try --precision fp32 (or bf16), "
              f"and report the model and GPU", file=sys.stderr)
        return 4
    return 0


def run_build(args) -> int:
    options = options_from_args(args)
    return build_and_check(Path(args.model_dir), options, args.graphs, args.device, check=not args.no_check)


def run_check(args) -> int:
    return _report(Path(args.model_dir), args.backend, args.device, args.precision, args.graphs, args.seed,
                   args.json)



def build_in_child_process(model_dir, graph: str, precision: str, device_id: int) -> None:
    """The engine builder the CLI installs in the runtime (runtime/backends/engine_builds.py): `sam2-trt build`
    for one graph in a child process, its progress on our stderr, so the builder's peak memory is returned to
    the system when it exits."""
    import subprocess

    from sam2_trt.engines.builder import BuildError

    cmd = [sys.executable, "-m", "sam2_trt.cli", "build", str(model_dir), "--precision", precision, "--graphs",
           graph, "--device", f"cuda:{device_id}"]
    code = subprocess.call(cmd)
    if code != 0:
        raise BuildError(f"`sam2-trt build {model_dir} --precision {precision} --graphs {graph}` exited {code} "
                         f"(its messages are above); fix that and run it again", code=BuildError.BUILD_FAILED)


def install_build_on_first_use() -> None:
    """Commands that load a model (segment, track, demo) build a missing TensorRT engine instead of failing."""
    from sam2_trt.runtime.backends.engine_builds import install_engine_builder

    install_engine_builder(build_in_child_process)
