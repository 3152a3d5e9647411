"""SAM2VideoPredictor vs the official SAM2VideoPredictor, run here on the same random checkpoint (CPU, fp32,
hole filling active on both sides): every scripted call, every mask on every frame, IoU >= 0.99.

Models are exported at 512 px to keep CI fast; the official predictor runs at 512 through the same hydra
overrides the exporter validates with.
"""

import numpy as np
import pytest

from tests.official_reference import mask_iou
from tests.runtime.video_reference import (CLIP_FRAMES, add_intended_clear_non_cond_mem,
                                           build_official_video_predictor, run_script)

IMAGE_SIZE = 512
NUM_FRAMES = CLIP_FRAMES


def disk_mask(h=240, w=320, cy=70, cx=95, r=35):
    yy, xx = np.mgrid[0:h, 0:w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r * r


def click(frame, obj, xy=(95, 70), label=1, **kw):
    return "points", dict(frame_idx=frame, obj_id=obj, points=[list(xy)], labels=[label], **kw)


def box(frame, obj, b=(195, 95, 265, 205)):
    return "points", dict(frame_idx=frame, obj_id=obj, box=list(b))


PROPAGATE = ("propagate", {})

SCENARIOS = {
    "one_click": [click(0, 1), PROPAGATE],
    "box": [box(0, 1), PROPAGATE],
    "two_objects": [click(0, 1), box(0, 2), PROPAGATE],
    # objects 2 and 3 are tracked on frames before their prompts (no pointers there yet)
    "three_objects_on_different_frames": [
        click(0, 1), ("points", dict(frame_idx=1, obj_id=2, points=[[230, 150], [100, 200]], labels=[1, 0])),
        box(2, 3, (60, 20, 140, 120)), PROPAGATE, ("propagate", dict(start_frame_idx=2, reverse=True))],
    "object_added_after_propagation": [click(0, 1), PROPAGATE, box(2, 2), PROPAGATE],
    "refinement_click_then_repropagation": [
        click(0, 1), PROPAGATE, click(3, 1, (130, 90), 0, clear_old_points=False),
        click(3, 1, (100, 80), 1, clear_old_points=False), PROPAGATE, ("propagate", dict(start_frame_idx=3)),
        ("propagate", dict(start_frame_idx=3, reverse=True))],
    "mask_prompt": [("mask", dict(frame_idx=0, obj_id=1, mask=disk_mask())), click(0, 2, (230, 170)), PROPAGATE,
                    ("mask", dict(frame_idx=2, obj_id=1, mask=disk_mask(cy=80, cx=110))), PROPAGATE],
    "reverse_propagation": [click(3, 1), box(3, 2), PROPAGATE, ("propagate", dict(reverse=True))],
    "max_frame_num_to_track": [click(1, 1), ("propagate", dict(max_frame_num_to_track=2)),
                               ("propagate", dict(max_frame_num_to_track=1, reverse=True))],
    "remove_object": [click(0, 1), box(0, 2), click(2, 3, (60, 40)), PROPAGATE,
                      ("remove", dict(obj_id=2)), PROPAGATE, ("remove", dict(obj_id=3)), PROPAGATE],
    "clear_prompts_in_frame": [click(0, 1), click(0, 2, (230, 170)), click(2, 1, (150, 100)), PROPAGATE,
                               ("clear", dict(frame_idx=2, obj_id=1)), PROPAGATE],
}

# (scenario, predictor options): the options are passed to both predictors
OPTION_CASES = {
    "non_overlap_masks": ("two_objects", {"non_overlap_masks": True}),
    "add_all_frames_to_correct_as_cond": ("refinement_click_then_repropagation",
                                          {"add_all_frames_to_correct_as_cond": True}),
    "clear_non_cond_mem_around_input": ("refinement_click_then_repropagation",
                                        {"clear_non_cond_mem_around_input": True}),
}


@pytest.fixture(scope="module")
def tiny512_model(tiny512_dir):
    from sam2_trt.runtime.model import SAM2Model

    return SAM2Model.load(tiny512_dir, backend="onnxruntime-cpu")


def assert_same_results(ours, official):
    assert [r[:3] for r in ours] == [r[:3] for r in official], "calls, frames or object ids differ"
    worst = 1.0
    for (op, f, ids, a), (_, _, _, b) in zip(ours, official):
        assert a.shape == b.shape and a.dtype == np.float32
        for k, obj in enumerate(ids):
            iou = mask_iou(a[k, 0] > 0, b[k, 0] > 0)
            worst = min(worst, iou)
            assert iou >= 0.99, f"{op} frame {f} object {obj}: IoU {iou:.4f} with the official mask"
    return worst


def play_both(model, checkpoint, config, clip, script, **options):
    import torch

    from sam2_trt.runtime.video.predictor import SAM2VideoPredictor

    official = build_official_video_predictor(config, checkpoint, IMAGE_SIZE, **options)
    if options.get("clear_non_cond_mem_around_input"):
        add_intended_clear_non_cond_mem(official)
    with torch.inference_mode():
        state = official.init_state(str(clip))
    expected = run_script(official, state, script, official=True)
    ours = SAM2VideoPredictor(model, **options)
    state = ours.init_state(str(clip))
    try:
        got = run_script(ours, state, script, official=False)
    finally:
        state.close()
    return got, expected


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_matches_official(name, tiny512_model, tiny_checkpoint, clip):
    got, expected = play_both(tiny512_model, tiny_checkpoint, "configs/sam2.1/sam2.1_hiera_t.yaml", clip,
                              SCENARIOS[name])
    assert len(got) >= NUM_FRAMES
    assert_same_results(got, expected)


@pytest.mark.parametrize("name", list(OPTION_CASES))
def test_matches_official_with_options(name, tiny512_model, tiny_checkpoint, clip):
    scenario, options = OPTION_CASES[name]
    got, expected = play_both(tiny512_model, tiny_checkpoint, "configs/sam2.1/sam2.1_hiera_t.yaml", clip,
                              SCENARIOS[scenario], **options)
    assert_same_results(got, expected)


def test_sam2_0_config_matches_official(checkpoint_factory, tmp_path_factory, clip):
    """SAM 2.0 differs in four flags (no pointer temporal encoding, no no-object spatial embedding)."""
    from sam2_trt.runtime.model import SAM2Model
    from sam2_trt.export.exporter import export_model

    ckpt = checkpoint_factory("sam2_hiera_t")
    out = tmp_path_factory.mktemp("models") / "sam2_t_512"
    export_model("sam2_hiera_t", out, checkpoint=ckpt, image_size=IMAGE_SIZE, log=lambda m: None)
    model = SAM2Model.load(out, backend="onnxruntime-cpu")
    script = SCENARIOS["two_objects"] + [click(3, 1, (130, 90), 0, clear_old_points=False), PROPAGATE]
    got, expected = play_both(model, ckpt, "configs/sam2/sam2_hiera_t.yaml", clip, script)
    assert_same_results(got, expected)
