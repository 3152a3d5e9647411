"""Many tracking sessions, one call per graph: one frame of each, tracked together.

A server holds a TrackingSession per video. When several of them propagate at once, tracking each frame of each
on its own would run every graph once per session; here the sessions' next frames go through the graphs
together: the frames that are not encoded yet in as few image-encoder calls as its `images` axis allows (one for
up to 4 sessions), then memory attention, the decoder and the memory encoder once each for every object of every
session (the graphs take a batch of frames and each object's frame index, sam2_trt/core/specs.py).

Each session gets exactly what its own `track_frame` would return, bit for bit on ONNX Runtime: each object is
computed as it would be alone (the graphs are batch-invariant, sam2_export/modules/layer_norm.py), and a session
whose memories use fewer bank slots or pointers than another's is padded with masked entries, which get exactly
zero attention weight. tests/runtime/test_video_sessions_together.py checks both, and counts the calls.

    masks = track_sessions([(session_a, 5, False), (session_b, 12, False)])   # [masks of a, masks of b]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .session import TrackingSession, TrackStep


@dataclass
class SessionFrame:
    """One session's part of a batched step: its frame, and what came of it."""

    session: TrackingSession
    frame_idx: int
    reverse: bool
    masks: np.ndarray | None = None  # [O, 1, H, W] float32 logits at video resolution, as track_frame returns
    error: Exception | None = None  # why this session's frame could not be tracked (its frame did not decode)


def track_sessions(frames: list) -> list:
    """Track one frame of each of several sessions that share one FrameTracker (one predictor's sessions):
    `frames` [(session, frame_idx, reverse)] -> [SessionFrame] in the same order. Each session must have been
    consolidated (propagate_in_video_preflight) and appear once. A frame that cannot be decoded fails its own
    session only (SessionFrame.error); the other sessions' frames are tracked."""
    items = [SessionFrame(s, f, r) for s, f, r in frames]
    if not items:
        return []
    tracker = items[0].session.tracker
    if any(it.session.tracker is not tracker for it in items):
        raise ValueError("sessions tracked together must come from one predictor (they share its graphs and "
                         "options); track the others in their own batch")
    if len({id(it.session) for it in items}) != len(items):
        raise ValueError("a session can advance by one frame per batch; it appears twice")
    steps: dict[int, TrackStep] = {}
    to_encode = []
    for k, it in enumerate(items):
        step = it.session.prepare_track(it.frame_idx, it.reverse)
        if step.rows and step.features is None:
            try:
                to_encode.append((k, it.session.frames.get(it.frame_idx)))
            except Exception as e:  # noqa: BLE001 - FrameDecodeError, a closed video: this session's failure only
                it.error = e
                continue
        steps[k] = step
    encoded = tracker.features_batch([(items[k].frame_idx, frame) for k, frame in to_encode])
    for (k, _), feats in zip(to_encode, encoded):
        steps[k].features = feats
    active = [k for k, step in steps.items() if step.rows]
    if active:
        slots = max(steps[k].extent[0] for k in active)
        pointers = max(steps[k].extent[1] for k in active)
        results = tracker.track([steps[k].features for k in active],
                                [items[k].session.bank_inputs(steps[k], slots, pointers) for k in active])
        for k, result in zip(active, results):
            steps[k].result = result
    for k, step in steps.items():
        items[k].masks = items[k].session.commit_track(step)
    return items
