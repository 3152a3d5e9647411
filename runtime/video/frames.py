"""Frames of a video by index, decoded on demand: a small LRU cache filled ahead of the caller by one thread.

Why: the official loader (sam2/utils/misc.py::load_video_frames) decodes every frame up front and holds each
as a [3, 1024, 1024] float32 tensor: 12 MB a frame, 12 GB for 1000 frames. The video predictor needs one frame
at a time (forward, in reverse, or at a clicked frame), so we decode a frame when it is asked for, at its native
resolution, and keep only a few: the cache holds `prefetch + 2` frames (for a video file, up to one group of
pictures within `cache_mb`, so that reverse playback decodes each group once instead of once per frame), and a
daemon thread decodes the next `prefetch` frames in the direction of the latest accesses while the model runs.

    with open_video("clip.mp4") as frames:  # or a folder of <int>.jpg, or a sequence of [H, W, 3] uint8 arrays
        for i in reversed(range(frames.num_frames)):
            image = frames.get(i)  # [H, W, 3] uint8 RGB, read-only
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from sam2_trt.core.errors import VideoError
from .frame_readers import ArrayReader, JpegFolderReader, VideoFileReader

_IDLE_POLL_S = 0.5  # how often an idle prefetch thread checks that its VideoFrames still exists


def open_video(video_path, prefetch: int = 4, cache_mb: float = 256) -> VideoFrames:
    """The frames of `video_path`: a folder of JPEG frames named <int>.jpg (ordered as the official loader
    orders them), a video file PyAV opens (mp4, mov, avi, mkv, webm, ...), or the frames themselves (an
    [N, H, W, 3] uint8 RGB array, or a list/tuple of [H, W, 3] uint8 RGB arrays; not copied).

    prefetch: frames decoded ahead by a background thread (0: none). cache_mb: the most memory the cache may
    spend on one group of pictures of a video file; it holds at least prefetch + 2 frames whatever this says.
    """
    if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
        raise ValueError(f"prefetch must be an int >= 0 (frames decoded ahead; 0 for none), got {prefetch!r}")
    if not isinstance(cache_mb, (int, float)) or not cache_mb > 0:
        raise ValueError(f"cache_mb must be a number > 0 (megabytes of decoded frames), got {cache_mb!r}")
    return VideoFrames(_reader_for(video_path), prefetch, cache_mb)


def _reader_for(video_path):
    if isinstance(video_path, (str, os.PathLike)):
        path = os.fsdecode(video_path)
        if not os.path.exists(path):
            raise VideoError(f"video path {path} does not exist; pass a folder of JPEG frames (00000.jpg, "
                             f"00001.jpg, ...) or a video file")
        return JpegFolderReader(path) if os.path.isdir(path) else VideoFileReader(path)
    if isinstance(video_path, np.ndarray) or (isinstance(video_path, Sequence)
                                              and not isinstance(video_path, (bytes, bytearray))):
        return ArrayReader(video_path)
    raise TypeError(f"video_path must be a path (str or os.PathLike) to a JPEG folder or a video file, or a "
                    f"sequence of [H, W, 3] uint8 RGB frames; got a {type(video_path).__name__}"
                    + (" (decode a bytes path with os.fsdecode)" if isinstance(video_path, bytes) else ""))


class VideoFrames:
    """[H, W, 3] uint8 RGB frames of one video by index. Thread-safe; close() (or `with`) ends the prefetch thread.

    reader: a runtime.video.frame_readers reader (open_video picks it). prefetch, cache_mb: as in open_video.
    """

    def __init__(self, reader, prefetch: int = 4, cache_mb: float = 256):
        self._reader, self._prefetch = reader, prefetch
        self.source, self.num_frames = reader.source, reader.num_frames  # source: the path, for messages
        self.height, self.width = reader.height, reader.width
        budget = int(cache_mb * 2**20) // (3 * self.height * self.width)
        self._keep = max(1, min(reader.gop, budget))  # frames one decode keeps: the whole GOP when it fits
        self.capacity = max(prefetch + 2, self._keep)  # the most frames the cache holds
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()  # least recently used first
        self._failed: dict[int, Exception] = {}  # wanted frames the thread failed on: get() decodes them again
        self._wanted: list[int] = []  # frames the thread should decode, nearest first
        self._last, self._step = None, 1  # the latest frame asked for; the direction of travel, +1 or -1
        self._closed, self._thread_error = False, None
        self._lock = threading.Lock()  # guards the fields above
        self._work = threading.Condition(self._lock)  # wakes the thread when _wanted changes or on close
        self._decoding = threading.Lock()  # readers are not thread-safe: one decode at a time
        self._thread = None
        if prefetch and not reader.in_memory:  # frames in memory need no decoding ahead
            self._thread = threading.Thread(target=_prefetch_loop, args=(weakref.ref(self),), daemon=True,
                                            name=f"sam2-trt prefetch {self.source}")
            self._thread.start()

    def get(self, index: int) -> np.ndarray:
        """Frame `index` in [0, num_frames): [H, W, 3] uint8 RGB, C-contiguous and read-only (shared with the
        cache: copy it to write). Raises FrameDecodeError for a frame that cannot be decoded; the other frames
        stay readable."""
        index = self._check_index(index)
        with self._lock:
            if self._closed:
                raise VideoError(f"the frames of {self.source} are closed; call open_video() again to read them")
            if self._thread_error is not None:
                raise RuntimeError(f"the prefetch thread of {self.source} failed ({self._thread_error!r}); "
                                   f"open_video(..., prefetch=0) decodes without it") from self._thread_error
            frame = self._cache.get(index)
            if frame is not None:
                self._cache.move_to_end(index)
        try:
            return frame if frame is not None else self._decode(index)
        finally:  # only now, so that on a miss the thread does not start a decode ahead of ours
            with self._lock:
                self._plan(index)

    def __len__(self) -> int:
        return self.num_frames

    def close(self):
        """Stop the prefetch thread, drop the cache and close the source. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._cache.clear()
            self._wanted, self._failed = [], {}
            self._work.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()  # at most one decode away: the thread checks _closed between decodes
        with self._decoding:
            self._reader.close()

    def __enter__(self) -> VideoFrames:
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):  # a VideoFrames nobody closed still ends its thread and closes its file
        if "_lock" in self.__dict__:
            self.close()

    def __repr__(self):
        return f"VideoFrames({self.source!r}, {self.num_frames} frames, {self.width}x{self.height})"

    def _check_index(self, index) -> int:
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"frame index must be an int in [0, {self.num_frames}), got {index!r} "
                            f"({type(index).__name__})")
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame index {index} is out of range: {self.source} has {self.num_frames} frames, "
                             f"valid indices are 0..{self.num_frames - 1}")
        return int(index)

    def _plan(self, index: int):
        """After an access to `index` (lock held): prefetch the next frames in the direction of travel."""
        if self._last is not None and index != self._last:
            self._step = 1 if index > self._last else -1
        self._last = index
        ahead = range(index + self._step, index + self._step * (self._prefetch + 1), self._step)
        self._wanted = [i for i in ahead if 0 <= i < self.num_frames]
        self._failed = {i: e for i, e in self._failed.items() if i in self._wanted}
        self._work.notify()

    def _next_wanted(self) -> int | None:
        return next((i for i in self._wanted if i not in self._cache and i not in self._failed), None)

    def _decode(self, index: int) -> np.ndarray:
        """Frame `index`, from the cache if the other thread got there first, else decoded now; the frames the
        reader decoded on the way go into the cache too."""
        with self._decoding:
            with self._lock:
                if self._closed:
                    raise VideoError(f"the frames of {self.source} are closed")
                if index in self._cache:
                    return self._cache[index]
            frames = self._reader.read(index, self._keep)
            with self._lock:
                for i in sorted(frames, key=lambda i: i == index):  # `index` last: the most recently used
                    self._cache[i] = frames[i]
                    self._cache.move_to_end(i)
                while len(self._cache) > self.capacity:
                    self._cache.popitem(last=False)
            return frames[index]

    def _prefetch_one(self) -> bool:
        """The thread's step: decode the nearest wanted frame not yet cached (waiting up to _IDLE_POLL_S for
        one). False once closed."""
        with self._lock:
            if self._next_wanted() is None and not self._closed:
                self._work.wait(_IDLE_POLL_S)
            index = self._next_wanted()
            if self._closed or index is None:
                return not self._closed
        try:
            self._decode(index)
        except Exception as e:  # not lost: get(index) decodes it again and raises there
            with self._lock:
                self._failed[index] = e
        return True


def _prefetch_loop(ref: weakref.ref):
    """The prefetch thread. It holds its VideoFrames weakly between steps, so a forgotten one is still freed."""
    while (frames := ref()) is not None:
        try:
            if not frames._prefetch_one():
                return
        except BaseException as e:  # a bug here must reach the caller: get() raises it
            frames._thread_error = e
            return
        del frames
