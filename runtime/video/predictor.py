"""SAM2VideoPredictor on an exported model: the official per-object predictor's methods, arguments, return
values and semantics (sam2/sam2_video_predictor.py, Dec 2024), numpy in and out, no PyTorch.

A facade: it checks the official arguments and hands each call to the video's TrackingSession (session.py),
which owns the state and does the work. What differs inside: all objects of a frame go through each graph in
one call; frames are decoded on demand; per-frame results live in typed, preallocated stores and the
memory-attention inputs in a MemoryBank kept between frames. Where the official code has a bug, the intended
behaviour is implemented and marked "official bug".
"""

from __future__ import annotations

import numpy as np

from sam2_trt.core.errors import TrackingError

from ..mask_selection import StabilityFallback
from ..model import SAM2Model
from .frames import open_video
from .prompts import check_frame_idx, check_obj_id, mask_prompt, point_prompt
from .session import TrackingOptions, TrackingSession
from .tracker import FrameTracker


class SAM2VideoPredictor:
    def __init__(self, model: SAM2Model, apply_postprocessing: bool = True, fill_hole_area: int | None = None,
                 non_overlap_masks: bool = False, clear_non_cond_mem_around_input: bool = False,
                 add_all_frames_to_correct_as_cond: bool = False):
        """
        model: an exported model opened on a backend (see `load`).
        apply_postprocessing: as build_sam2_video_predictor's (default on): hole filling of fill_hole_area,
            binarized masks for memories from clicks, stability-based multimask fallback.
        fill_hole_area: fill background holes of at most this many low-res pixels in the output masks
            (default: 8 with apply_postprocessing, else 0).
        non_overlap_masks: at each pixel only the highest-scoring object keeps a positive logit in the output.
        clear_non_cond_mem_around_input: after a click on a frame, forget that object's non-conditioning
            memories within num_maskmem frames of it (official bug: this raises AttributeError there).
        add_all_frames_to_correct_as_cond: frames that receive correction clicks become conditioning frames.
        """
        post = model.meta.raw["official_postprocessing"]
        self.model = model
        self.image_size = model.image_size
        self.options = TrackingOptions(
            fill_hole_area=(post["fill_hole_area"] if apply_postprocessing else 0)
            if fill_hole_area is None else fill_hole_area,
            non_overlap_masks=non_overlap_masks,
            clear_non_cond_mem_around_input=clear_non_cond_mem_around_input,
            add_all_frames_to_correct_as_cond=add_all_frames_to_correct_as_cond,
            binarize_mask_from_pts_for_mem_enc=bool(post["binarize_mask_from_pts_for_mem_enc"] if apply_postprocessing
                                                    else model.meta.flags["binarize_mask_from_pts_for_mem_enc"]))
        stability = (StabilityFallback(post["dynamic_multimask_stability_delta"],
                                       post["dynamic_multimask_stability_thresh"])
                     if apply_postprocessing and post["dynamic_multimask_via_stability"] else None)
        self.tracker = FrameTracker(model, stability)

    @classmethod
    def load(cls, model_dir, backend: str = "auto", device: str = "cuda", apply_postprocessing: bool = True,
             fill_hole_area: int | None = None, non_overlap_masks: bool = False,
             clear_non_cond_mem_around_input: bool = False, add_all_frames_to_correct_as_cond: bool = False,
             stream=None, precision: str | None = None) -> "SAM2VideoPredictor":
        """Open an exported model directory; backend "auto" picks TensorRT, ONNX Runtime CUDA, then CPU;
        `precision` picks the TensorRT engines (default: the ones built, else fp16; see sam2_trt.engines)."""
        model = SAM2Model.load(model_dir, backend=backend, device=device, stream=stream, precision=precision)
        return cls(model, apply_postprocessing, fill_hole_area, non_overlap_masks,
                   clear_non_cond_mem_around_input, add_all_frames_to_correct_as_cond)

    @property
    def backend_name(self) -> str:
        return self.model.backend.name

    def _session(self, inference_state) -> TrackingSession:
        """The state as a session this predictor may drive (one made by init_state of the same model)."""
        if not isinstance(inference_state, TrackingSession):
            raise TypeError(f"inference_state must be the state init_state returned, not "
                            f"{type(inference_state).__name__}")
        inference_state.check_driver(self.tracker, self.options)
        return inference_state

    # -- state --------------------------------------------------------------------------------------------
    def init_state(self, video_path, offload_video_to_cpu: bool = False, offload_state_to_cpu: bool = False,
                   async_loading_frames: bool = False) -> TrackingSession:
        """Open a video (a folder of <int>.jpg frames, a video file, or a sequence of HxWx3 uint8 frames).

        Frames are always decoded on demand with a small prefetch window (so async_loading_frames changes
        nothing and offload_video_to_cpu is always true in effect); per-frame results are kept on the host
        (offload_state_to_cpu) by this version's backends. The first frame is encoded now, as the official."""
        frames = open_video(video_path)
        try:
            session = TrackingSession(self.tracker, self.options, frames,
                                      offload_video_to_cpu=offload_video_to_cpu,
                                      offload_state_to_cpu=offload_state_to_cpu)
            session.features(0)
        except BaseException:
            frames.close()
            raise
        return session

    def reset_state(self, inference_state: TrackingSession) -> None:
        """Remove every object and all their prompts and results."""
        self._session(inference_state).reset()

    # -- prompts ------------------------------------------------------------------------------------------
    def add_new_points_or_box(self, inference_state: TrackingSession, frame_idx, obj_id, points=None,
                              labels=None, clear_old_points: bool = True, normalize_coords: bool = True,
                              box=None):
        """Clicks (points [N, 2] (x, y), labels [N]: 1 positive, 0 negative) and/or a box [4] XYXY for one
        object on one frame, in video pixels (or [0, 1] with normalize_coords=False).
        Returns (frame_idx, obj_ids, mask logits [num_objects, 1, H, W] float32) on that frame."""
        session = self._session(inference_state)
        frame_idx = check_frame_idx(frame_idx, session.num_frames)
        prompt = point_prompt(points, labels, box, clear_old_points, normalize_coords,
                              (session.video_height, session.video_width), self.image_size)
        masks = session.add_points(frame_idx, obj_id, prompt, clear_old_points)
        return frame_idx, session.obj_ids, masks

    def add_new_points(self, *args, **kwargs):
        """Deprecated in the official API: use add_new_points_or_box."""
        return self.add_new_points_or_box(*args, **kwargs)

    def add_new_mask(self, inference_state: TrackingSession, frame_idx, obj_id, mask):
        """A binary mask [H, W] (video size, or image_size^2) for one object on one frame.
        Returns (frame_idx, obj_ids, mask logits [num_objects, 1, H, W] float32) on that frame."""
        session = self._session(inference_state)
        frame_idx = check_frame_idx(frame_idx, session.num_frames)
        m = mask_prompt(mask, (session.video_height, session.video_width), self.image_size)
        masks = session.add_mask(frame_idx, obj_id, m)
        return frame_idx, session.obj_ids, masks  # the ids after the call: a new object is among them

    def clear_all_prompts_in_frame(self, inference_state: TrackingSession, frame_idx, obj_id,
                                   need_output: bool = True):
        """Remove one object's prompts (and their result) on a frame; a conditioning frame becomes an ordinary
        tracked frame. Returns (frame_idx, obj_ids, mask logits [O, 1, H, W]) unless need_output is False."""
        session = self._session(inference_state)
        frame_idx = check_frame_idx(frame_idx, session.num_frames)
        session.clear_prompts(frame_idx, obj_id)
        return (frame_idx, session.obj_ids, session.frame_masks(frame_idx)) if need_output else None

    def remove_object(self, inference_state: TrackingSession, obj_id, strict: bool = False,
                      need_output: bool = True):
        """Forget an object. Returns (remaining obj_ids, [(frame_idx, mask logits [O, 1, H, W]) for each frame
        where it had prompts]). An unknown id is ignored unless strict."""
        session = self._session(inference_state)
        if session.index_of(check_obj_id(obj_id)) is None:
            if not strict:
                return session.obj_ids, []
            raise TrackingError(f"Cannot remove object id {obj_id!r} as it doesn't exist. All existing object "
                                f"ids: {session.obj_ids}.")
        updated = session.remove_object(obj_id, need_output)
        return session.obj_ids, updated

    # -- propagation --------------------------------------------------------------------------------------
    def propagate_in_video_preflight(self, inference_state: TrackingSession) -> None:
        """Encode the memories of frames that received prompts and make them part of the tracking state."""
        self._session(inference_state).consolidate()

    def propagate_in_video(self, inference_state: TrackingSession, start_frame_idx=None,
                           max_frame_num_to_track=None, reverse: bool = False):
        """Track every object from start_frame_idx (default: the earliest prompted frame) over
        max_frame_num_to_track frames (default: all), forward or in reverse.
        Yields (frame_idx, obj_ids, mask logits [num_objects, 1, H, W] float32) per frame."""
        session = self._session(inference_state)
        if start_frame_idx is not None:
            start_frame_idx = check_frame_idx(start_frame_idx, session.num_frames, "start_frame_idx")
        if max_frame_num_to_track is not None and (isinstance(max_frame_num_to_track, bool) or not isinstance(
                max_frame_num_to_track, (int, np.integer)) or max_frame_num_to_track < 0):
            raise ValueError(f"max_frame_num_to_track must be a non-negative int or None, got "
                             f"{max_frame_num_to_track!r}")
        session.consolidate()
        token = session.begin_propagation()  # a change of prompts or objects meanwhile stops this generator
        for frame_idx in session.propagation_order(start_frame_idx, max_frame_num_to_track, reverse):
            masks = session.track_frame(frame_idx, reverse, propagation=token)
            yield frame_idx, session.obj_ids, masks
