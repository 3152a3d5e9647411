"""Random access to frame i of one kind of source: a folder of JPEG frames, a video file, or frames in memory.

Each reader has `source` (str), `num_frames`, `height`, `width`, `gop` (the most frames one read may have to
decode: 1 unless frames depend on each other), `in_memory`, `read(i, keep) -> {index: [H, W, 3] uint8}` (frame i,
plus up to keep - 1 frames just before it that were decoded on the way) and `close()`. Readers are not
thread-safe: runtime.video.frames.VideoFrames serializes them and adds the cache and the prefetch thread.
"""

from __future__ import annotations

import bisect
import os

import numpy as np

from sam2_trt.core.errors import FrameDecodeError, VideoError

# The extensions sam2/utils/misc.py::load_video_frames_from_jpg_images accepts (case-sensitive, as there).
JPEG_EXTENSIONS = (".jpg", ".jpeg", ".JPG", ".JPEG")
_EXTRACT = "ffmpeg -i VIDEO.mp4 -q:v 2 -start_number 0 '{}/%05d.jpg'"


def _readonly(a: np.ndarray) -> np.ndarray:
    """A C-contiguous read-only view: cached frames are shared between get() calls, so nobody may write them."""
    a = np.ascontiguousarray(a).view()
    a.flags.writeable = False
    return a


class JpegFolderReader:
    """<integer>.jpg files of a folder, in the official loader's order (sorted by int(stem)), decoded with PIL."""

    gop, in_memory = 1, False

    def __init__(self, folder: str):
        from PIL import Image

        try:
            names = sorted(os.listdir(folder))
        except OSError as e:
            raise VideoError(f"cannot list the JPEG folder {folder}: {e}") from e
        jpegs = [n for n in names if os.path.splitext(n)[-1] in JPEG_EXTENSIONS]
        if not jpegs:
            there = f"it has {len(names)} entries, e.g. {', '.join(names[:3])}" if names else "it is empty"
            raise VideoError(f"{folder} has no JPEG frames (looked for files ending in {', '.join(JPEG_EXTENSIONS)}, "
                             f"named by frame number like 00000.jpg; {there}); extract them with "
                             f"{_EXTRACT.format(folder)} or pass the video file itself")
        numbers, bad = {}, []
        for n in jpegs:
            try:
                numbers[n] = int(os.path.splitext(n)[0])
            except ValueError:
                bad.append(n)
        if bad:
            raise VideoError(f"{os.path.join(folder, bad[0])} is not named by a frame number ({len(bad)} of the "
                             f"{len(jpegs)} JPEG files in {folder} are not, e.g. {', '.join(bad[:3])}): SAM 2 orders "
                             f"frames by int(file stem), so name them 00000.jpg, 00001.jpg, ... or move the others out")
        # The official sort key is int(stem) alone; the name breaks ties ("1.jpg" vs "01.jpg") deterministically.
        self.paths = [os.path.join(folder, n) for n in sorted(jpegs, key=lambda n: (numbers[n], n))]
        self.source, self.num_frames = folder, len(self.paths)
        self._image = Image
        sizes = [self._header_size(i) for i in range(self.num_frames)]  # headers only: cheap, no pixel decode
        self.width, self.height = sizes[0]
        for i, size in enumerate(sizes):
            if size != sizes[0]:
                raise VideoError(f"frame {i} ({self.paths[i]}) is {size[0]}x{size[1]} but frame 0 ({self.paths[0]}) "
                                 f"is {self.width}x{self.height}; all frames of a video must have one size: "
                                 f"re-extract or resize them")

    def _header_size(self, i: int) -> tuple[int, int]:
        try:
            with self._image.open(self.paths[i]) as im:
                return im.size
        except Exception as e:  # any failure means this file is not a readable image
            raise FrameDecodeError(i, self.paths[i], f"{type(e).__name__}: {e}") from e

    def read(self, index: int, keep: int = 1) -> dict[int, np.ndarray]:
        path = self.paths[index]
        try:
            with self._image.open(path) as im:
                frame = np.asarray(im.convert("RGB"))  # as the official loader decodes, bit for bit
        except Exception as e:  # truncated data, garbage, unreadable file: all mean this frame is unusable
            raise FrameDecodeError(index, path, f"{type(e).__name__}: {e}") from e
        if frame.shape != (self.height, self.width, 3):  # the file changed since open_video
            raise FrameDecodeError(index, path, f"it is now {frame.shape[1]}x{frame.shape[0]}, the video is "
                                                f"{self.width}x{self.height}")
        return {index: _readonly(frame)}

    def close(self):
        pass


class ArrayReader:
    """Frames already in memory: an [N, H, W, 3] uint8 array or a sequence of [H, W, 3] uint8 arrays, not copied."""

    gop, in_memory = 1, True

    def __init__(self, frames):
        if isinstance(frames, np.ndarray) and (frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8):
            raise VideoError(f"an array of frames must be [N, H, W, 3] uint8 RGB, got {list(frames.shape)} "
                             f"{frames.dtype}")
        for i, f in enumerate(frames):
            if not isinstance(f, np.ndarray):
                raise TypeError(f"frame {i} of the sequence is a {type(f).__name__}; pass [H, W, 3] uint8 RGB numpy "
                                f"arrays (np.asarray(pil_image.convert('RGB')) makes one)")
            if f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8:
                raise VideoError(f"frame {i} of the sequence is {list(f.shape)} {f.dtype}; every frame must be "
                                 f"[H, W, 3] uint8 RGB")
            if f.shape != frames[0].shape:
                raise VideoError(f"frame {i} of the sequence is {f.shape[1]}x{f.shape[0]} but frame 0 is "
                                 f"{frames[0].shape[1]}x{frames[0].shape[0]}; all frames of a video must have one "
                                 f"size: resize them")
        if len(frames) == 0:
            raise VideoError("the sequence of frames is empty; pass at least one [H, W, 3] uint8 frame")
        self._frames = frames
        self.num_frames, (self.height, self.width) = len(frames), frames[0].shape[:2]
        self.source = f"{len(frames)} frames in memory ({type(frames).__name__})"

    def read(self, index: int, keep: int = 1) -> dict[int, np.ndarray]:
        return {index: _readonly(self._frames[index])}

    def close(self):
        self._frames = ()


class VideoFileReader:
    """A video file decoded with PyAV to RGB24 at its native resolution, with random access.

    At open the packets are demuxed (not decoded) to count the frames and find the keyframes: container
    metadata (stream.frames) is 0 for mkv/webm and can be wrong elsewhere. Frames are numbered in presentation
    order and recognised by their pts. A read continues the running decoder when that is no more work than
    seeking, else seeks to the keyframe at or before the frame and decodes forward, keeping the last `keep`
    frames on the way so that reverse playback decodes each group of pictures once rather than once per frame.
    Streams without timestamps (raw .h264) are numbered in decode order and always restart from the beginning.
    """

    in_memory = False
    _HINT = "re-encode the video (e.g. ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4)"

    def __init__(self, path: str):
        import av  # here, so that JPEG folders and arrays never need PyAV

        self._av, self.source = av, path
        self.decoded = self.seeks = 0  # counters, for tests and benchmarks
        self._container = self._frames = self._pos = None
        self._open()
        try:
            pts, keys = [], []
            for packet in self._container.demux(self._stream):
                if packet.size and not packet.is_discard:  # not the final flush packet, not cut by an edit list
                    pts.append(packet.pts)
                    keys.append(packet.is_keyframe)
        except av.error.FFmpegError as e:
            self.close()
            raise VideoError(f"{path} cannot be read to the end ({type(e).__name__}: {e}); {self._HINT}") from e
        if not pts:
            self.close()
            raise VideoError(f"{path} has a video stream with 0 frames; check the file is complete, or {self._HINT}")
        self.num_frames = len(pts)
        if None in pts or len(set(pts)) != len(pts):  # no usable timestamps: count frames from the start
            self._index_of, self._pts, self._keyframes = None, None, [0]
        else:
            self._pts = sorted(pts)
            self._index_of = {t: i for i, t in enumerate(self._pts)}
            self._keyframes = sorted({0} | {self._index_of[t] for t, k in zip(pts, keys) if k})
        ends = self._keyframes[1:] + [self.num_frames]
        self.gop = max(b - a for a, b in zip(self._keyframes, ends))
        self._frames = None  # the indexing pass consumed the demuxer: the first read restarts

    def _open(self):
        av = self._av
        if self._container is not None:
            self._container.close()
        try:
            self._container = av.open(self.source)
        except av.error.FFmpegError as e:
            raise VideoError(f"PyAV cannot open {self.source} as a video ({type(e).__name__}: {e}); pass a complete "
                             f"video file FFmpeg reads (mp4, mov, avi, mkv, webm) or a folder of JPEG frames") from e
        if not self._container.streams.video:
            kinds = sorted({s.type for s in self._container.streams}) or ["none"]
            self.close()
            raise VideoError(f"{self.source} has no video stream (streams: {', '.join(kinds)}); pass a video file")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"  # frame + slice threads: same pixels, several times faster
        self.height, self.width = self._stream.codec_context.height, self._stream.codec_context.width
        if not self.height or not self.width:
            self.close()
            raise VideoError(f"{self.source}: its video stream has no frame size ({self.width}x{self.height}); "
                             f"{self._HINT}")

    def _seek(self, start: int):
        """Position the decoder so that its next frames are `start` (a keyframe, or 0) and those after it."""
        self.seeks += 1
        if start == 0:  # reopening always works, also where a container cannot seek (raw streams)
            self._open()
        else:
            self._container.seek(self._pts[start], stream=self._stream, backward=True)
        self._floor, self._count = start, start  # frames before a keyframe may miss references: never kept
        self._pos, self._landed = start - 1, None  # the last frame decoded; the first one after this seek
        self._frames = self._container.decode(self._stream)

    def read(self, index: int, keep: int = 1) -> dict[int, np.ndarray]:
        start = self._keyframes[bisect.bisect_right(self._keyframes, index) - 1]
        try:
            if self._frames is None or not start - 1 <= self._pos < index:
                self._seek(start)
            out = self._decode_until(index, keep)
            if index not in out and self._landed > index and start:  # the seek landed past it: from the start
                self._seek(0)
                out = self._decode_until(index, keep)
        except self._av.error.FFmpegError as e:
            self._frames = None  # the decoder state is unknown: seek next time
            raise FrameDecodeError(index, self.source, f"{type(e).__name__}: {e}", self._HINT) from e
        if index not in out:
            self._frames = None
            raise FrameDecodeError(index, self.source, "the decoder skipped it", self._HINT)
        return out

    def _decode_until(self, index: int, keep: int) -> dict[int, np.ndarray]:
        out = {}
        for frame in self._frames:
            i = self._count if self._index_of is None else self._index_of.get(frame.pts)
            self._count += 1
            if i is None or i < self._floor:
                continue
            self.decoded += 1
            self._pos = i
            self._landed = i if self._landed is None else self._landed
            if i > index:  # the frame was skipped (decoder drop, or a seek that landed past it)
                return out
            if i > index - keep:
                out[i] = self._to_rgb(frame, i)
            if i == index:
                return out
        self._frames = None  # end of stream: the decoder needs a seek before it can run again
        self._landed = self.num_frames if self._landed is None else self._landed
        return out

    def _to_rgb(self, frame, i: int) -> np.ndarray:
        rgb = frame.to_ndarray(format="rgb24")
        if rgb.shape != (self.height, self.width, 3):
            raise FrameDecodeError(i, self.source, f"it decodes to {rgb.shape[1]}x{rgb.shape[0]} but the video is "
                                                   f"{self.width}x{self.height} (the size changes mid-stream)",
                                   self._HINT)
        return _readonly(rgb)

    def close(self):
        if self._container is not None:
            self._container.close()
            self._container = self._frames = None
