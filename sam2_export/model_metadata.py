"""The content of an exported model's metadata file (runtime/metadata.py reads it)."""

from __future__ import annotations

import platform
import time
from pathlib import Path

from sam2_trt.core.metadata import (FORMAT_VERSION, MODEL_FLAGS, OFFICIAL_POSTPROCESSING, VALIDATION_FILENAME,
                                    encode_array, sha256_file)
from sam2_trt.core.specs import GRAPHS

from .configs import ModelName
from .onnx_export import graph_io_summary

def model_constants(model) -> dict:
    """Small tensors applied outside the graphs, as float32 arrays."""
    consts = {
        "no_mem_embed": model.no_mem_embed,  # [1,1,256]
        "no_obj_ptr": model.no_obj_ptr,  # [1,256]
        "maskmem_tpos_enc": model.maskmem_tpos_enc,  # [7,1,1,64]
        "mask_downsample_weight": model.mask_downsample.weight,  # [1,1,4,4]: _use_mask_as_output
        "mask_downsample_bias": model.mask_downsample.bias,  # [1]
    }
    if model.no_obj_embed_spatial is not None:
        consts["no_obj_embed_spatial"] = model.no_obj_embed_spatial  # [1,64] (SAM 2.1)
    return {k: v.detach().float().cpu().numpy() for k, v in consts.items()}


def library_versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("sam2-trt", "torch", "sam2", "onnx", "onnxruntime", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def build_metadata(model, model_name: ModelName, image_size: int, opset: int, graph_dir: Path,
                   checkpoint: dict, precision: str = "fp32") -> dict:
    graphs = {}
    for name, spec in GRAPHS.items():
        path = graph_dir / spec.filename
        graphs[name] = {"file": spec.filename, "sha256": sha256_file(path), "bytes": path.stat().st_size,
                        **graph_io_summary(spec, image_size)}
    return {
        "format_version": FORMAT_VERSION,
        "model": {"name": model_name.short, "long_name": model_name.long, "family": model_name.family,
                  "size": model_name.size, "config": model_name.config_path},
        "image_size": image_size,
        "feature_size": image_size // 16,
        "precision": precision,  # "fp32", or "int8": quantized graphs for ONNX Runtime on CPUs
        "opset": opset,
        "flags": {k: _plain(getattr(model, k)) for k in MODEL_FLAGS},
        "official_postprocessing": OFFICIAL_POSTPROCESSING,
        "constants": {k: encode_array(v) for k, v in model_constants(model).items()},
        "graphs": graphs,
        "validation": VALIDATION_FILENAME,
        "checkpoint": checkpoint,
        "versions": library_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _plain(v):
    return v if isinstance(v, (bool, int, float, str, type(None))) else float(v)
