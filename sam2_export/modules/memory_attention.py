"""Graph C: memory attention over padded, masked memory slots and object pointers (see runtime/specs.py).

The official MemoryAttention takes one concatenated [Nm, B, 64] memory whose layout (number of memory
frames, number of pointer tokens) is baked in as Python ints when traced. Here spatial memories arrive as
fixed slots [B, S, 64, F, F] with their temporal-encoding index, pointers as [B, P, 256] with their temporal
distance, and each object masks its unused slots, so objects with different memory sets share one call.
A masked key gets exactly zero softmax weight, so the result equals attending to the valid keys only.
The current frame's features come per frame (several videos in one call) and each object continues from its own
frame's (frame_index) after the first self-attention, which only depends on the frame and so runs once per frame.
"""

import torch
from torch import nn

from .rope import apply_rope, axial_rope_angles

# Queries per attention block. Each query row's softmax is independent, so attending in blocks of queries is
# exact; it bounds the score matrix a block materializes ([chunk, keys]: 29 MB at 256 queries x 7 memories of
# 64x64 plus 16 pointers in fp32, instead of 470 MB for all 4096 queries of a 1024 px frame), which keeps the
# scores in cache between the matmul, the mask, the softmax and the weighting, and caps transient memory.
QUERY_CHUNK = 256


def by_query_chunks(rows, q):
    """rows(q_block [b,h,n,d]) -> [b,h,n,e], applied to blocks of QUERY_CHUNK queries of q and concatenated."""
    if q.shape[-2] <= QUERY_CHUNK:
        return rows(q)
    return torch.cat([rows(block) for block in q.split(QUERY_CHUNK, dim=-2)], dim=-2)


class MemoryAttentionGraph(nn.Module):
    def __init__(self, sam2_model):
        super().__init__()
        self.model = sam2_model
        ma = sam2_model.memory_attention
        layer = ma.layers[0]
        # The official layer's flags, as every SAM 2 / 2.1 config sets them; the forward below relies on them.
        assert ma.pos_enc_at_input and ma.batch_first
        assert not layer.pos_enc_at_attn and layer.pos_enc_at_cross_attn_keys
        assert not layer.pos_enc_at_cross_attn_queries
        f = sam2_model.sam_image_embedding_size
        with torch.no_grad():
            curr_pos = sam2_model.image_encoder.neck.position_encoding(torch.zeros(1, 256, f, f))
            mem_pos = sam2_model.memory_encoder.position_encoding(torch.zeros(1, sam2_model.mem_dim, f, f))
        self.register_buffer("curr_pos", curr_pos.flatten(2).transpose(1, 2).clone(), persistent=False)  # [1,HW,256]
        self.register_buffer("maskmem_pos", mem_pos.flatten(2).transpose(1, 2)[0].clone(), persistent=False)  # [HW,64]
        attn = layer.self_attn
        angles = axial_rope_angles(attn.internal_dim // attn.num_heads, f, f)
        self.register_buffer("rope_cos", torch.cos(angles), persistent=False)  # [HW, D/2]
        self.register_buffer("rope_sin", torch.sin(angles), persistent=False)

    def _pointer_pos(self, pointer_tpos):
        """[B,P] normalized signed frame distance -> [B,P,64] temporal encoding of object pointers."""
        m = self.model
        if m.add_tpos_enc_to_obj_ptrs:
            from sam2.modeling.sam2_utils import get_1d_sine_pe

            dim = m.hidden_dim if m.proj_tpos_enc_in_obj_ptrs else m.mem_dim
            return m.obj_ptr_tpos_proj(get_1d_sine_pe(pointer_tpos, dim=dim))
        # SAM 2.0 has no pointer temporal encoding (zeros). Multiplying keeps the input in the graph, so
        # both families share one interface.
        return pointer_tpos.unsqueeze(-1) * torch.zeros(m.mem_dim)

    @staticmethod
    def _weighted(q, k, v, bias):
        """softmax(q k^T / sqrt(d) + bias) @ v per head, in blocks of queries: q [b,h,Nq,d], k [b,h,Nk,d],
        v [b,h or 1,Nk,e] -> [b,h,Nq,e]."""
        scale = q.shape[-1] ** -0.5

        def rows(qc):
            scores = (qc @ k.transpose(-2, -1)) * scale
            if bias is not None:
                scores = scores + bias
            return torch.softmax(scores, dim=-1) @ v

        return by_query_chunks(rows, q)

    def _attend(self, attn, q, k, v, bias=None):
        """RoPEAttention with separate heads: q [b,Nq,256], k/v [b,Nk,256] already projected and rotated."""
        h = attn.num_heads
        q, k, v = (t.unflatten(-1, (h, -1)).transpose(1, 2) for t in (q, k, v))
        return attn.out_proj(self._weighted(q, k, v, bias).transpose(1, 2).flatten(2))

    def _attend_values_late(self, attn, q, k, values, bias):
        """Cross-attention with the value projection after the weighting: q [b,Nq,256], k [b,Nk,256] projected
        and rotated, values [b,Nk,64] not yet projected.

        Softmax rows sum to 1, so sum_j a_j (W v_j + b) = W (sum_j a_j v_j) + b: weighting the 64-wide memory
        before projecting it to 256 is the same attention with a quarter of the multiply-adds over the ~30k
        keys (the official code projects every key first). Used when h * 64 < 256 (SAM 2 has one head)."""
        h = attn.num_heads
        q, k = (t.unflatten(-1, (h, -1)).transpose(1, 2) for t in (q, k))
        mixed = self._weighted(q, k, values.unsqueeze(1), bias)  # [b,h,Nq,64]: the values are shared by the heads
        weight = attn.v_proj.weight.unflatten(0, (h, -1))  # [h, 256/h, 64]
        out = mixed @ weight.transpose(-2, -1) + attn.v_proj.bias.unflatten(0, (h, -1)).unsqueeze(1)
        return attn.out_proj(out.transpose(1, 2).flatten(2))

    def _split_rope(self, attn, x):
        """Project and rotate per head: x [..., N, 256] -> [..., N, 256]."""
        h = attn.num_heads
        return apply_rope(x.unflatten(-1, (h, -1)).transpose(-3, -2), self.rope_cos, self.rope_sin
                          ).transpose(-3, -2).flatten(-2)

    def forward(self, vision_features, memory, memory_tpos_index, memory_valid,
                object_pointers, pointer_tpos, pointer_valid, frame_index):
        """vision_features [T,256,F,F] (T frames), memory [B,S,64,F,F], memory_tpos_index [B,S] int32,
        memory_valid [B,S], object_pointers [B,P,256], pointer_tpos [B,P], pointer_valid [B,P],
        frame_index [B] int32 in [0, T) -> conditioned_features [B,256,F,F] (float32)."""
        m = self.model
        ma = m.memory_attention
        b = memory.shape[0]
        c, f = vision_features.shape[1], vision_features.shape[-1]
        tokens = m.hidden_dim // m.mem_dim  # an object pointer becomes 4 tokens of 64

        # Memory tokens and their positional encodings
        mem = memory.flatten(3).transpose(2, 3)  # [B,S,HW,64]
        tpos_table = m.maskmem_tpos_enc.reshape(m.num_maskmem, m.mem_dim)
        mem_pos = self.maskmem_pos + tpos_table[memory_tpos_index.long()].unsqueeze(2)  # [B,S,HW,64]
        ptr = object_pointers.reshape(b, -1, m.mem_dim)  # [B,4P,64], pointer-major as the official split
        ptr_pos = self._pointer_pos(pointer_tpos).unsqueeze(2).expand(-1, -1, tokens, -1).reshape(b, -1, m.mem_dim)

        # Additive key mask: 0 for valid keys, -inf for padding (exact zero weight after softmax)
        valid = torch.cat([memory_valid.unsqueeze(-1).expand(-1, -1, mem.shape[2]).reshape(b, -1),
                           pointer_valid.unsqueeze(-1).expand(-1, -1, tokens).reshape(b, -1)], dim=1)
        bias = torch.zeros_like(valid).masked_fill(valid < 0.5, float("-inf"))[:, None, None, :]

        x = vision_features.flatten(2).transpose(1, 2)  # [T,HW,256]: per frame until the first cross-attention
        x = x + 0.1 * self.curr_pos
        for i, layer in enumerate(ma.layers):
            sa = layer.self_attn
            t = layer.norm1(x)
            x = x + self._attend(sa, self._split_rope(sa, sa.q_proj(t)), self._split_rope(sa, sa.k_proj(t)),
                                 sa.v_proj(t))
            if i == 0:
                x = x.index_select(0, frame_index)  # [B,HW,256]: each object from here on, on its own frame
            ca = layer.cross_attn_image
            t = layer.norm2(x)
            k_mem = self._split_rope(ca, ca.k_proj(mem + mem_pos)).flatten(1, 2)  # pointers are not rotated
            k = torch.cat([k_mem, ca.k_proj(ptr + ptr_pos)], dim=1)
            q = self._split_rope(ca, ca.q_proj(t))
            values = torch.cat([mem.flatten(1, 2), ptr], dim=1)  # [B, S*HW + 4P, 64]
            if ca.num_heads * values.shape[-1] < ca.internal_dim:
                x = x + self._attend_values_late(ca, q, k, values, bias)
            else:
                x = x + self._attend(ca, q, k, ca.v_proj(values), bias)
            t = layer.norm3(x)
            x = x + layer.linear2(layer.activation(layer.linear1(t)))
        x = ma.norm(x)
        return x.transpose(1, 2).reshape(b, c, f, f)
