"""The ASGI application: FastAPI routes over one Server (server.py), the web page, and errors as HTTP statuses.

    app = create_app(ServeConfig(...), SAM2Model.load(model_dir, backend="onnxruntime-cpu"))
    uvicorn.run(app, host=..., port=...)          # what `sam2-trt serve` does

Every error a client can cause is a 4xx with {"detail": "<one line naming the field or value and the fix>"}:
422 bad input (field validation, and the runtime's own ValueError), 404 unknown session or
media path, 403 outside the media root, 409 a session that cannot take the call now (propagating, no prompts),
413 over a limit, 503 (with Retry-After) a full queue or a stopping server.
"""

from __future__ import annotations

import asyncio
import contextlib
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from sam2_trt.core.errors import Sam2TrtError, TrackingError, VideoError
from sam2_trt.core.specs import DYNAMIC_AXES

from .config import ServeConfig
from .scheduler import Busy, ShuttingDown
from .security import MediaPathError, RequestGuard
from .server import Server, TooLarge
from .sessions import SessionBusy, SessionNotFound

EXPIRY_POLL_S = 1.0


def field_errors(errors: list) -> str:
    """pydantic's errors -> "points[0]: Input should be a valid number; labels: ..." (the body prefix dropped)."""
    out = []
    for e in errors:
        loc = [p for p in e.get("loc", ()) if p not in ("body", "query", "path")]
        name = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        msg = e.get("msg", "invalid").removeprefix("Value error, ")
        out.append(f"{name}: {msg}" if name and not msg.startswith(f"{name}:") else msg)
    return "; ".join(out)


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def create_app(config: ServeConfig, model, batch_sessions: int = DYNAMIC_AXES["frames"].max,
               batch_images: int = DYNAMIC_AXES["images"].max) -> FastAPI:
    """The application for `model` (an opened SAM2Model) under `config`; batch_sessions / batch_images: the most
    video sessions tracked in one step and images encoded in one call (1: no batching across clients)."""
    server = Server(config, model, batch_sessions=batch_sessions, batch_images=batch_images)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        server.start()
        expiry = asyncio.create_task(_expire_sessions(server))
        try:
            yield
        finally:
            expiry.cancel()
            await asyncio.to_thread(server.stop)

    app = FastAPI(title="sam2-trt serve", version="1", lifespan=lifespan,
                  description="SAM 2 segmentation and video tracking on one loaded model, for many clients.")
    app.state.server = server
    _install_error_handlers(app)
    from .routes_images import router as images
    from .routes_system import router as system
    from .routes_videos import router as videos

    for router in (system, images, videos):
        app.include_router(router)
    static = resources.files("sam2_trt.serve") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(str(static / "index.html"), headers={"Cache-Control": "no-store"})

    app.add_middleware(RequestGuard, config=config)
    return app


async def _expire_sessions(server: Server) -> None:
    while True:
        await asyncio.sleep(EXPIRY_POLL_S)
        server.store.expire()


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, e: RequestValidationError):
        return _error(422, field_errors(e.errors()))

    @app.exception_handler(SessionNotFound)
    async def not_found(request: Request, e: SessionNotFound):
        return _error(404, str(e))

    @app.exception_handler(MediaPathError)
    async def media(request: Request, e: MediaPathError):
        return _error(e.status, str(e))

    @app.exception_handler(TooLarge)
    async def too_large(request: Request, e: TooLarge):
        return _error(413, str(e))

    @app.exception_handler(Busy)
    async def busy(request: Request, e: Busy):
        return _error(503, str(e), {"Retry-After": str(e.retry_after)})

    @app.exception_handler(ShuttingDown)
    async def stopping(request: Request, e: ShuttingDown):
        return _error(503, str(e), {"Retry-After": "5"})

    @app.exception_handler(SessionBusy)
    async def session_busy(request: Request, e: SessionBusy):
        return _error(409, str(e))

    @app.exception_handler(TrackingError)
    async def tracking(request: Request, e: TrackingError):
        return _error(409, str(e))

    @app.exception_handler(VideoError)
    async def video(request: Request, e: VideoError):
        return _error(422, str(e))

    @app.exception_handler(Sam2TrtError)
    async def runtime_error(request: Request, e: Sam2TrtError):
        return _error(422, str(e))

    @app.exception_handler(ValueError)  # the runtime's checks of prompts, masks and videos: the message says what
    async def bad_input(request: Request, e: ValueError):
        return _error(422, str(e))
