"""SAM2VideoPredictor on an exported model: the official per-object predictor's methods, arguments, return
values and semantics (sam2/sam2_video_predictor.py, Dec 2024), numpy in and out, no PyTorch.

What differs inside: all objects of a frame go through each graph in one call; frames are decoded on demand;
per-frame results live in typed, preallocated stores (state.py, outputs.py) and the memory-attention inputs in
a MemoryBank kept between frames (bank.py). Where the official code has a bug, the intended behaviour is
implemented and marked "official bug" below.
"""

from __future__ import annotations

import numpy as np

from .. import ops
from sam2_trt.core.errors import TrackingError
from ..mask_selection import StabilityFallback
from ..model import SAM2Model
from ..processing import select_processing
from .bank import MemoryBank
from .frames import open_video
from .memory_selection import MemoryRule, select_memories
from .outputs import FrameHistory, FrameOutput, next_serial
from .prompts import check_frame_idx, check_obj_id, mask_prompt, merge_points, point_prompt
from .state import InferenceState, ObjectTrack
from .tracker import NO_OBJ_SCORE, FrameTracker, HeadOutputs

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
        self.apply_postprocessing = apply_postprocessing
        self.fill_hole_area = (post["fill_hole_area"] if apply_postprocessing else 0) \
            if fill_hole_area is None else fill_hole_area
        self.non_overlap_masks = non_overlap_masks
        self.clear_non_cond_mem_around_input = clear_non_cond_mem_around_input
        self.add_all_frames_to_correct_as_cond = add_all_frames_to_correct_as_cond
        self.binarize_mask_from_pts_for_mem_enc = bool(
            post["binarize_mask_from_pts_for_mem_enc"] if apply_postprocessing
            else model.meta.flags["binarize_mask_from_pts_for_mem_enc"])
        stability = (StabilityFallback(post["dynamic_multimask_stability_delta"],
                                       post["dynamic_multimask_stability_thresh"])
                     if apply_postprocessing and post["dynamic_multimask_via_stability"] else None)
        self.processing = select_processing(model.backend)
        self.tracker = FrameTracker(model, self.processing, stability)
        self.rule = MemoryRule.from_flags(model.meta.flags)
        self.num_maskmem = self.rule.num_maskmem

    @classmethod
    def load(cls, model_dir, backend: str = "auto", device: str = "cuda", apply_postprocessing: bool = True,
             fill_hole_area: int | None = None, non_overlap_masks: bool = False,
             clear_non_cond_mem_around_input: bool = False, add_all_frames_to_correct_as_cond: bool = False,
             stream=None, precision: str | None = None) -> "SAM2VideoPredictor":
        """Open an exported model directory; backend "auto" picks TensorRT, ONNX Runtime CUDA, then CPU;
        `precision` picks the TensorRT engines (default: the ones built, else fp16, built on first use)."""
        model = SAM2Model.load(model_dir, backend=backend, device=device, stream=stream, precision=precision)
        return cls(model, apply_postprocessing, fill_hole_area, non_overlap_masks,
                   clear_non_cond_mem_around_input, add_all_frames_to_correct_as_cond)

    @property
    def backend_name(self) -> str:
        return self.model.backend.name

    # -- state --------------------------------------------------------------------------------------------
    def init_state(self, video_path, offload_video_to_cpu: bool = False, offload_state_to_cpu: bool = False,
                   async_loading_frames: bool = False) -> InferenceState:
        """Open a video (a folder of <int>.jpg frames, a video file, or a sequence of HxWx3 uint8 frames).

        Frames are always decoded on demand with a small prefetch window (so async_loading_frames changes
        nothing and offload_video_to_cpu is always true in effect); per-frame results are kept on the host
        (offload_state_to_cpu) by this version's backends. The first frame is encoded now, as the official."""
        frames = open_video(video_path)
        try:
            state = InferenceState(frames, offload_video_to_cpu, offload_state_to_cpu)
            state.bank = self.new_bank()
            self._features(state, 0)
        except BaseException:
            frames.close()
            raise
        return state

    def reset_state(self, inference_state: InferenceState) -> None:
        """Remove every object and all their prompts and results."""
        inference_state.objects.clear()
        inference_state.bank.clear()

    def new_bank(self) -> MemoryBank:
        """The bank on the backend's device when it runs on CUDA and can take device arrays (only the frame that
        enters the window is copied in each frame), else on the host."""
        meta = self.model.meta
        dims = (meta.flags["mem_dim"], meta.feature_size, meta.flags["hidden_dim"])
        if self.processing.name == "cuda":  # CUDA kernels can run, so device arrays can be made here
            from .device_bank import CudaMirror, MirroredMemoryBank

            return MirroredMemoryBank(*dims, CudaMirror(getattr(self.model.backend, "stream", None)))
        return MemoryBank(*dims)

    def _features(self, state: InferenceState, frame_idx: int):
        if state.features is None or state.features.frame_idx != frame_idx:
            state.features = self.tracker.features(frame_idx, state.frames.get(frame_idx))
        return state.features

    def _new_object(self, state: InferenceState, obj_id: int) -> ObjectTrack:
        m = self.model.meta
        ring = state.history_ring
        history = FrameHistory(None if ring else state.num_frames, self.model.low_res_size, m.feature_size,
                               m.flags["mem_dim"], m.flags["hidden_dim"], ring=ring or 16)
        return ObjectTrack(obj_id, history)

    def _object(self, state: InferenceState, obj_id) -> tuple[int, ObjectTrack, bool]:
        """(index, track, is_new) for obj_id; a new track is only added to the state by the caller's commit."""
        obj_id = check_obj_id(obj_id)
        idx = state.index_of(obj_id)
        if idx is not None:
            return idx, state.objects[idx], False
        return len(state.objects), self._new_object(state, obj_id), True

    def _existing(self, state: InferenceState, obj_id) -> tuple[int, ObjectTrack]:
        idx = state.index_of(check_obj_id(obj_id))
        if idx is None:
            raise TrackingError(f"object id {obj_id!r} does not exist; existing object ids: {state.obj_ids}")
        return idx, state.objects[idx]

    # -- prompts ------------------------------------------------------------------------------------------
    def add_new_points_or_box(self, inference_state: InferenceState, frame_idx, obj_id, points=None,
                              labels=None, clear_old_points: bool = True, normalize_coords: bool = True,
                              box=None):
        """Clicks (points [N, 2] (x, y), labels [N]: 1 positive, 0 negative) and/or a box [4] XYXY for one
        object on one frame, in video pixels (or [0, 1] with normalize_coords=False).
        Returns (frame_idx, obj_ids, mask logits [num_objects, 1, H, W] float32) on that frame."""
        frame_idx = check_frame_idx(frame_idx, inference_state.num_frames)
        return self._add_points(inference_state, frame_idx, obj_id, points, labels, clear_old_points,
                                normalize_coords, box)

    def _add_points(self, state: InferenceState, frame_idx: int, obj_id, points, labels, clear_old_points,
                    normalize_coords, box):
        new = point_prompt(points, labels, box, clear_old_points, normalize_coords,
                           (state.video_height, state.video_width), self.image_size)
        idx, obj, is_new = self._object(state, obj_id)
        prompt = merge_points(None if clear_old_points else obj.points.get(frame_idx), new)
        is_init = frame_idx not in obj.tracked
        reverse = False if is_init else obj.tracked[frame_idx]
        is_cond = is_init or self.add_all_frames_to_correct_as_cond
        prev = obj.latest_masks(frame_idx, is_cond)
        prev_logits = None if prev is None else np.clip(prev, -32.0, 32.0)[None, None]

        feats = self._features(state, frame_idx)
        if is_init:
            embed = feats.image_embed
        else:
            embed = self.tracker.condition(feats, self._fill_bank(state, [idx], frame_idx, reverse))
        heads = self.tracker.decode(feats, embed, prompt.coords[None], prompt.labels[None], prev_logits,
                                    self.tracker.use_multimask(is_init, len(prompt.labels)))
        return self._store_prompt_result(state, obj, is_new, frame_idx, is_cond, self._output(heads)[0],
                                         points=prompt)

    def add_new_points(self, *args, **kwargs):
        """Deprecated in the official API: use add_new_points_or_box."""
        return self.add_new_points_or_box(*args, **kwargs)

    def add_new_mask(self, inference_state: InferenceState, frame_idx, obj_id, mask):
        """A binary mask [H, W] (video size, or image_size^2) for one object on one frame.
        Returns (frame_idx, obj_ids, mask logits [num_objects, 1, H, W] float32) on that frame."""
        frame_idx = check_frame_idx(frame_idx, inference_state.num_frames)
        return self._add_mask(inference_state, frame_idx, obj_id, mask)

    def _add_mask(self, state: InferenceState, frame_idx: int, obj_id, mask):
        m = mask_prompt(mask, (state.video_height, state.video_width), self.image_size)
        idx, obj, is_new = self._object(state, obj_id)
        is_cond = frame_idx not in obj.tracked or self.add_all_frames_to_correct_as_cond
        out = self._output(self.tracker.mask_as_output(self._features(state, frame_idx), m))[0]
        return self._store_prompt_result(state, obj, is_new, frame_idx, is_cond, out, mask=m)

    def _store_prompt_result(self, state: InferenceState, obj: ObjectTrack, is_new: bool, frame_idx: int,
                             is_cond: bool, out: FrameOutput, points=None, mask=None):
        """The commit of a prompt call, after everything that can fail: a frame holds either clicks or a mask,
        and its result waits in the temporary outputs until propagation encodes its memory."""
        if is_new:
            state.objects.append(obj)
        for prompts, value in ((obj.points, points), (obj.masks, mask)):
            if value is None:
                prompts.pop(frame_idx, None)
            else:
                prompts[frame_idx] = value
        obj.temp(is_cond)[frame_idx] = out
        return frame_idx, state.obj_ids, self._consolidated(state, frame_idx, is_cond)

    def clear_all_prompts_in_frame(self, inference_state: InferenceState, frame_idx, obj_id,
                                   need_output: bool = True):
        """Remove one object's prompts (and their result) on a frame; a conditioning frame becomes an ordinary
        tracked frame. Returns (frame_idx, obj_ids, mask logits [O, 1, H, W]) unless need_output is False."""
        state = inference_state
        frame_idx = check_frame_idx(frame_idx, state.num_frames)
        _, obj = self._existing(state, obj_id)
        self._clear_prompts(obj, frame_idx)
        if not need_output:
            return None
        is_cond = any(frame_idx in o.temp_cond for o in state.objects)
        return frame_idx, state.obj_ids, self._consolidated(state, frame_idx, is_cond)

    @staticmethod
    def _clear_prompts(obj: ObjectTrack, frame_idx: int) -> None:
        obj.points.pop(frame_idx, None)
        obj.masks.pop(frame_idx, None)
        obj.temp_cond.pop(frame_idx, None)
        obj.temp_non_cond.pop(frame_idx, None)
        out = obj.cond.pop(frame_idx, None)
        if out is not None:  # downgraded to a non-conditioning output
            obj.non_cond.put(frame_idx, out)
            obj.tracked.pop(frame_idx, None)

    def remove_object(self, inference_state: InferenceState, obj_id, strict: bool = False,
                      need_output: bool = True):
        """Forget an object. Returns (remaining obj_ids, [(frame_idx, mask logits [O, 1, H, W]) for each frame
        where it had prompts]). An unknown id is ignored unless strict."""
        state = inference_state
        idx = state.index_of(check_obj_id(obj_id))
        if idx is None:
            if not strict:
                return state.obj_ids, []
            raise TrackingError(f"Cannot remove object id {obj_id!r} as it doesn't exist. All existing object "
                                f"ids: {state.obj_ids}.")
        if len(state.objects) == 1:
            self.reset_state(state)
            return state.obj_ids, []
        obj = state.objects[idx]
        prompted = sorted(set(obj.points) | set(obj.masks))
        for frame_idx in prompted:
            self._clear_prompts(obj, frame_idx)
        del state.objects[idx]
        state.bank.drop_row(idx)
        updated = []
        if need_output:
            for frame_idx in prompted:
                is_cond = any(frame_idx in o.temp_cond for o in state.objects)
                updated.append((frame_idx, self._consolidated(state, frame_idx, is_cond)))
        return state.obj_ids, updated

    # -- propagation --------------------------------------------------------------------------------------
    def propagate_in_video_preflight(self, inference_state: InferenceState) -> None:
        """Encode the memories of frames that received prompts and make them part of the tracking state."""
        state = inference_state
        if not state.objects:
            raise TrackingError("No input points or masks are provided for any object; please add inputs first "
                                "(add_new_points_or_box or add_new_mask).")
        for obj in state.objects:
            if not obj.cond and not obj.temp_cond:
                raise TrackingError(f"No input points or masks are provided for object id {obj.obj_id}; please "
                                    f"add inputs first.")
        self._encode_prompted_memories(state)
        for obj in state.objects:
            for is_cond in (False, True):
                temp = obj.temp(is_cond)
                for frame_idx, out in temp.items():
                    if is_cond:
                        obj.cond[frame_idx] = out
                    else:
                        obj.non_cond.put(frame_idx, out)
                    if self.clear_non_cond_mem_around_input:
                        self._clear_non_cond_mem_around_input(obj, frame_idx)
                temp.clear()
            for frame_idx in obj.cond:
                obj.non_cond.pop(frame_idx)

    def _encode_prompted_memories(self, state: InferenceState) -> None:
        """Memories of the temporary outputs, one memory_encoder call per frame for all its objects."""
        pending = {}
        for obj in state.objects:
            for temp in (obj.temp_non_cond, obj.temp_cond):
                for frame_idx, out in temp.items():
                    if out.memory is None:
                        pending.setdefault(frame_idx, []).append(out)
        for frame_idx, outs in pending.items():
            feats = self._features(state, frame_idx)
            memory = self.tracker.encode_memory(feats, np.stack([o.masks for o in outs])[:, None],
                                                self.binarize_mask_from_pts_for_mem_enc,
                                                np.array([o.score for o in outs], np.float32))
            for o, mem in zip(outs, memory):
                o.memory = mem

    def _clear_non_cond_mem_around_input(self, obj: ObjectTrack, frame_idx: int) -> None:
        """Official bug: the official predictor calls a method that does not exist (facebookresearch/sam2#571).
        This is the intended one, per object, as in sam2_video_predictor_legacy.py: drop the non-conditioning
        outputs within stride * num_maskmem frames of the prompted frame (which may hold outdated masks)."""
        r = self.rule.stride * self.num_maskmem
        for t in range(frame_idx - r, frame_idx + r + 1):
            obj.non_cond.pop(t)

    def propagate_in_video(self, inference_state: InferenceState, start_frame_idx=None,
                           max_frame_num_to_track=None, reverse: bool = False):
        """Track every object from start_frame_idx (default: the earliest prompted frame) over
        max_frame_num_to_track frames (default: all), forward or in reverse.
        Yields (frame_idx, obj_ids, mask logits [num_objects, 1, H, W] float32) per frame."""
        state = inference_state
        if start_frame_idx is not None:
            start_frame_idx = check_frame_idx(start_frame_idx, state.num_frames, "start_frame_idx")
        if max_frame_num_to_track is not None and (isinstance(max_frame_num_to_track, bool) or not isinstance(
                max_frame_num_to_track, (int, np.integer)) or max_frame_num_to_track < 0):
            raise ValueError(f"max_frame_num_to_track must be a non-negative int or None, got "
                             f"{max_frame_num_to_track!r}")
        self.propagate_in_video_preflight(state)
        num_frames = state.num_frames
        if start_frame_idx is None:
            start_frame_idx = min(t for o in state.objects for t in o.cond)
        if max_frame_num_to_track is None:
            max_frame_num_to_track = num_frames
        if reverse:
            end = max(start_frame_idx - max_frame_num_to_track, 0)
            order = range(start_frame_idx, end - 1, -1) if start_frame_idx > 0 else range(0)
        else:
            end = min(start_frame_idx + max_frame_num_to_track, num_frames - 1)
            order = range(start_frame_idx, end + 1)
        self._reserve_bank(state)
        for frame_idx in order:
            low_res = self._track_frame(state, frame_idx, reverse)
            yield frame_idx, state.obj_ids, self._video_logits(state, low_res)

    def _track_frame(self, state: InferenceState, frame_idx: int, reverse: bool) -> np.ndarray:
        """One frame for every object (objects prompted on it reuse their output): [O, 1, h, w] low-res."""
        objects = state.objects
        rows = [i for i, o in enumerate(objects) if frame_idx not in o.cond]
        computed = {}
        if rows:
            feats = self._features(state, frame_idx)
            bank_inputs = self._fill_bank(state, rows, frame_idx, reverse)
            embed = self.tracker.condition(feats, bank_inputs)
            n = len(rows)
            heads = self.tracker.decode(feats, embed, np.zeros((n, 1, 2), np.float32),
                                        -np.ones((n, 1), np.int32), None, self.tracker.use_multimask(False, 0))
            memory = self.tracker.encode_memory(feats, heads.low_res, False, heads.scores)
            for out, i, mem in zip(self._output(heads), rows, memory):
                out.memory = mem
                objects[i].non_cond.put(frame_idx, out)
                computed[i] = out  # yield its float32 masks, not their float16 copy in the history
        for obj in objects:
            if frame_idx in obj.cond and self.clear_non_cond_mem_around_input:
                self._clear_non_cond_mem_around_input(obj, frame_idx)
            obj.tracked[frame_idx] = reverse
        return np.stack([(computed[i] if i in computed else o.cond[frame_idx]).masks
                         for i, o in enumerate(objects)])[:, None]

    # -- helpers ------------------------------------------------------------------------------------------
    def _output(self, heads: HeadOutputs) -> list:
        """FrameOutputs (memory still None) from decoder results, after hole filling as the official
        _run_single_frame_inference (which encodes memories from the unfilled masks)."""
        masks = heads.low_res
        if self.fill_hole_area > 0:
            masks = self.processing.fill_holes_in_mask_scores(masks, self.fill_hole_area)
        return [FrameOutput(masks[k, 0], heads.pointers[k], float(heads.scores[k]), None, next_serial())
                for k in range(masks.shape[0])]

    def _reserve_bank(self, state: InferenceState) -> None:
        """Size the bank for steady-state tracking at once: all conditioning frames plus the recent window."""
        n_cond = max((len(o.cond) for o in state.objects), default=1)
        max_ptrs = min(state.num_frames, self.rule.max_obj_ptrs) if state.num_frames else self.rule.max_obj_ptrs
        state.bank.reserve(len(state.objects), n_cond + self.num_maskmem - 1,
                           (n_cond + max_ptrs - 1) if self.rule.use_obj_ptrs else 0)

    def _fill_bank(self, state: InferenceState, rows: list, frame_idx: int, reverse: bool) -> dict:
        """Fill the memory bank rows of these objects for frame_idx; returns the memory_attention inputs."""
        selections = []
        for i in rows:
            obj = state.objects[i]
            selections.append(select_memories(self.rule, frame_idx, reverse, list(obj.cond),
                                              obj.non_cond.__contains__, state.num_frames))
        bank = state.bank
        bank.reserve(len(state.objects), max(len(m) for m, _ in selections), max(len(p) for _, p in selections))
        for i, (mems, ptrs) in zip(rows, selections):
            obj = state.objects[i]
            memories = [self._memory_source(obj, ref) for ref in mems]
            pointers = [(obj.cond[ref.frame].pointer if ref.cond else obj.non_cond.pointer(ref.frame), ref.tpos)
                        for ref in ptrs]
            bank.fill_row(i, memories, pointers)
        return bank.inputs(rows, *bank.used_extent(rows))

    @staticmethod
    def _memory_source(obj: ObjectTrack, ref):
        if ref.cond:
            out = obj.cond[ref.frame]
            return out.serial, int(ref.tpos), lambda dst, m=out.memory: np.copyto(dst, m)
        return (obj.non_cond.serial(ref.frame), int(ref.tpos),
                lambda dst, t=ref.frame: obj.non_cond.copy_memory(t, dst))

    def _consolidated(self, state: InferenceState, frame_idx: int, is_cond: bool) -> np.ndarray:
        """Every object's latest mask on a frame at video resolution ([O, 1, H, W] float32; -1024 for objects
        without one), as _consolidate_temp_output_across_obj(consolidate_at_video_res=True)."""
        h, w = state.video_height, state.video_width
        found = [(i, o.latest_masks(frame_idx, is_cond)) for i, o in enumerate(state.objects)]
        found = [(i, masks) for i, masks in found if masks is not None]
        video = np.full((len(state.objects), 1, h, w), NO_OBJ_SCORE, np.float32)
        if found:
            low = np.stack([masks for _, masks in found])[:, None].astype(np.float32)
            video[[i for i, _ in found]] = self.processing.video_mask_logits(low, (h, w), False)
        if self.non_overlap_masks:
            video = ops.apply_non_overlapping_constraints(video)
        return video

    def _video_logits(self, state: InferenceState, low_res: np.ndarray) -> np.ndarray:
        return self.processing.video_mask_logits(low_res, (state.video_height, state.video_width),
                                                 self.non_overlap_masks)
