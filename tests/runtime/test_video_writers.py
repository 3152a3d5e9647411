"""The tracking outputs: DAVIS palette PNGs, overlay mp4, COCO-RLE JSON; each appears only when complete."""

import json

import av
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from sam2_trt.runtime.overlay import color
from sam2_trt.runtime.video_writers import CocoRleWriter, DavisMaskWriter, OverlayVideoWriter, davis_palette


def _masks(h=40, w=60):
    m = np.zeros((2, h, w), bool)
    m[0, 5:25, 5:30] = True  # object 3
    m[1, 15:35, 20:50] = True  # object 1, overlapping object 3 on rows 15..24, cols 20..29
    return [3, 1], m


def _decode(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _entries(d):
    return sorted(p.name for p in d.iterdir())


def test_davis_palette_is_the_davis_one():
    pal = davis_palette()
    assert pal.shape == (256, 3) and pal.dtype == np.uint8
    assert pal[:5].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]
    assert pal[255].tolist() == [224, 224, 192]


def test_davis_pngs_hold_object_ids_and_appear_on_close(tmp_path):
    ids, m = _masks()
    with DavisMaskWriter(tmp_path / "masks") as w:
        w.write(7, ids, m)
        w.write(0, [], np.zeros((0, 40, 60), bool))
        assert not (tmp_path / "masks").exists()  # still under the temporary name
        assert w.labels(7)[10, 10] == 3
    assert _entries(tmp_path) == ["masks"]
    assert _entries(tmp_path / "masks") == ["00000.png", "00007.png"]
    im = Image.open(tmp_path / "masks" / "00007.png")
    assert im.mode == "P" and im.getpalette()[:6] == [0, 0, 0, 128, 0, 0]
    labels = np.asarray(im)
    assert labels[10, 10] == 3 and labels[30, 40] == 1 and labels[0, 0] == 0
    assert labels[20, 25] == 1  # overlap: the smaller id wins, as the official vos_inference writes it
    assert set(np.unique(labels)) == {0, 1, 3}
    assert not np.asarray(Image.open(tmp_path / "masks" / "00000.png")).any()


def test_davis_writer_replaces_an_earlier_folder_only_on_close(tmp_path):
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "old.png").write_bytes(b"x")
    ids, m = _masks()
    with DavisMaskWriter(tmp_path / "masks") as w:
        w.write(0, ids, m)
        assert _entries(tmp_path / "masks") == ["old.png"]
    assert _entries(tmp_path / "masks") == ["00000.png"]
    assert _entries(tmp_path) == ["masks"]


@pytest.mark.parametrize("bad", [0, 256])
def test_davis_writer_rejects_ids_outside_1_255(tmp_path, bad):
    with pytest.raises(ValueError, match=f"object id {bad} cannot be stored.*1..255"):
        with DavisMaskWriter(tmp_path / "masks") as w:
            w.write(0, [bad], np.ones((1, 4, 4), bool))
    assert _entries(tmp_path) == []  # the failed run left nothing behind


def test_davis_writer_checks_mask_shape(tmp_path):
    with DavisMaskWriter(tmp_path / "masks") as w:
        with pytest.raises(ValueError, match="one mask per object id"):
            w.write(0, [1, 2], np.ones((1, 4, 4), bool))


def test_overlay_video_decodes_with_every_frame(tmp_path):
    ids, m = _masks(64, 96)
    frame = np.full((64, 96, 3), 128, np.uint8)
    with OverlayVideoWriter(tmp_path / "overlay.mp4", 24, 96, 64) as v:
        for _ in range(9):
            v.write(frame, ids, m)
        v.write(frame)  # no masks: the frame as it is
    assert _entries(tmp_path) == ["overlay.mp4"]
    frames = _decode(tmp_path / "overlay.mp4")
    assert len(frames) == 10 and frames[0].shape == (64, 96, 3)
    with av.open(str(tmp_path / "overlay.mp4")) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.average_rate == 24
    tinted = frames[0][8, 8].astype(int)  # inside object 3, away from the outline
    expected = 0.55 * 128 + 0.45 * color(3 - 1).astype(float)
    assert np.abs(tinted - expected).max() < 20, (tinted, expected)
    assert np.abs(frames[0][60, 90].astype(int) - 128).max() < 8  # background untouched
    assert np.abs(frames[9][8, 8].astype(int) - 128).max() < 8  # the frame without masks


def test_overlay_pads_odd_sizes(tmp_path):
    with OverlayVideoWriter(tmp_path / "o.mp4", 30000 / 1001, 51, 37) as v:
        for _ in range(3):
            v.write(np.zeros((37, 51, 3), np.uint8))
    frames = _decode(tmp_path / "o.mp4")
    assert len(frames) == 3 and frames[0].shape == (38, 52, 3)


def test_overlay_caption_is_burned_in(tmp_path):
    frame = np.full((90, 160, 3), 100, np.uint8)
    for name, caption in (("plain.mp4", None), ("caption.mp4", "RANDOM WEIGHTS")):
        with OverlayVideoWriter(tmp_path / name, 24, 160, 90, caption=caption) as v:
            v.write(frame)
    plain, captioned = _decode(tmp_path / "plain.mp4")[0], _decode(tmp_path / "caption.mp4")[0]
    assert np.abs(plain.astype(int) - 100).max() < 8
    top = captioned[:20].astype(int)
    assert (top > 200).any() and (top < 60).any()  # white text on a dark band
    assert np.abs(captioned[60:].astype(int) - 100).max() < 8


def test_overlay_rejects_a_frame_of_the_wrong_size(tmp_path):
    with pytest.raises(ValueError, match=r"frame must be \[64, 96, 3\] uint8"):
        with OverlayVideoWriter(tmp_path / "o.mp4", 24, 96, 64) as v:
            v.write(np.zeros((64, 95, 3), np.uint8))
    assert _entries(tmp_path) == []


def test_interrupted_overlay_leaves_no_file(tmp_path):
    (tmp_path / "overlay.mp4").write_bytes(b"earlier run")
    with pytest.raises(KeyboardInterrupt):
        with OverlayVideoWriter(tmp_path / "overlay.mp4", 24, 32, 32) as v:
            v.write(np.zeros((32, 32, 3), np.uint8))
            raise KeyboardInterrupt
    assert _entries(tmp_path) == ["overlay.mp4"]
    assert (tmp_path / "overlay.mp4").read_bytes() == b"earlier run"


def test_coco_rle_json_round_trips(tmp_path):
    ids, m = _masks()
    with CocoRleWriter(tmp_path / "masks.json", video="clip.mp4") as w:
        w.add(5, ids, m)
        w.add(2, ids[:1], m[:1])
        assert not (tmp_path / "masks.json").exists()
    doc = json.loads((tmp_path / "masks.json").read_text())
    assert (doc["video"], doc["height"], doc["width"]) == ("clip.mp4", 40, 60)
    assert [f["frame"] for f in doc["frames"]] == [2, 5]
    objects = doc["frames"][1]["objects"]
    assert [o["obj_id"] for o in objects] == [3, 1]
    for o, mask in zip(objects, m):
        rle = {"size": o["segmentation"]["size"], "counts": o["segmentation"]["counts"].encode()}
        assert np.array_equal(mask_utils.decode(rle).astype(bool), mask)
        assert o["area"] == int(mask.sum())
    assert objects[0]["bbox"] == [5.0, 5.0, 25.0, 20.0]  # x, y, w, h
    assert _entries(tmp_path) == ["masks.json"]


def test_coco_rle_json_keeps_each_tracks_category(tmp_path):
    ids, m = _masks()
    categories = {3: {"category_id": 17, "category": "dog"}, 1: {"category_id": None, "category": "ball"}}
    with CocoRleWriter(tmp_path / "masks.json", categories=categories) as w:
        w.add(0, ids, m)
        w.add(1, ids[1:], m[1:])
    doc = json.loads((tmp_path / "masks.json").read_text())
    assert doc["tracks"] == [{"obj_id": 1, "category_id": None, "category": "ball"},
                             {"obj_id": 3, "category_id": 17, "category": "dog"}]
    assert [(o["obj_id"], o["category_id"], o["category"]) for o in doc["frames"][0]["objects"]] == \
        [(3, 17, "dog"), (1, None, "ball")]
    assert [(o["obj_id"], o["category"]) for o in doc["frames"][1]["objects"]] == [(1, "ball")]


def test_interrupted_coco_writer_writes_nothing(tmp_path):
    ids, m = _masks()
    with pytest.raises(RuntimeError):
        with CocoRleWriter(tmp_path / "masks.json") as w:
            w.add(0, ids, m)
            raise RuntimeError("tracking failed")
    assert _entries(tmp_path) == []
