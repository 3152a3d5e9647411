"""Video sessions over HTTP and WebSocket against a live server: every endpoint, propagation in every direction
with progress and cancellation, exports, and every error; the masks equal (bit for bit) to the library's
SAM2VideoPredictor on the same file with the same prompts."""

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.serve.conftest import SHORT_FRAMES, TOKEN
from tests.serve.live import decode_rle


def propagate(live, sid, options, on_event=None, token=TOKEN) -> list:
    """Every event of one propagation over the WebSocket; on_event(ws, event) may answer (e.g. cancel)."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    events = []
    with connect(f"{live.ws_url}/api/videos/{sid}/propagate", subprotocols=["sam2-trt", f"bearer.{token}"],
                 open_timeout=30) as ws:
        ws.send(json.dumps(options))
        try:
            for message in ws:
                event = json.loads(message)
                events.append(event)
                if on_event is not None:
                    on_event(ws, event)
        except ConnectionClosed:  # the server went away (shutdown)
            pass
    return events


def served_masks(objects) -> dict:
    return {o["obj_id"]: decode_rle(o["segmentation"]) for o in objects}


def assert_same(objects, obj_ids, logits):
    """A served frame's masks against the library's (obj_ids, logits [O, 1, H, W])."""
    got = served_masks(objects)
    assert sorted(got) == sorted(int(o) for o in obj_ids)
    for k, o in enumerate(obj_ids):
        assert np.array_equal(got[int(o)], logits[k, 0] > 0), f"object {o}"


@pytest.fixture
def library(library_model, media_root):
    from sam2_trt.runtime.video.predictor import SAM2VideoPredictor

    predictor = SAM2VideoPredictor(library_model)
    states = []

    def open_(name):
        states.append(predictor.init_state(str(media_root / name)))
        return states[-1]

    yield predictor, open_
    for s in states:
        s.close()


@pytest.fixture
def video(client):
    sessions = []

    def open_(path="short.mp4"):
        r = client.post("/api/videos/open", json={"path": path})
        assert r.status_code == 201, r.text
        sessions.append(r.json()["session_id"])
        return r.json()

    yield open_
    for sid in sessions:
        client.delete(f"/api/videos/{sid}")


def test_prompts_and_propagation_equal_the_library(live, client, video, library):
    predictor, open_library = library
    info = video()
    assert (info["num_frames"], info["kind"], info["obj_ids"]) == (SHORT_FRAMES, "video", [])
    sid, state = info["session_id"], open_library("short.mp4")

    r = client.post(f"/api/videos/{sid}/prompts", json={"frame": 0, "obj_id": 1, "points": [[100, 80]],
                                                         "labels": [1]})
    assert r.status_code == 200, r.text
    assert_same(r.json()["objects"], *predictor.add_new_points_or_box(state, 0, 1, points=[[100, 80]],
                                                                      labels=[1])[1:])
    r = client.post(f"/api/videos/{sid}/prompts", json={"frame": 0, "obj_id": 2, "box": [180, 100, 260, 200]})
    assert_same(r.json()["objects"], *predictor.add_new_points_or_box(state, 0, 2, box=[180, 100, 260, 200])[1:])
    assert r.json()["obj_ids"] == [1, 2]

    events = propagate(live, sid, {"direction": "forward"})
    assert [e["type"] for e in events] == ["started"] + ["frame"] * SHORT_FRAMES + ["done"]
    assert events[0]["total"] == SHORT_FRAMES and events[-1]["frames"] == SHORT_FRAMES
    assert [e["done"] for e in events[1:-1]] == list(range(1, SHORT_FRAMES + 1))
    expected = list(predictor.propagate_in_video(state))
    for event, (frame, obj_ids, logits) in zip(events[1:-1], expected):
        assert event["frame"] == frame
        assert_same(event["objects"], obj_ids, logits)

    # a refinement click on a tracked frame, then both directions from it
    r = client.post(f"/api/videos/{sid}/prompts", json={"frame": 3, "obj_id": 1, "points": [[90, 70]],
                                                         "labels": [0], "clear_old_points": False})
    assert_same(r.json()["objects"], *predictor.add_new_points_or_box(
        state, 3, 1, points=[[90, 70]], labels=[0], clear_old_points=False)[1:])
    events = propagate(live, sid, {"direction": "backward", "start_frame": 3})
    expected = list(predictor.propagate_in_video(state, start_frame_idx=3, reverse=True))
    assert [e["frame"] for e in events if e["type"] == "frame"] == [3, 2, 1, 0]
    for event, (frame, obj_ids, logits) in zip(events[1:-1], expected):
        assert_same(event["objects"], obj_ids, logits)
    masks = client.get(f"/api/videos/{sid}/masks/2").json()
    assert masks["frame"] == 2
    assert_same(masks["objects"], *expected[1][1:])


def test_both_directions_and_max_frames(live, client, video, library):
    predictor, open_library = library
    sid, state = video()["session_id"], open_library("short.mp4")
    client.post(f"/api/videos/{sid}/prompts", json={"frame": 2, "obj_id": 5, "points": [[120, 100]],
                                                     "labels": [1]}).raise_for_status()
    predictor.add_new_points_or_box(state, 2, 5, points=[[120, 100]], labels=[1])
    events = propagate(live, sid, {"direction": "both", "max_frames": 2})
    frames = [e["frame"] for e in events if e["type"] == "frame"]
    assert frames == [2, 3, 4, 1, 0] and events[0]["total"] == 5  # the start frame is sent once
    expected = {f: (ids, m) for f, ids, m in predictor.propagate_in_video(state, max_frame_num_to_track=2)}
    expected.update({f: (ids, m) for f, ids, m in predictor.propagate_in_video(state, max_frame_num_to_track=2,
                                                                             reverse=True) if f not in expected})
    for e in events[1:-1]:
        assert_same(e["objects"], *expected[e["frame"]])


def test_mask_prompt_clear_remove_and_reset(client, video, library, media_root):
    predictor, open_library = library
    sid, state = video()["session_id"], open_library("short.mp4")
    from sam2_trt.runtime.video_writers import coco_rle

    disk = np.zeros((240, 320), bool)
    disk[40:120, 60:160] = True
    r = client.post(f"/api/videos/{sid}/prompts/mask", json={"frame": 1, "obj_id": 3,
                                                              "mask": coco_rle(disk)["segmentation"]})
    assert r.status_code == 200, r.text
    assert_same(r.json()["objects"], *predictor.add_new_mask(state, 1, 3, disk)[1:])
    r = client.post(f"/api/videos/{sid}/prompts", json={"frame": 1, "obj_id": 4, "points": [[250, 200]],
                                                         "labels": [1]})
    assert_same(r.json()["objects"], *predictor.add_new_points_or_box(state, 1, 4, points=[[250, 200]],
                                                                      labels=[1])[1:])
    r = client.post(f"/api/videos/{sid}/clear", json={"frame": 1, "obj_id": 4})
    assert r.status_code == 200, r.text
    assert_same(r.json()["objects"], *predictor.clear_all_prompts_in_frame(state, 1, 4)[1:])
    r = client.delete(f"/api/videos/{sid}/objects/4")
    assert r.status_code == 200 and r.json()["obj_ids"] == [3]
    assert predictor.remove_object(state, 4)[0] == [3]
    r = client.post(f"/api/videos/{sid}/clear", json={"frame": 1})  # every object's prompts on the frame
    assert_same(r.json()["objects"], *predictor.clear_all_prompts_in_frame(state, 1, 3)[1:])
    assert [o["obj_id"] for o in client.get(f"/api/videos/{sid}/masks/1").json()["objects"]] == [3]
    r = client.post(f"/api/videos/{sid}/reset")
    assert r.status_code == 200 and r.json()["obj_ids"] == [] and r.json()["frames_with_masks"] == []


def test_cancel_stops_after_the_frame_under_way(live, client, video):
    sid = video("demo_clip.mp4")["session_id"]
    client.post(f"/api/videos/{sid}/prompts", json={"frame": 0, "obj_id": 1, "points": [[210, 350]],
                                                     "labels": [1]}).raise_for_status()
    busy = []

    def on_event(ws, event):
        if event["type"] == "frame" and event["done"] == 2:
            busy.append(client.post(f"/api/videos/{sid}/prompts", json={"frame": 5, "obj_id": 1,
                                                                         "points": [[1, 1]], "labels": [1]}))
            ws.send(json.dumps({"type": "cancel"}))

    events = propagate(live, sid, {}, on_event)
    assert busy[0].status_code == 409 and "propagating" in busy[0].json()["detail"]
    assert events[-1]["type"] == "cancelled" and events[-1]["reason"] == "cancelled by the client"
    sent = [e["frame"] for e in events if e["type"] == "frame"]
    assert 2 <= len(sent) <= 8 < events[0]["total"] == 48  # the 409 and the cancel arrive a step or two later
    assert client.get(f"/api/videos/{sid}").json()["propagating"] is False
    # after the cancellation the session takes prompts again, and a closed socket cancels too
    client.post(f"/api/videos/{sid}/prompts", json={"frame": 5, "obj_id": 1, "points": [[200, 300]],
                                                     "labels": [1]}).raise_for_status()


def test_export_zip_and_coco_json(live, client, video):
    sid = video()["session_id"]
    client.post(f"/api/videos/{sid}/prompts", json={"frame": 0, "obj_id": 1, "points": [[100, 80]],
                                                     "labels": [1]}).raise_for_status()
    client.post(f"/api/videos/{sid}/prompts", json={"frame": 0, "obj_id": 2, "box": [180, 100, 260, 200]})
    events = propagate(live, sid, {"max_frames": 3})
    tracked = {e["frame"]: served_masks(e["objects"]) for e in events if e["type"] == "frame"}
    assert sorted(tracked) == [0, 1, 2, 3]
    r = client.get(f"/api/videos/{sid}/export.zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        names = z.namelist()
        assert names == [f"masks/{f:05d}.png" for f in range(SHORT_FRAMES)] + ["masks.json"]
        for f in range(SHORT_FRAMES):
            labels = np.asarray(Image.open(io.BytesIO(z.read(f"masks/{f:05d}.png"))))
            for obj, mask in tracked.get(f, {}).items():
                assert np.array_equal(labels == obj, mask & ~((labels < obj) & (labels > 0)))
            if f not in tracked:
                assert not labels.any()
        doc = json.loads(z.read("masks.json"))
    assert (doc["height"], doc["width"], len(doc["frames"])) == (240, 320, SHORT_FRAMES)
    assert list(live.dirs["exports"].glob("*.zip")) and not list(live.dirs["exports"].glob(".*"))
    coco = client.get(f"/api/videos/{sid}/masks.json").json()
    assert [f["frame"] for f in coco["frames"]] == [0, 1, 2, 3]
    for f in coco["frames"]:
        for o in f["objects"]:
            assert np.array_equal(decode_rle(o["segmentation"]), tracked[f["frame"]][o["obj_id"]])


def test_frames_uploads_and_folders(client, video, media_root):
    from sam2_trt.runtime.video.frames import open_video

    info = video("frames")  # a folder of JPEG frames
    assert (info["num_frames"], info["width"], info["height"]) == (5, 320, 240)
    jpeg = client.get(f"/api/videos/{info['session_id']}/frames/4")
    assert jpeg.headers["content-type"] == "image/jpeg"
    with open_video(str(media_root / "frames")) as frames:
        served = np.asarray(Image.open(io.BytesIO(jpeg.content))).astype(int)
        assert served.shape == (240, 320, 3) and np.abs(served - frames.get(4)).mean() < 3  # JPEG at quality 90
    upload = client.post("/api/videos?name=short.mp4", content=(media_root / "short.mp4").read_bytes())
    assert upload.status_code == 201, upload.text
    assert upload.json()["num_frames"] == SHORT_FRAMES and upload.json()["name"] == "short.mp4"
    assert client.delete(f"/api/videos/{upload.json()['session_id']}").status_code == 204
    junk = client.post("/api/videos?name=x.mp4", content=b"\x00" * 1000)
    assert junk.status_code == 422 and "x.mp4" in junk.json()["detail"], junk.json()


def test_bad_video_requests(live, client, video):
    sid = video()["session_id"]
    cases = [
        ("/prompts", {"frame": 6, "obj_id": 1, "points": [[1, 1]], "labels": [1]}, "frame: 6 is out of range"),
        ("/prompts", {"frame": 0, "obj_id": 256, "points": [[1, 1]], "labels": [1]}, "obj_id:"),
        ("/prompts", {"frame": -1, "obj_id": 1, "points": [[1, 1]], "labels": [1]}, "frame:"),
        ("/prompts", {"frame": 0, "obj_id": 1, "box": [1, 2, 3]}, "box[3]: Field required"),
        ("/prompts/mask", {"frame": 0, "obj_id": 1, "mask": {"size": [10, 10], "counts": "0"}}, "mask.size"),
        ("/clear", {"frame": 0, "obj_id": 9}, "obj_id: object 9 does not exist"),
    ]
    for path, body, message in cases:
        r = client.post(f"/api/videos/{sid}{path}", json=body)
        assert r.status_code == 422 and message in r.json()["detail"], (path, body, r.json())
    assert client.delete(f"/api/videos/{sid}/objects/9").status_code == 422
    before_prompts = propagate(live, sid, {})
    assert before_prompts[-1] == {"type": "error", "detail": before_prompts[-1]["detail"]}
    assert "No input points or masks" in before_prompts[-1]["detail"]
    for options, message in [({"direction": "sideways"}, "direction:"), ({"start_frame": 9}, "start_frame: 9"),
                             ({"max_frames": -2}, "max_frames:")]:
        events = propagate(live, sid, options)
        assert events[-1]["type"] == "error" and message in events[-1]["detail"], events
    assert client.get("/api/videos/not-a-session").status_code == 404
