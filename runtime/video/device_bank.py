"""The memory bank's spatial memories kept on the backend's device, so memory attention reads them in place.

`MirroredMemoryBank` is a MemoryBank (bank.py: the host copy stays the source of truth, so every bookkeeping
rule is shared) whose [O, S, 64, F, F] memory also lives in a mirror on the device. A slot is copied to the
mirror only when its content changes: when a frame enters the window (one [64, F, F] copy per object per
frame, 1 MiB at 1024 px), when capacity grows or objects are removed (everything once). The small inputs (temporal
indices, valid masks, pointers: a few KiB) go as host arrays, which the backend copies in with the call.
So per frame, instead of the whole bank (7+ memories per object), one memory per object crosses PCIe.

Mirrors: `CudaMirror` (a DeviceArray, for the TensorRT and ONNX Runtime CUDA backends) and `HostMirror`
(numpy: the same protocol on the host; the CPU test of the dirty-slot bookkeeping).
"""

from __future__ import annotations

import numpy as np

from .bank import MemoryBank


class HostMirror:
    uploads = 0  # slot copies since allocation (what the CPU test counts)

    def allocate(self, shape: tuple) -> None:
        self.array = np.zeros(shape, np.float32)
        self.uploads = 0

    def upload(self, row: int, slot: int, src: np.ndarray) -> None:
        self.array[row, slot] = src
        self.uploads += 1

    def flush(self) -> None:
        pass

    def view(self, rows: int):
        return self.array[:rows]


class CudaMirror:
    """The mirror in device memory of GPU `device_id` (the backend's), written on the backend's stream; every
    call runs with that device current and leaves the thread's own device as it was."""

    uploads = 0

    def __init__(self, stream=None, device_id: int = 0):
        from ..gpu.device import as_stream

        self.device_id = device_id
        self.stream = as_stream(stream, device_id)

    def _on_device(self):
        from ..gpu.device import use_device

        return use_device(self.device_id)

    def allocate(self, shape: tuple) -> None:
        from ..gpu.device import DeviceArray

        with self._on_device():
            self.array = DeviceArray.zeros(shape, np.float32, self.stream)
        self.uploads = 0

    def upload(self, row: int, slot: int, src: np.ndarray) -> None:
        from ..gpu.device import memcpy

        src = np.ascontiguousarray(src, dtype=np.float32)
        offset = (row * self.array.shape[1] + slot) * src.nbytes
        with self._on_device():
            memcpy(self.array.ptr + offset, src.ctypes.data, src.nbytes, "h2d", self.stream)
        self.uploads += 1

    def flush(self) -> None:
        """Wait for the uploads: the backend may read the mirror on another stream (ONNX Runtime's)."""
        self.stream.synchronize()

    def view(self, rows: int):
        from ..gpu.device import DeviceArray

        return DeviceArray.wrap(self.array.ptr, (rows, *self.array.shape[1:]), np.float32, owner=self.array)


class MirroredMemoryBank(MemoryBank):
    def __init__(self, mem_dim: int, feat: int, hidden: int, mirror):
        self.mirror = mirror
        self._dirty = set()  # (row, slot) changed on the host since the last upload
        self._stale = True  # the mirror must be rebuilt (capacity changed, rows moved)
        super().__init__(mem_dim, feat, hidden)

    def _alloc(self, objects: int, slots: int, pointers: int) -> None:
        super()._alloc(objects, slots, pointers)
        self._stale = True

    def fill_row(self, row, memories, pointers) -> list:
        loaded = super().fill_row(row, memories, pointers)
        self._dirty.update((row, slot) for slot in loaded)
        return loaded

    def drop_row(self, row: int) -> None:
        super().drop_row(row)
        self._stale = True

    def used_extent(self, rows) -> tuple[int, int]:
        """The full capacity: the mirror is laid out at it, and a trimmed view would need a host copy. Padding
        costs the device little; what matters there is not moving the bank."""
        return self.memory.shape[1], self.object_pointers.shape[1]

    def inputs(self, rows, slots=None, pointers=None) -> dict:
        out = super().inputs(rows, slots, pointers)
        n, s = len(rows), self.memory.shape[1] if slots is None else slots
        if list(rows) != list(range(n)) or s != self.memory.shape[1] or n == 0:
            return out  # a subset of objects or trimmed slots (not the steady state): the host copy
        before = self.mirror.uploads if not self._stale else -1
        if self._stale:
            self.mirror.allocate(self.memory.shape)
            for row in range(self.memory.shape[0]):
                for slot in range(self.memory.shape[1]):
                    if self.memory_serial[row, slot]:
                        self.mirror.upload(row, slot, self.memory[row, slot])
            self._stale = False
        else:
            for row, slot in sorted(self._dirty):
                self.mirror.upload(row, slot, self.memory[row, slot])
        if self.mirror.uploads != before:
            self.mirror.flush()
        self._dirty.clear()
        out["memory"] = self.mirror.view(n)
        return out
