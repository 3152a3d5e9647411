"""The server itself: health, the model, what the scheduler did, and the media root's folders."""

from __future__ import annotations

from fastapi import APIRouter, Request

from sam2_trt.core.specs import DYNAMIC_AXES

from .security import MediaPathError

router = APIRouter(prefix="/api", tags=["server"])


@router.get("/health")
async def health(request: Request) -> dict:
    """Alive, with the backend, the open sessions and the queue."""
    server = request.app.state.server
    return {"status": "ok", "backend": server.model.backend.name, "sessions": len(server.store),
            "queued": server.scheduler.queued}


@router.get("/model")
async def model_info(request: Request) -> dict:
    """The loaded model and the limits a client must respect."""
    server = request.app.state.server
    meta, c = server.model.meta, server.config
    return {"model": meta.model_name, "image_size": meta.image_size, "backend": server.model.backend.name,
            "media_root": server.media is not None,
            "limits": {"max_upload_mb": c.max_upload_mb, "max_frames": c.max_frames, "max_side": c.max_side,
                       "max_sessions": c.max_sessions, "session_ttl_s": c.session_ttl,
                       "max_points_per_side": c.max_points_per_side, "max_objects": 255,
                       "max_points": DYNAMIC_AXES["points"].max},
            "batching": {"sessions_per_step": server.scheduler.batch_sessions,
                         "images_per_call": server.scheduler.batch_images}}


@router.get("/stats")
async def stats(request: Request) -> dict:
    """Graph calls by graph, and the scheduler's steps with how many sessions each carried."""
    server = request.app.state.server
    return {"graph_calls": dict(server.model.calls), "scheduler": server.scheduler.stats.as_json(),
            "sessions": {"open": len(server.store), "evicted": server.store.evicted, "expired": server.store.expired}}


@router.get("/media")
async def media(request: Request, path: str = "") -> dict:
    """The videos, images and folders under --media-root/`path` (404 when the server has no media root)."""
    server = request.app.state.server
    if server.media is None:
        raise MediaPathError(404, "this server has no media root (start it with --media-root DIR)")
    return {"path": path, "entries": server.media.listing(path)}
