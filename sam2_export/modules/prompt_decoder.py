"""Graph B: prompt encoder + mask decoder, all four mask tokens out (see runtime/specs.py).

The official MaskDecoder.forward selects masks with Python flags (multimask_output, dynamic stability) and
SAM2Base masks absent objects; both are left to the runtime, so this graph is the decoder's predict_masks
with the image broadcast by Expand (repeat_interleave with a dynamic count exports poorly) and the point
embedding written without in-place slice assignment. The high-resolution features come per frame and each object
gathers its own (frame_index), so objects of several videos share a call; LayerNorm2d computes its statistics the
same way for any batch (layer_norm.py).
"""

import math

import torch
from torch import nn

from .layer_norm import batch_invariant_layer_norms


class PromptDecoderGraph(nn.Module):
    def __init__(self, sam2_model):
        super().__init__()
        self.model = sam2_model
        pe = sam2_model.sam_prompt_encoder
        with torch.no_grad():
            self.register_buffer("dense_pe", pe.get_dense_pe().clone(), persistent=False)  # [1,256,F,F]
        h, w = pe.input_image_size
        self.register_buffer("coord_scale", torch.tensor([1.0 / w, 1.0 / h]), persistent=False)

    def _embed_points(self, coords, labels):
        """PromptEncoder._embed_points(pad=True): coords [B,N,2], labels [B,N] int32 -> [B,N+1,256]."""
        pe = self.model.sam_prompt_encoder
        b = coords.shape[0]
        coords = torch.cat([coords + 0.5, coords.new_zeros(b, 1, 2)], dim=1)
        labels = torch.cat([labels, -torch.ones_like(labels[:, :1])], dim=1).unsqueeze(-1)
        # PositionEmbeddingRandom.forward_with_coords, with the division as one broadcast multiply
        xy = 2 * (coords * self.coord_scale) - 1
        xy = 2 * math.pi * (xy @ pe.pe_layer.positional_encoding_gaussian_matrix)
        emb = torch.cat([torch.sin(xy), torch.cos(xy)], dim=-1)
        emb = torch.where(labels == -1, torch.zeros_like(emb) + pe.not_a_point_embed.weight, emb)
        for i in range(pe.num_point_embeddings):
            emb = torch.where(labels == i, emb + pe.point_embeddings[i].weight, emb)
        return emb

    def forward(self, image_embed, high_res_feat0, high_res_feat1, point_coords, point_labels,
                mask_input, has_mask_input, frame_index):
        """image_embed [E,256,F,F] (E = 1 or B), high_res_feat0 [T,32,4F,4F], high_res_feat1 [T,64,2F,2F] (T frames),
        point_coords [B,N,2], point_labels [B,N] int32, mask_input [B,1,4F,4F], has_mask_input [B],
        frame_index [B] int32 in [0, T) -> masks [B,4,4F,4F], iou_predictions [B,4], object_pointers [B,4,256],
        object_score_logits [B,1]."""
        with batch_invariant_layer_norms(self.model):
            return self._decode(image_embed, high_res_feat0.index_select(0, frame_index),
                                high_res_feat1.index_select(0, frame_index), point_coords, point_labels, mask_input,
                                has_mask_input)

    def _decode(self, image_embed, high_res_feat0, high_res_feat1, point_coords, point_labels, mask_input,
                has_mask_input):
        """forward() with the high-res features already gathered per object ([B,32,4F,4F], [B,64,2F,2F])."""
        pe = self.model.sam_prompt_encoder
        dec = self.model.sam_mask_decoder
        b = point_coords.shape[0]
        sparse = self._embed_points(point_coords, point_labels)
        has = has_mask_input.reshape(-1, 1, 1, 1)
        dense = has * pe.mask_downscaling(mask_input) + (1 - has) * pe.no_mask_embed.weight.reshape(1, -1, 1, 1)

        # MaskDecoder.predict_masks (pred_obj_scores and high-res features are on in every SAM 2 config)
        out_tokens = torch.cat([dec.obj_score_token.weight, dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
        tokens = torch.cat([out_tokens.unsqueeze(0).expand(b, -1, -1), sparse], dim=1)
        src = image_embed.expand(b, -1, -1, -1) + dense
        pos_src = self.dense_pe.expand(b, -1, -1, -1)
        _, c, h, w = src.shape
        hs, src = dec.transformer(src, pos_src, tokens)
        iou_token_out = hs[:, 1, :]
        mask_tokens_out = hs[:, 2:2 + dec.num_mask_tokens, :]

        src = src.transpose(1, 2).reshape(b, c, h, w)
        dc1, ln1, act1, dc2, act2 = dec.output_upscaling
        up = act1(ln1(dc1(src) + high_res_feat1))
        up = act2(dc2(up) + high_res_feat0)
        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(dec.output_hypernetworks_mlps)], dim=1)
        _, c, h, w = up.shape
        masks = (hyper_in @ up.reshape(b, c, h * w)).reshape(b, -1, h, w)
        iou_pred = dec.iou_prediction_head(iou_token_out)
        object_score_logits = dec.pred_obj_score_head(hs[:, 0, :])
        object_pointers = self.model.obj_ptr_proj(mask_tokens_out)
        return masks, iou_pred, object_pointers, object_score_logits
