"""The tracking state of one video: typed per-object records in place of the official dict of dicts.

Each object keeps what the official `inference_state` keeps per object index (sam2_video_predictor.py): its
prompts by frame, its conditioning outputs, its non-conditioning outputs (a preallocated FrameHistory), the
temporary outputs of clicks not yet propagated, and which frames were tracked in which direction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .outputs import FrameHistory


@dataclass
class PointPrompt:
    coords: np.ndarray  # [N, 2] float32, model pixels (x, y) in [0, image_size]
    labels: np.ndarray  # [N] int32: 1 fg, 0 bg, 2/3 box corners, -1 padding


@dataclass
class ObjectTrack:
    obj_id: int
    non_cond: FrameHistory  # non-conditioning outputs by frame
    points: dict = field(default_factory=dict)  # frame -> PointPrompt
    masks: dict = field(default_factory=dict)  # frame -> [S, S] float32 binary mask prompt
    cond: dict = field(default_factory=dict)  # frame -> FrameOutput (insertion order, as the official dict)
    temp_cond: dict = field(default_factory=dict)  # frame -> FrameOutput from clicks, before propagation
    temp_non_cond: dict = field(default_factory=dict)
    tracked: dict = field(default_factory=dict)  # frame -> reverse flag of the pass that last tracked it

    def temp(self, is_cond: bool) -> dict:
        return self.temp_cond if is_cond else self.temp_non_cond

    def latest_masks(self, frame_idx: int, is_cond: bool) -> np.ndarray | None:
        """The most recent mask logits [h, w] on a frame, in the official lookup order: the temporary output of
        this kind, then the conditioning output, then the non-conditioning one."""
        out = self.temp(is_cond).get(frame_idx) or self.cond.get(frame_idx)
        return out.masks if out is not None else self.non_cond.masks(frame_idx)

    def reset(self) -> None:
        for d in (self.points, self.masks, self.cond, self.temp_cond, self.temp_non_cond, self.tracked):
            d.clear()
        self.non_cond.clear()


@dataclass
class FrameFeatures:
    """Image-encoder outputs of one frame (backend tensors: numpy, or device arrays on a GPU backend)."""

    frame_idx: int
    vision_features: object  # [1, 256, F, F] float32, raw stride-16 features
    image_embed: object  # [1, 256, F, F] float32, vision_features + no_mem_embed
    high_res_feat0: object  # [1, 32, 4F, 4F] float32
    high_res_feat1: object  # [1, 64, 2F, 2F] float32


class InferenceState:
    """What `init_state` returns. Attributes (and, for code written against the official dict, the keys
    "num_frames", "video_height", "video_width", "obj_ids"):

    num_frames, video_height, video_width: the video; obj_ids: the object ids in order of first prompt.
    """

    _DICT_KEYS = ("num_frames", "video_height", "video_width", "obj_ids")

    def __init__(self, frames, offload_video_to_cpu: bool, offload_state_to_cpu: bool):
        self.frames = frames
        self.num_frames = frames.num_frames
        self.video_height = frames.height
        self.video_width = frames.width
        self.offload_video_to_cpu = offload_video_to_cpu
        self.offload_state_to_cpu = offload_state_to_cpu
        self.objects: list[ObjectTrack] = []
        self.features: FrameFeatures | None = None  # the last frame's, as the official cache
        self.bank = None  # MemoryBank, set by the predictor
        # Streams keep non-conditioning outputs in a ring of this many frames (None: one row per video frame)
        self.history_ring: int | None = None

    @property
    def obj_ids(self) -> list:
        return [o.obj_id for o in self.objects]

    def index_of(self, obj_id) -> int | None:
        for i, o in enumerate(self.objects):
            if o.obj_id == obj_id:
                return i
        return None

    def __getitem__(self, key):
        if key in self._DICT_KEYS:
            return getattr(self, key)
        raise KeyError(f"{key!r}: this state is typed; use its attributes ({', '.join(self._DICT_KEYS)}, objects)")

    def close(self) -> None:
        """Stop decoding frames (the prefetch thread) and drop the cached features."""
        self.frames.close()
        self.features = None
