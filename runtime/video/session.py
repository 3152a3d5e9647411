"""A tracking session: one video's state, its memory bank and the operations that change them.

The official predictor keeps a video's state in a dict of dicts (`inference_state`) that its methods edit in
place. Here one object owns it all: the frames, every object (objects.py: prompts and the lifecycle of their
results), the memory bank, the last frame's features. Its public methods are the operations of SAM 2 video
tracking (add a prompt, consolidate prompts into memory, track a frame, clear a frame, remove an object,
reset); SAM2VideoPredictor and SAM2VideoStream are thin facades over them with the official API, and a server
can hold one session per video. The graphs are run by a FrameTracker shared with every other session of the
same model.

Tracking a frame has three phases, so that a scheduler can advance many sessions with one call per graph
(batch.py): `prepare_track` (memory selection, the bank rows), the graph calls (FrameTracker.track, for the
frames of many sessions at once) and `commit_track` (store the results). `track_frame` runs the three for one.
"""

from __future__ import annotations

import copy
import functools
import threading
from dataclasses import dataclass, field

import numpy as np

from sam2_trt.core.errors import TrackingError

from .. import ops
from .memory_selection import select_memories
from .objects import ObjectTrack
from .outputs import FrameHistory, FrameOutput
from .prompts import PointPrompt, check_obj_id, merge_points
from .tracker import NO_OBJ_SCORE, FrameFeatures, FrameTracker, TrackedFrame


@dataclass(frozen=True)
class TrackingOptions:
    """The official video predictor's options (SAM2VideoPredictor.load documents each), resolved."""

    fill_hole_area: int  # fill background holes of at most this many low-res pixels in output masks
    non_overlap_masks: bool  # at each pixel only the highest-scoring object keeps a positive logit
    clear_non_cond_mem_around_input: bool  # a prompt drops that object's tracked memories around it
    add_all_frames_to_correct_as_cond: bool  # frames that receive correction clicks become conditioning
    binarize_mask_from_pts_for_mem_enc: bool  # memories of prompted frames from binarized masks


def _serialised(method):
    """Operations of one session run one at a time (threads queue on the session's lock), so a session shared by
    threads is never torn; a change made while a propagation runs stops that propagation (check_propagation)."""
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return call


@dataclass
class TrackStep:
    """One frame of one session between prepare_track and commit_track."""

    frame_idx: int
    reverse: bool
    rows: list  # indices of the objects computed on this frame (objects prompted there keep their output)
    extent: tuple = (0, 0)  # (slots, pointers) the rows' memories occupy in the bank
    features: FrameFeatures | None = None  # the frame's features when the session has them cached
    result: TrackedFrame | None = field(default=None, repr=False)  # the graphs' results for `rows`
    propagation: int | None = None  # the token of begin_propagation this step belongs to, checked on commit


class TrackingSession:
    """What `init_state` returns. For code written against the official dict, the keys "num_frames",
    "video_height", "video_width" and "obj_ids" also read as `session[key]`.

    frames: a frame source (`num_frames`, `height`, `width`, `get(i)` -> [H, W, 3] uint8, `close()`);
    history_ring: keep each object's tracked outputs in a ring of this many frames (streams), else one row
    per video frame.
    """

    _DICT_KEYS = ("num_frames", "video_height", "video_width", "obj_ids")

    def __init__(self, tracker: FrameTracker, options: TrackingOptions, frames, history_ring: int | None = None,
                 offload_video_to_cpu: bool = False, offload_state_to_cpu: bool = False):
        self.tracker = tracker
        self.options = options
        self.frames = frames
        self.history_ring = history_ring
        self.offload_video_to_cpu = offload_video_to_cpu  # kept for the official API; frames are always on demand
        self.offload_state_to_cpu = offload_state_to_cpu
        self.objects: list[ObjectTrack] = []
        self.bank = tracker.new_bank()
        self._features: FrameFeatures | None = None  # the last frame's, as the official cache
        self._closed = False
        self._lock = threading.RLock()
        self._version, self._last_change = 0, "nothing"  # bumped by every change of objects or prompts

    def __deepcopy__(self, memo):
        """A fork: an independent session on the same frame source and tracker (copy.deepcopy(state)); closing
        either closes the shared frame source."""
        with self._lock:
            clone = copy.copy(self)
            memo[id(self)] = clone
            memo.setdefault(id(self.frames), self.frames)
            for key, value in self.__dict__.items():
                setattr(clone, key, threading.RLock() if key == "_lock" else copy.deepcopy(value, memo))
        return clone

    def _changed(self, what: str) -> None:
        self._version += 1
        self._last_change = what

    # -- the video ----------------------------------------------------------------------------------------
    @property
    def num_frames(self):
        return self.frames.num_frames

    @property
    def video_height(self) -> int:
        return self.frames.height

    @property
    def video_width(self) -> int:
        return self.frames.width

    @property
    def obj_ids(self) -> list:
        """Object ids in the order of their first prompt (the official obj_idx order)."""
        return [o.obj_id for o in self.objects]

    def __getitem__(self, key):
        if key in self._DICT_KEYS:
            return getattr(self, key)
        raise KeyError(f"{key!r}: this state is typed; use its attributes ({', '.join(self._DICT_KEYS)}, objects)")

    def index_of(self, obj_id) -> int | None:
        for i, o in enumerate(self.objects):
            if o.obj_id == obj_id:
                return i
        return None

    @_serialised
    def check_driver(self, tracker: FrameTracker, options: TrackingOptions, who: str = "this predictor") -> None:
        """ValueError unless a facade with this tracker and these options may drive the session: the same graphs
        at the same size, and the same options (another model's graphs would fail deep inside the backend)."""
        if self._closed:
            raise TrackingError("this state was closed; open the video again with init_state")
        if tracker is not self.tracker and tracker.model.fingerprint != self.tracker.model.fingerprint:
            raise ValueError(f"this state was made by a predictor of {self.tracker.model.describe()}, and {who} runs "
                             f"{tracker.model.describe()}; pass it to the predictor that made it (init_state), or "
                             f"open the video again with this one")
        if options != self.options:
            raise ValueError(f"this state was made by a predictor with other options ({self.options}); {who} has "
                             f"{options}: pass it to the predictor that made it")

    @_serialised
    def close(self) -> None:
        """Stop decoding frames (the prefetch thread) and drop the cached features; the session is unusable."""
        self.frames.close()
        self._features = None
        self._closed = True
        self._changed("close")

    # -- prompts ------------------------------------------------------------------------------------------
    @_serialised
    def add_points(self, frame_idx: int, obj_id, prompt: PointPrompt, clear_old_points: bool) -> np.ndarray:
        """Clicks and/or box corners (model pixels) for one object on one frame; returns every object's masks on
        that frame, [O, 1, H, W] float32 logits at video resolution. Nothing changes when a step fails."""
        idx, obj, is_new = self._object(obj_id)
        prompt = merge_points(None if clear_old_points else obj.points.get(frame_idx), prompt)
        is_init = frame_idx not in obj.tracked
        reverse = False if is_init else obj.tracked[frame_idx]
        is_cond = is_init or self.options.add_all_frames_to_correct_as_cond
        prev = obj.latest_masks(frame_idx, is_cond)
        prev_logits = None if prev is None else np.clip(prev, -32.0, 32.0)[None, None]
        feats = self.features(frame_idx)
        tracker = self.tracker
        if is_init:
            embed = feats.image_embed
        else:
            self._fill_bank([idx], frame_idx, reverse)
            embed = tracker.condition(feats, self.bank.inputs([idx], *self.bank.used_extent([idx])))
        heads = tracker.decode(feats, embed, prompt.coords[None], prompt.labels[None], prev_logits,
                               tracker.use_multimask(is_init, len(prompt.labels)))
        out = tracker.frame_outputs(heads, self.options.fill_hole_area)[0]
        return self._commit_prompt(obj, is_new, frame_idx, is_cond, out, points=prompt)

    @_serialised
    def add_mask(self, frame_idx: int, obj_id, mask: np.ndarray) -> np.ndarray:
        """A binary mask [S, S] float32 (model size) for one object on one frame; returns every object's masks on
        that frame, [O, 1, H, W] float32 logits at video resolution."""
        _, obj, is_new = self._object(obj_id)
        is_cond = frame_idx not in obj.tracked or self.options.add_all_frames_to_correct_as_cond
        heads = self.tracker.mask_as_output(self.features(frame_idx), mask)
        out = self.tracker.frame_outputs(heads, self.options.fill_hole_area)[0]
        return self._commit_prompt(obj, is_new, frame_idx, is_cond, out, mask=mask)

    @_serialised
    def clear_prompts(self, frame_idx: int, obj_id) -> None:
        """Remove one object's prompts (and their result) on a frame."""
        self._existing(obj_id).clear_prompts(frame_idx)
        self._changed(f"the prompts of object {obj_id} on frame {frame_idx} were cleared")

    @_serialised
    def frame_masks(self, frame_idx: int) -> np.ndarray:
        """Every object's latest masks on a frame, [O, 1, H, W] float32 logits at video resolution."""
        return self._frame_masks(frame_idx, any(frame_idx in o.temp_cond for o in self.objects))

    @_serialised
    def remove_object(self, obj_id, need_output: bool = True) -> list:
        """Forget an object; [(frame_idx, masks [O, 1, H, W])] of the frames where it had prompts (none when
        need_output is False or it was the last object). Unknown ids raise TrackingError."""
        obj = self._existing(obj_id)
        if len(self.objects) == 1:
            self.reset()
            return []
        self._changed(f"object {obj_id} was removed")
        prompted = obj.prompted_frames()
        for frame_idx in prompted:
            obj.clear_prompts(frame_idx)
        row = self.objects.index(obj)
        del self.objects[row]
        self.bank.drop_row(row)  # later objects move up a row, as their indices do
        return [(t, self.frame_masks(t)) for t in prompted] if need_output else []

    @_serialised
    def reset(self) -> None:
        """Remove every object and all their prompts and results."""
        self.objects.clear()
        self.bank.clear()
        self._changed("the state was reset")

    # -- tracking -----------------------------------------------------------------------------------------
    @_serialised
    def consolidate(self) -> None:
        """Encode the memories of prompted frames and make them part of the tracking state
        (propagate_in_video_preflight), and size the memory bank for steady-state tracking."""
        if not self.objects:
            raise TrackingError("No input points or masks are provided for any object; please add inputs first "
                                "(add_new_points_or_box or add_new_mask).")
        for obj in self.objects:
            if not obj.has_conditioning_frame:
                raise TrackingError(f"No input points or masks are provided for object id {obj.obj_id}; please "
                                    f"add inputs first.")
        self._encode_pending_memories()
        radius = self._clear_radius()
        for obj in self.objects:
            obj.commit_temp(radius)
        self._reserve_bank()

    @_serialised
    def begin_propagation(self) -> int:
        """A token for one propagation: any later change of objects or prompts (or another propagation) makes
        check_propagation refuse it, instead of tracking on with outputs that no longer match the state."""
        self._changed("another propagate_in_video started")
        return self._version

    def check_propagation(self, token: int) -> None:
        if token != self._version:
            raise TrackingError(f"the state changed while propagate_in_video was running ({self._last_change}), so "
                                f"its remaining frames would be wrong and it stopped; call propagate_in_video again "
                                f"to track with the new prompts")

    def first_conditioning_frame(self) -> int:
        return min(t for o in self.objects for t in o.cond)

    def propagation_order(self, start_frame_idx: int | None = None, max_frame_num_to_track: int | None = None,
                          reverse: bool = False) -> range:
        """The frames propagate_in_video visits, in order (after consolidate(); arguments as checked there):
        from start_frame_idx (default: the earliest prompted frame) over max_frame_num_to_track frames (default:
        all), forward or in reverse."""
        num_frames = self.num_frames
        start = self.first_conditioning_frame() if start_frame_idx is None else start_frame_idx
        count = num_frames if max_frame_num_to_track is None else max_frame_num_to_track
        if reverse:
            end = max(start - count, 0)
            return range(start, end - 1, -1) if start > 0 else range(0)
        return range(start, min(start + count, num_frames - 1) + 1)

    @_serialised
    def track_frame(self, frame_idx: int, reverse: bool, propagation: int | None = None) -> np.ndarray:
        """Track every object on one frame (objects prompted on it keep their output); returns their masks
        [O, 1, H, W] float32 logits at video resolution. Call consolidate() after prompts, before this.
        propagation: the token of begin_propagation, checked first (TrackingError when the state changed)."""
        step = self.prepare_track(frame_idx, reverse, propagation)
        if step.rows:
            step.features = self.features(frame_idx)
            step.result = self.tracker.track([step.features], [self.bank_inputs(step, *step.extent)])[0]
        return self.commit_track(step)

    @_serialised
    def prepare_track(self, frame_idx: int, reverse: bool, propagation: int | None = None) -> TrackStep:
        """Phase 1 of track_frame: which objects need the graphs on this frame, and their memories selected into
        the bank. Then the graphs run (FrameTracker.track with bank_inputs(step, ...)) and commit_track ends it.
        propagation: as in track_frame, checked here and again on commit."""
        if propagation is not None:
            self.check_propagation(propagation)
        rows = [i for i, o in enumerate(self.objects) if frame_idx not in o.cond]
        step = TrackStep(frame_idx, reverse, rows, propagation=propagation)
        if rows:
            self._fill_bank(rows, frame_idx, reverse)
            step.extent = self.bank.used_extent(rows)
            cached = self._features
            step.features = cached if cached is not None and cached.frame_idx == frame_idx else None
        return step

    @_serialised
    def bank_inputs(self, step: TrackStep, slots: int, pointers: int) -> dict:
        """The memory_attention inputs of a prepared step's objects, padded to `slots` and `pointers` (at least
        its extent: a batch of sessions pads every session to the largest; padding is masked, so exact)."""
        if slots < step.extent[0] or pointers < step.extent[1]:
            raise ValueError(f"bank inputs of {slots} slots and {pointers} pointers cannot hold this step's "
                             f"extent {step.extent}")
        self.bank.reserve(len(self.objects), slots, pointers)
        return self.bank.inputs(step.rows, slots, pointers)

    @_serialised
    def commit_track(self, step: TrackStep) -> np.ndarray:
        """Phase 3 of track_frame: store the step's results; returns every object's masks on the frame, [O, 1, H, W]
        float32 logits at video resolution."""
        if step.propagation is not None:
            self.check_propagation(step.propagation)  # nothing changed between prepare and commit
        frame_idx, objects = step.frame_idx, self.objects
        computed: dict[int, FrameOutput] = {}
        if step.rows:
            if step.result is None or step.features is None:
                raise TrackingError(f"frame {frame_idx} was prepared but not tracked; run its graphs first")
            self._features = step.features
            outs = self.tracker.frame_outputs(step.result.heads, self.options.fill_hole_area)
            for out, i, mem in zip(outs, step.rows, step.result.memory):
                out.memory = mem
                computed[i] = out  # yield its float32 masks, not their float16 copy in the history
        radius = self._clear_radius()
        for i, obj in enumerate(objects):
            if radius is not None and frame_idx in obj.cond:
                obj.forget_non_cond_around(frame_idx, radius)
            obj.record_tracked(frame_idx, computed.get(i), step.reverse)
        low_res = np.stack([(computed[i] if i in computed else o.cond.get(frame_idx)).masks
                            for i, o in enumerate(objects)])[:, None]
        return self.tracker.processing.video_mask_logits(low_res, (self.video_height, self.video_width),
                                                         self.options.non_overlap_masks)

    @_serialised
    def forget_before(self, frame_idx: int) -> None:
        """Drop the bookkeeping of frames the memory attention can no longer reach (the ring holds their
        outputs); streams call it so their state stays bounded."""
        for obj in self.objects:
            obj.forget_tracked(frame_idx)

    @_serialised
    def features(self, frame_idx: int) -> FrameFeatures:
        """The image encoder's outputs for a frame (the last frame's are cached, as the official code)."""
        if self._features is None or self._features.frame_idx != frame_idx:
            self._features = self.tracker.features(frame_idx, self.frames.get(frame_idx))
        return self._features

    # -- inside ---------------------------------------------------------------------------------------------
    def _object(self, obj_id) -> tuple[int, ObjectTrack, bool]:
        """(index, track, is_new); a new track joins the session only when its prompt is committed."""
        obj_id = check_obj_id(obj_id)
        idx = self.index_of(obj_id)
        if idx is not None:
            return idx, self.objects[idx], False
        m = self.tracker.model.meta
        ring = self.history_ring
        history = FrameHistory(None if ring else self.num_frames, self.tracker.model.low_res_size, m.feature_size,
                               m.flags["mem_dim"], m.flags["hidden_dim"], ring=ring or 16)
        return len(self.objects), ObjectTrack(obj_id, history), True

    def _existing(self, obj_id) -> ObjectTrack:
        idx = self.index_of(check_obj_id(obj_id))
        if idx is None:
            raise TrackingError(f"object id {obj_id!r} does not exist; existing object ids: {self.obj_ids}")
        return self.objects[idx]

    def _commit_prompt(self, obj: ObjectTrack, is_new: bool, frame_idx: int, is_cond: bool, out: FrameOutput,
                       points=None, mask=None) -> np.ndarray:
        """The only change a prompt makes, after everything that can fail."""
        if is_new:
            self.objects.append(obj)
        obj.record_prompt(frame_idx, is_cond, out, points=points, mask=mask)
        self._changed(f"object {obj.obj_id} was {'added' if is_new else 'prompted'} on frame {frame_idx}")
        return self._frame_masks(frame_idx, is_cond)

    def _clear_radius(self) -> int | None:
        """clear_non_cond_mem_around_input's window (stride * num_maskmem frames), None when it is off.
        Official bug: the official predictor calls a method that does not exist there (facebookresearch/sam2#571);
        this is the intended one, per object, as in sam2_video_predictor_legacy.py."""
        rule = self.tracker.rule
        return rule.stride * rule.num_maskmem if self.options.clear_non_cond_mem_around_input else None

    def _encode_pending_memories(self) -> None:
        """Memories of the temporary outputs, one memory_encoder call per frame for all its objects."""
        pending: dict[int, list] = {}
        for obj in self.objects:
            for frame_idx, out in obj.pending_memories():
                pending.setdefault(frame_idx, []).append(out)
        for frame_idx, outs in pending.items():
            memory = self.tracker.encode_memory(self.features(frame_idx), np.stack([o.masks for o in outs])[:, None],
                                                self.options.binarize_mask_from_pts_for_mem_enc,
                                                np.array([o.score for o in outs], np.float32))
            for o, mem in zip(outs, memory):
                o.memory = mem

    def _reserve_bank(self) -> None:
        """Size the bank for steady-state tracking at once: all conditioning frames plus the recent window."""
        rule = self.tracker.rule
        n_cond = max((len(o.cond) for o in self.objects), default=1)
        max_ptrs = min(self.num_frames, rule.max_obj_ptrs) if self.num_frames else rule.max_obj_ptrs
        self.bank.reserve(len(self.objects), n_cond + rule.num_maskmem - 1,
                          (n_cond + max_ptrs - 1) if rule.use_obj_ptrs else 0)

    def _fill_bank(self, rows: list, frame_idx: int, reverse: bool) -> None:
        """Fill the memory bank rows of these objects with the memories and pointers frame_idx attends to."""
        rule, bank = self.tracker.rule, self.bank
        selections = [select_memories(rule, frame_idx, reverse, list(self.objects[i].cond),
                                      self.objects[i].non_cond.__contains__, self.num_frames) for i in rows]
        bank.reserve(len(self.objects), max(len(m) for m, _ in selections), max(len(p) for _, p in selections))
        for i, (mems, ptrs) in zip(rows, selections):
            obj = self.objects[i]
            bank.fill_row(i, [obj.memory_slot(ref) for ref in mems], [(obj.pointer(ref), ref.tpos) for ref in ptrs])

    def _frame_masks(self, frame_idx: int, is_cond: bool) -> np.ndarray:
        """Every object's latest mask on a frame at video resolution ([O, 1, H, W] float32; -1024 for objects
        without one), as _consolidate_temp_output_across_obj(consolidate_at_video_res=True)."""
        h, w = self.video_height, self.video_width
        found = [(i, o.latest_masks(frame_idx, is_cond)) for i, o in enumerate(self.objects)]
        found = [(i, masks) for i, masks in found if masks is not None]
        video = np.full((len(self.objects), 1, h, w), NO_OBJ_SCORE, np.float32)
        if found:
            low = np.stack([masks for _, masks in found])[:, None].astype(np.float32)
            video[[i for i, _ in found]] = self.tracker.processing.video_mask_logits(low, (h, w), False)
        if self.options.non_overlap_masks:
            video = ops.apply_non_overlapping_constraints(video)
        return video
