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

import numbers

import numpy as np

from sam2_trt.core.errors import TrackingError

from ..prompts import check_image
from .predictor import SAM2VideoPredictor
from .prompts import mask_prompt, point_prompt
from .session import TrackingSession


class _LiveFrames:
    """The frame source of a stream: only the current frame is held."""

    source = "<stream>"

    def __init__(self, video_length: int | None):
        self.num_frames = video_length  # None: unbounded
        self.height = self.width = None
        self.index, self._frame = -1, None

    def set(self, index: int, frame: np.ndarray) -> None:
        self.index, self._frame = index, frame

    def get(self, index: int) -> np.ndarray:
        if index != self.index:
            raise TrackingError(f"frame {index} is no longer held by the stream (current frame: {self.index})")
        return self._frame

    def close(self) -> None:
        self._frame = None


class SAM2VideoStream:
    def __init__(self, predictor: SAM2VideoPredictor, video_length: int | None = None):
        """video_length: the number of frames when it is known in advance (the official pointer encoding is
        normalised by min(length, 16), so give it to match offline results on clips under 16 frames)."""
        if video_length is not None:
            if isinstance(video_length, bool) or not isinstance(video_length, numbers.Integral):
                raise TypeError(f"video_length must be an int (the number of frames) or None for an unbounded "
                                f"stream, not {type(video_length).__name__} {video_length!r}")
            if video_length < 1:
                raise ValueError(f"video_length must be >= 1 (the number of frames), got {video_length}; pass None "
                                 f"for an unbounded stream")
            video_length = int(video_length)
        self.predictor = predictor
        self._frames = _LiveFrames(video_length)
        self._session: TrackingSession | None = None  # made at the first push, when the frame size is known
        rule = predictor.tracker.rule
        self._ring = max(16, rule.stride * rule.num_maskmem + 1, rule.max_obj_ptrs)

    @classmethod
    def load(cls, model_dir, backend: str = "auto", device: str = "cuda", video_length: int | None = None,
             **predictor_options) -> "SAM2VideoStream":
        """Open an exported model; predictor_options are SAM2VideoPredictor.load's (non_overlap_masks, ...)."""
        return cls(SAM2VideoPredictor.load(model_dir, backend=backend, device=device, **predictor_options),
                   video_length)

    @property
    def frame_idx(self) -> int:
        """Index of the current (last pushed) frame, -1 before the first push."""
        return self._frames.index

    @property
    def obj_ids(self) -> list:
        return [] if self._session is None else self._session.obj_ids

    @property
    def session(self) -> TrackingSession | None:
        """The tracking session behind the stream (None before the first push)."""
        return self._session

    # -- frames -------------------------------------------------------------------------------------------
    def push(self, frame) -> tuple[int, list, np.ndarray]:
        """Track every object on a new frame ([H, W, 3] uint8 RGB, the size of the first frame).
        Returns (frame_idx, obj_ids, mask logits [num_objects, 1, H, W] float32)."""
        frame = check_image(frame, "frame")
        session, frames = self._session, self._frames
        if session is None:
            frames.height, frames.width = frame.shape[:2]
            # a ring even with a known length: memory must not grow with the stream
            session = TrackingSession(self.predictor.tracker, self.predictor.options, frames,
                                      history_ring=self._ring, offload_state_to_cpu=True)
        elif frame.shape[:2] != (frames.height, frames.width):
            raise ValueError(f"frame {frames.index + 1} is {frame.shape[1]}x{frame.shape[0]} but the stream's frames "
                             f"are {frames.width}x{frames.height}; resize it or start a new stream")
        index = frames.index + 1
        if frames.num_frames is not None and index >= frames.num_frames:
            raise ValueError(f"the stream was opened with video_length={frames.num_frames} and got frame {index}; "
                             f"pass video_length=None for an unbounded stream")
        if session.objects:
            session.consolidate()  # memories of the prompts on the current frame, before it is replaced
        frames.set(index, frame)
        self._session = session
        if not session.objects:
            return index, [], np.zeros((0, 1, frames.height, frames.width), np.float32)
        masks = session.track_frame(index, reverse=False)
        session.forget_before(index - self._ring)
        return index, session.obj_ids, masks

    # -- prompts on the current frame ---------------------------------------------------------------------
    def _require_frame(self) -> TrackingSession:
        if self._session is None or self._frames.index < 0:
            raise TrackingError("push a frame before adding prompts: prompts apply to the current frame")
        return self._session

    def add_new_points_or_box(self, obj_id, points=None, labels=None, clear_old_points: bool = True,
                              normalize_coords: bool = True, box=None):
        """Clicks and/or a box for one object on the current frame (SAM2VideoPredictor.add_new_points_or_box).
        Returns (frame_idx, obj_ids, mask logits [num_objects, 1, H, W] float32) on the current frame."""
        session = self._require_frame()
        prompt = point_prompt(points, labels, box, clear_old_points, normalize_coords,
                              (session.video_height, session.video_width), self.predictor.image_size)
        masks = session.add_points(self.frame_idx, obj_id, prompt, clear_old_points)
        return self.frame_idx, session.obj_ids, masks

    def add_new_mask(self, obj_id, mask):
        """A binary mask [H, W] for one object on the current frame."""
        session = self._require_frame()
        m = mask_prompt(mask, (session.video_height, session.video_width), self.predictor.image_size)
        masks = session.add_mask(self.frame_idx, obj_id, m)  # first: a new object joins obj_ids here
        return self.frame_idx, session.obj_ids, masks

    def remove_object(self, obj_id, strict: bool = False) -> list:
        """Stop tracking an object; returns the remaining object ids."""
        if self._session is None:
            if strict:
                raise TrackingError(f"Cannot remove object id {obj_id!r} as it doesn't exist. All existing "
                                    f"object ids: [].")
            return []
        ids, _ = self.predictor.remove_object(self._session, obj_id, strict=strict, need_output=False)
        return ids

    def reset(self) -> None:
        """Forget every object (the stream goes on with the next push)."""
        if self._session is not None:
            self._session.reset()
