"""Safe by default, rule by rule: the token on every request and WebSocket, loopback unless a token is set, Host
and Origin checks, unguessable session ids that only reach their own session, and --media-root confinement
(`..`, absolute paths, percent-encoded tricks, backslashes, NUL, symbolic links)."""

import json
import re

import pytest

from tests.conftest import run_cli
from tests.serve.conftest import TOKEN

API_CALLS = [  # one of every kind of route: each must refuse a request without the token
    ("GET", "/api/health"), ("GET", "/api/model"), ("GET", "/api/stats"), ("GET", "/api/media"),
    ("POST", "/api/images"), ("POST", "/api/images/open"), ("GET", "/api/images/x"),
    ("POST", "/api/images/x/predict"), ("POST", "/api/images/x/automatic"), ("DELETE", "/api/images/x"),
    ("POST", "/api/videos"), ("POST", "/api/videos/open"), ("GET", "/api/videos/x"),
    ("GET", "/api/videos/x/frames/0"), ("GET", "/api/videos/x/masks/0"), ("POST", "/api/videos/x/prompts"),
    ("POST", "/api/videos/x/prompts/mask"), ("POST", "/api/videos/x/clear"), ("DELETE", "/api/videos/x/objects/1"),
    ("POST", "/api/videos/x/reset"), ("GET", "/api/videos/x/masks.json"), ("GET", "/api/videos/x/export.zip"),
    ("DELETE", "/api/videos/x"),
]


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789", TOKEN + "x", TOKEN[:-1]])
@pytest.mark.parametrize("method, path", API_CALLS)
def test_every_api_request_needs_the_token(live, method, path, token):
    with live.client(token=token) as c:
        r = c.request(method, path, json={} if method == "POST" else None)
    assert r.status_code == 401, (method, path, r.text)
    assert r.headers["www-authenticate"].startswith("Bearer") and "bearer token" in r.json()["detail"]


def test_the_page_is_served_without_the_token_and_the_api_with_it(live):
    with live.client(token=None) as c:
        page = c.get("/")
        assert page.status_code == 200 and "<canvas id=\"canvas\"" in page.text
        assert c.get("/static/app.js").status_code == 200
        assert "//cdn" not in page.text and "https://" not in page.text  # works offline
    with live.client() as c:
        assert c.get("/api/health").json()["status"] == "ok"


def _ws_handshake(live, **kwargs):
    """Connect to a propagation of an unknown session: the first event, once the handshake passed."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with connect(f"{live.ws_url}/api/videos/nothing/propagate", open_timeout=30, **kwargs) as ws:
        try:
            ws.send(json.dumps({}))
        except ConnectionClosed:  # the server answered the unknown session at once and closed
            pass
        return json.loads(ws.recv())


@pytest.mark.parametrize("kwargs", [{}, {"subprotocols": ["sam2-trt", "bearer.wrong-token-0123456789"]},
                                    {"additional_headers": {"Authorization": "Bearer nope-nope-nope-nope"}}])
def test_a_websocket_needs_the_token(live, kwargs):
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as e:
        _ws_handshake(live, **kwargs)
    assert e.value.response.status_code == 403


@pytest.mark.parametrize("kwargs", [{"subprotocols": ["sam2-trt", f"bearer.{TOKEN}"]},
                                    {"additional_headers": {"Authorization": f"Bearer {TOKEN}"}}])
def test_a_websocket_with_the_token_gets_in(live, kwargs):
    event = _ws_handshake(live, **kwargs)  # in: the unknown session is the answer
    assert event["type"] == "error" and "no such video session" in event["detail"]


def test_a_non_loopback_bind_without_a_token_is_refused(tiny256_dir):
    for host in ("0.0.0.0", "192.168.1.10", "::"):
        proc = run_cli("serve", tiny256_dir, "--host", host, timeout=120)
        assert proc.returncode == 3 and "refusing to serve without --token" in proc.stderr, proc.stderr
    weak = run_cli("serve", tiny256_dir, "--token", "short", timeout=120)
    assert weak.returncode == 3 and "--token must be 16 to 256 characters" in weak.stderr
    from_env = run_cli("serve", tiny256_dir, "--host", "0.0.0.0", env={"SAM2_TRT_TOKEN": "short"}, timeout=120)
    assert from_env.returncode == 3 and "--token must be 16 to 256 characters" in from_env.stderr  # it was read


def test_config_rules():
    from sam2_trt.serve.config import ServeConfig, is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com"))
    ServeConfig(host="0.0.0.0", token=TOKEN)  # allowed with a token
    with pytest.raises(ValueError, match="--max-sessions must be a whole number"):
        ServeConfig(max_sessions=0)


@pytest.mark.parametrize("host", ["evil.example:80", "attacker.test", "192.168.0.5:8000"])
def test_other_host_names_are_refused_on_loopback(live, host):
    """DNS rebinding: a page on another site whose name resolves to 127.0.0.1 still sends its own Host."""
    with live.client() as c:
        r = c.get("/api/health", headers={"Host": host})
    assert r.status_code == 403 and "is not served" in r.json()["detail"]


def test_cross_origin_browser_requests_are_refused(live):
    with live.client() as c:
        r = c.post("/api/images/open", json={"path": "photo.png"}, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and "cross-origin" in r.json()["detail"]
        same = c.post("/api/images/open", json={"path": "photo.png"}, headers={"Origin": live.url})
        assert same.status_code == 201
        c.delete(f"/api/images/{same.json()['session_id']}")


def test_session_ids_are_unguessable_and_reach_only_their_own_session(client):
    ids = [client.post("/api/images/open", json={"path": "sub/small.png"}).json()["session_id"] for _ in range(6)]
    video = client.post("/api/videos/open", json={"path": "short.mp4"}).json()["session_id"]
    try:
        for sid in ids + [video]:
            assert re.fullmatch(r"[A-Za-z0-9_-]{32}", sid)  # 24 random bytes, URL-safe base64: 192 bits
        assert len(set(ids)) == len(ids)
        assert len({sid[:4] for sid in ids}) > 1  # nothing sequential or time-based in front
        near = ids[0][:-1] + ("A" if ids[0][-1] != "A" else "B")
        for probe in (near, ids[0].upper(), "0" * 32, ids[0] + "A"):
            r = client.get(f"/api/images/{probe}")
            assert r.status_code == 404 and ids[0] not in r.text
        # an image session's id does not open a video session, and the reverse
        assert client.get(f"/api/videos/{ids[0]}").status_code == 404
        assert client.post(f"/api/images/{video}/predict", json={"points": [[1, 1]], "labels": [1]}).status_code == 404
        detail = client.get(f"/api/videos/{near}").json()["detail"]
        assert detail == client.get(f"/api/videos/{ids[0]}").json()["detail"]  # unknown = other kind: no oracle
    finally:
        for sid in ids:
            client.delete(f"/api/images/{sid}")
        client.delete(f"/api/videos/{video}")


@pytest.mark.parametrize("path, status", [
    ("../outside/secret.png", 403), ("sub/../../outside/secret.png", 403), ("..", 403),
    ("/etc/passwd", 403), ("~/x.png", 403), ("sub\\..\\..\\outside", 403), ("photo.png\x00.jpg", 403),
    ("escape.png", 403), ("escape_dir/secret.png", 403), ("%2e%2e/outside/secret.png", 404),
    ("nothing.png", 404),
])
def test_media_paths_stay_inside_the_media_root(client, path, status):
    for kind in ("images", "videos"):
        r = client.post(f"/api/{kind}/open", json={"path": path})
        assert r.status_code == status, (kind, path, r.text)
        assert "secret" not in r.text.replace(path, "")  # nothing about the outside leaks


@pytest.mark.parametrize("query", ["..", "../outside", "%2e%2e", "%2E%2E%2Foutside", "%252e%252e", "/etc",
                                   "escape_dir", "sub/..%2F..%2Foutside"])
def test_listing_stays_inside_the_media_root(live, query):
    with live.client() as c:
        r = c.get(f"/api/media?path={query}")  # sent as written: the server decodes the query once
    assert r.status_code in (403, 404), (query, r.text)


def test_listing_shows_what_is_inside_and_hides_what_leads_out(client):
    entries = {e["name"]: e for e in client.get("/api/media").json()["entries"]}
    assert {"photo.png", "short.mp4", "demo_clip.mp4", "frames", "sub", "inside_link.png"} <= set(entries)
    assert "escape.png" not in entries and "escape_dir" not in entries
    assert entries["sub"]["kind"] == "dir" and entries["short.mp4"]["kind"] == "video"
    assert [e["path"] for e in client.get("/api/media?path=sub").json()["entries"]] == ["sub/small.png"]
    r = client.post("/api/images/open", json={"path": "inside_link.png"})  # a link that stays inside is fine
    assert r.status_code == 201
    client.delete(f"/api/images/{r.json()['session_id']}")


def test_without_a_media_root_nothing_opens_by_path(tiny256_dir, tmp_path):
    from tests.serve.live import start_server

    server = start_server(tiny256_dir, tmp_path)
    try:
        with server.client() as c:
            assert c.get("/api/media").status_code == 404
            r = c.post("/api/videos/open", json={"path": "short.mp4"})
            assert r.status_code == 422 and "no media root" in r.json()["detail"]
            assert c.get("/api/model").json()["media_root"] is False
    finally:
        server.stop()
