"""Exports cached by model, size and kind of weights: what `sam2-trt demo` and the benchmarks run on.

The checkpoint and the exported model directory live under $SAM2_TRT_CACHE (default ~/.cache/sam2-trt), so a
second demo or benchmark run only loads them. Offline, callers fall back to seeded random weights (seed
RANDOM_SEED) and must say so: the pipeline and the speed are real, the masks are not.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"  # the demo's clip and prompts ship with the exporter
CLIP = ASSETS / "demo_clip.mp4"
PROMPTS = ASSETS / "demo_prompts.json"
RANDOM_SEED = 0


def cached_export_dir(model, image_size: int, official: bool) -> Path:
    """Where the demo (and the benchmarks) keep an export: one per model, size and kind of weights."""
    from .download import cache_root

    kind = "official" if official else f"random{RANDOM_SEED}"
    return cache_root() / "models" / f"{model.short}-{image_size}px-{kind}"


def cached_export_usable(model_dir: Path, log) -> bool:
    """True when model_dir holds a complete export; an unusable one is removed (so it is exported again)."""
    from sam2_trt.core.errors import Sam2TrtError
    from sam2_trt.core.metadata import load_metadata

    if not model_dir.is_dir():
        return False
    try:
        load_metadata(model_dir).verify_graphs(check_hashes=False)  # the predictor checks the hashes
        return True
    except Sam2TrtError as e:
        log(f"re-exporting: the cached export {model_dir} is unusable ({e})")
        shutil.rmtree(model_dir)
        return False


def prepare_model(model, image_size: int, random_weights: bool, log) -> tuple[Path, str]:
    """(cached model directory, weights label): exported once per model, size and kind of weights."""
    from .download import CheckpointDownloadError, download_checkpoint
    from .exporter import export_model

    checkpoint, weights = None, "random (--random-weights)"
    if not random_weights:
        try:
            checkpoint, weights = download_checkpoint(model, log=log), "official"
        except CheckpointDownloadError as e:
            log(f"sam2-trt demo: {e}")
            log(f"sam2-trt demo: OFFLINE: falling back to seeded random weights (seed {RANDOM_SEED}); the outputs "
                f"are labelled as such: the masks are meaningless, the pipeline and the speed are real")
            weights = "random (offline)"
    model_dir = cached_export_dir(model, image_size, official=checkpoint is not None)
    if cached_export_usable(model_dir, log):
        log(f"using the cached export {model_dir}")
        return model_dir, weights
    log(f"exporting {model.short} at {image_size}px to {model_dir} (once; later runs reuse it)")
    export_model(model.short, model_dir, checkpoint=checkpoint,
                 random_weights_seed=None if checkpoint else RANDOM_SEED, image_size=image_size, log=log)
    return model_dir, weights
