"""What tracking produces for one object on one frame, and where the per-frame results of a whole video live.

The official predictor keeps a dict per frame and object (`compact_current_out`: bf16 memory, fp32 low-res
masks, pointer, score). Here one object's non-conditioning results sit in preallocated arrays indexed by frame:
memories as bf16 bits (what the official code stores, so lossless), low-res masks as float16 (they are only
read back when a user clicks on an old frame, and the official code clamps them to +-32 there), pointers and
scores as float32. Pages of the arrays are only touched when written, so a long video costs what it tracks.
Streams, whose length is unknown, keep a ring of the last frames the memory attention can still reach.

An object's conditioning outputs (its prompted frames: few, kept whole) live in a CondOutputs, its
non-conditioning ones in a FrameHistory; both answer the same OutputStore questions, so memory and pointer
lookups do not care which kind of frame they read.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator, Protocol

import numpy as np

_SERIALS = itertools.count(1)


def next_serial() -> int:
    """A process-wide unique id for a computed output: the memory bank reloads a slot whose serial changed."""
    return next(_SERIALS)


def bf16_bits(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """float32 values that are already bf16-exact (the memory encoder rounds them) -> their upper 16 bits, as
    uint16, written into `out` (same shape) without temporaries."""
    x = np.ascontiguousarray(x, np.float32)
    if out is None:
        out = np.empty(x.shape, np.uint16)
    np.copyto(out, x.view(np.uint16)[..., 1::2])  # little-endian: the high half of each float32 word
    return out


def bf16_to_float32(bits: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """uint16 bf16 bits [...] -> float32 [...], written into `out` (same shape) without temporaries."""
    if out is None:
        out = np.empty(bits.shape, np.float32)
    words = out.view(np.uint16).reshape(*bits.shape, 2)  # little-endian: [low half, high half] of each float
    words[..., 0] = 0
    words[..., 1] = bits
    return out


@dataclass
class FrameOutput:
    """One object's result on one frame (the official `compact_current_out`).

    masks   [h, w] float32 low-res mask logits (h = w = image_size / 4), after hole filling
    pointer [256] float32 object pointer (no-object mixing applied)
    score   object score logit (> 0: the object is present)
    memory  [64, F, F] float32 spatial memory, bf16-exact; None until the memory encoder ran (clicks)
    serial  unique id of this result (see next_serial)
    """

    masks: np.ndarray
    pointer: np.ndarray
    score: float
    memory: np.ndarray | None
    serial: int


class OutputStore(Protocol):
    """One object's outputs of one kind (conditioning or not), by frame index."""

    def __contains__(self, t: int) -> bool: ...
    def frames(self) -> list: ...  # frame indices held
    def put(self, t: int, out: FrameOutput) -> None: ...  # out.memory must be set
    def pop(self, t: int) -> bool: ...  # forget frame t; whether it was there
    def masks(self, t: int) -> np.ndarray | None: ...  # [h, w] float32 low-res logits, None when absent
    def pointer(self, t: int) -> np.ndarray: ...  # [256] float32
    def serial(self, t: int) -> int: ...  # the output's serial, 0 when absent
    def copy_memory(self, t: int, dst: np.ndarray) -> None: ...  # [64, F, F] float32 into a bank slot


class CondOutputs:
    """An object's conditioning outputs (frames with prompts), whole, in insertion order as the official dict:
    the order decides which conditioning frames attend first. An OutputStore."""

    def __init__(self):
        self._outputs: dict[int, FrameOutput] = {}

    def __contains__(self, t: int) -> bool:
        return t in self._outputs

    def __iter__(self) -> Iterator[int]:
        return iter(self._outputs)

    def __len__(self) -> int:
        return len(self._outputs)

    def frames(self) -> list:
        return list(self._outputs)

    def get(self, t: int) -> FrameOutput | None:
        return self._outputs.get(t)

    def put(self, t: int, out: FrameOutput) -> None:
        if out.memory is None:
            raise ValueError(f"frame {t}: a conditioning output needs its memory")
        self._outputs[t] = out

    def pop(self, t: int) -> bool:
        return self._outputs.pop(t, None) is not None

    def masks(self, t: int) -> np.ndarray | None:
        out = self._outputs.get(t)
        return None if out is None else out.masks

    def pointer(self, t: int) -> np.ndarray:
        return self._outputs[t].pointer

    def serial(self, t: int) -> int:
        out = self._outputs.get(t)
        return 0 if out is None else out.serial

    def copy_memory(self, t: int, dst: np.ndarray) -> None:
        np.copyto(dst, self._outputs[t].memory)

    def clear(self) -> None:
        self._outputs.clear()


class FrameHistory:
    """One object's non-conditioning outputs by frame index, in preallocated arrays (an OutputStore).

    num_frames: the video length, or None for a stream: then only the last `ring` frames are kept (a frame is
    dropped when the frame `ring` later is stored).
    """

    def __init__(self, num_frames: int | None, low_res: int, feat: int, mem_dim: int, hidden: int,
                 ring: int = 16):
        n = num_frames if num_frames is not None else ring
        self._ring = num_frames is None
        self._n = n
        self._frame = np.full(n, -1, np.int64)  # which frame each row holds (-1: none)
        self._serial = np.zeros(n, np.int64)
        self._memory = np.empty((n, mem_dim, feat, feat), np.uint16)
        self._masks = np.empty((n, low_res, low_res), np.float16)
        self._pointer = np.empty((n, hidden), np.float32)
        self._score = np.empty(n, np.float32)

    def _row(self, t: int) -> int:
        return t % self._n if self._ring else t

    def __contains__(self, t: int) -> bool:
        return 0 <= t and (self._ring or t < self._n) and self._frame[self._row(t)] == t

    def frames(self) -> list:
        return sorted(int(t) for t in self._frame[self._frame >= 0])

    def serial(self, t: int) -> int:
        return int(self._serial[self._row(t)]) if t in self else 0

    def put(self, t: int, out: FrameOutput) -> None:
        if out.memory is None:
            raise ValueError(f"frame {t}: a non-conditioning output needs its memory")
        if not self._ring and not 0 <= t < self._n:
            raise IndexError(f"frame {t} is outside the video's {self._n} frames")
        r = self._row(t)
        self._frame[r], self._serial[r] = t, out.serial
        bf16_bits(out.memory, out=self._memory[r])
        self._masks[r] = out.masks
        self._pointer[r] = out.pointer
        self._score[r] = out.score

    def masks(self, t: int) -> np.ndarray | None:
        """Frame t's low-res mask logits [h, w] float32 (from their float16 copy), or None."""
        return self._masks[self._row(t)].astype(np.float32) if t in self else None

    def pop(self, t: int) -> bool:
        """Forget frame t; whether it was there."""
        if t not in self:
            return False
        self._frame[self._row(t)] = -1
        return True

    def copy_memory(self, t: int, dst: np.ndarray) -> None:
        """Write frame t's memory into dst [64, F, F] float32 (a memory-bank slot) without allocating."""
        bf16_to_float32(self._memory[self._row(t)], out=dst)

    def pointer(self, t: int) -> np.ndarray:
        return self._pointer[self._row(t)]

    def clear(self) -> None:
        self._frame[:] = -1
