"""A real `sam2-trt serve` process on 127.0.0.1 for the tests: started from the CLI in a fresh interpreter on a
free port, waited for, and stopped with SIGTERM (as a user's Ctrl-C or a service manager would)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from tests.conftest import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    process: subprocess.Popen
    port: int
    token: str | None
    log: Path
    dirs: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def client(self, token: str | None = "default", timeout: float = 300) -> httpx.Client:
        token = self.token if token == "default" else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_server(model_dir: Path, tmp: Path, *args, token: str | None = None, wait: float = 180) -> LiveServer:
    """`sam2-trt serve model_dir --port <free> [--token] ARGS` with its own work and export folders under tmp."""
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    dirs = {"work": tmp / "work", "exports": tmp / "exports"}
    cmd = [sys.executable, "-m", "sam2_trt.cli", "serve", str(model_dir), "--port", str(port), "--backend",
           "onnxruntime-cpu", "--work-dir", str(dirs["work"]), "--export-dir", str(dirs["exports"]),
           *([f"--token={token}"] if token else []), *map(str, args)]  # "=": a token may begin with "-"
    log = tmp / "server.log"
    with open(log, "w") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    server = LiveServer(process, port, token, log, dirs)
    deadline = time.monotonic() + wait
    with server.client() as c:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited ({process.returncode}):\n{server.output()[-3000:]}")
            try:
                if c.get("/api/health", timeout=5).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            time.sleep(0.25)
    server.stop()
    raise RuntimeError(f"the server did not answer within {wait} s:\n{server.output()[-3000:]}")


def decode_rle(rle: dict) -> np.ndarray:
    """COCO RLE {"size", "counts"} -> [H, W] bool."""
    from pycocotools import mask as mask_utils

    return mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)
