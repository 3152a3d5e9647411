"""LayerNorm2d whose channel statistics do not depend on the batch: the same object gets the same bits alone or
batched with others (a server tracks several videos' objects in one call and promises each the result it would
get alone).

The official LayerNorm2d (sam2/modeling/sam2_utils.py) takes `x.mean(1)` over the channels of [N, C, H, W].
ONNX Runtime reduces that middle axis along a path chosen by the shape: with N = 1 it is a [C, H*W] column
reduction, with N > 1 another loop whose summation order differs, so a batched object's statistics differ from
its own in the last bits (measured: 3e-8 on the decoder's mask_downscaling, a bf16 step after the memory
encoder). Here the batch is folded into the columns, [1, C, N*H*W]: every N is reduced as N = 1 is, column by
column in channel order, which is also the order a one-object call used before (bit-identical results).
The arithmetic is the official module's, op for op; only the layout of the reduction changes.
"""

from __future__ import annotations

import contextlib
import types

import torch


def _forward(self, x: torch.Tensor) -> torch.Tensor:
    """x [N, C, H, W] float32 -> same shape, normalized over C per pixel as LayerNorm2d.forward."""
    n, c, h, w = x.shape
    t = x.transpose(0, 1).reshape(1, c, -1)  # [1, C, N*H*W]
    u = t.mean(1, keepdim=True)
    s = (t - u).pow(2).mean(1, keepdim=True)
    t = (t - u) / torch.sqrt(s + self.eps)
    x = t.reshape(c, n, h, w).transpose(0, 1)
    return self.weight[:, None, None] * x + self.bias[:, None, None]


@contextlib.contextmanager
def batch_invariant_layer_norms(module: torch.nn.Module):
    """While tracing: every LayerNorm2d inside `module` computes as _forward (instance attributes, restored)."""
    from sam2.modeling.sam2_utils import LayerNorm2d

    norms = [m for m in module.modules() if isinstance(m, LayerNorm2d)]
    for m in norms:
        m.forward = types.MethodType(_forward, m)
    try:
        yield
    finally:
        for m in norms:
            del m.forward
