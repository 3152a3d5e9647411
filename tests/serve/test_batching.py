"""Many clients, one model: video sessions propagating at the same time are tracked together (one call per graph
per step, counted by the server) and each gets the masks it gets alone; images uploaded at the same time are
encoded together, each as it is alone."""

import threading

import numpy as np

from tests.official_reference import scene
from tests.serve.conftest import SHORT_FRAMES
from tests.serve.test_api_images import png_bytes
from tests.serve.test_api_videos import propagate, served_masks

SESSIONS = 3
PROMPTS = [
    {"frame": 0, "obj_id": 1, "points": [[100, 80]], "labels": [1]},
    {"frame": 0, "obj_id": 2, "box": [180, 100, 260, 200]},
    {"frame": 0, "obj_id": 3, "points": [[250, 60], [40, 200]], "labels": [1, 0]},
]


def run_all(fns):
    results = [None] * len(fns)
    threads = [threading.Thread(target=lambda k=k: results.__setitem__(k, fns[k]())) for k in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    return results


def test_video_sessions_propagating_together_equal_each_alone(live, client):
    sids = [client.post("/api/videos/open", json={"path": "short.mp4"}).json()["session_id"] for _ in PROMPTS]
    try:
        for sid, prompt in zip(sids, PROMPTS):  # session k tracks object(s) of prompt k
            client.post(f"/api/videos/{sid}/prompts", json=prompt).raise_for_status()
        alone = [propagate(live, sid, {}) for sid in sids]
        for sid, prompt in zip(sids, PROMPTS):  # the same prompts again: the same starting point
            client.post(f"/api/videos/{sid}/reset").raise_for_status()
            client.post(f"/api/videos/{sid}/prompts", json=prompt).raise_for_status()
        before = client.get("/api/stats").json()
        together = run_all([lambda sid=sid: propagate(live, sid, {}) for sid in sids])
        after = client.get("/api/stats").json()
    finally:
        for sid in sids:
            client.delete(f"/api/videos/{sid}")
    for a, t in zip(alone, together):
        frames_a = [e for e in a if e["type"] == "frame"]
        frames_t = [e for e in t if e["type"] == "frame"]
        assert len(frames_a) == len(frames_t) == SHORT_FRAMES and t[-1]["type"] == "done"
        for ea, et in zip(frames_a, frames_t):
            assert ea["frame"] == et["frame"]
            ma, mt = served_masks(ea["objects"]), served_masks(et["objects"])
            assert ma.keys() == mt.keys() and all(np.array_equal(ma[o], mt[o]) for o in ma)
    calls = {g: after["graph_calls"][g] - before["graph_calls"].get(g, 0) for g in after["graph_calls"]}
    steps = after["scheduler"]["steps"] - before["scheduler"]["steps"]
    sizes = {int(k): v - before["scheduler"]["step_sizes"].get(k, 0)
             for k, v in after["scheduler"]["step_sizes"].items()}
    # consolidating each session's prompts encodes their memories once: one memory_encoder call per session
    tracking = {g: calls[g] - (SESSIONS if g == "memory_encoder" else 0) for g in calls}
    assert max(k for k, v in sizes.items() if v > 0) == SESSIONS, sizes  # steps that carried every session
    for graph, n in tracking.items():  # never more than one call per graph per step ...
        assert n <= steps, (graph, n, steps)
    # ... where alone every session needs its own: SESSIONS * (SHORT_FRAMES - 1) calls per graph
    assert tracking["memory_attention"] <= steps < SESSIONS * (SHORT_FRAMES - 1)
    assert len({tracking[g] for g in tracking}) == 1, tracking  # one call of each graph per step with work


def test_images_uploaded_together_are_encoded_together(live, client, library_model):
    from sam2_trt.runtime.image_predictor import SAM2ImagePredictor

    images = [scene(120 + 10 * k, 160, seed=20 + k) for k in range(4)]
    before = client.get("/api/stats").json()["scheduler"]
    infos = run_all([lambda im=im: client.post("/api/images", content=png_bytes(im)).json() for im in images])
    after = client.get("/api/stats").json()["scheduler"]
    assert after["images_encoded"] - before["images_encoded"] == 4
    assert after["encode_calls"] - before["encode_calls"] < 4  # at least two were encoded in one call
    predictor = SAM2ImagePredictor(library_model)
    for image, info in zip(images, infos):
        r = client.post(f"/api/images/{info['session_id']}/predict", json={"points": [[80, 60]], "labels": [1]})
        predictor.set_image(image)
        masks, _, _ = predictor.predict(np.array([[80, 60]], np.float32), np.array([1], np.int32))
        assert all(np.array_equal(m, e) for m, e in zip(served_masks_of(r.json()), masks))
        client.delete(f"/api/images/{info['session_id']}")


def served_masks_of(response):
    from tests.serve.live import decode_rle

    return [decode_rle(m["segmentation"]) for m in response["masks"]]
