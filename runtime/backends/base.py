"""The backend interface: how the runtime runs one exported graph, wherever its tensors live.

A backend opens graphs (`open`) and moves arrays between the host and its device. A graph session's `run`
takes a {name: tensor} mapping and returns one; a tensor is a numpy array (host) or the backend's own device
tensor (an onnxruntime OrtValue on CUDA, a DeviceArray for TensorRT). Outputs stay where the backend computed
them, so one graph's output can feed the next without a host round trip; callers use `to_host` only where
they need values on the CPU. A caller may hand a backend its own CUDA stream (`stream`, a cudaStream_t
handle as int) so the runtime's work orders with the application's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from sam2_trt.core.errors import BackendUnavailable  # noqa: F401  (re-exported)
from sam2_trt.core.specs import GraphSpec


class GraphSession(ABC):
    def __init__(self, spec: GraphSpec):
        self.spec = spec

    @abstractmethod
    def run(self, inputs: Mapping[str, Any]) -> dict:
        """inputs: every input of the spec (host numpy or backend device tensors, dtypes as the spec says)
        -> {output name: tensor} on the backend's device."""


class Backend(ABC):
    name: str = "?"
    device: str = "cpu"  # where outputs live: "cpu" or "cuda"

    @classmethod
    @abstractmethod
    def unavailable_reason(cls, device_id: int = 0) -> str | None:
        """None when this backend can run here, else why not (naming the missing package or device)."""

    @abstractmethod
    def open(self, spec: GraphSpec, path: Path) -> GraphSession:
        """Load one graph (ONNX file, or the backend's engine built from it)."""

    def to_host(self, tensor) -> np.ndarray:
        return np.asarray(tensor)

    def from_host(self, array: np.ndarray):
        return array
