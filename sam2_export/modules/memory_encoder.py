"""Graph D: low-res mask logits -> bf16-rounded memories, as SAM2Base._encode_new_memory (see runtime/specs.py).

The frame features come per frame and each object gathers its own (frame_index), so objects of several videos
share a call; LayerNorm2d computes its statistics the same way for any batch (layer_norm.py)."""

import torch
import torch.nn.functional as F
from torch import nn

from .layer_norm import batch_invariant_layer_norms


class MemoryEncoderGraph(nn.Module):
    def __init__(self, sam2_model):
        super().__init__()
        self.model = sam2_model

    def forward(self, vision_features, mask_logits, binarize, object_score_logits, frame_index):
        """vision_features [T,256,F,F] (T frames), mask_logits [B,1,4F,4F], binarize [B], object_score_logits [B,1],
        frame_index [B] int32 in [0, T) -> memory [B,64,F,F] float32 holding bfloat16-representable values."""
        with batch_invariant_layer_norms(self.model):
            return self._encode(vision_features.index_select(0, frame_index), mask_logits, binarize,
                                object_score_logits)

    def _encode(self, pix, mask_logits, binarize, object_score_logits):
        """forward() with the frame features already gathered per object (pix [B,256,F,F])."""
        m = self.model
        # _forward_sam_heads: high-res masks are a plain bilinear upsampling of the low-res logits
        high = F.interpolate(mask_logits, size=(m.image_size, m.image_size), mode="bilinear", align_corners=False)
        # binarize_mask_from_pts_for_mem_enc applies per object (masks from clicks); sigmoid otherwise
        flag = binarize.reshape(-1, 1, 1, 1) > 0.5
        mask = torch.where(flag, (high > 0).float(), torch.sigmoid(high))
        mask = mask * m.sigmoid_scale_for_mem_enc + m.sigmoid_bias_for_mem_enc
        feats = m.memory_encoder(pix, mask, skip_mask_sigmoid=True)["vision_features"]
        if m.no_obj_embed_spatial is not None:  # SAM 2.1
            absent = 1 - (object_score_logits > 0).float()
            feats = feats + absent[..., None, None] * m.no_obj_embed_spatial[..., None, None]
        else:
            # SAM 2.0 ignores the score; adding zero keeps the input in the traced graph (the tracer drops unused
            # inputs) so both families share one interface.
            feats = feats + 0.0 * object_score_logits[..., None, None]
        # The official predictor stores maskmem_features.to(torch.bfloat16) (sam2_video_predictor.py)
        return feats.to(torch.bfloat16).to(torch.float32)
