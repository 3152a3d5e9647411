"""Checkpoint download against a local HTTP server: full, resumed, truncated, lying, missing, unreachable, cached."""

import http.server
import json
import os
import socket
import threading
import time

import pytest

from sam2_trt.core.metadata import sha256_file
from sam2_trt.export.configs import resolve_model_name
from sam2_trt.export.download import (BASE_URL_ENV, CheckpointDownloadError, checkpoint_url, download_checkpoint,
                                  resolve_checkpoint)
from tests.conftest import run_cli

TINY = resolve_model_name("sam2.1_hiera_t")
PAYLOAD = os.urandom(300_000)


class Server:
    """Serves PAYLOAD at /092824/sam2.1_hiera_tiny.pt with Range support; `mode` makes it misbehave."""

    def __init__(self, payload=PAYLOAD):
        self.payload, self.mode, self.requests = payload, "ok", []  # requests: (path, Range header, bytes sent)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/092824/sam2.1_hiera_tiny.pt" or server.mode == "404":
                    server.requests.append((self.path, self.headers.get("Range"), 0))
                    self.send_error(404)
                    return
                data, start = server.payload, 0
                rng = self.headers.get("Range")
                if rng and server.mode != "ignore-range":
                    start = int(rng.removeprefix("bytes=").rstrip("-"))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                announced = len(body) + (1000 if server.mode == "lie" else 0)
                if server.mode == "truncate":
                    body = body[: len(body) // 2]
                # recorded before the body goes out: the client may finish (and the test look) before this
                # thread runs again
                server.requests.append((self.path, rng, len(body)))
                self.send_header("Content-Length", str(announced))
                self.end_headers()
                self.wfile.write(body)
                if server.mode in ("lie", "truncate"):
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server(monkeypatch):
    s = Server()
    monkeypatch.setenv(BASE_URL_ENV, s.url)
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def _download(tmp_path):
    return download_checkpoint(TINY, cache_dir=tmp_path, progress=False, log=lambda m: None)


def test_official_urls(monkeypatch):
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    assert checkpoint_url(TINY) == "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_tiny.pt"
    assert (checkpoint_url(resolve_model_name("sam2_hiera_b+"))
            == "https://dl.fbaipublicfiles.com/segment_anything_2/072824/sam2_hiera_base_plus.pt")


def test_full_download(server, tmp_path):
    path = _download(tmp_path)
    assert path == tmp_path / "sam2.1_hiera_tiny.pt" and path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sam2.1_hiera_tiny.pt"]
    assert server.requests == [("/092824/sam2.1_hiera_tiny.pt", None, len(PAYLOAD))]


def test_resume_from_partial_file(server, tmp_path):
    (tmp_path / "sam2.1_hiera_tiny.pt.part").write_bytes(PAYLOAD[:100_000])
    path = _download(tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert server.requests == [("/092824/sam2.1_hiera_tiny.pt", "bytes=100000-", len(PAYLOAD) - 100_000)]
    assert not (tmp_path / "sam2.1_hiera_tiny.pt.part").exists()


def test_server_that_ignores_range_restarts_cleanly(server, tmp_path):
    (tmp_path / "sam2.1_hiera_tiny.pt.part").write_bytes(b"x" * 1000)  # would corrupt the file if appended to
    server.mode = "ignore-range"
    assert _download(tmp_path).read_bytes() == PAYLOAD


def test_complete_part_file_is_finished_without_a_body(server, tmp_path):
    (tmp_path / "sam2.1_hiera_tiny.pt.part").write_bytes(PAYLOAD)

    class RangeNotSatisfiable(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(PAYLOAD)}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server.httpd.RequestHandlerClass = RangeNotSatisfiable
    assert _download(tmp_path).read_bytes() == PAYLOAD


@pytest.mark.parametrize("mode", ["truncate", "lie"])
def test_size_mismatch_leaves_no_final_file(server, tmp_path, mode):
    server.mode = mode
    with pytest.raises(CheckpointDownloadError) as e:
        _download(tmp_path)
    assert "but the server announced" in str(e.value) or "connection broke" in str(e.value)
    assert not (tmp_path / "sam2.1_hiera_tiny.pt").exists()
    if mode == "truncate":  # a prefix of the file: kept, and the next run completes it
        assert "run again to resume" in str(e.value)
        server.mode = "ok"
        assert _download(tmp_path).read_bytes() == PAYLOAD
        assert server.requests[-1][1] == f"bytes={len(PAYLOAD) // 2}-"


def test_http_error_is_clear(server, tmp_path):
    server.mode = "404"
    with pytest.raises(CheckpointDownloadError) as e:
        _download(tmp_path)
    msg = str(e.value)
    assert "HTTP 404" in msg and server.url + "/092824/sam2.1_hiera_tiny.pt" in msg
    assert "--checkpoint PATH" in msg and "--random-weights" in msg
    assert list(tmp_path.iterdir()) == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv(BASE_URL_ENV, f"http://127.0.0.1:{_closed_port()}")
    t = time.time()
    with pytest.raises(CheckpointDownloadError) as e:
        _download(tmp_path)
    assert time.time() - t < 30  # no retry loop: a refused connection is reported at once (generous for loaded CI)
    assert "could not download the sam2.1_hiera_t checkpoint" in str(e.value) and "refused" in str(e.value).lower()


def test_cached_file_is_reused_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv(BASE_URL_ENV, f"http://127.0.0.1:{_closed_port()}")
    (tmp_path / "sam2.1_hiera_tiny.pt").write_bytes(b"cached")
    assert _download(tmp_path).read_bytes() == b"cached"


def test_resolve_checkpoint(server, tmp_path, monkeypatch):
    monkeypatch.setenv("SAM2_TRT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    got = resolve_checkpoint("sam2.1_hiera_tiny", "sam2.1_hiera_t", log=lambda m: None)
    assert got == str(tmp_path / "cache" / "checkpoints" / "sam2.1_hiera_tiny.pt")
    (tmp_path / "sam2.1_hiera_tiny").write_bytes(b"local")  # a file of that name wins over the model name
    assert resolve_checkpoint("sam2.1_hiera_tiny", "sam2.1_hiera_t") == "sam2.1_hiera_tiny"
    assert resolve_checkpoint("other.pt", "sam2.1_hiera_t") == "other.pt"  # left for the loader: "not found"
    with pytest.raises(Exception, match="names the official sam2.1_hiera_s checkpoint, but --config is sam2.1_hiera_t"):
        resolve_checkpoint("sam2.1_hiera_small", "sam2.1_hiera_t")
    assert len(server.requests) == 1


def test_export_by_name_offline_says_how_to_proceed(tmp_path):
    env = {BASE_URL_ENV: f"http://127.0.0.1:{_closed_port()}", "SAM2_TRT_CACHE": str(tmp_path / "cache")}
    proc = run_cli("export", "--config", "sam2.1_hiera_t", "--checkpoint", "sam2.1_hiera_tiny",
                   "--out", tmp_path / "m", env=env, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "sam2-trt export: error: could not download the sam2.1_hiera_t checkpoint" in proc.stderr
    assert "--random-weights" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "m").exists()


def test_export_by_name_downloads_and_exports(tmp_path, tiny_checkpoint):
    s = Server(tiny_checkpoint.read_bytes())
    try:
        env = {BASE_URL_ENV: s.url, "SAM2_TRT_CACHE": str(tmp_path / "cache")}
        proc = run_cli("export", "--config", "sam2.1_hiera_t", "--checkpoint", "sam2.1_hiera_tiny", "--image-size",
                       "256", "--out", tmp_path / "m", env=env, timeout=600)
    finally:
        s.httpd.shutdown()
        s.httpd.server_close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    cached = tmp_path / "cache" / "checkpoints" / "sam2.1_hiera_tiny.pt"
    assert cached.read_bytes() == tiny_checkpoint.read_bytes()
    meta = json.loads((tmp_path / "m" / "sam2_trt.json").read_text())
    assert meta["checkpoint"]["file"] == "sam2.1_hiera_tiny.pt"
    assert meta["checkpoint"]["sha256"] == sha256_file(tiny_checkpoint)


def test_ctrl_c_keeps_the_part_for_resuming(server, tmp_path, monkeypatch):
    import http.client

    from sam2_trt.export import download

    monkeypatch.setattr(download, "CHUNK", 50_000)
    read, calls = http.client.HTTPResponse.read, []

    def interrupted_read(self, amt=None):
        calls.append(amt)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return read(self, amt)

    monkeypatch.setattr(http.client.HTTPResponse, "read", interrupted_read)
    with pytest.raises(KeyboardInterrupt):
        _download(tmp_path)
    assert _entries(tmp_path) == ["sam2.1_hiera_tiny.pt.part"]
    assert (tmp_path / "sam2.1_hiera_tiny.pt.part").read_bytes() == PAYLOAD[:100_000]
    monkeypatch.setattr(http.client.HTTPResponse, "read", read)
    assert _download(tmp_path).read_bytes() == PAYLOAD
    assert server.requests[-1][1:] == ("bytes=100000-", len(PAYLOAD) - 100_000)


def _entries(d):
    return sorted(p.name for p in d.iterdir())
