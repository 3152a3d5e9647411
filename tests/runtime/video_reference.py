"""The official SAM2VideoPredictor as the reference for video tests, and scripted sessions run on both.

A scenario is a list of calls in the official API's terms; `run_script` plays it on a predictor (ours or the
official one) and returns every result in order, masks as numpy logits, so tests compare call by call.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.official_reference import scene


CLIP_FRAMES, CLIP_H, CLIP_W = 5, 240, 320  # the `clip` fixture (tests/runtime/conftest.py)


def write_jpeg_video(folder, num_frames: int = CLIP_FRAMES, h: int = CLIP_H, w: int = CLIP_W, seed: int = 0):
    """A short synthetic clip as <int>.jpg frames (the official loader's layout): shapes that move and change."""
    folder.mkdir(parents=True, exist_ok=True)
    base = scene(h, w, seed)
    yy, xx = np.mgrid[0:h, 0:w]
    for t in range(num_frames):
        frame = np.roll(base, shift=(2 * t, 5 * t), axis=(0, 1)).copy()
        cy, cx = 60 + 6 * t, 80 + 9 * t
        frame[(yy - cy) ** 2 + (xx - cx) ** 2 < 30 ** 2] = (220, 40, 40)
        frame[150 - 3 * t:200 - 3 * t, 200:260] = (30, 200, 60)
        Image.fromarray(frame).save(folder / f"{t:05d}.jpg", quality=95)
    return folder


def build_official_video_predictor(config: str, checkpoint, image_size: int, **kwargs):
    """The official predictor in fp32 on CPU with build_sam2_video_predictor's defaults (postprocessing on).

    On CPU there is no autocast, so a frame tracked before any pointer exists would feed bf16 memories to the
    fp32 memory attention and fail (ENVIRONMENT.md); the memory is cast to fp32 there, which is exact."""
    from sam2.build_sam import build_sam2_video_predictor

    from sam2_trt.export.checkpoint import image_size_overrides

    extra = image_size_overrides(image_size) + [f"++model.{k}={str(v).lower()}" for k, v in kwargs.items()]
    predictor = build_sam2_video_predictor(config, str(checkpoint), device="cpu", hydra_overrides_extra=extra)
    attention = predictor.memory_attention
    forward = attention.forward

    def fp32_forward(curr, memory, curr_pos=None, memory_pos=None, num_obj_ptr_tokens=0, **kw):
        return forward(curr=curr, memory=memory.float(), curr_pos=curr_pos, memory_pos=memory_pos,
                       num_obj_ptr_tokens=num_obj_ptr_tokens, **kw)

    attention.forward = fp32_forward
    return predictor


def add_intended_clear_non_cond_mem(predictor) -> None:
    """The method the official predictor calls but lacks (facebookresearch/sam2#571), as the legacy predictor
    implements it, for one object."""

    def clear(inference_state, frame_idx, obj_idx):
        r = predictor.memory_temporal_stride_for_eval
        non_cond = inference_state["output_dict_per_obj"][obj_idx]["non_cond_frame_outputs"]
        for t in range(frame_idx - r * predictor.num_maskmem, frame_idx + r * predictor.num_maskmem + 1):
            non_cond.pop(t, None)

    predictor._clear_obj_non_cond_mem_around_input = clear


def _np(x):
    import torch

    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def run_script(predictor, state, script, official: bool):
    """Play `script` ([(op, kwargs), ...]) on a predictor; returns [(label, frame_idx, obj_ids, logits)]."""
    import contextlib

    results = []
    ctx = contextlib.nullcontext()
    if official:
        import torch

        from tests.official_reference import official_connected_components

        ctx = contextlib.ExitStack()
        ctx.enter_context(torch.inference_mode())
        ctx.enter_context(official_connected_components())
    with ctx:
        for op, kw in script:
            if op == "points":
                f, ids, m = predictor.add_new_points_or_box(state, **kw)
                results.append((op, f, list(ids), _np(m)))
            elif op == "mask":
                f, ids, m = predictor.add_new_mask(state, **kw)
                results.append((op, f, list(ids), _np(m)))
            elif op == "propagate":
                for f, ids, m in predictor.propagate_in_video(state, **kw):
                    results.append((op, f, list(ids), _np(m)))
            elif op == "clear":
                f, ids, m = predictor.clear_all_prompts_in_frame(state, **kw)
                results.append((op, f, list(ids), _np(m)))
            elif op == "remove":
                ids, updated = predictor.remove_object(state, **kw)
                for f, m in updated:
                    results.append((op, f, list(ids), _np(m)))
            elif op == "reset":
                predictor.reset_state(state)
            else:
                raise ValueError(op)
    return results
