"""Stopping the server (SIGTERM) while a propagation and an export run: the export finishes or leaves nothing,
the propagation is told, uploads are removed, and the process exits cleanly."""

import json
import threading
import time
import zipfile

from tests.serve.live import start_server


def test_shutdown_finishes_or_cancels_and_leaves_no_half_written_export(tiny256_dir, media_root, tmp_path):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    server = start_server(tiny256_dir, tmp_path, "--media-root", media_root)
    events, exports = [], []
    with server.client() as c:
        upload = c.post("/api/videos?name=demo.mp4", content=(media_root / "demo_clip.mp4").read_bytes())
        assert upload.status_code == 201, upload.text
        sid = upload.json()["session_id"]
        c.post(f"/api/videos/{sid}/prompts", json={"frame": 0, "obj_id": 1, "points": [[210, 350]],
                                                    "labels": [1]}).raise_for_status()
        assert len(list((server.dirs["work"] / "uploads").iterdir())) == 1
        first_frame = threading.Event()

        def track():
            with connect(f"{server.ws_url}/api/videos/{sid}/propagate", open_timeout=30) as ws:
                ws.send(json.dumps({}))
                try:
                    for message in ws:
                        events.append(json.loads(message))
                        first_frame.set()
                except ConnectionClosed as e:
                    events.append({"type": "closed", "code": e.rcvd.code if e.rcvd else None})

        def export():
            with server.client() as c2:
                try:
                    exports.append(c2.get(f"/api/videos/{sid}/export.zip"))
                except Exception as e:  # noqa: BLE001 - the connection may close under it: that is allowed
                    exports.append(e)

        tracker = threading.Thread(target=track)
        tracker.start()
        assert first_frame.wait(120)
        exporter = threading.Thread(target=export)
        exporter.start()
        time.sleep(0.2)
        t = time.monotonic()
        assert server.stop(timeout=90) == 0, server.output()[-3000:]
        assert time.monotonic() - t < 60
        tracker.join(30)
        exporter.join(30)
    # the propagation was told it ended early (an event, or the socket closing with "going away")
    assert events[-1]["type"] in ("cancelled", "closed"), events[-3:]
    assert sum(e["type"] == "frame" for e in events) < 48
    # the export finished (a complete zip) or left nothing; never a partial file under any name
    leftovers = list(server.dirs["exports"].iterdir())
    assert all(p.suffix == ".zip" and not p.name.startswith(".") for p in leftovers), leftovers
    for p in leftovers:
        with zipfile.ZipFile(p) as z:
            assert z.testzip() is None and len(z.namelist()) == 48 + 1
    if exports and not isinstance(exports[0], Exception) and exports[0].status_code == 200:
        assert leftovers  # a delivered export is also kept
    assert not (server.dirs["work"] / "uploads").exists() or not any((server.dirs["work"] / "uploads").iterdir())
