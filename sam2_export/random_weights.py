"""Seeded random weights saved in the official checkpoint format.

Used where real weights cannot be had (offline machines, CI): the file goes through exactly the loading path
of a downloaded checkpoint. Untrained heads sit near zero, so a few are nudged to make the paths that matter
reachable: objects are present (positive object score) and masks are neither empty nor full.
"""

from __future__ import annotations

from pathlib import Path

from .configs import ModelName

MASK_LOGIT_GAIN = 20.0


def random_state_dict(model_name: ModelName, seed: int = 0) -> dict:
    import torch

    from .checkpoint import build_official_model

    torch.manual_seed(seed)
    model = build_official_model(model_name, 1024)
    with torch.no_grad():
        # Object-score MLP: a positive bias makes "object present" the common case, as with real weights,
        # while prompts still move the score (weights stay random).
        model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(2.0)
        # Untrained mask logits stay within +-1, so every stability score is 0 and every mask is fragile at
        # its threshold; trained SAM 2 logits reach +-10 and more. Scale the hypernetworks' output layers.
        for mlp in model.sam_mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(MASK_LOGIT_GAIN)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def write_random_checkpoint(model_name: ModelName, path, seed: int = 0) -> Path:
    """Save {"model": state_dict} of seeded random weights to `path` (atomically) and return it."""
    import os

    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save({"model": random_state_dict(model_name, seed)}, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
