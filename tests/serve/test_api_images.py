"""Image sessions over HTTP against a live server: every endpoint, the masks equal (bit for bit) to what the
library returns for the same image and prompts, and every error with its status and the field it names."""

import io

import numpy as np
import pytest
from PIL import Image

from tests.official_reference import scene
from tests.serve.live import decode_rle


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


IMAGE = scene(180, 240, seed=3)  # media_root/photo.png


@pytest.fixture(scope="module")
def library(library_model):
    from sam2_trt.runtime.image_predictor import SAM2ImagePredictor

    predictor = SAM2ImagePredictor(library_model)
    predictor.set_image(IMAGE)
    return predictor


@pytest.fixture
def session(client):
    r = client.post("/api/images?name=photo.png", content=png_bytes(IMAGE))
    assert r.status_code == 201, r.text
    info = r.json()
    yield info["session_id"]
    client.delete(f"/api/images/{info['session_id']}")


def masks_of(response) -> list:
    return [decode_rle(m["segmentation"]) for m in response["masks"]]


@pytest.mark.parametrize("prompt", [
    {"points": [[120, 60]], "labels": [1]},
    {"points": [[120, 60], [30, 150]], "labels": [1, 0], "multimask": False},
    {"box": [100, 40, 200, 100]},
    {"points": [[150, 70]], "labels": [1], "box": [100, 40, 200, 100], "multimask": False},
])
def test_predict_equals_the_library(client, session, library, prompt):
    r = client.post(f"/api/images/{session}/predict", json=prompt)
    assert r.status_code == 200, r.text
    got = r.json()
    masks, scores, _ = library.predict(
        point_coords=np.asarray(prompt["points"], np.float32) if "points" in prompt else None,
        point_labels=np.asarray(prompt["labels"], np.int32) if "points" in prompt else None,
        box=np.asarray(prompt["box"], np.float32) if "box" in prompt else None,
        multimask_output=prompt.get("multimask", True))
    assert len(got["masks"]) == len(masks) == (3 if prompt.get("multimask", True) else 1)
    for served, expected in zip(masks_of(got), masks):
        assert served.shape == (180, 240) and np.array_equal(served, expected)
    assert [m["score"] for m in got["masks"]] == [float(s) for s in scores]
    assert got["best"] == int(np.argmax(scores))
    assert any(m["area"] > 0 for m in got["masks"]), "the random model should find something here"


def test_previous_mask_refines_like_the_library(client, session, library):
    first = {"points": [[120, 60]], "labels": [1]}
    client.post(f"/api/images/{session}/predict", json=first).raise_for_status()
    r = client.post(f"/api/images/{session}/predict", json={"points": [[120, 60], [60, 40]], "labels": [1, 0],
                                                           "use_previous_mask": True, "multimask": False})
    assert r.status_code == 200, r.text
    _, scores, low = library.predict(np.array([[120, 60]], np.float32), np.array([1], np.int32))
    masks, _, _ = library.predict(np.array([[120, 60], [60, 40]], np.float32), np.array([1, 0], np.int32),
                                  mask_input=low[np.argmax(scores)][None], multimask_output=False)
    assert np.array_equal(masks_of(r.json())[0], masks[0])


def test_automatic_masks_equal_the_library(client, session, library_model):
    from sam2_trt.runtime.automatic_mask_generator import SAM2AutomaticMaskGenerator

    r = client.post(f"/api/images/{session}/automatic",
                    json={"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0})
    assert r.status_code == 200, r.text
    expected = SAM2AutomaticMaskGenerator(library_model, points_per_side=4, pred_iou_thresh=0.0,
                                          stability_score_thresh=0.0, output_mode="coco_rle").generate(IMAGE)
    expected = sorted(expected, key=lambda e: -e["area"])
    got = r.json()["masks"]
    assert len(got) == len(expected) > 0
    for g, e in zip(got, expected):
        assert g["segmentation"] == e["segmentation"] and g["area"] == e["area"]
        assert g["predicted_iou"] == pytest.approx(e["predicted_iou"], abs=0)


def test_open_from_the_media_root_describe_image_and_close(client):
    r = client.post("/api/images/open", json={"path": "sub/small.png"})
    assert r.status_code == 201, r.text
    info = r.json()
    assert (info["kind"], info["width"], info["height"]) == ("image", 120, 90)
    sid = info["session_id"]
    assert client.get(f"/api/images/{sid}").json() == info
    png = client.get(f"/api/images/{sid}/image")
    assert png.headers["content-type"] == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png.content))), scene(90, 120, seed=4))
    assert client.delete(f"/api/images/{sid}").status_code == 204
    gone = client.post(f"/api/images/{sid}/predict", json={"points": [[5, 5]], "labels": [1]})
    assert gone.status_code == 404 and "no such image session" in gone.json()["detail"]


@pytest.mark.parametrize("body, field", [
    ({"points": [[10, 10]], "labels": [1, 0]}, "labels"),
    ({"points": [[10, 10]], "labels": [2]}, "labels[0]"),
    ({"points": [[10, "x"]], "labels": [1]}, "points[0][1]"),
    ({"points": [], "labels": []}, "points, box"),
    ({"box": [50, 50, 10, 10]}, "box"),
    ({"points": [[10, 10]], "labels": [1], "colour": "red"}, "colour"),
    ({"points": [[10, 10]], "labels": [1], "obj_id": 0}, "obj_id"),
    ({"points": [[10, 10]], "labels": [1], "use_previous_mask": True, "obj_id": 7}, "use_previous_mask"),
])
def test_bad_predict_requests_name_the_field(client, session, body, field):
    r = client.post(f"/api/images/{session}/predict", json=body)
    assert r.status_code == 422
    assert r.json()["detail"].startswith(f"{field}:") or f"{field}:" in r.json()["detail"], r.json()


def test_not_a_number_is_refused(client, session):
    r = client.post(f"/api/images/{session}/predict", content=b'{"points": [[NaN, 3]], "labels": [1]}',
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "points[0][0]" in r.json()["detail"]


def test_bad_uploads_and_automatic_options(client, session):
    empty = client.post("/api/images", content=b"")
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    junk = client.post("/api/images?name=notes.txt", content=b"hello, not an image")
    assert junk.status_code == 422 and "notes.txt is not an image" in junk.json()["detail"]
    grid = client.post(f"/api/images/{session}/automatic", json={"points_per_side": 500})
    assert grid.status_code == 422 and "points_per_side" in grid.json()["detail"]
    assert "--max-points-per-side" in grid.json()["detail"]
