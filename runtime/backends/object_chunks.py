"""Running a graph call with more objects than an engine's profile allows, as several calls.

Every per-object graph (prompt decoder, memory attention, memory encoder) computes each object independently:
its outputs along axis 0 are the objects, in input order. So a call with n objects runs as ceil(n / max)
calls on consecutive slices of the per-object inputs, and the outputs are concatenated. Shared inputs (the
frame's features, batch 1) go to every chunk unchanged; the decoder's `image_embed` is per object when its
batch equals the objects' (memory-conditioned features), shared when it is 1.

Works on numpy arrays and on DeviceArrays (slices are views; the concatenation is one device copy per chunk).
"""

from __future__ import annotations

import numpy as np

from sam2_trt.core.specs import GraphSpec


def objects_in_call(spec: GraphSpec, inputs: dict) -> int | None:
    """How many objects this call has (None when the graph has no objects axis)."""
    for t in spec.inputs:
        if t.shape and t.shape[0] == "objects":
            return int(inputs[t.name].shape[0])
    return None


def _is_per_object(spec: GraphSpec, name: str, value, n: int) -> bool:
    axis0 = spec.tensor(name).shape[0] if spec.tensor(name).shape else None
    return axis0 == "objects" or (axis0 == "embeds" and value.shape[0] == n and n > 1)


def row_slice(value, lo: int, hi: int):
    """Rows lo..hi-1 (axis 0) of a numpy array or a DeviceArray, as a view."""
    if isinstance(value, np.ndarray):
        return value[lo:hi]
    from ..gpu.device import DeviceArray

    row_bytes = value.nbytes // max(value.shape[0], 1)
    return DeviceArray.wrap(value.ptr + lo * row_bytes, (hi - lo, *value.shape[1:]), value.dtype, owner=value)


def split_objects(spec: GraphSpec, inputs: dict, max_objects: int) -> list:
    """[inputs of chunk 0, chunk 1, ...], each with at most `max_objects` objects (one chunk if n fits)."""
    n = objects_in_call(spec, inputs)
    if n is None or n <= max_objects:
        return [inputs]
    chunks = []
    for lo in range(0, n, max_objects):
        hi = min(lo + max_objects, n)
        chunks.append({k: row_slice(v, lo, hi) if _is_per_object(spec, k, v, n) else v for k, v in inputs.items()})
    return chunks


def concat_objects(spec: GraphSpec, results: list, stream=None) -> dict:
    """Outputs of consecutive chunks -> the outputs of one call (axis 0 concatenated)."""
    if len(results) == 1:
        return results[0]
    return {name: concat_rows([r[name] for r in results], stream) for name in spec.output_names}


def concat_rows(parts: list, stream=None):
    """numpy arrays, or DeviceArrays, of one trailing shape -> one of them, axis 0 concatenated (one device copy
    per part)."""
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    from ..gpu.device import DeviceArray, memcpy

    total = sum(p.shape[0] for p in parts)
    dst = DeviceArray.empty((total, *parts[0].shape[1:]), parts[0].dtype, stream)
    offset = 0
    for p in parts:
        memcpy(dst.ptr + offset, p.ptr, p.nbytes, "d2d", dst.stream)
        offset += p.nbytes
    return dst
