"""Rotary position encoding in real arithmetic.

The official code (sam2/modeling/position_encoding.py::compute_axial_cis / apply_rotary_enc) uses
torch.polar and view_as_complex, which do not export to ONNX (facebookresearch/sam2 issue #186). With
x viewed as pairs (e, o) = (x[2j], x[2j+1]) and angle a_j, the complex product is
    e' = e cos a - o sin a,   o' = e sin a + o cos a.
"""

import torch


def axial_rope_angles(dim: int, end_x: int, end_y: int, theta: float = 10000.0) -> torch.Tensor:
    """Angles [end_x*end_y, dim/2] float32, exactly as compute_axial_cis builds its phases (x first, then y)."""
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 4)[: (dim // 4)].float() / dim))
    t = torch.arange(end_x * end_y, dtype=torch.float32)
    t_x = (t % end_x).float()
    t_y = torch.div(t, end_x, rounding_mode="floor").float()
    return torch.cat([torch.outer(t_x, freqs), torch.outer(t_y, freqs)], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [..., N, D] rotated pairwise by cos/sin [N, D/2]; same shape and dtype as x."""
    pairs = x.unflatten(-1, (-1, 2))
    e, o = pairs[..., 0], pairs[..., 1]
    return torch.stack([e * cos - o * sin, e * sin + o * cos], dim=-1).flatten(-2)
