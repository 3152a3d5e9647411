"""One client's propagation of one video session: which frames, how far it got, and what it tells the client.

Made by the WebSocket handler, advanced one frame per scheduler step (scheduler.py) together with the other
sessions' propagations, cancelled by the client (a message, or closing the socket), by closing the session, or by
shutdown. Its methods run on the model thread; `emit` hands each event to the client's connection (thread-safe).

Events, in order: {"type": "started", "total"}, then per frame {"type": "frame", "frame", "done", "total",
"objects": [{"obj_id", "segmentation" (COCO RLE), "area", "bbox"}]}, then one of {"type": "done"},
{"type": "cancelled", "reason"}, {"type": "error", "detail"}; then `emit(None)`: nothing follows.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from sam2_trt.core.errors import Sam2TrtError

DIRECTIONS = ("forward", "backward", "both")


class Propagation:
    def __init__(self, video, start_frame: int | None, max_frames: int | None, direction: str,
                 emit: Callable[[dict | None], None]):
        self.video = video  # sessions.VideoSession
        self.tracking = video.tracking
        self.start_frame, self.max_frames, self.direction = start_frame, max_frames, direction
        self._emit = emit
        self._order: list | None = None  # [(frame_idx, reverse)] in tracking order
        self._pos = 0
        self._sent: set = set()  # frames already sent (the start frame is visited by both passes of "both")
        self._total = 0
        self._cancel_reason: str | None = None
        self._lock = threading.Lock()
        self._t0 = time.perf_counter()
        self.track_seconds = 0.0  # time in the steps that carried this propagation
        self.finished = False

    @property
    def cancelled(self) -> bool:
        return self._cancel_reason is not None

    def cancel(self, reason: str) -> None:
        """Stop before the next frame (any thread); the frames already sent stay tracked."""
        with self._lock:
            if self._cancel_reason is None:
                self._cancel_reason = reason

    # -- on the model thread -----------------------------------------------------------------------------------
    def begin(self) -> bool:
        """Consolidate the prompts and plan the frames, once; False (and an error event) when it cannot start."""
        if self._order is not None:
            return not self.finished
        try:
            self.tracking.consolidate()
            passes = {"forward": (False,), "backward": (True,), "both": (False, True)}[self.direction]
            self._order = [(f, reverse) for reverse in passes
                           for f in self.tracking.propagation_order(self.start_frame, self.max_frames, reverse)]
        except (Sam2TrtError, ValueError) as e:
            self._order = []
            self.fail(str(e))
            return False
        self._total = len({f for f, _ in self._order})
        self._emit({"type": "started", "total": self._total})
        if not self._order:
            self._end({"type": "done", "frames": 0, "seconds": 0.0})
            return False
        return True

    def next_frame(self) -> tuple[int, bool]:
        return self._order[self._pos]

    def deliver(self, result, seconds: float) -> None:
        """The step's result for this session (runtime.video.batch.SessionFrame)."""
        self.track_seconds += seconds
        if result.error is not None:
            self.fail(f"frame {result.frame_idx} could not be tracked: {result.error}")
            return
        objects = self.video.store(result.frame_idx, result.masks)
        self._pos += 1
        if result.frame_idx not in self._sent:
            self._sent.add(result.frame_idx)
            self._emit({"type": "frame", "frame": result.frame_idx, "done": len(self._sent), "total": self._total,
                        "objects": objects})
        if self._pos == len(self._order):
            self._end({"type": "done", "frames": len(self._sent), "seconds": time.perf_counter() - self._t0})

    def fail(self, detail: str) -> None:
        self._end({"type": "error", "detail": detail})

    def finish(self) -> None:
        """End a cancelled (or never started) propagation."""
        self._end({"type": "cancelled", "reason": self._cancel_reason or "cancelled", "done": len(self._sent),
                   "total": self._total})

    def _end(self, event: dict) -> None:
        if self.finished:
            return
        self.finished = True
        self.video.propagation_ended(self)
        self._emit(event)
        self._emit(None)
