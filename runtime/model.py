"""An exported model directory opened on one backend: its metadata, its four graphs (opened on first use) and
the pre/post-processing that goes with the backend (CUDA kernels beside a GPU backend, numpy twins otherwise)."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import numpy as np

from .backends import Backend, select_backend
from .backends.object_chunks import concat_rows, row_slice
from .processing import select_processing
from sam2_trt.core.metadata import ModelMetadata, load_metadata
from sam2_trt.core.specs import GRAPHS


class SAM2Model:
    def __init__(self, metadata: ModelMetadata, backend: Backend):
        self.meta = metadata
        self.backend = backend
        self.processing = select_processing(backend)  # HostProcessing | CudaProcessing, chosen once per model
        self._sessions = {}
        self.calls = Counter()  # graph name -> calls made through run(): what batching saves is counted here
        # One graph call at a time: a TensorRT execution context (and its CUDA graphs) is not thread-safe, and
        # predictors on one model may be used from several threads.
        self._lock = threading.RLock()

    @classmethod
    def load(cls, model_dir, backend: str = "auto", device: str = "cuda", stream=None,
             verify_checksums: bool = True, precision: str | None = None) -> "SAM2Model":
        """Open `model_dir` (made by `sam2-trt export`); checks that every graph is there and matches its sha256.
        `precision` picks the TensorRT engines (fp32, tf32, fp16, bf16; default: the ones built, else fp16)."""
        meta = load_metadata(Path(model_dir))
        meta.verify_graphs(check_hashes=verify_checksums)
        if meta.precision == "int8":
            backend = _int8_backend(meta, backend, precision)
        return cls(meta, select_backend(backend, device, stream, precision=precision))

    @property
    def image_size(self) -> int:
        return self.meta.image_size

    @property
    def fingerprint(self) -> tuple:
        """What makes two opened models interchangeable: the same graphs at the same size (tracking states and
        image embeddings made by one are valid for the other)."""
        graphs = self.meta.raw.get("graphs", {})
        return (self.meta.model_name, self.image_size, tuple(sorted((g, e.get("sha256")) for g, e in graphs.items())))

    def describe(self) -> str:
        return f"{self.meta.model_name} at {self.image_size} px ({self.meta.model_dir})"

    def __deepcopy__(self, memo):  # an opened model is shared, never copied (copying a tracking state keeps it)
        return self

    @property
    def low_res_size(self) -> int:
        """Side of the decoder's mask logits (256 at 1024)."""
        return self.meta.image_size // 4

    def session(self, graph: str):
        with self._lock:
            if graph not in self._sessions:
                self._sessions[graph] = self.backend.open(GRAPHS[graph], self.meta.graph_path(graph))
            return self._sessions[graph]

    def run(self, graph: str, **inputs) -> dict:
        """Run one graph; inputs by spec name (numpy or device tensors), outputs on the backend's device."""
        with self._lock:
            self.calls[graph] += 1
            return self.session(graph).run(inputs)

    def host(self, tensor) -> np.ndarray:
        return self.backend.to_host(tensor)

    def concat(self, parts: list):
        """Backend tensors of one trailing shape -> one, axis 0 concatenated (a single part as it is); on the
        device for device arrays, through the host for other device tensors (ONNX Runtime's OrtValues)."""
        if len(parts) == 1:
            return parts[0]
        if all(isinstance(p, np.ndarray) for p in parts) or all(hasattr(p, "ptr") for p in parts):
            return concat_rows(parts, getattr(self.backend, "stream", None))
        return np.concatenate([self.host(p) for p in parts])

    def rows(self, tensor, lo: int, hi: int):
        """Rows lo..hi-1 (axis 0) of a backend tensor: a view for numpy and device arrays."""
        if isinstance(tensor, np.ndarray) or hasattr(tensor, "ptr"):
            return row_slice(tensor, lo, hi)
        return self.host(tensor)[lo:hi]


def _int8_backend(meta: ModelMetadata, backend: str, precision: str | None) -> str:
    """The backend that runs an int8 export: ONNX Runtime on the CPU (its quantized matmuls are CPU kernels);
    ValueError for a backend or engine precision that cannot run it."""
    if precision is not None:
        raise ValueError(f"{meta.model_dir} is an int8 export (sam2-trt export --int8), which ONNX Runtime "
                         f"runs on the CPU; precision={precision!r} picks TensorRT engines of an fp32 export")
    if backend in ("auto", "onnxruntime-cpu"):
        return "onnxruntime-cpu"
    raise ValueError(f"{meta.model_dir} is an int8 export (sam2-trt export --int8): its quantized graphs "
                     f"run on backend='onnxruntime-cpu' (or 'auto'), not {backend!r}; export fp32 for {backend}")
