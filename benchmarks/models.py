"""The model a benchmark compares on: one checkpoint for the official predictor, and our export of that same
checkpoint.

By default both come from seeded random weights (sam2_trt.export.random_weights, seed 0; the speed and memory of
a model do not depend on its weights), cached under $SAM2_TRT_CACHE (default ~/.cache/sam2-trt):
`checkpoints/<model>-random0.pt` in the official format, and the export in `models/<model>-<size>px-random0`,
exported once in a child process (benchmarks/child.py; importing torch would grow the caller, whose children
inherit its RSS).
With --checkpoint/--model-dir a user benchmarks real weights; the export must then name that checkpoint's
sha256 in its metadata, so the two sides cannot silently run different weights.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from sam2_trt.benchmarks.child import run_in_child
from sam2_trt.export.cached_exports import RANDOM_SEED as SEED  # the demo and the benchmarks share cached exports


@dataclass(frozen=True)
class BenchModel:
    name: str  # official name, e.g. sam2.1_hiera_t
    config: str  # official config path, e.g. configs/sam2.1/sam2.1_hiera_t.yaml
    image_size: int
    checkpoint: Path  # official-format .pt file the official predictor loads
    model_dir: Path  # our export of the same weights at image_size
    weights: str  # "random (seed 0)" or the checkpoint's file name
    precision: str = "fp32"  # of our export: "fp32", or "int8" (sam2-trt export --int8)

    def describe(self) -> dict:
        return {"name": self.name, "image_size": self.image_size, "weights": self.weights,
                "checkpoint": str(self.checkpoint), "model_dir": str(self.model_dir), "precision": self.precision}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def random_model(name: str, image_size: int, timeout: float | None = None, precision: str = "fp32") -> BenchModel:
    """The seeded random-weight checkpoint and export of `name` at image_size (int8: `export --int8` of
    the same weights), created on first use (in a child process given at most `timeout` seconds)."""
    from sam2_trt.export.configs import resolve_model_name
    from sam2_trt.export.cached_exports import cached_export_dir, cached_export_usable
    from sam2_trt.export.download import cache_root

    model = resolve_model_name(name)
    checkpoint = cache_root() / "checkpoints" / f"{model.short}-random{SEED}.pt"
    model_dir = cached_export_dir(model, image_size, official=False)
    if precision != "fp32":
        model_dir = model_dir.with_name(f"{model_dir.name}-{precision}")
    if not checkpoint.is_file() or not cached_export_usable(model_dir, _log):
        _log(f"preparing {model.short} (random weights, seed {SEED}) at {image_size}px: checkpoint {checkpoint}, "
             f"{precision} export {model_dir} (once)")
        job = {"model": model.short, "image_size": image_size, "checkpoint": str(checkpoint),
               "model_dir": str(model_dir), "precision": precision}
        failed = run_in_child("sam2_trt.benchmarks.models", job, timeout=timeout).get("error")
        if failed:
            raise SystemExit(f"preparing the benchmark model failed: {failed}")
    return BenchModel(model.short, model.config_path, image_size, checkpoint, model_dir, f"random (seed {SEED})",
                      precision)


def user_model(checkpoint: Path, model_dir: Path) -> BenchModel:
    """A user's checkpoint and their export of it; refuses an export made from other weights."""
    from sam2_trt.core.metadata import load_metadata, sha256_file
    from sam2_trt.export.configs import resolve_model_name

    meta = load_metadata(model_dir)
    recorded = meta.raw["checkpoint"].get("sha256")
    actual = sha256_file(checkpoint)
    if recorded != actual:
        raise SystemExit(f"--model-dir {model_dir} was exported from checkpoint sha256 {recorded}, but --checkpoint "
                         f"{checkpoint} has sha256 {actual}: export that checkpoint (sam2-trt export "
                         f"{meta.model_name} --checkpoint {checkpoint}) so both sides run the same weights")
    model = resolve_model_name(meta.model_name)
    return BenchModel(model.short, model.config_path, meta.image_size, checkpoint, model_dir, checkpoint.name)


def bench_models(names, image_sizes, checkpoint: Path | None, model_dir: Path | None) -> list[BenchModel]:
    """Every (model, size) to measure: the user's pair when given, else random-weight models."""
    if (checkpoint is None) != (model_dir is None):
        raise SystemExit("give --checkpoint and --model-dir together (the official predictor loads the checkpoint, "
                         "ours the export of it), or neither (seeded random weights)")
    if checkpoint is not None:
        return [user_model(checkpoint, model_dir)]
    return [random_model(n, s) for n in names for s in image_sizes]


def run_child(job: dict) -> dict:
    """Child process: write the random checkpoint job["checkpoint"] and export it to job["model_dir"] at
    job["image_size"] (the same state dict, seed SEED). The files are the result: returns {}."""
    from sam2_trt.export.configs import resolve_model_name
    from sam2_trt.export.exporter import export_model
    from sam2_trt.export.random_weights import write_random_checkpoint

    model = resolve_model_name(job["model"])
    checkpoint, model_dir = Path(job["checkpoint"]), Path(job["model_dir"])
    if not checkpoint.is_file():
        write_random_checkpoint(model, checkpoint, SEED)
    if not model_dir.is_dir():
        export_model(model.short, model_dir, random_weights_seed=SEED, image_size=job["image_size"],
                     overwrite=True, log=_log, precision=job.get("precision", "fp32"))
    return {}
