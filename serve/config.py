"""What a `sam2-trt serve` process is allowed to do: its bind address, token, media root and every limit.

One frozen ServeConfig, made by the CLI (sam2_trt/cli/serve.py) or by a program embedding the app, checked once
here: a non-loopback bind without a token is refused, a token must be long enough to resist guessing, every
limit is a positive number.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

LOOPBACK_NAMES = ("localhost",)
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]{16,256}")  # RFC 6750 token68-safe, and a WebSocket subprotocol token


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and "localhost" are loopback; anything else (0.0.0.0, a LAN address, a name) is not."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None  # bearer token every API request and WebSocket must carry (required off loopback)
    media_root: Path | None = None  # videos and images the server may open by path (nothing outside it)
    work_dir: Path | None = None  # uploads live here (default: a temporary directory removed at exit)
    export_dir: Path | None = None  # finished exports (default: <work_dir>/exports)
    max_sessions: int = 16  # open sessions; past it the least recently used one is closed
    session_ttl: float = 1800.0  # seconds a session may stay idle before it is closed
    max_upload_mb: float = 512.0  # largest upload (image or video file)
    max_frames: int = 3000  # longest video accepted
    max_side: int = 4096  # widest or tallest image or video frame accepted, in pixels
    max_queue: int = 32  # graph jobs waiting for the model; more get 503 with Retry-After
    max_points_per_side: int = 32  # largest automatic-mask grid a request may ask for

    def __post_init__(self):
        for name in ("port", "max_sessions", "max_frames", "max_side", "max_queue", "max_points_per_side"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be a whole number >= 1, got {value!r}")
        for name in ("session_ttl", "max_upload_mb"):
            if not getattr(self, name) > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)!r}")
        if self.token is not None and not TOKEN_PATTERN.fullmatch(self.token):
            raise ValueError("--token must be 16 to 256 characters from A-Z a-z 0-9 . _ ~ - (e.g. the output of "
                             "python -c 'import secrets; print(secrets.token_urlsafe(32))')")
        if not is_loopback(self.host) and self.token is None:
            raise ValueError(f"--host {self.host} is reachable from other machines; refusing to serve without "
                             f"--token (every request must then carry it), or bind 127.0.0.1")
        if self.media_root is not None and not Path(self.media_root).is_dir():
            raise ValueError(f"--media-root {self.media_root} is not a directory")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)
