"""A job's output folder, and how a video's outputs get there complete or not at all.

    OUT/job.json                      the job summary (summary.py), rewritten after every video
    OUT/videos/<id>/masks/00000.png   DAVIS palette PNGs, pixel value = track id
    OUT/videos/<id>/masks.json        COCO RLE per frame and track, with each track's class
    OUT/videos/<id>/overlay.mp4       with --overlay
    OUT/videos/<id>/video.json        the video's record: frames, tracks and their prompts, seconds, worker, and
                                      the fingerprint of what made it
    OUT/.partial/<id>.<attempt>.<n>/  a video being written; renamed to OUT/videos/<id> when complete
    OUT/.lock                         the job using the folder (host, pid)

A video is done when OUT/videos/<id>/video.json exists: it is written last into the attempt's folder, and the
folder becomes OUT/videos/<id> by one rename on one filesystem, so a killed worker, driver or node leaves
nothing there but a folder under .partial/, which the next job removes. A rerun skips a video whose record
carries the fingerprint of its manifest line, input files, model and options, and redoes any other.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path

from sam2_trt.core.files import pid_alive, write_atomically

from .errors import JobError

RECORD = "video.json"


def write_json(path: Path, doc: dict) -> None:
    """Write `doc` to `path` atomically: readers see the old or the new."""
    write_atomically(path, (json.dumps(doc, indent=1) + "\n").encode())


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _our_version() -> str:
    try:
        return importlib.metadata.version("sam2-trt")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def fingerprint(task, model_sha256: str, settings: dict) -> str:
    """sha256 of everything that decides a video's outputs: its manifest line and resolved paths, the contents of
    its detections and mask files, the model (its metadata file, which holds every graph's sha256), the job's
    output settings and this package's version. The video's own frames are not read (that would cost a decode):
    a changed video under the same path needs its folder deleted to be redone."""
    h = hashlib.sha256(json.dumps({"entry": task.entry, "video": task.video, "model": model_sha256,
                                   "settings": settings, "sam2_trt": _our_version()}, sort_keys=True).encode())
    for path in task.input_files():
        try:
            h.update(Path(path).read_bytes())
        except OSError:
            h.update(f"unreadable:{path}".encode())  # the video will fail, and be retried by the next run
    return h.hexdigest()


def _alive(pid) -> bool:
    try:
        return pid_alive(int(pid))
    except (TypeError, ValueError):
        return True  # an unreadable lock: assume it is in use


class JobFolder:
    def __init__(self, root):
        self.root = Path(root)
        self.videos, self.partial = self.root / "videos", self.root / ".partial"
        self.summary, self.lock_path = self.root / "job.json", self.root / ".lock"

    def video_dir(self, video_id: str) -> Path:
        return self.videos / video_id

    def done_record(self, video_id: str, expected_fingerprint: str) -> dict | None:
        """The record of a video completed by an earlier run with these inputs, else None."""
        record = read_json(self.video_dir(video_id) / RECORD)
        return record if record and record.get("fingerprint") == expected_fingerprint else None

    def new_attempt(self, video_id: str, attempt: int) -> Path:
        """A fresh, empty folder for one attempt at a video (under .partial/, on the output's filesystem)."""
        path = self.partial / f"{video_id}.{attempt}.{uuid.uuid4().hex[:8]}"
        path.mkdir(parents=True)
        return path

    def clear_attempts(self) -> None:
        """Remove what killed attempts left (only while holding the lock: no other job is writing here)."""
        shutil.rmtree(self.partial, ignore_errors=True)

    @contextmanager
    def locked(self):
        """Hold OUT/.lock for the job's life; a lock left by a job killed on this host is taken over."""
        self.root.mkdir(parents=True, exist_ok=True)
        me = {"host": socket.gethostname(), "pid": os.getpid()}
        while True:
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                break
            except FileExistsError:
                holder = read_json(self.lock_path) or {}
                if holder.get("host") == me["host"] and not _alive(holder.get("pid")):
                    self.lock_path.unlink(missing_ok=True)  # its job was killed: nothing runs there any more
                    continue
                raise JobError(f"{self.root} is in use by another track-many job (pid {holder.get('pid')} on "
                               f"{holder.get('host')}); wait for it to end, or delete {self.lock_path} if that "
                               f"job is gone") from None
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        try:
            yield self
        finally:
            self.lock_path.unlink(missing_ok=True)


def commit(attempt: Path, final: Path) -> None:
    """Move a complete attempt folder to its final name, replacing an earlier output only at that moment."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists():
        old = attempt.with_name(attempt.name + ".replaced")
        os.rename(final, old)
    os.rename(attempt, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
