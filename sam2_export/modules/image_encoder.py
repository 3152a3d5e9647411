"""Graph A: image -> high-res features, vision features and image embedding (see runtime/specs.py)."""

import torch
from torch import nn


class ImageEncoderGraph(nn.Module):
    def __init__(self, sam2_model):
        super().__init__()
        self.model = sam2_model
        trunk = sam2_model.image_encoder.trunk
        s = sam2_model.image_size // 4  # the trunk's stride-4 patch grid
        # Hiera's position embedding is a bicubic resize of a parameter plus a tiled window embedding: it
        # depends only on weights and the image size, so bake it as a constant instead of exporting a
        # parameter-only bicubic Resize on every call.
        with torch.no_grad():
            self.register_buffer("hiera_pos_embed", trunk._get_pos_embed((s, s)).clone(), persistent=False)

    def forward(self, image):
        """image [B,3,S,S] float32 -> high_res_feat0 [B,32,S/4,S/4], high_res_feat1 [B,64,S/8,S/8],
        vision_features [B,256,S/16,S/16], image_embed [B,256,S/16,S/16] (all float32)."""
        trunk = self.model.image_encoder.trunk
        original = trunk._get_pos_embed
        trunk._get_pos_embed = lambda hw: self.hiera_pos_embed
        try:
            out = self.model.forward_image(image)
        finally:
            trunk._get_pos_embed = original
        feat0, feat1, vision = out["backbone_fpn"][-3:]
        # SAM2ImagePredictor and initial conditioning frames use vision + no_mem_embed (directly_add_no_mem_embed).
        image_embed = vision + self.model.no_mem_embed.reshape(1, -1, 1, 1)
        return feat0, feat1, vision, image_embed
