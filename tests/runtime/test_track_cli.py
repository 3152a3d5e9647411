"""`sam2-trt track`: prompt parsing and checks, and end to end on the bundled clip with a tiny exported model,
compared with the predictor's own API (the propagation plan: forward from the earliest prompt, then back to
frame 0, each frame written once)."""

import json
import re

import av
import numpy as np
import pytest
from PIL import Image

from sam2_trt.cli.track import parse_prompts
from sam2_trt.export.cached_exports import CLIP
from sam2_trt.runtime.track import ObjectPrompt, check_prompts, track_video
from tests.conftest import run_cli


# ---- prompts ---------------------------------------------------------------------------------------------------
def test_points_and_boxes_group_by_frame_and_object():
    prompts = parse_prompts(["0,10,20,1", "0,30.5,40,1,0", "4,5,6,2"], ["0,1,2,50,60,1", "4,0,0,9,9,3"])
    assert prompts == [
        ObjectPrompt(0, 1, [(10.0, 20.0), (30.5, 40.0)], [1, 0], (1.0, 2.0, 50.0, 60.0)),
        ObjectPrompt(4, 2, [(5.0, 6.0)], [1], None),
        ObjectPrompt(4, 3, [], [], (0.0, 0.0, 9.0, 9.0)),
    ]


@pytest.mark.parametrize("points, boxes, message", [
    (["0,10,20"], [], "--point '0,10,20': expected F,X,Y,OBJ[,LABEL] (4 or 5"),
    (["0,10,abc,1"], [], "has a part that is not a number"),
    (["1.5,10,20,1"], [], "the frame index must be a whole number, got 1.5"),
    (["0,10,20,0"], [], "object id 0 is outside 1..255"),
    ([], ["0,1,2,3,4,256"], "object id 256 is outside 1..255"),
    (["0,10,20,1,2"], [], "the label must be 1 (foreground) or 0 (background), got 2"),
    (["0,10,20,1,0.7"], [], "the label must be 1 (foreground) or 0 (background), got 0.7"),
    (["0,inf,20,1"], [], "--point '0,inf,20,1': every value must be a finite number (no inf or nan)"),
    (["0,10,nan,1"], [], "--point '0,10,nan,1': every value must be a finite number"),
    ([], ["0,1,2,1e400,4,1"], "--box '0,1,2,1e400,4,1': every value must be a finite number"),
    ([], ["0,50,2,10,60,1"], "x1 > x0, y1 > y0"),
    ([], ["0,1,2,3,4,1", "0,1,2,5,6,1"], "object 1 already has a box on frame 0"),
    ([], ["0,1,2,3,4"], "expected F,X0,Y0,X1,Y1,OBJ (6 comma-separated"),
])
def test_bad_prompts_are_named(points, boxes, message):
    with pytest.raises(ValueError) as e:
        parse_prompts(points, boxes)
    assert message in str(e.value)


def test_prompts_must_lie_in_the_video():
    with pytest.raises(ValueError, match=r"prompted on frame 48, but the video has frames 0..47"):
        check_prompts(parse_prompts(["48,1,1,1"]), 48, 640, 360)
    with pytest.raises(ValueError, match=r"frame 6, but the video has frames 0..5 \(--max-frames 6\)"):
        check_prompts(parse_prompts(["6,1,1,1"]), 6, 640, 360, max_frames=6)
    # outside the video: used as the official code uses it, with a warning (the predictors' rule too)
    with pytest.warns(UserWarning, match=r"object 1 on frame 0: point \(641, 10\) is outside the 640x360 image"):
        check_prompts(parse_prompts(["0,641,10,1"]), 48, 640, 360)
    with pytest.warns(UserWarning, match=r"point \(10, 400\) is outside"):
        check_prompts(parse_prompts([], ["0,0,0,10,400,1"]), 48, 640, 360)
    with pytest.raises(ValueError, match="give at least one prompt"):
        check_prompts([], 48, 640, 360)
    mask = np.zeros((360, 640), bool)
    check_prompts([ObjectPrompt(0, 1, mask=mask)], 48, 640, 360)
    with pytest.raises(ValueError, match=r"its mask is 640x360, the video is 320x240"):
        check_prompts([ObjectPrompt(0, 1, mask=mask)], 48, 320, 240)
    with pytest.raises(ValueError, match="give a mask or clicks and a box, not both"):
        check_prompts([ObjectPrompt(0, 1, box=(0, 0, 5, 5), mask=mask)], 48, 640, 360)


# ---- end to end ------------------------------------------------------------------------------------------------
TRACK_PROMPTS = ["--point", "0,90,300,1", "--box", "0,407,189,533,281,2", "--point", "2,140,76,3",
                 "--point", "2,140,60,3"]


def test_track_cli_end_to_end_matches_the_predictor_api(tiny512_dir, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("track", CLIP, "--model", tiny512_dir, *TRACK_PROMPTS, "--out", out, "--max-frames", "3",
                   "--coco-json", "--backend", "onnxruntime-cpu", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"^tracked 3 objects through 3 frames in \d+\.\d s: \d+\.\d FPS \(backend onnxruntime-cpu\)$",
                     proc.stdout, re.M), proc.stdout
    assert sorted(p.name for p in out.iterdir()) == [".sam2-trt-outputs.json", "masks", "masks.json", "overlay.mp4"]
    with av.open(str(out / "overlay.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 3 and frames[0].shape == (360, 640, 3)

    from sam2_trt.runtime import SAM2VideoPredictor

    pred = SAM2VideoPredictor.load(tiny512_dir, backend="onnxruntime-cpu")
    state = pred.init_state(str(CLIP))
    pred.add_new_points_or_box(state, 0, 1, points=np.array([[90, 300]], np.float32), labels=np.array([1], np.int32))
    pred.add_new_points_or_box(state, 0, 2, box=np.array([407, 189, 533, 281], np.float32))
    pred.add_new_points_or_box(state, 2, 3, points=np.array([[140, 76], [140, 60]], np.float32),
                               labels=np.array([1, 1], np.int32))
    expected = {f: (ids, logits[:, 0] > 0)  # earliest prompt on frame 0: one forward pass, as the CLI runs it
                for f, ids, logits in pred.propagate_in_video(state, start_frame_idx=0, max_frame_num_to_track=2)}
    doc = json.loads((out / "masks.json").read_text())
    for f in range(3):
        ids, masks = expected[f]
        labels = np.asarray(Image.open(out / "masks" / f"{f:05d}.png"))
        assert labels.shape == (360, 640)
        want = np.zeros((360, 640), np.uint8)
        for o, m in sorted(zip(ids, masks), reverse=True, key=lambda om: om[0]):
            want[m] = o
        assert np.array_equal(labels, want), f"frame {f}: the CLI's masks differ from the API's"
        assert [o["area"] for o in doc["frames"][f]["objects"]] == [int(m.sum()) for m in masks]
    assert any((np.asarray(Image.open(out / "masks" / f"{f:05d}.png")) > 0).any() for f in range(3))


def jpeg_folder(path, n):
    path.mkdir()
    with av.open(str(CLIP)) as c:
        for i, f in zip(range(n), c.decode(video=0)):
            f.to_image().save(path / f"{i:05d}.jpg", quality=95)
    return path


def test_track_cli_reverse_pass_on_a_jpeg_folder(tiny512_dir, tmp_path):
    video = jpeg_folder(tmp_path / "frames", 4)
    out = tmp_path / "out"
    proc = run_cli("track", video, "--model", tiny512_dir, "--point", "2,140,76,3", "--out", out,
                   "--backend", "onnxruntime-cpu", "--no-overlay", "--quiet", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tracked 1 object through 4 frames" in proc.stdout
    assert sorted(p.name for p in (out / "masks").iterdir()) == [f"{f:05d}.png" for f in range(4)]
    assert not (out / "overlay.mp4").exists()

    from sam2_trt.runtime import SAM2VideoPredictor

    pred = SAM2VideoPredictor.load(tiny512_dir, backend="onnxruntime-cpu")
    state = pred.init_state(str(video))
    pred.add_new_points_or_box(state, 2, 3, points=[[140, 76]], labels=[1])
    expected = {f: m[0, 0] > 0 for f, _, m in pred.propagate_in_video(state)}  # frames 2, 3
    expected.update({f: m[0, 0] > 0 for f, _, m in pred.propagate_in_video(state, reverse=True) if f < 2})
    for f in range(4):
        labels = np.asarray(Image.open(out / "masks" / f"{f:05d}.png"))
        assert np.array_equal(labels == 3, expected[f]), f"frame {f}: the CLI's mask differs from the API's"


def test_a_frame_that_fails_mid_run_leaves_no_outputs(tiny512_dir, tmp_path):
    from sam2_trt.runtime import SAM2VideoPredictor
    from sam2_trt.core.errors import FrameDecodeError
    from sam2_trt.runtime.video.frames import open_video

    video = jpeg_folder(tmp_path / "frames", 4)
    data = (video / "00002.jpg").read_bytes()
    (video / "00002.jpg").write_bytes(data[: len(data) // 3])  # header intact, pixels cut off
    pred = SAM2VideoPredictor.load(tiny512_dir, backend="onnxruntime-cpu")
    with open_video(video) as frames, pytest.raises(FrameDecodeError, match="frame 2"):
        track_video(pred, video, frames, parse_prompts(["0,90,300,1"]), tmp_path / "out", coco_json=True,
                    progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]  # no --out, no staging, no lock left


@pytest.mark.parametrize("args, message", [
    (["--point", "0,10,x,1"], "--point '0,10,x,1': expected F,X,Y,OBJ[,LABEL], and '0,10,x,1' has a part"),
    (["--point", "60,10,10,1"], "prompted on frame 60, but the video has frames 0..47"),
    (["--point", "5,10,10,1", "--max-frames", "3"], "frames 0..2 (--max-frames 3)"),
    (["--box", "0,50,50,40,60,1"], "x1 > x0, y1 > y0"),
    (["--point", "0,10,10,300"], "object id 300 is outside 1..255"),
    ([], "give at least one prompt"),
])
def test_track_cli_bad_input(tmp_path, args, message):
    proc = run_cli("track", CLIP, "--model", tmp_path / "no-model", *args, "--out", tmp_path / "out", timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.startswith("sam2-trt track: error: ") and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_track_cli_missing_video(tmp_path):
    proc = run_cli("track", tmp_path / "nope.mp4", "--model", tmp_path, "--point", "0,1,1,1", "--out",
                   tmp_path / "out", timeout=120)
    assert proc.returncode == 3 and "nope.mp4 does not exist" in proc.stderr, proc.stderr


# ---- outputs: one consistent set, a user's files never moved ---------------------------------------------------
def test_a_rerun_replaces_the_set_and_never_moves_a_users_file(tiny512_dir, tmp_path):
    out = tmp_path / "out"
    args = ["track", CLIP, "--model", tiny512_dir, "--point", "0,90,300,1", "--max-frames", "2", "--backend",
            "onnxruntime-cpu", "--quiet"]
    first = run_cli(*args, "--out", out, "--coco-json", timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    second = run_cli(*args, "--out", out, "--no-overlay", timeout=600)  # neither the JSON nor the overlay: both now stale
    assert second.returncode == 0, second.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == [".sam2-trt-outputs.json", "masks"]

    user = tmp_path / "user"
    user.mkdir()
    (user / "masks").write_text("my notes")  # a regular file named like an output
    (user / "overlay.mp4").mkdir()  # a folder named like one
    proc = run_cli(*args, "--out", user, timeout=600)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "already has 'masks', which sam2-trt track did not write" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in user.iterdir()) == ["masks", "overlay.mp4"]
    assert (user / "masks").read_text() == "my notes" and not any(p.name.startswith(".") for p in tmp_path.iterdir())


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_an_out_that_is_a_file_is_refused_before_the_model_loads(tmp_path, where):
    (tmp_path / "f").write_text("x")
    out = tmp_path / "f" if where == "file" else tmp_path / "f" / "out"
    proc = run_cli("track", CLIP, "--model", tmp_path / "no-model", "--point", "0,10,10,1", "--out", out,
                   timeout=120)
    assert proc.returncode == 3 and ("is a file, not a folder" if where == "file" else "which is a file") in \
        proc.stderr, proc.stderr
    assert "model directory not found" not in proc.stderr and (tmp_path / "f").read_text() == "x"


def test_backward_from_frame_zero_writes_that_frame(tiny512_dir, tmp_path):
    """The official reverse pass from frame 0 tracks nothing; the job still writes the prompted frame."""
    for extra in ([], ["--no-overlay"]):
        out = tmp_path / f"out{len(extra)}"
        proc = run_cli("track", CLIP, "--model", tiny512_dir, "--point", "0,90,300,1", "--direction", "backward",
                       "--backend", "onnxruntime-cpu", "--out", out, "--quiet", *extra, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert sorted(p.name for p in (out / "masks").iterdir()) == ["00000.png"]
        assert (out / "overlay.mp4").exists() != bool(extra)
