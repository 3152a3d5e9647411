"""Graph A: image -> high-res features, vision features and image embedding (see runtime/specs.py)."""

import contextlib

import torch
from torch import nn

from .memory_attention import by_query_chunks


def _sdpa_in_query_chunks(q, k, v):
    """F.scaled_dot_product_attention(q, k, v) (no mask, no dropout) as softmax(q k^T / sqrt(d)) @ v over blocks
    of queries: q, k, v [B, heads, N, d] -> [B, heads, N, d].

    Hiera's global-attention blocks attend over every token of the stride-16 map (4096 at 1024 px): the exported
    SDPA materialises 4096 x 4096 scores per head (256 MB per block on the CPU) and streams them through memory
    four times (matmul, scale, softmax, matmul). Each query row's softmax is independent, so blocks of queries
    give the same result while a block's scores stay in cache. Windowed blocks (<= 196 tokens) are one block."""
    scale = q.shape[-1] ** -0.5
    return by_query_chunks(lambda qc: torch.softmax((qc @ k.transpose(-2, -1)) * scale, dim=-1) @ v, q)


class _ChunkedAttentionFunctional:
    """torch.nn.functional, except scaled_dot_product_attention (what the official hieradet module calls as
    `F.scaled_dot_product_attention`): swapped in for the trace only, the official code is not edited."""

    def __init__(self, functional):
        self._functional = functional

    def __getattr__(self, name):
        return getattr(self._functional, name)

    @staticmethod
    def scaled_dot_product_attention(q, k, v, *args, **kwargs):
        if args or kwargs:  # a mask, dropout or causal flag: not what Hiera calls, keep the official op
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, *args, **kwargs)
        return _sdpa_in_query_chunks(q, k, v)


@contextlib.contextmanager
def _swapped(obj, name: str, value):
    original = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, original)


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
        from sam2.modeling.backbones import hieradet

        trunk = self.model.image_encoder.trunk
        with _swapped(trunk, "_get_pos_embed", lambda hw: self.hiera_pos_embed), \
                _swapped(hieradet, "F", _ChunkedAttentionFunctional(hieradet.F)):
            out = self.model.forward_image(image)
        feat0, feat1, vision = out["backbone_fpn"][-3:]
        # SAM2ImagePredictor and initial conditioning frames use vision + no_mem_embed (directly_add_no_mem_embed).
        image_embed = vision + self.model.no_mem_embed.reshape(1, -1, 1, 1)
        return feat0, feat1, vision, image_embed
