"""The server's sessions: one per image or video a client opened, found by an unguessable id.

An id (`secrets.token_urlsafe`, 192 random bits) is the only way to a session: ids are never listed, an unknown,
expired or closed id and an id of the other kind all answer the same 404, so one client cannot find or reach
another's session. Idle sessions expire after --session-ttl seconds; opening one past --max-sessions closes the
least recently used. Closing happens on the model thread (the session may be in use there) and removes the
session's uploaded file.

ImageSession holds a SAM2ImagePredictor with its image set (and the image, for automatic masks); VideoSession a
TrackingSession (runtime/video/session.py), the masks computed so far for every frame (COCO RLE, what exports
and the page's scrubbing read), and its propagation while one runs.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from sam2_trt.runtime.video_writers import coco_rle

ID_BYTES = 24


class SessionNotFound(Exception):
    def __init__(self, kind: str):
        super().__init__(f"no such {kind} session (the id is wrong, or the session expired, was closed, or was "
                         f"evicted past --max-sessions): open the {kind} again")


class SessionBusy(Exception):
    """A video session cannot take a prompt while it propagates (HTTP 409)."""


class ImageSession:
    kind = "image"

    def __init__(self, predictor, image: np.ndarray, name: str):
        self.id = secrets.token_urlsafe(ID_BYTES)
        self.predictor = predictor  # SAM2ImagePredictor of the server's model, its image set (on the model thread)
        self.image = image  # [H, W, 3] uint8 RGB: automatic masks encode crops of it again
        self.name = name
        self.low_res: dict[int, np.ndarray] = {}  # obj_id -> [1, h, w] logits of its last best mask (mask prompts)
        self.last_used = time.monotonic()

    def describe(self) -> dict:
        h, w = self.image.shape[:2]
        return {"session_id": self.id, "kind": self.kind, "name": self.name, "width": w, "height": h}

    def close(self) -> None:
        self.predictor.reset_predictor()
        self.low_res.clear()


class VideoSession:
    kind = "video"

    def __init__(self, tracking, name: str, fps: float, upload: Path | None = None):
        self.id = secrets.token_urlsafe(ID_BYTES)
        self.tracking = tracking  # TrackingSession of the server's video predictor
        self.name, self.fps = name, fps
        self.upload = upload  # the uploaded file, deleted with the session (None: a file under --media-root)
        self.last_used = time.monotonic()
        self.propagation = None  # the Propagation running on this session, if any
        self._results: dict[int, dict[int, dict]] = {}  # frame -> obj_id -> {"segmentation", "area", "bbox"}
        self._lock = threading.Lock()  # results are written on the model thread and read by requests

    def describe(self) -> dict:
        t = self.tracking
        with self._lock:
            frames_with_masks = sorted(self._results)
        return {"session_id": self.id, "kind": self.kind, "name": self.name, "num_frames": t.num_frames,
                "width": t.video_width, "height": t.video_height, "fps": self.fps, "obj_ids": list(t.obj_ids),
                "propagating": self.propagation is not None, "frames_with_masks": frames_with_masks}

    # -- results ------------------------------------------------------------------------------------------------
    def store(self, frame_idx: int, logits: np.ndarray) -> list:
        """A frame's masks from the tracking session ([O, 1, H, W] logits for its obj_ids) -> kept and returned as
        [{"obj_id", "segmentation", "area", "bbox"}] (mask = logits > 0, as the library's callers threshold)."""
        objects = [{"obj_id": int(o), **coco_rle(logits[k, 0] > 0)} for k, o in enumerate(self.tracking.obj_ids)]
        with self._lock:
            self._results[int(frame_idx)] = {o["obj_id"]: o for o in objects}
        return objects

    def masks(self, frame_idx: int) -> list:
        with self._lock:
            return list(self._results.get(int(frame_idx), {}).values())

    def all_masks(self) -> dict:
        """{frame: [{"obj_id", "segmentation", "area", "bbox"}]} of every frame with masks (a copy)."""
        with self._lock:
            return {f: list(objs.values()) for f, objs in sorted(self._results.items())}

    def forget_object(self, obj_id: int) -> None:
        with self._lock:
            for objs in self._results.values():
                objs.pop(obj_id, None)

    def forget_all(self) -> None:
        with self._lock:
            self._results.clear()

    # -- propagation ---------------------------------------------------------------------------------------------
    def check_idle(self) -> None:
        if self.propagation is not None:
            raise SessionBusy("this video is propagating: cancel the propagation or wait for it to finish, then "
                              "change its prompts")

    def propagation_ended(self, propagation) -> None:
        if self.propagation is propagation:
            self.propagation = None

    def close(self) -> None:
        if self.propagation is not None:
            self.propagation.cancel("the session was closed")
            self.propagation.finish()
        self.tracking.close()
        if self.upload is not None:
            self.upload.unlink(missing_ok=True)


class SessionStore:
    """Open sessions by id, least recently used first. Thread-safe; `close` runs a session's close (the server
    passes one that hands it to the model thread)."""

    def __init__(self, max_sessions: int, ttl: float, close):
        self.max_sessions, self.ttl = max_sessions, ttl
        self._close = close
        self._sessions: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()
        self.evicted = 0
        self.expired = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def add(self, session) -> None:
        """Keep a new session; past max_sessions the least recently used ones are closed."""
        with self._lock:
            self._sessions[session.id] = session
            evict = []
            while len(self._sessions) > self.max_sessions:
                evict.append(self._sessions.popitem(last=False)[1])
            self.evicted += len(evict)
        for s in evict:
            self._close(s)

    def get(self, session_id: str, kind: str):
        """The session of that id and kind (and it counts as used now), else SessionNotFound."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.kind != kind:
                raise SessionNotFound(kind)
            session.last_used = time.monotonic()
            self._sessions.move_to_end(session_id)
            return session

    def remove(self, session_id: str, kind: str) -> None:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.kind != kind:
                raise SessionNotFound(kind)
            del self._sessions[session_id]
        self._close(session)

    def expire(self, now: float | None = None) -> int:
        """Close the sessions idle for longer than ttl (a propagating video is not idle); how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            old = [s for s in self._sessions.values()
                   if now - s.last_used > self.ttl and getattr(s, "propagation", None) is None]
            for s in old:
                del self._sessions[s.id]
            self.expired += len(old)
        for s in old:
            self._close(s)
        return len(old)

    def close_all(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), OrderedDict()
        for s in sessions:
            self._close(s)
