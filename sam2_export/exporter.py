"""`sam2-trt export`: official checkpoint -> model directory of four validated ONNX graphs + metadata.

Everything is written into a hidden temporary directory beside the destination and moved into place only
after every graph passed validation, so a failed or interrupted export never leaves a partial model
directory behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sam2_trt.core.files import make_parents, path_lock, remove_if_empty, remove_stale_partials
from sam2_trt.core.metadata import METADATA_FILENAME, VALIDATION_FILENAME, sha256_file
from sam2_trt.core.specs import DEFAULT_OPSET, GRAPHS, SUPPORTED_OPSETS

from .checkpoint import check_image_size
from .configs import resolve_model_name
from .errors import ExportError
from .int8 import PRECISIONS


@dataclass
class ExportResult:
    model_dir: Path
    reports: list
    seconds: float


def check_output_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse a destination that holds anything but (with overwrite) an earlier sam2-trt model directory."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"--out {out_dir} exists and is not a directory; choose a new directory name")
    if out_dir.is_dir():
        entries = sorted(p.name for p in out_dir.iterdir())
        if entries and not (overwrite and (out_dir / METADATA_FILENAME).is_file()):
            what = f"{len(entries)} entries, e.g. {entries[0]!r}"
            how = ("it is not a sam2-trt model directory, so --overwrite will not replace it" if overwrite
                   else "pass --overwrite to replace an earlier sam2-trt export")
            raise ExportError(f"--out {out_dir} already exists and is not empty ({what}); choose a new or empty "
                              f"directory, or {how}")
    parent = out_dir.parent
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ExportError(f"--out {out_dir} is not writable: cannot create files in {probe}")


def _require_export_dependencies() -> None:
    missing = []
    for module in ("torch", "onnx", "onnxruntime", "sam2"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ExportError(
            f"export needs {', '.join(missing)} (not installed). Install the export extra: "
            f"pip install 'sam2-trt[export]' (see README: install the official sam2 with --no-build-isolation)",
            code=ExportError.MISSING_DEPENDENCY)


def export_model(config: str, out_dir, checkpoint=None, random_weights_seed: int | None = None,
                 image_size: int | None = None, opset: int = DEFAULT_OPSET, overwrite: bool = False,
                 log=print, precision: str = "fp32") -> ExportResult:
    """Export the official model `config` with `checkpoint` (or seeded random weights) into `out_dir`.
    precision "fp32" (default, exact) or "int8" (for ONNX Runtime on CPUs: sam2_export/int8.py).

    Raises ExportError (with .code) for bad input and for a graph that fails validation.
    """
    t0 = time.time()
    model_name = resolve_model_name(config)
    image_size = 1024 if image_size is None else image_size
    check_image_size(image_size)
    if precision not in PRECISIONS:
        raise ExportError(f"precision={precision!r} is not supported; use one of {', '.join(PRECISIONS)} "
                          f"(fp32, the default, is exact; int8, `sam2-trt export --int8`, is the faster CPU export)")
    if opset not in SUPPORTED_OPSETS:
        raise ExportError(f"--opset {opset} is not supported; use one of {list(SUPPORTED_OPSETS)} "
                          f"(default {DEFAULT_OPSET})")
    if (checkpoint is None) == (random_weights_seed is None):
        raise ExportError("give either --checkpoint PATH (an official .pt file) or --random-weights "
                          "(seeded random weights, for trying the pipeline without a download)")
    out_dir = Path(out_dir).absolute()
    check_output_dir(out_dir, overwrite)
    _require_export_dependencies()
    created = make_parents(out_dir)
    try:
        with path_lock(out_dir, "--out"):  # a second export into out_dir is refused until this one ends
            check_output_dir(out_dir, overwrite)  # again under the lock: an export may have finished meanwhile
            existed = out_dir.exists()
            reports = _export_locked(model_name, out_dir, checkpoint, random_weights_seed, image_size, opset,
                                     overwrite, existed, log, precision)
    except BaseException:
        remove_if_empty(created)
        raise
    return ExportResult(out_dir, reports, time.time() - t0)


def _export_locked(model_name, out_dir: Path, checkpoint, random_weights_seed, image_size: int, opset: int,
                   overwrite: bool, existed: bool, log, precision: str) -> list:
    from .checkpoint import build_official_model, load_official_model

    if checkpoint is not None:
        log(f"loading {checkpoint} as {model_name.short} at {image_size}px")
        model = load_official_model(model_name, checkpoint, image_size)
        ckpt_info = {"file": Path(checkpoint).name, "sha256": sha256_file(checkpoint), "random_weights_seed": None}
    else:
        from .random_weights import random_state_dict

        log(f"building {model_name.short} at {image_size}px with seeded random weights (seed {random_weights_seed})")
        model = build_official_model(model_name, image_size)
        model.load_state_dict(random_state_dict(model_name, random_weights_seed))
        ckpt_info = {"file": None, "sha256": None, "random_weights_seed": random_weights_seed}

    remove_stale_partials(out_dir.parent, {out_dir.name})  # what a killed export into out_dir left
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-{os.getpid()}-", dir=out_dir.parent))
    try:
        reports = _export_into(model, model_name, image_size, opset, tmp, ckpt_info, log, precision)
        failed = [r for r in reports if not r.passed]
        if failed:
            from .validate import format_reports

            raise ExportError(
                f"{len(failed)} output(s) exceed their tolerance against PyTorch; nothing was written to "
                f"{out_dir}.\n{format_reports(failed)}", code=ExportError.VALIDATION_FAILED)
        _move_into_place(tmp, out_dir, overwrite, existed)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return reports


def _export_into(model, model_name, image_size, opset, tmp: Path, ckpt_info: dict, log, precision: str) -> list:
    from .model_metadata import build_metadata
    from .modules import GRAPH_MODULES
    from .onnx_export import export_graph
    from .validate import format_reports, reports_to_json, validate_graph

    reports, int8_reports = [], []
    for name, spec in GRAPHS.items():
        t = time.time()
        path = tmp / spec.filename
        export_graph(GRAPH_MODULES[name](model).eval(), spec, path, image_size, opset)
        t_export = time.time() - t
        graph_reports = validate_graph(spec, path, model, image_size)
        reports.extend(graph_reports)
        worst = max(r.max_rel_err for r in graph_reports)
        log(f"  {spec.filename:24} exported in {t_export:5.1f}s, validated in {time.time() - t - t_export:5.1f}s: "
            f"max rel err {worst:.2g} {'ok' if all(r.passed for r in graph_reports) else 'FAILED'}")
        if precision == "int8" and all(r.passed for r in graph_reports):
            int8_reports.extend(_int8_graph(spec, path, model, image_size, log))
    validation = {"reference": "official sam2 PyTorch modules, fp32, CPU",
                  "runtime": "onnxruntime CPUExecutionProvider", "outputs": reports_to_json(reports)}
    if precision == "int8":
        validation["int8_outputs"] = reports_to_json(int8_reports)  # the graphs in this directory
    (tmp / VALIDATION_FILENAME).write_text(json.dumps(validation, indent=1))
    text = format_reports(reports) + "\n"
    if precision == "int8":
        text = f"fp32 graphs (before quantization):\n{text}\nint8 graphs (this directory):\n" \
               f"{format_reports(int8_reports)}\n"
    (tmp / "validation.txt").write_text(text)
    metadata = build_metadata(model, model_name, image_size, opset, tmp, ckpt_info, precision)
    (tmp / METADATA_FILENAME).write_text(json.dumps(metadata, indent=1))
    return reports + int8_reports


def _int8_graph(spec, path: Path, model, image_size: int, log) -> list:
    """Quantize the validated fp32 graph at `path` in place (sam2_export/int8.py) and validate the int8 graph
    against PyTorch with the int8 tolerances; its reports."""
    from .int8 import quantize_graph, tolerance
    from .validate import validate_graph

    t = time.time()
    quantized = path.with_name(path.stem + ".int8.onnx")
    done = quantize_graph(path, quantized)
    os.replace(quantized, path)
    graph_reports = validate_graph(spec, path, model, image_size,
                                   tolerances={o: tolerance(spec, o) for o in spec.output_names})
    worst = max(r.max_rel_err for r in graph_reports)
    log(f"  {spec.filename:24} int8: {done['quantized']} matmuls quantized ({len(done['kept_fp32'])} kept fp32) "
        f"in {time.time() - t:5.1f}s: max rel err {worst:.2g} "
        f"{'ok' if all(r.passed for r in graph_reports) else 'FAILED'}")
    return graph_reports


def _move_into_place(tmp: Path, out_dir: Path, overwrite: bool, existed: bool) -> None:
    """Rename the finished export into place. Only what the tool may replace is replaced: nothing, an empty folder
    that was there when the export started, or (with overwrite) an earlier sam2-trt export. Anything else that
    appeared at out_dir while the export ran is left as it is, and the finished export is kept beside it."""
    if not out_dir.exists():
        os.rename(tmp, out_dir)
        return
    is_export = (out_dir / METADATA_FILENAME).is_file()
    if out_dir.is_dir() and existed and not any(out_dir.iterdir()):
        os.rename(tmp, out_dir)  # rename(2) replaces an empty directory in one step
        return
    if not (out_dir.is_dir() and overwrite and is_export):
        kept = out_dir.with_name(f"{out_dir.name}.export-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        os.rename(tmp, kept)
        raise ExportError(f"--out {out_dir} was {'changed' if existed else 'created'} by someone else while the "
                          f"export ran; it is left as it is, and the finished, validated export was kept at {kept} "
                          f"(move it where you want it)")
    old = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}-old")
    os.rename(out_dir, old)
    try:
        os.rename(tmp, out_dir)
    except BaseException:
        os.rename(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)
