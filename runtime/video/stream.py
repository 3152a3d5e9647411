"""Tracking frames that arrive one at a time (a camera, a decoder, a network feed), in bounded memory.

    stream = SAM2VideoStream.load("models/sam2.1_hiera_t")
    frame_idx, obj_ids, logits = stream.push(frame)             # [H, W, 3] uint8 RGB
    stream.add_new_points_or_box(obj_id=1, points=[[x, y]], labels=[1])   # on the current frame
    frame_idx, obj_ids, logits = stream.push(next_frame)        # logits [num_objects, 1, H, W] float32

It is the video predictor's state machine on a video that grows by one frame per push: prompts apply to the
current frame, and the next push encodes them into memory and tracks every object on the new frame, exactly as
`propagate_in_video(start_frame_idx=<prompted frame>)` would. So the same frames with the same prompts give
the same masks as offline forward propagation. Only what the memory attention can still reach is kept: the
conditioning (prompted) frames and a ring of the last frames' outputs, so memory does not grow with the stream.
"""

from __future__ import annotations

import numpy as np

from sam2_trt.core.errors import TrackingError
from ..prompts import check_image
from .predictor import SAM2VideoPredictor
from .state import InferenceState


class _LiveFrames:
    """The frame source of a stream: only the current frame is held."""

    source = "<stream>"

    def __init__(self, video_length: int | None):
        self.num_frames = video_length  # None: unbounded
        self.height = self.width = None
        self._index, self._frame = -1, None

    def set(self, index: int, frame: np.ndarray) -> None:
        self._index, self._frame = index, frame

    def get(self, index: int) -> np.ndarray:
        if index != self._index:
            raise TrackingError(f"frame {index} is no longer held by the stream (current frame: {self._index})")
        return self._frame

    def close(self) -> None:
        self._frame = None


class SAM2VideoStream:
    def __init__(self, predictor: SAM2VideoPredictor, video_length: int | None = None):
        """video_length: the number of frames when it is known in advance (the official pointer encoding is
        normalised by min(length, 16), so give it to match offline results on clips under 16 frames)."""
        self.predictor = predictor
        self._frames = _LiveFrames(video_length)
        self._state: InferenceState | None = None
        self._ring = max(16, predictor.rule.stride * predictor.num_maskmem + 1, predictor.rule.max_obj_ptrs)

    @classmethod
    def load(cls, model_dir, backend: str = "auto", device: str = "cuda", video_length: int | None = None,
             **predictor_options) -> "SAM2VideoStream":
        """Open an exported model; predictor_options are SAM2VideoPredictor.load's (non_overlap_masks, ...)."""
        return cls(SAM2VideoPredictor.load(model_dir, backend=backend, device=device, **predictor_options),
                   video_length)

    @property
    def frame_idx(self) -> int:
        """Index of the current (last pushed) frame, -1 before the first push."""
        return self._frames._index

    @property
    def obj_ids(self) -> list:
        return [] if self._state is None else self._state.obj_ids

    # -- frames -------------------------------------------------------------------------------------------
    def push(self, frame) -> tuple[int, list, np.ndarray]:
        """Track every object on a new frame ([H, W, 3] uint8 RGB, the size of the first frame).
        Returns (frame_idx, obj_ids, mask logits [num_objects, 1, H, W] float32)."""
        frame = check_image(frame, "frame")
        state, frames = self._state, self._frames
        if state is None:
            frames.height, frames.width = frame.shape[:2]
            state = InferenceState(frames, False, True)
            state.history_ring = self._ring  # even with a known length: memory must not grow with the stream
            state.bank = self.predictor.new_bank()
        elif frame.shape[:2] != (frames.height, frames.width):
            raise ValueError(f"frame {frames._index + 1} is {frame.shape[1]}x{frame.shape[0]} but the stream's frames "
                             f"are {frames.width}x{frames.height}; resize it or start a new stream")
        index = frames._index + 1
        if frames.num_frames is not None and index >= frames.num_frames:
            raise ValueError(f"the stream was opened with video_length={frames.num_frames} and got frame {index}; "
                             f"pass video_length=None for an unbounded stream")
        if state.objects:
            self.predictor.propagate_in_video_preflight(state)  # memories of the prompts on the current frame
        frames.set(index, frame)
        self._state = state
        if not state.objects:
            return index, [], np.zeros((0, 1, frames.height, frames.width), np.float32)
        p = self.predictor
        p._reserve_bank(state)
        low_res = p._track_frame(state, index, reverse=False)
        self._forget_before(index - self._ring)
        return index, state.obj_ids, p._video_logits(state, low_res)

    def _forget_before(self, frame_idx: int) -> None:
        """Drop bookkeeping of frames the memory attention can no longer reach (the ring holds their outputs)."""
        for obj in self._state.objects:
            obj.tracked.pop(frame_idx, None)

    # -- prompts on the current frame ---------------------------------------------------------------------
    def _require_frame(self) -> InferenceState:
        if self._state is None or self._frames._index < 0:
            raise TrackingError("push a frame before adding prompts: prompts apply to the current frame")
        return self._state

    def add_new_points_or_box(self, obj_id, points=None, labels=None, clear_old_points: bool = True,
                              normalize_coords: bool = True, box=None):
        """Clicks and/or a box for one object on the current frame (SAM2VideoPredictor.add_new_points_or_box).
        Returns (frame_idx, obj_ids, mask logits [num_objects, 1, H, W] float32) on the current frame."""
        state = self._require_frame()
        return self.predictor._add_points(state, self.frame_idx, obj_id, points, labels, clear_old_points,
                                          normalize_coords, box)

    def add_new_mask(self, obj_id, mask):
        """A binary mask [H, W] for one object on the current frame."""
        state = self._require_frame()
        return self.predictor._add_mask(state, self.frame_idx, obj_id, mask)

    def remove_object(self, obj_id, strict: bool = False) -> list:
        """Stop tracking an object; returns the remaining object ids."""
        if self._state is None:
            if strict:
                raise TrackingError(f"Cannot remove object id {obj_id!r} as it doesn't exist. All existing "
                                    f"object ids: [].")
            return []
        ids, _ = self.predictor.remove_object(self._state, obj_id, strict=strict, need_output=False)
        return ids

    def reset(self) -> None:
        """Forget every object (the stream goes on with the next push)."""
        if self._state is not None:
            self.predictor.reset_state(self._state)

