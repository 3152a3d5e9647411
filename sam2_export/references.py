"""What each graph must compute, by the official code paths, one object at a time.

Each object reads the features of its own frame (`frame_index`), as if its video were run alone.

These run the official modules the way SAM2Base and the predictors call them (official memory layout,
Python-int pointer counts, no padding), so a graph that batches, pads or rewrites an op is checked
against the code it replaces. Inputs and outputs are the graph spec's tensors as numpy arrays.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


@torch.no_grad()
def image_encoder(model, inputs: dict) -> dict:
    out = model.forward_image(_t(inputs["image"]))
    feat0, feat1, vision = out["backbone_fpn"][-3:]
    # SAM2ImagePredictor.set_image_batch: vision_feats[-1] + no_mem_embed
    embed = (vision.flatten(2).permute(2, 0, 1) + model.no_mem_embed).permute(1, 2, 0).reshape(vision.shape)
    return {"high_res_feat0": feat0, "high_res_feat1": feat1, "vision_features": vision, "image_embed": embed}


@torch.no_grad()
def prompt_decoder(model, inputs: dict) -> dict:
    pe, dec = model.sam_prompt_encoder, model.sam_mask_decoder
    embeds = _t(inputs["image_embed"])
    outs = []
    for i in range(inputs["point_coords"].shape[0]):
        frame = int(inputs["frame_index"][i])
        feats = [_t(inputs["high_res_feat0"][frame:frame + 1]), _t(inputs["high_res_feat1"][frame:frame + 1])]
        mask = _t(inputs["mask_input"][i:i + 1]) if inputs["has_mask_input"][i] > 0.5 else None
        points = (_t(inputs["point_coords"][i:i + 1]), _t(inputs["point_labels"][i:i + 1]))
        sparse, dense = pe(points=points, boxes=None, masks=mask)
        embed = embeds[i:i + 1] if embeds.shape[0] > 1 else embeds
        masks, iou, tokens, score = dec.predict_masks(
            image_embeddings=embed, image_pe=pe.get_dense_pe(), sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense, repeat_image=False, high_res_features=feats)
        outs.append((masks, iou, model.obj_ptr_proj(tokens), score))
    names = ("masks", "iou_predictions", "object_pointers", "object_score_logits")
    return {n: torch.cat([o[k] for o in outs]) for k, n in enumerate(names)}


@torch.no_grad()
def memory_attention(model, inputs: dict) -> dict:
    """As SAM2Base._prepare_memory_conditioned_features assembles memory for one object, then MemoryAttention."""
    from sam2.modeling.sam2_utils import get_1d_sine_pe

    f = inputs["vision_features"].shape[-1]
    mem_pos_enc = model.memory_encoder.position_encoding(torch.zeros(1, model.mem_dim, f, f))
    outs = []
    for i in range(inputs["memory"].shape[0]):
        frame = int(inputs["frame_index"][i])
        vision = _t(inputs["vision_features"][frame:frame + 1])
        curr = vision.flatten(2).permute(2, 0, 1)  # [HW,1,256]
        curr_pos = model.image_encoder.neck.position_encoding(vision).flatten(2).permute(2, 0, 1)
        mems, poss = [], []
        for s in np.flatnonzero(inputs["memory_valid"][i] > 0.5):
            feats = _t(inputs["memory"][i, s][None])
            mems.append(feats.flatten(2).permute(2, 0, 1))
            idx = int(inputs["memory_tpos_index"][i, s])
            poss.append(mem_pos_enc.flatten(2).permute(2, 0, 1) + model.maskmem_tpos_enc[idx])
        keep = np.flatnonzero(inputs["pointer_valid"][i] > 0.5)
        num_ptr_tokens = 0
        if len(keep):
            ptrs = _t(inputs["object_pointers"][i, keep])[:, None]  # [P,1,256]
            if model.add_tpos_enc_to_obj_ptrs:
                dim = model.hidden_dim if model.proj_tpos_enc_in_obj_ptrs else model.mem_dim
                pos = model.obj_ptr_tpos_proj(get_1d_sine_pe(_t(inputs["pointer_tpos"][i, keep]), dim=dim))
                pos = pos.unsqueeze(1)
            else:
                pos = ptrs.new_zeros(len(keep), 1, model.mem_dim)
            split = model.hidden_dim // model.mem_dim
            ptrs = ptrs.reshape(-1, 1, split, model.mem_dim).permute(0, 2, 1, 3).flatten(0, 1)
            mems.append(ptrs)
            poss.append(pos.repeat_interleave(split, dim=0))
            num_ptr_tokens = ptrs.shape[0]
        out = model.memory_attention(curr=[curr], curr_pos=[curr_pos], memory=torch.cat(mems),
                                     memory_pos=torch.cat(poss), num_obj_ptr_tokens=num_ptr_tokens)
        outs.append(out.permute(1, 2, 0).reshape(1, model.hidden_dim, f, f))
    return {"conditioned_features": torch.cat(outs)}


@torch.no_grad()
def memory_encoder(model, inputs: dict) -> dict:
    """As SAM2VideoPredictor._run_memory_encoder: _encode_new_memory, then stored as bfloat16."""
    f = inputs["vision_features"].shape[-1]
    saved = model.binarize_mask_from_pts_for_mem_enc
    model.binarize_mask_from_pts_for_mem_enc = True  # build_sam2_video_predictor's post-processing setting
    try:
        outs = []
        for i in range(inputs["mask_logits"].shape[0]):
            frame = int(inputs["frame_index"][i])
            vision = _t(inputs["vision_features"][frame:frame + 1])
            low = _t(inputs["mask_logits"][i:i + 1])
            high = F.interpolate(low, size=(model.image_size, model.image_size), mode="bilinear",
                                 align_corners=False)
            feats, _ = model._encode_new_memory(
                current_vision_feats=[vision.flatten(2).permute(2, 0, 1)], feat_sizes=[(f, f)],
                pred_masks_high_res=high, object_score_logits=_t(inputs["object_score_logits"][i:i + 1]),
                is_mask_from_pts=bool(inputs["binarize"][i] > 0.5))
            outs.append(feats.to(torch.bfloat16).float())
    finally:
        model.binarize_mask_from_pts_for_mem_enc = saved
    return {"memory": torch.cat(outs)}


REFERENCES = {
    "image_encoder": image_encoder,
    "prompt_decoder": prompt_decoder,
    "memory_attention": memory_attention,
    "memory_encoder": memory_encoder,
}
