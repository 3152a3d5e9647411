"""Video sessions: upload (or open) a video, prompt objects on any frame, propagate over a WebSocket with
progress and cancellation, read frames and masks, export DAVIS PNGs + COCO RLE, close.

Every call that changes a session runs on the model thread through SAM2VideoPredictor's official methods, so
a client gets bit for bit the masks the library returns for the same prompts (masks = logits > 0, COCO RLE at
the video's size). A session that is propagating refuses prompts (409) until the propagation ends.
"""

from __future__ import annotations

import asyncio
import io
import re
import secrets
from pathlib import Path

import numpy as np
from fastapi import APIRouter, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from pydantic import ValidationError

from sam2_trt.core.errors import VideoError
from sam2_trt.runtime.track import video_fps
from sam2_trt.runtime.video.frames import open_video
from sam2_trt.runtime.video_writers import coco_document

from .app import field_errors
from .exports import ExportCancelled, export_zip
from .propagation import Propagation
from .scheduler import ShuttingDown
from .schemas import ClearRequest, OpenRequest, PropagateRequest, VideoMaskRequest, VideoPromptRequest
from .security import VIDEO_EXTENSIONS, WS_PROTOCOL
from .server import TooLarge
from .sessions import SessionNotFound, VideoSession

router = APIRouter(prefix="/api/videos", tags=["videos"])


# ---- opening ---------------------------------------------------------------------------------------------------
async def _open(server, path: Path, name: str, upload: Path | None) -> dict:
    """A session for the video at `path` (the client calls it `name`: messages never show the server's paths)."""
    try:
        frames = await asyncio.to_thread(open_video, str(path), 0)  # headers only: the limits, before any work
        try:
            count, width, height = frames.num_frames, frames.width, frames.height
        finally:
            frames.close()
        if count > server.config.max_frames:
            raise TooLarge(f"{name} has {count} frames; this server accepts at most {server.config.max_frames} "
                           f"(--max-frames)")
        server.check_size(width, height, name)
        fps = await asyncio.to_thread(video_fps, path)
        state = await server.run(lambda: server.video_predictor.init_state(str(path)))  # encodes frame 0
    except VideoError as e:
        if upload is not None:
            upload.unlink(missing_ok=True)
        raise VideoError(str(e).replace(str(path), name)) from None
    except BaseException:
        if upload is not None:
            upload.unlink(missing_ok=True)
        raise
    session = VideoSession(state, name, fps, upload)
    server.store.add(session)
    return session.describe()


@router.post("", status_code=201)
async def upload_video(request: Request, name: str = "video.mp4") -> dict:
    """The body is a video file (mp4, mov, webm, ...); returns the session: {session_id, num_frames, width,
    height, fps}."""
    server = request.app.state.server
    suffix = Path(name).suffix.lower()
    dest = server.upload_dir / f"{secrets.token_hex(12)}{suffix if suffix in VIDEO_EXTENSIONS else '.mp4'}"
    await server.receive_upload(request, dest)
    return await _open(server, dest, name, upload=dest)


@router.post("/open", status_code=201)
async def open_media(request: Request, body: OpenRequest) -> dict:
    """A video file, or a folder of JPEG frames, under --media-root by relative path."""
    server = request.app.state.server
    if server.media is None:
        raise ValueError("path: this server has no media root (start it with --media-root DIR); upload the video")
    return await _open(server, server.media.resolve(body.path), body.path, upload=None)


# ---- reading ---------------------------------------------------------------------------------------------------
def _check_frame(video: VideoSession, frame: int, what: str = "frame") -> int:
    n = video.tracking.num_frames
    if not 0 <= frame < n:
        raise ValueError(f"{what}: {frame} is out of range: the video has {n} frames (0..{n - 1})")
    return frame


@router.get("/{session_id}")
async def describe(request: Request, session_id: str) -> dict:
    return request.app.state.server.store.get(session_id, "video").describe()


@router.get("/{session_id}/frames/{frame}", response_class=Response)
async def frame_image(request: Request, session_id: str, frame: int):
    """Frame `frame` as JPEG."""
    from PIL import Image

    video = request.app.state.server.store.get(session_id, "video")
    _check_frame(video, frame)

    def encode() -> bytes:
        buf = io.BytesIO()
        Image.fromarray(video.tracking.frames.get(frame)).save(buf, format="JPEG", quality=90)
        return buf.getvalue()

    return Response(await asyncio.to_thread(encode), media_type="image/jpeg")


@router.get("/{session_id}/masks/{frame}")
async def frame_masks(request: Request, session_id: str, frame: int) -> dict:
    """The latest masks of every object on a frame (from prompts or propagation; none before either)."""
    video = request.app.state.server.store.get(session_id, "video")
    return {"frame": _check_frame(video, frame), "objects": video.masks(frame)}


# ---- prompts ---------------------------------------------------------------------------------------------------
async def _change(request: Request, session_id: str, change) -> dict:
    """change(video, predictor) -> (frame, logits) on the model thread, refused while propagating; the frame's
    masks are kept and returned: {"frame", "obj_ids", "objects": [{obj_id, segmentation, area, bbox}]}."""
    server = request.app.state.server
    video = server.store.get(session_id, "video")

    def run():
        video.check_idle()
        frame, logits = change(video, server.video_predictor)
        return {"frame": frame, "obj_ids": list(video.tracking.obj_ids), "objects": video.store(frame, logits)}

    return await server.run(run)


@router.post("/{session_id}/prompts")
async def add_prompt(request: Request, session_id: str, body: VideoPromptRequest) -> dict:
    """Clicks and/or a box for one object on one frame (add_new_points_or_box); every object's masks there."""
    def change(video, predictor):
        _check_frame(video, body.frame)
        frame, _, logits = predictor.add_new_points_or_box(
            video.tracking, body.frame, body.obj_id,
            points=np.asarray(body.points, np.float32) if body.points else None,
            labels=np.asarray(body.labels, np.int32) if body.points else None,
            box=np.asarray(body.box, np.float32) if body.box is not None else None,
            clear_old_points=body.clear_old_points)
        return frame, logits

    return await _change(request, session_id, change)


@router.post("/{session_id}/prompts/mask")
async def add_mask(request: Request, session_id: str, body: VideoMaskRequest) -> dict:
    """A mask (COCO RLE at the video's size) for one object on one frame (add_new_mask)."""
    from pycocotools import mask as mask_utils

    def change(video, predictor):
        _check_frame(video, body.frame)
        size = [video.tracking.video_height, video.tracking.video_width]
        if list(body.mask.size) != size:
            raise ValueError(f"mask.size: {list(body.mask.size)} is not the video's size [H, W] = {size}")
        try:
            mask = mask_utils.decode({"size": size, "counts": body.mask.counts.encode()}).astype(bool)
        except Exception as e:  # noqa: BLE001 - pycocotools raises plain exceptions on bad counts
            raise ValueError(f"mask.counts: not a COCO RLE string ({e})") from None
        if mask.shape != tuple(size):
            raise ValueError(f"mask.counts: decodes to {mask.shape}, not the video's size {size}")
        frame, _, logits = predictor.add_new_mask(video.tracking, body.frame, body.obj_id, mask)
        return frame, logits

    return await _change(request, session_id, change)


@router.post("/{session_id}/clear")
async def clear_frame(request: Request, session_id: str, body: ClearRequest) -> dict:
    """Remove one object's prompts on a frame, or every object's (clear_all_prompts_in_frame per object)."""
    def change(video, predictor):
        _check_frame(video, body.frame)
        if body.obj_id is not None:
            _check_object(video, body.obj_id)
        obj_ids = [body.obj_id] if body.obj_id is not None else list(video.tracking.obj_ids)
        if not obj_ids:
            raise ValueError("obj_id: this video has no objects yet")
        for obj_id in obj_ids:
            frame, _, logits = predictor.clear_all_prompts_in_frame(video.tracking, body.frame, obj_id)
        return frame, logits

    return await _change(request, session_id, change)


def _check_object(video: VideoSession, obj_id: int) -> None:
    if video.tracking.index_of(obj_id) is None:
        raise ValueError(f"obj_id: object {obj_id} does not exist; existing object ids: {video.tracking.obj_ids}")


@router.delete("/{session_id}/objects/{obj_id}")
async def remove_object(request: Request, session_id: str, obj_id: int) -> dict:
    """Forget an object everywhere; returns the frames whose masks changed."""
    server = request.app.state.server
    video = server.store.get(session_id, "video")

    def run():
        video.check_idle()
        _check_object(video, obj_id)
        _, updated = server.video_predictor.remove_object(video.tracking, obj_id, strict=True)
        video.forget_object(obj_id)
        if not video.tracking.obj_ids:
            video.forget_all()
        frames = [{"frame": f, "objects": video.store(f, logits)} for f, logits in updated]
        return {"obj_ids": list(video.tracking.obj_ids), "frames": frames}

    return await server.run(run)


@router.post("/{session_id}/reset")
async def reset(request: Request, session_id: str) -> dict:
    """Remove every object, prompt and mask (reset_state)."""
    server = request.app.state.server
    video = server.store.get(session_id, "video")

    def run():
        video.check_idle()
        server.video_predictor.reset_state(video.tracking)
        video.forget_all()
        return video.describe()

    return await server.run(run)


# ---- propagation -----------------------------------------------------------------------------------------------
@router.websocket("/{session_id}/propagate")
async def propagate(ws: WebSocket, session_id: str):
    """Send {"start_frame", "direction": "forward"|"backward"|"both", "max_frames"} first; receive the events of
    serve/propagation.py, one per frame with its masks; send {"type": "cancel"} (or close) to stop."""
    server = ws.app.state.server
    await ws.accept(subprotocol=WS_PROTOCOL if WS_PROTOCOL in ws.scope.get("subprotocols", []) else None)
    try:
        video = server.store.get(session_id, "video")
        request = PropagateRequest.model_validate(await ws.receive_json())
        if request.start_frame is not None:
            _check_frame(video, request.start_frame, "start_frame")
        if video.propagation is not None:
            raise ValueError("this video is already propagating (one propagation per session at a time)")
    except (SessionNotFound, ValueError) as e:  # pydantic's ValidationError is a ValueError
        detail = field_errors(e.errors()) if isinstance(e, ValidationError) else str(e)
        await ws.send_json({"type": "error", "detail": detail})  # the event says it all: a normal close
        return await ws.close()
    except WebSocketDisconnect:
        return
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()
    run = Propagation(video, request.start_frame, request.max_frames, request.direction,
                      emit=lambda event: loop.call_soon_threadsafe(events.put_nowait, event))
    video.propagation = run
    try:
        server.scheduler.add_propagation(run)
    except ShuttingDown as e:
        video.propagation = None
        await ws.send_json({"type": "error", "detail": str(e)})
        return await ws.close()
    listener = asyncio.create_task(_listen_for_cancel(ws, run))
    try:
        while (event := await events.get()) is not None:
            await ws.send_json(event)
        await ws.close()
    except (WebSocketDisconnect, RuntimeError):  # the client went away: stop tracking for it
        run.cancel("the client disconnected")
    finally:
        listener.cancel()


async def _listen_for_cancel(ws: WebSocket, run: Propagation) -> None:
    try:
        while True:
            message = await ws.receive_json()
            if isinstance(message, dict) and message.get("type") == "cancel":
                run.cancel("cancelled by the client")
    except Exception:  # noqa: BLE001 - disconnects, or a message that is not JSON: the client is gone or done
        run.cancel("the client disconnected")


# ---- results ---------------------------------------------------------------------------------------------------
@router.get("/{session_id}/masks.json")
async def masks_json(request: Request, session_id: str) -> dict:
    """Every frame's masks as COCO RLE JSON (the export's masks.json)."""
    video = request.app.state.server.store.get(session_id, "video")
    t = video.tracking
    return coco_document(video.name, t.video_height, t.video_width, video.all_masks())


@router.get("/{session_id}/export.zip")
async def export(request: Request, session_id: str):
    """masks/00000.png ... (DAVIS palette: pixel value = object id) for every frame, and masks.json, zipped;
    also kept in the server's export folder."""
    server = request.app.state.server
    video = server.store.get(session_id, "video")
    t = video.tracking
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(video.name).stem)[:64] or "video"
    out = server.export_dir / f"{stem}-{video.id[:8]}.zip"
    try:
        path = await asyncio.to_thread(export_zip, video.all_masks(), t.num_frames, t.video_height, t.video_width,
                                       video.name, out, server.stopping)
    except ExportCancelled:
        raise ShuttingDown("the server is shutting down; the export was cancelled and nothing was written") from None
    return FileResponse(path, media_type="application/zip", filename=out.name)


@router.delete("/{session_id}", status_code=204)
async def close(request: Request, session_id: str) -> Response:
    request.app.state.server.store.remove(session_id, "video")
    return Response(status_code=204)
