"""Which memories and object pointers a frame attends to: the official rules of
SAM2Base._prepare_memory_conditioned_features (sam2/modeling/sam2_base.py) and select_closest_cond_frames
(sam2/modeling/sam2_utils.py), as pure functions of frame indices, so the memory bank can be filled from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence


@dataclass(frozen=True)
class MemoryRule:
    """The SAM2Base flags that choose memories (all taken from the exported model's metadata)."""

    num_maskmem: int = 7  # 1 conditioning slot index + 6 recent frames
    stride: int = 1  # memory_temporal_stride_for_eval
    max_cond_frames: int = -1  # max_cond_frames_in_attn (-1: all)
    use_obj_ptrs: bool = True  # use_obj_ptrs_in_encoder
    max_obj_ptrs: int = 16  # max_obj_ptrs_in_encoder
    only_past_ptrs: bool = True  # only_obj_ptrs_in_the_past_for_eval
    signed_ptr_tpos: bool = True  # use_signed_tpos_enc_to_obj_ptrs

    @classmethod
    def from_flags(cls, flags: dict) -> "MemoryRule":
        return cls(int(flags["num_maskmem"]), int(flags["memory_temporal_stride_for_eval"]),
                   int(flags["max_cond_frames_in_attn"]), bool(flags["use_obj_ptrs_in_encoder"]),
                   int(flags["max_obj_ptrs_in_encoder"]), bool(flags["only_obj_ptrs_in_the_past_for_eval"]),
                   bool(flags["use_signed_tpos_enc_to_obj_ptrs"]))


@dataclass(frozen=True)
class MemoryRef:
    frame: int
    cond: bool  # from the conditioning outputs (else the non-conditioning ones)
    tpos: float  # memory: index into maskmem_tpos_enc; pointer: normalised signed frame distance


def closest_cond_frames(frame_idx: int, cond_frames: Sequence[int], max_num: int) -> tuple[list, list]:
    """(selected, unselected) conditioning frames, as select_closest_cond_frames."""
    if max_num == -1 or len(cond_frames) <= max_num:
        return list(cond_frames), []
    selected = []
    before = max((t for t in cond_frames if t < frame_idx), default=None)
    if before is not None:
        selected.append(before)
    after = min((t for t in cond_frames if t >= frame_idx), default=None)
    if after is not None:
        selected.append(after)
    rest = sorted((t for t in cond_frames if t not in selected), key=lambda t: abs(t - frame_idx))
    selected += rest[:max_num - len(selected)]
    return [t for t in cond_frames if t in selected], [t for t in cond_frames if t not in selected]


def select_memories(rule: MemoryRule, frame_idx: int, reverse: bool, cond_frames: Sequence[int],
                    has_non_cond: Callable[[int], bool], num_frames: int | None) -> tuple[list, list]:
    """The spatial memories and pointers frame `frame_idx` attends to (not an initial conditioning frame).

    cond_frames: the object's conditioning frames in insertion order; has_non_cond(t): whether frame t has a
    stored non-conditioning output; num_frames: the video length, None for an unbounded stream.
    Returns (memories, pointers), lists of MemoryRef; a memory's tpos is its maskmem_tpos_enc index, a
    pointer's is its signed frame distance / (min(num_frames, max_obj_ptrs) - 1).
    """
    selected, unselected = closest_cond_frames(frame_idx, cond_frames, rule.max_cond_frames)
    unselected_set = set(unselected)
    last = rule.num_maskmem - 1
    memories = [MemoryRef(t, True, last) for t in selected]
    r, sign = rule.stride, (-1 if reverse else 1)
    for t_pos in range(1, rule.num_maskmem):
        t_rel = rule.num_maskmem - t_pos  # how many (strided) frames before this one
        if t_rel == 1:
            prev = frame_idx - sign
        elif not reverse:
            prev = ((frame_idx - 2) // r) * r - (t_rel - 2) * r
        else:
            prev = -(-(frame_idx + 2) // r) * r + (t_rel - 2) * r
        if has_non_cond(prev):
            memories.append(MemoryRef(prev, False, last - t_pos))
        elif prev in unselected_set:
            memories.append(MemoryRef(prev, True, last - t_pos))

    pointers = []
    if rule.use_obj_ptrs:
        max_ptrs = rule.max_obj_ptrs if num_frames is None else min(num_frames, rule.max_obj_ptrs)
        t_diff_max = max(max_ptrs - 1, 1)  # a one-frame video never attends to its pointers

        def tpos(distance: int) -> float:
            return (distance if rule.signed_ptr_tpos else abs(distance)) / t_diff_max

        past = [t for t in selected if (t >= frame_idx if reverse else t <= frame_idx)] \
            if rule.only_past_ptrs else selected
        pointers = [MemoryRef(t, True, tpos((frame_idx - t) * sign)) for t in past]
        for t_diff in range(1, max_ptrs):
            t = frame_idx + t_diff if reverse else frame_idx - t_diff
            if t < 0 or (num_frames is not None and t >= num_frames):
                break
            if has_non_cond(t):
                pointers.append(MemoryRef(t, False, t_diff / t_diff_max))
            elif t in unselected_set:
                pointers.append(MemoryRef(t, True, t_diff / t_diff_max))
    return memories, pointers
