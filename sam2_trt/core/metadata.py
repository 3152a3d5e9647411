"""The metadata file of an exported model directory: what the exporter writes and the runtime loads.

`sam2_trt.json` holds everything the runtime needs besides the graphs: the model name and image size, every
flag of the official model that the tracking loop reads, the small constant tensors applied outside the
graphs (e.g. no_obj_ptr), each graph's I/O names/shapes and sha256, and the versions that produced it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelDirError
from .specs import GRAPHS

METADATA_FILENAME = "sam2_trt.json"
VALIDATION_FILENAME = "validation.json"
# 2: the per-object graphs take a batch of frames and a per-object frame_index (several videos in one call)
FORMAT_VERSION = 2
# What the graphs compute in: "fp32" (exact, every backend) or "int8" (sam2-trt export --int8: quantized
# matmuls that only ONNX Runtime's CPU kernels run). Exports that predate the key are fp32.
GRAPH_PRECISIONS = ("fp32", "int8")

# SAM2Base attributes the runtime's tracking loop reads (names as in sam2/modeling/sam2_base.py).
MODEL_FLAGS = (
    "num_maskmem", "image_size", "backbone_stride", "hidden_dim", "mem_dim",
    "sigmoid_scale_for_mem_enc", "sigmoid_bias_for_mem_enc", "binarize_mask_from_pts_for_mem_enc",
    "use_mask_input_as_output_without_sam", "directly_add_no_mem_embed", "use_high_res_features_in_sam",
    "multimask_output_in_sam", "multimask_min_pt_num", "multimask_max_pt_num", "multimask_output_for_tracking",
    "use_multimask_token_for_obj_ptr", "iou_prediction_use_sigmoid", "use_obj_ptrs_in_encoder",
    "max_obj_ptrs_in_encoder", "add_tpos_enc_to_obj_ptrs", "proj_tpos_enc_in_obj_ptrs",
    "use_signed_tpos_enc_to_obj_ptrs", "only_obj_ptrs_in_the_past_for_eval", "pred_obj_scores",
    "pred_obj_scores_mlp", "fixed_no_obj_ptr", "soft_no_obj_ptr", "use_mlp_for_obj_ptr_proj",
    "max_cond_frames_in_attn", "memory_temporal_stride_for_eval", "non_overlap_masks_for_mem_enc",
)

# What build_sam2 / build_sam2_video_predictor add with apply_postprocessing=True (sam2/build_sam.py); the
# runtime applies them by default, as the official builders do.
OFFICIAL_POSTPROCESSING = {
    "dynamic_multimask_via_stability": True,
    "dynamic_multimask_stability_delta": 0.05,
    "dynamic_multimask_stability_thresh": 0.98,
    "binarize_mask_from_pts_for_mem_enc": True,  # video only
    "fill_hole_area": 8,  # video only
}

# Small tensors applied outside the graphs; no_obj_embed_spatial exists in SAM 2.1 models only.
REQUIRED_CONSTANTS = ("no_mem_embed", "no_obj_ptr", "maskmem_tpos_enc", "mask_downsample_weight",
                      "mask_downsample_bias")


def sha256_file(path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def encode_array(a: np.ndarray) -> dict:
    """Lossless JSON form of a small float32 tensor (repr of each float32 round-trips exactly)."""
    a = np.asarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "dtype": "float32", "data": [float(x) for x in a.ravel()]}


def decode_array(d: dict) -> np.ndarray:
    return np.asarray(d["data"], dtype=d["dtype"]).reshape(d["shape"])


@dataclass(frozen=True)
class ModelMetadata:
    model_dir: Path
    raw: dict

    @property
    def model_name(self) -> str:
        return self.raw["model"]["name"]

    @property
    def image_size(self) -> int:
        return int(self.raw["image_size"])

    @property
    def precision(self) -> str:
        return self.raw.get("precision", "fp32")

    @property
    def feature_size(self) -> int:
        return self.image_size // 16

    @property
    def flags(self) -> dict:
        return self.raw["flags"]

    def constant(self, name: str) -> np.ndarray:
        try:
            return decode_array(self.raw["constants"][name])
        except KeyError:
            raise ModelDirError(f"{self.model_dir / METADATA_FILENAME} has no constant {name!r}; "
                                f"re-export the model with this version of sam2-trt") from None

    def graph_path(self, graph: str) -> Path:
        return self.model_dir / self.raw["graphs"][graph]["file"]

    def verify_graphs(self, check_hashes: bool = True) -> None:
        """Every graph of the spec is present and (optionally) matches the sha256 recorded at export."""
        for name in GRAPHS:
            entry = self.raw["graphs"].get(name)
            if entry is None:
                raise ModelDirError(f"{self.model_dir / METADATA_FILENAME} lists no {name} graph; re-export the model")
            path = self.model_dir / entry["file"]
            if not path.is_file():
                raise ModelDirError(f"model directory {self.model_dir} is missing {entry['file']}; re-export it "
                                    f"with `sam2-trt export`")
            if check_hashes and sha256_file(path) != entry["sha256"]:
                raise ModelDirError(f"{path} does not match the sha256 recorded in {METADATA_FILENAME} (the file was "
                                    f"changed or copied incompletely); re-export the model or copy it again")


def load_metadata(model_dir) -> ModelMetadata:
    """The metadata of an exported model directory, validated (check_metadata): ModelDirError naming the file and
    the key when anything is missing or of the wrong kind."""
    model_dir = Path(model_dir)
    path = model_dir / METADATA_FILENAME
    if model_dir.is_file():
        raise ModelDirError(f"{model_dir} is a file, not a model directory; pass the folder `sam2-trt export` "
                            f"created (it holds {METADATA_FILENAME} and four .onnx graphs)")
    if not model_dir.is_dir():
        raise ModelDirError(f"model directory not found: {model_dir}")
    if not path.is_file():
        raise ModelDirError(f"{model_dir} is not a sam2-trt model directory (no {METADATA_FILENAME}); create one "
                            f"with `sam2-trt export`")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelDirError(f"{path} is not valid JSON ({e}); re-export the model") from None
    if not isinstance(raw, dict):
        raise ModelDirError(f"{path} holds a JSON {type(raw).__name__}, not the object sam2-trt export writes; "
                            f"re-export the model")
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelDirError(f"{path} has format_version {version!r}, this sam2-trt reads {FORMAT_VERSION}; "
                            f"re-export the model with this version")
    check_metadata(raw, path)
    return ModelMetadata(model_dir, raw)


def check_metadata(raw: dict, path) -> None:
    """Every key the runtime reads is there with the right kind of value; ModelDirError naming the first that
    is not (e.g. `flags.num_maskmem`), so a damaged file fails here and not as a KeyError in a predictor."""
    def fail(key: str, what: str):
        raise ModelDirError(f"{path}: {key} {what}; the file is damaged or was not written by this sam2-trt: "
                            f"re-export the model with `sam2-trt export`")

    def get(parent: dict, key: str, kind, where: str):
        if key not in parent:
            fail(where, "is missing")
        value = parent[key]
        if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else ()):
            fail(where, f"must be {_KIND_NAMES.get(kind, kind)}, got {value!r}")
        if not isinstance(value, kind):
            fail(where, f"must be {_KIND_NAMES.get(kind, kind)}, got {type(value).__name__} {value!r:.60}")
        return value

    model = get(raw, "model", dict, "model")
    get(model, "name", str, "model.name")
    size = get(raw, "image_size", int, "image_size")
    if size < 32 or size % 32:
        fail("image_size", f"must be a positive multiple of 32, got {size}")
    if raw.get("precision", "fp32") not in GRAPH_PRECISIONS:
        fail("precision", f"must be one of {', '.join(GRAPH_PRECISIONS)}, got {raw['precision']!r:.40}")
    flags = get(raw, "flags", dict, "flags")
    for flag in MODEL_FLAGS:
        get(flags, flag, (int, float, bool), f"flags.{flag}")
    post = get(raw, "official_postprocessing", dict, "official_postprocessing")
    for key in OFFICIAL_POSTPROCESSING:
        get(post, key, (int, float, bool), f"official_postprocessing.{key}")
    constants = get(raw, "constants", dict, "constants")
    for name in REQUIRED_CONSTANTS + tuple(k for k in constants if k not in REQUIRED_CONSTANTS):
        c = get(constants, name, dict, f"constants.{name}")
        shape, data = get(c, "shape", list, f"constants.{name}.shape"), get(c, "data", list, f"constants.{name}.data")
        get(c, "dtype", str, f"constants.{name}.dtype")
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape) or \
                len(data) != int(np.prod(shape)) or not all(isinstance(x, (int, float)) for x in data):
            fail(f"constants.{name}", f"must hold {shape} numbers as its shape says")
    graphs = get(raw, "graphs", dict, "graphs")
    for graph in GRAPHS:
        entry = get(graphs, graph, dict, f"graphs.{graph}")
        file = get(entry, "file", str, f"graphs.{graph}.file")
        if Path(file).name != file or file in ("", ".", ".."):
            fail(f"graphs.{graph}.file", f"must be a file name inside the model directory, got {file!r}")
        digest = get(entry, "sha256", str, f"graphs.{graph}.sha256")
        if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
            fail(f"graphs.{graph}.sha256", f"must be 64 hex digits, got {digest!r:.70}")


_KIND_NAMES = {dict: "an object", str: "a string", int: "a whole number", list: "a list",
               (int, float, bool): "a number or true/false"}
