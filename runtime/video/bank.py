"""The memory bank: each object's memory-attention inputs, kept in the graph's own layout between frames.

Per object (a row) it holds S slots of spatial memory and P object pointers, with their temporal encodings and
valid masks, exactly the memory_attention graph's inputs (runtime/specs.py):

    memory             [O, S, 64, F, F] float32 (bf16-exact values)
    memory_tpos_index  [O, S] int32       memory_valid  [O, S] float32
    object_pointers    [O, P, 256] float32
    pointer_tpos       [O, P] float32     pointer_valid [O, P] float32

Attention over keys does not depend on their order, so a slot keeps its memory while the frame stays in the
window; each frame only its temporal indices are re-derived and the frame that entered the window is copied
in (one [64, F, F] copy per object, no allocation). Capacities grow when a call needs more objects, slots
(more conditioning frames) or pointers, which is not the steady state. Padding is masked out by the graph.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

# loader(dst): writes one memory [64, F, F] float32 into dst
MemoryLoader = Callable[[np.ndarray], None]


class MemoryBank:
    def __init__(self, mem_dim: int, feat: int, hidden: int):
        self._mem_shape = (mem_dim, feat, feat)
        self._hidden = hidden
        self._alloc(0, 0, 0)

    def _alloc(self, objects: int, slots: int, pointers: int) -> None:
        self.memory = np.zeros((objects, slots, *self._mem_shape), np.float32)
        self.memory_serial = np.zeros((objects, slots), np.int64)  # which output each slot holds (0: none)
        self.memory_tpos_index = np.zeros((objects, slots), np.int32)
        self.memory_valid = np.zeros((objects, slots), np.float32)
        self.object_pointers = np.zeros((objects, pointers, self._hidden), np.float32)
        self.pointer_tpos = np.zeros((objects, pointers), np.float32)
        self.pointer_valid = np.zeros((objects, pointers), np.float32)

    @property
    def capacity(self) -> tuple[int, int, int]:
        return self.memory.shape[0], self.memory.shape[1], self.object_pointers.shape[1]

    def reserve(self, objects: int, slots: int, pointers: int) -> None:
        """Grow (never shrink) to hold at least this many objects, slots and pointers; keeps the content."""
        o0, s0, p0 = self.capacity
        if objects <= o0 and slots <= s0 and pointers <= p0:
            return
        old = (self.memory, self.memory_serial, self.memory_tpos_index, self.memory_valid,
               self.object_pointers, self.pointer_tpos, self.pointer_valid)
        # grow objects and pointers with headroom so adding one more object is not a reallocation each time
        self._alloc(max(objects, o0 + (o0 + 1) // 2 if objects > o0 else o0), max(slots, s0),
                    max(pointers, p0))
        for new, src in zip((self.memory, self.memory_serial, self.memory_tpos_index, self.memory_valid,
                             self.object_pointers, self.pointer_tpos, self.pointer_valid), old):
            new[tuple(slice(0, n) for n in src.shape)] = src

    def fill_row(self, row: int, memories: Sequence[tuple[int, int, MemoryLoader]],
                 pointers: Sequence[tuple[np.ndarray, float]]) -> list:
        """Make row `row` hold exactly these memories (serial, tpos_index, loader) and pointers ([256], tpos).

        A memory whose serial is already in a slot is not copied again; the others go into free slots, which
        are returned (the slots whose content changed)."""
        serials = self.memory_serial[row]
        wanted = {serial for serial, _, _ in memories}
        keep = {int(s): i for i, s in enumerate(serials) if s in wanted}
        free = [i for i, s in enumerate(serials) if s not in wanted or int(s) == 0]
        loaded = []
        self.memory_valid[row] = 0.0
        for serial, tpos_index, load in memories:
            slot = keep.get(serial)
            if slot is None:
                slot = free.pop(0)
                load(self.memory[row, slot])
                serials[slot] = serial
                loaded.append(slot)
            self.memory_tpos_index[row, slot] = tpos_index
            self.memory_valid[row, slot] = 1.0
        for slot in free:  # a freed slot may still be reused later if its frame comes back
            self.memory_valid[row, slot] = 0.0
        k = len(pointers)
        for i, (vec, tpos) in enumerate(pointers):
            self.object_pointers[row, i] = vec
            self.pointer_tpos[row, i] = tpos
        self.pointer_valid[row, :k] = 1.0
        self.pointer_valid[row, k:] = 0.0
        return loaded

    def used_extent(self, rows: Sequence[int]) -> tuple[int, int]:
        """(slots, pointers) up to the last valid one among these rows. Before the window fills (and for short
        videos) most of the steady-state capacity is padding, which the graph would attend to and mask out;
        trimming it skips that work (exact: a masked key has zero weight). At least one slot is kept (the graph
        needs a memory per object); pointers may trim to none, which the graph accepts."""
        rows = np.asarray(rows)
        slots = np.flatnonzero(self.memory_valid[rows].max(axis=0) > 0.5) if len(rows) else []
        ptrs = np.flatnonzero(self.pointer_valid[rows].max(axis=0) > 0.5) if len(rows) else []
        return (int(slots[-1]) + 1 if len(slots) else min(1, self.memory.shape[1]),
                int(ptrs[-1]) + 1 if len(ptrs) else 0)

    def inputs(self, rows: Sequence[int], slots: int | None = None, pointers: int | None = None) -> dict:
        """The graph inputs for these rows: views when rows are 0..n-1 (every object), copies otherwise.
        slots / pointers trim the trailing capacity (a copy when smaller than the capacity)."""
        s = self.memory.shape[1] if slots is None else slots
        p = self.object_pointers.shape[1] if pointers is None else pointers
        n = len(rows)
        sel = slice(0, n) if list(rows) == list(range(n)) else np.asarray(rows)
        arrays = {
            "memory": self.memory[sel, :s], "memory_tpos_index": self.memory_tpos_index[sel, :s],
            "memory_valid": self.memory_valid[sel, :s], "object_pointers": self.object_pointers[sel, :p],
            "pointer_tpos": self.pointer_tpos[sel, :p], "pointer_valid": self.pointer_valid[sel, :p],
        }
        return {k: np.ascontiguousarray(v) for k, v in arrays.items()}

    def drop_row(self, row: int) -> None:
        """Forget an object: later rows move up by one (object indices shift as in the official remove_object)."""
        if row >= self.memory.shape[0]:
            return  # the object was never tracked, so it has no row yet
        for a in (self.memory, self.memory_serial, self.memory_tpos_index, self.memory_valid,
                  self.object_pointers, self.pointer_tpos, self.pointer_valid):
            a[row:-1] = a[row + 1:].copy()
            a[-1] = 0

    def clear(self) -> None:
        self.memory_serial[:] = 0
        self.memory_valid[:] = 0.0
        self.pointer_valid[:] = 0.0
