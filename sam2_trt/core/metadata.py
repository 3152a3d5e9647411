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
    model_dir = Path(model_dir)
    path = model_dir / METADATA_FILENAME
    if not model_dir.is_dir():
        raise ModelDirError(f"model directory not found: {model_dir}")
    if not path.is_file():
        raise ModelDirError(f"{model_dir} is not a sam2-trt model directory (no {METADATA_FILENAME}); create one "
                            f"with `sam2-trt export`")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelDirError(f"{path} is not valid JSON ({e}); re-export the model") from None
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelDirError(f"{path} has format_version {version!r}, this sam2-trt reads {FORMAT_VERSION}; "
                            f"re-export the model with this version")
    return ModelMetadata(model_dir, raw)
