"""One tracked object: its prompts by frame and the lifecycle of its results.

What the official predictor keeps per object index in dicts of dicts (sam2_video_predictor.py:
point_inputs_per_obj, mask_inputs_per_obj, output_dict_per_obj, temp_output_dict_per_obj,
frames_tracked_per_obj), with the moves between them as methods of the object that owns them:

    prompt on frame t   -> a temporary output (temp_cond, or temp_non_cond for a correction click that is not
                           a conditioning frame), waiting for its memory
    propagation starts  -> temporary outputs are committed: conditioning ones to `cond`, the others to
                           `non_cond`; a prompted frame leaves `non_cond`
    tracking frame t    -> a non-conditioning output in `non_cond`, and t is marked tracked (with its direction)
    clearing frame t    -> its prompts go; a conditioning output becomes an ordinary tracked one

`cond` (CondOutputs) and `non_cond` (FrameHistory) are both OutputStores, so the memory bank reads memories and
pointers through one interface (memory_slot, pointer).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .memory_selection import MemoryRef
from .outputs import CondOutputs, FrameHistory, FrameOutput, OutputStore
from .prompts import PointPrompt


class ObjectTrack:
    def __init__(self, obj_id: int, history: FrameHistory):
        self.obj_id = obj_id
        self.points: dict[int, PointPrompt] = {}  # frame -> clicks (and box corners), model pixels
        self.masks: dict[int, np.ndarray] = {}  # frame -> [S, S] float32 binary mask prompt
        self.cond = CondOutputs()  # outputs of prompted (conditioning) frames, committed
        self.non_cond: FrameHistory = history  # outputs of tracked frames
        self.temp_cond: dict[int, FrameOutput] = {}  # prompt results before propagation encodes their memory
        self.temp_non_cond: dict[int, FrameOutput] = {}
        self.tracked: dict[int, bool] = {}  # frame -> reverse flag of the pass that last tracked it

    # -- reading --------------------------------------------------------------------------------------------
    def temp(self, is_cond: bool) -> dict:
        return self.temp_cond if is_cond else self.temp_non_cond

    @property
    def has_conditioning_frame(self) -> bool:
        """Whether propagation can start: at least one prompted frame (committed or not)."""
        return bool(len(self.cond) or self.temp_cond)

    def prompted_frames(self) -> list:
        return sorted(set(self.points) | set(self.masks))

    def latest_masks(self, frame_idx: int, is_cond: bool) -> np.ndarray | None:
        """The most recent mask logits [h, w] float32 on a frame, in the official lookup order: the temporary
        output of this kind, then the conditioning output, then the non-conditioning one."""
        out = self.temp(is_cond).get(frame_idx)
        if out is not None:
            return out.masks
        for store in (self.cond, self.non_cond):
            masks = store.masks(frame_idx)
            if masks is not None:
                return masks
        return None

    def memory_slot(self, ref: MemoryRef) -> tuple[int, int, Callable[[np.ndarray], None]]:
        """(serial, tpos index, loader) of a selected memory, as MemoryBank.fill_row takes it."""
        store: OutputStore = self.cond if ref.cond else self.non_cond
        return store.serial(ref.frame), int(ref.tpos), lambda dst, t=ref.frame: store.copy_memory(t, dst)

    def pointer(self, ref: MemoryRef) -> np.ndarray:
        """[256] float32 object pointer of a selected frame."""
        return (self.cond if ref.cond else self.non_cond).pointer(ref.frame)

    def pending_memories(self) -> list:
        """[(frame, output)] temporary outputs whose memory is not encoded yet."""
        return [(t, out) for temp in (self.temp_non_cond, self.temp_cond) for t, out in temp.items()
                if out.memory is None]

    # -- changes --------------------------------------------------------------------------------------------
    def record_prompt(self, frame_idx: int, is_cond: bool, out: FrameOutput, points: PointPrompt | None = None,
                      mask: np.ndarray | None = None) -> None:
        """A prompt's result: the frame holds either clicks or a mask, and the output waits as temporary."""
        for prompts, value in ((self.points, points), (self.masks, mask)):
            if value is None:
                prompts.pop(frame_idx, None)
            else:
                prompts[frame_idx] = value
        self.temp(is_cond)[frame_idx] = out

    def clear_prompts(self, frame_idx: int) -> None:
        """Forget the prompts on a frame and their result; a committed conditioning output stays as an ordinary
        tracked output of that frame (which a later pass recomputes)."""
        self.points.pop(frame_idx, None)
        self.masks.pop(frame_idx, None)
        self.temp_cond.pop(frame_idx, None)
        self.temp_non_cond.pop(frame_idx, None)
        out = self.cond.get(frame_idx)
        if out is not None:
            self.cond.pop(frame_idx)
            self.non_cond.put(frame_idx, out)
            self.tracked.pop(frame_idx, None)

    def commit_temp(self, clear_radius: int | None = None) -> None:
        """Move temporary outputs (memories encoded) into the stores, as propagate_in_video_preflight.
        clear_radius: forget non-conditioning outputs within this many frames of each committed one
        (clear_non_cond_mem_around_input)."""
        for is_cond in (False, True):
            temp = self.temp(is_cond)
            for frame_idx, out in temp.items():
                (self.cond if is_cond else self.non_cond).put(frame_idx, out)
                if clear_radius is not None:
                    self.forget_non_cond_around(frame_idx, clear_radius)
            temp.clear()
        for frame_idx in self.cond:
            self.non_cond.pop(frame_idx)

    def record_tracked(self, frame_idx: int, out: FrameOutput | None, reverse: bool) -> None:
        """A frame was tracked: its new output (None for a conditioning frame, which keeps its own)."""
        if out is not None:
            self.non_cond.put(frame_idx, out)
        self.tracked[frame_idx] = reverse

    def forget_non_cond_around(self, frame_idx: int, radius: int) -> None:
        for t in range(frame_idx - radius, frame_idx + radius + 1):
            self.non_cond.pop(t)

    def forget_tracked(self, frame_idx: int) -> None:
        """Drop the bookkeeping of a frame the memory attention can no longer reach (streams)."""
        self.tracked.pop(frame_idx, None)
