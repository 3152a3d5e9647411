"""The state of one `sam2-trt serve` process: the loaded model, its scheduler, the sessions, the folders; and the
helpers every route uses (run on the model thread, read an upload within its limit, check a frame index).

One model is loaded once. Image sessions each get a SAM2ImagePredictor of it (a few objects around the shared
model); every video session comes from one SAM2VideoPredictor, so all share its FrameTracker and can be tracked
together (runtime/video/batch.py).
"""

from __future__ import annotations

import asyncio
import io
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from sam2_trt.runtime.image_predictor import SAM2ImagePredictor
from sam2_trt.runtime.video.predictor import SAM2VideoPredictor

from .config import ServeConfig
from .scheduler import Scheduler
from .security import MediaRoot
from .sessions import SessionStore


class TooLarge(Exception):
    """An upload, a video or an image over a limit (HTTP 413); the message names the limit and its option."""


class Server:
    def __init__(self, config: ServeConfig, model, batch_sessions: int = 16, batch_images: int = 4):
        self.config = config
        self.model = model  # SAM2Model, opened once
        self.video_predictor = SAM2VideoPredictor(model)
        self.scheduler = Scheduler(config.max_queue, batch_images, batch_sessions)
        self.store = SessionStore(config.max_sessions, config.session_ttl, close=self._close_on_model_thread)
        self.media = MediaRoot(config.media_root) if config.media_root is not None else None
        self._own_work_dir = config.work_dir is None
        self.work_dir = Path(tempfile.mkdtemp(prefix="sam2-trt-serve-")) if self._own_work_dir else \
            Path(config.work_dir)
        self.upload_dir = self.work_dir / "uploads"
        self.export_dir = Path(config.export_dir) if config.export_dir is not None else self.work_dir / "exports"
        for d in (self.upload_dir, self.export_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.stopping = threading.Event()  # set at shutdown: exports under way stop and leave nothing behind

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        """Cancel what waits, finish what runs, close every session, remove this process's uploads."""
        self.stopping.set()
        self.store.close_all()
        self.scheduler.stop()
        shutil.rmtree(self.upload_dir, ignore_errors=True)
        if self._own_work_dir and self.config.export_dir is None:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _close_on_model_thread(self, session) -> None:
        self.scheduler.call_soon(session.close)

    def image_predictor(self) -> SAM2ImagePredictor:
        return SAM2ImagePredictor(self.model)

    # -- helpers for routes --------------------------------------------------------------------------------------
    async def run(self, fn):
        """fn() on the model thread (queued; Busy when the queue is full); its result."""
        return await asyncio.wrap_future(self.scheduler.submit(fn))

    async def encode(self, predictor: SAM2ImagePredictor, image: np.ndarray) -> None:
        """predictor's image set to `image`, encoded in a batch with other clients' images."""
        await asyncio.wrap_future(self.scheduler.encode(predictor, image))

    async def receive_upload(self, request, dest: Path | None = None) -> bytes | Path:
        """The request body, read up to --max-upload-mb (TooLarge past it): into `dest` (removed on failure) or
        returned as bytes."""
        limit = self.config.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise TooLarge(f"the upload is {int(declared) / 2**20:.1f} MB; this server accepts at most "
                           f"{self.config.max_upload_mb:g} MB (--max-upload-mb)")
        size, chunks = 0, []
        sink = open(dest, "wb") if dest is not None else None
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"the upload is larger than {self.config.max_upload_mb:g} MB, the most this "
                                   f"server accepts (--max-upload-mb)")
                if sink is not None:
                    sink.write(chunk)
                else:
                    chunks.append(chunk)
        except BaseException:
            if sink is not None:
                sink.close()
                dest.unlink(missing_ok=True)
            raise
        if sink is not None:
            sink.close()
            if size == 0:
                dest.unlink(missing_ok=True)
        if size == 0:
            raise ValueError("the request body is empty: send the file's bytes as the body")
        return dest if dest is not None else b"".join(chunks)

    def check_size(self, width: int, height: int, what: str) -> None:
        side = self.config.max_side
        if max(width, height) > side:
            raise TooLarge(f"{what} is {width}x{height} pixels; this server accepts at most {side} pixels a side "
                           f"(--max-side)")

    def decode_image(self, data: bytes, what: str) -> np.ndarray:
        """Image file bytes -> [H, W, 3] uint8 RGB; its size is checked from the header before decoding."""
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as im:
                self.check_size(*im.size, what)
                return np.asarray(im.convert("RGB"))
        except Image.DecompressionBombError as e:
            raise TooLarge(f"{what} has too many pixels ({e}); this server accepts at most {self.config.max_side} "
                           f"pixels a side (--max-side)") from None
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f"{what} is not an image this server can read ({e}); send a JPEG or PNG") from None
