"""Who may talk to the server, and which files it may open.

- RequestGuard (ASGI middleware) checks every request and WebSocket before the app sees it:
  * Host: on a loopback bind only loopback host names are served, so a web page on another origin cannot reach
    the server through DNS rebinding (a name it controls that resolves to 127.0.0.1);
  * Origin: a browser request from another origin is refused (403), so a page elsewhere cannot make the browser
    create sessions or read files here (CSRF; the API never reads cookies either);
  * token: with --token, every /api request carries `Authorization: Bearer <token>` and every WebSocket the
    header or the subprotocol `bearer.<token>` (a browser cannot set WebSocket headers); compared in constant
    time. The page and its static files carry no data and are served without it.
- MediaRoot resolves a client's relative path inside --media-root and nowhere else: no absolute paths, no `..`
  component, no NUL or backslash, and the resolved path (symlinks followed) must still be inside the root.
"""

from __future__ import annotations

import hmac
import json
import os
from pathlib import Path, PurePosixPath

from .config import ServeConfig, is_loopback

WS_PROTOCOL = "sam2-trt"  # the subprotocol the page asks for next to bearer.<token>
BEARER_PROTOCOL_PREFIX = "bearer."
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
PROTECTED_PREFIX = "/api"


def _headers(scope) -> dict:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _host_name(host: str) -> str:
    """"127.0.0.1:8000" -> "127.0.0.1"; "[::1]:8000" -> "[::1]"."""
    if host.startswith("["):
        return host[: host.index("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class RequestGuard:
    """ASGI middleware: Host, Origin and bearer-token checks (module docstring) on http and websocket scopes."""

    def __init__(self, app, config: ServeConfig):
        self.app = app
        self.token = config.token
        self.loopback = is_loopback(config.host)

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = _headers(scope)
        refusal = self._refusal(scope, headers)
        if refusal is None:
            return await self.app(scope, receive, send)
        status, message = refusal
        if scope["type"] == "websocket":
            # Before accept, a close is the handshake's HTTP 403: the client learns nothing else.
            return await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        body = json.dumps({"detail": message}).encode()
        extra = [(b"www-authenticate", b'Bearer realm="sam2-trt"')] if status == 401 else []
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                *extra]})
        await send({"type": "http.response.body", "body": body})

    def _refusal(self, scope, headers: dict) -> tuple[int, str] | None:
        host = headers.get("host", "")
        if self.loopback and _host_name(host) not in LOOPBACK_HOSTS:
            return 403, (f"Host {host!r} is not served: this server is bound to loopback and answers only "
                         f"127.0.0.1, localhost or [::1]")
        origin = headers.get("origin")
        if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
            return 403, f"cross-origin request from {origin!r} refused: open the page this server serves"
        if self.token is None or not scope["path"].startswith(PROTECTED_PREFIX):
            return None
        if self._token_ok(scope, headers):
            return None
        return 401, "missing or wrong bearer token: send the header Authorization: Bearer <token> (--token)"

    def _token_ok(self, scope, headers: dict) -> bool:
        expected = self.token.encode()
        given = headers.get("authorization", "")
        if given.startswith("Bearer ") and hmac.compare_digest(given[len("Bearer "):].encode(), expected):
            return True
        if scope["type"] == "websocket":
            offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
            return any(p.startswith(BEARER_PROTOCOL_PREFIX)
                       and hmac.compare_digest(p[len(BEARER_PROTOCOL_PREFIX):].encode(), expected) for p in offered)
        return False


class MediaPathError(Exception):
    """A client's path cannot be opened: status 403 (outside the media root) or 404 (not there)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class MediaRoot:
    """The folder a client may open files from by relative path (--media-root)."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve(strict=True)

    def resolve(self, rel, what: str = "path") -> Path:
        """A client's relative path -> the real path inside the root (symlinks resolved), or MediaPathError."""
        if not isinstance(rel, str):
            raise MediaPathError(422, f"{what} must be a string path relative to the media root")
        if "\x00" in rel or "\\" in rel:
            raise MediaPathError(403, f"{what} {rel!r} contains a NUL byte or a backslash; use / between folders")
        pure = PurePosixPath(rel)
        if pure.is_absolute() or rel.startswith("~"):
            raise MediaPathError(403, f"{what} {rel!r} is absolute; give a path relative to the media root")
        if ".." in pure.parts:
            raise MediaPathError(403, f"{what} {rel!r} leaves the media root ('..' is not allowed)")
        candidate = self.root.joinpath(*pure.parts) if pure.parts else self.root
        try:
            real = candidate.resolve(strict=True)
        except (FileNotFoundError, NotADirectoryError):
            raise MediaPathError(404, f"{what} {rel!r} does not exist under the media root") from None
        except (OSError, RuntimeError) as e:  # a symlink loop, a permission problem
            raise MediaPathError(403, f"{what} {rel!r} cannot be opened: {e}") from None
        if not real.is_relative_to(self.root):
            raise MediaPathError(403, f"{what} {rel!r} leads outside the media root (through a symbolic link)")
        return real

    def listing(self, rel: str = "") -> list:
        """[{name, kind}] of a folder: sub-folders ("dir"), videos, images; what links outside is left out."""
        folder = self.resolve(rel)
        if not folder.is_dir():
            raise MediaPathError(404, f"path {rel!r} is not a folder")
        entries = []
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            try:
                real = Path(entry.path).resolve(strict=True)
            except (OSError, RuntimeError):
                continue
            if not real.is_relative_to(self.root) or entry.name.startswith("."):
                continue
            suffix = real.suffix.lower()
            kind = ("dir" if real.is_dir() else "video" if suffix in VIDEO_EXTENSIONS
                    else "image" if suffix in IMAGE_EXTENSIONS else None)
            if kind is not None:
                entries.append({"name": entry.name, "kind": kind,
                                "path": str(PurePosixPath(rel) / entry.name) if rel else entry.name})
        return entries
