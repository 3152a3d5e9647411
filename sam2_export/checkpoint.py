"""Building the official SAM2Base for a config and loading an official checkpoint into it, with errors that
say what is wrong with the file and which config would fit it."""

from __future__ import annotations

import re
from pathlib import Path

from .configs import ALL_MODELS, ModelName
from .errors import ExportError

# Hiera trunk signature of each size: (embed_dim of patch_embed, number of blocks).
_TRUNK_SIGNATURE = {(96, 12): "t", (96, 16): "s", (112, 24): "b+", (144, 48): "l"}
_ZIP_MAGIC = b"PK\x03\x04"


def image_size_overrides(image_size: int) -> list:
    """Hydra overrides that make the official model run at `image_size` (feature map = image_size/16)."""
    feat = image_size // 16
    return [
        f"++model.image_size={image_size}",
        f"++model.memory_attention.layer.self_attention.feat_sizes=[{feat},{feat}]",
        f"++model.memory_attention.layer.cross_attention.feat_sizes=[{feat},{feat}]",
    ]


def check_image_size(image_size: int) -> None:
    # Stride 16 is the feature map; the trunk's stride-32 stage is upsampled x2 onto it by the FPN and the
    # stride-4 stage is tiled by 8x8 window position embeddings, so the image must be a multiple of 32.
    if not isinstance(image_size, int) or image_size % 32 or not 128 <= image_size <= 4096:
        raise ExportError(
            f"--image-size {image_size} is not usable: it must be a multiple of 32 (the backbone stride 16, and "
            f"its stride-32 stage is upsampled x2 onto the stride-16 map) between 128 and 4096; e.g. 512 or 1024",
        )


def build_official_model(model: ModelName, image_size: int = 1024, apply_postprocessing: bool = False):
    """The official SAM2Base (eval, CPU, fp32, random init) for `model` at `image_size`."""
    from sam2.build_sam import build_sam2  # heavy: torch + hydra

    check_image_size(image_size)
    return build_sam2(
        model.config_path, ckpt_path=None, device="cpu", mode="eval",
        hydra_overrides_extra=image_size_overrides(image_size),
        apply_postprocessing=apply_postprocessing,
    )


def read_state_dict(path) -> dict:
    """The `model` state dict of an official checkpoint file, loaded with weights_only=True."""
    import torch

    p = Path(path)
    if not p.exists():
        raise ExportError(f"checkpoint not found: {p}")
    if p.is_dir():
        raise ExportError(f"checkpoint {p} is a directory; pass the .pt file inside it")
    size = p.stat().st_size
    if size == 0:
        raise ExportError(f"checkpoint {p} is empty (0 bytes); download it again")
    with open(p, "rb") as f:
        head = f.read(4)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for bad files
        text = str(e).strip()
        reason = text.splitlines()[0].split(". ")[0] if text else type(e).__name__
        if head == _ZIP_MAGIC:
            raise ExportError(
                f"checkpoint {p} ({size} bytes) is truncated or corrupt: torch.load failed with {reason!r}; "
                f"download it again") from None
        if "weights only" in str(e).lower() and head[:1] == b"\x80":
            raise ExportError(
                f"checkpoint {p} contains Python objects that cannot be loaded safely (weights_only=True): "
                f"{reason}; save the weights as {{'model': model.state_dict()}}") from None
        raise ExportError(
            f"{p} is not a PyTorch checkpoint ({type(e).__name__}: {reason}); expected an official SAM 2 "
            f".pt file such as sam2.1_hiera_tiny.pt") from None
    if not isinstance(obj, dict) or "model" not in obj or not isinstance(obj["model"], dict):
        keys = sorted(obj)[:5] if isinstance(obj, dict) else type(obj).__name__
        raise ExportError(
            f"checkpoint {p} has no 'model' state dict (found {keys}); official SAM 2 checkpoints are "
            f"{{'model': state_dict}}. If you have a bare state dict, save it as torch.save({{'model': sd}}, path)")
    return obj["model"]


def guess_model_from_state_dict(sd: dict):
    """Which official model a state dict belongs to, from its trunk shape and SAM 2.1-only keys (or None)."""
    w = sd.get("image_encoder.trunk.patch_embed.proj.weight")
    if w is None or not hasattr(w, "shape"):
        return None
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"image_encoder\.trunk\.blocks\.(\d+)\.", k))}
    size = _TRUNK_SIGNATURE.get((int(w.shape[0]), len(blocks)))
    if size is None:
        return None
    family = "sam2.1" if ("no_obj_embed_spatial" in sd or "obj_ptr_tpos_proj.weight" in sd) else "sam2"
    return next(m for m in ALL_MODELS if m.family == family and m.size == size)


def load_weights(model, sd: dict, model_name: ModelName, path) -> None:
    """Strictly load `sd` into `model`, explaining any mismatch and suggesting the config that fits."""
    guess = guess_model_from_state_dict(sd)
    hint = (f" The checkpoint looks like {guess.short}: try --config {guess.short}." if guess and guess != model_name
            else " Is it an official SAM 2 / SAM 2.1 checkpoint?")
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    mismatched = [f"{k} is {tuple(sd[k].shape)} in the file, {tuple(v.shape)} in the model"
                  for k, v in expected.items() if k in sd and tuple(getattr(sd[k], "shape", ())) != tuple(v.shape)]
    if missing or unexpected or mismatched:
        parts = []
        for what, keys in (("missing keys", missing), ("unexpected keys", unexpected)):
            if keys:
                parts.append(f"{len(keys)} {what} (e.g. {', '.join(repr(k) for k in keys[:3])})")
        if mismatched:
            parts.append(f"{len(mismatched)} size mismatches (e.g. {mismatched[0]})")
        raise ExportError(
            f"checkpoint {path} does not fit --config {model_name.short}: it has {'; '.join(parts)}.{hint}")
    model.load_state_dict(sd, strict=True)


def load_official_model(model_name: ModelName, checkpoint, image_size: int = 1024):
    """Build the official model and load `checkpoint` (a path) into it."""
    sd = read_state_dict(checkpoint)
    model = build_official_model(model_name, image_size)
    load_weights(model, sd, model_name, checkpoint)
    return model.eval()
