"""A minimal stand-in for torchvision, so the official SAM 2 predictors can be imported and run as test references.

torchvision cannot be installed next to the CPU torch of our test machines, and the official
`sam2.utils.transforms` and `sam2.automatic_mask_generator` import it at module level. `install()` puts
modules `torchvision`, `torchvision.transforms`, `torchvision.ops` and `torchvision.ops.boxes` into
`sys.modules` with just what SAM 2 uses, with the semantics of torchvision >= 0.17 on tensors:

  * `transforms.ToTensor`: HWC uint8 ndarray / PIL image -> CHW float32 in [0, 1].
  * `transforms.Resize((h, w))`: bilinear, align_corners=False, antialias=True (the >= 0.17 default).
  * `transforms.Normalize(mean, std)`: (x - mean[:, None, None]) / std[:, None, None].
  * `ops.boxes.box_area`, `ops.boxes.batched_nms` (also `ops.batched_nms`, `ops.nms`): greedy NMS as the
    torchvision CPU kernel (IoU without +1, stable descending score sort, float IoU vs double threshold).

Resize and Normalize are TorchScript-scriptable, because `SAM2Transforms` wraps them in `torch.jit.script`.
"""

# No `from __future__ import annotations`: TorchScript reads the class-level attribute annotations of Resize and
# Normalize as objects and rejects them as strings.
import importlib.machinery
import sys
import types
from typing import List

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

_MARK = "_sam2_trt_torchvision_stub"


class ToTensor:
    """HWC (or HW) uint8 ndarray / PIL image -> CHW float32 / 255; non-uint8 arrays keep their dtype."""

    def __call__(self, pic) -> torch.Tensor:
        if not isinstance(pic, np.ndarray):
            if not hasattr(pic, "mode"):
                raise TypeError(f"ToTensor needs a PIL Image or ndarray, got {type(pic).__name__}")
            pic = np.array(pic, copy=True)
        if pic.ndim == 2:
            pic = pic[:, :, None]
        img = torch.from_numpy(pic.transpose((2, 0, 1))).contiguous()
        return img.to(torch.get_default_dtype()).div(255) if img.dtype == torch.uint8 else img


class Resize(nn.Module):
    """[..., C, H, W] (3-D or 4-D) -> [..., C, h, w], bilinear with antialias; integer images are rounded back."""

    size: List[int]
    antialias: bool

    def __init__(self, size: List[int], antialias: bool = True) -> None:
        super().__init__()
        if len(size) != 2:
            raise ValueError(f"this torchvision stub only resizes to an explicit (h, w), got size={size}")
        self.size = [int(size[0]), int(size[1])]
        self.antialias = antialias

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if img.shape[-2] == self.size[0] and img.shape[-1] == self.size[1]:
            return img  # torchvision returns the input unchanged at its own size
        squeeze = img.dim() < 4
        x = img.unsqueeze(0) if squeeze else img
        out_dtype = x.dtype
        if not x.is_floating_point():
            x = x.to(torch.float32)
        x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=self.antialias)
        if squeeze:
            x = x.squeeze(0)
        if out_dtype != x.dtype:
            x = torch.round(x).to(out_dtype)
        return x


class Normalize(nn.Module):
    """CHW float tensor -> (x - mean[:, None, None]) / std[:, None, None], mean/std cast to the image dtype."""

    mean: List[float]
    std: List[float]

    def __init__(self, mean: List[float], std: List[float], inplace: bool = False) -> None:
        super().__init__()
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=img.dtype, device=img.device).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=img.dtype, device=img.device).view(-1, 1, 1)
        return img.sub(mean).div(std)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """[..., 4] XYXY -> [...] areas without +1, upcast as torchvision's `_upcast`."""
    if boxes.is_floating_point():
        boxes = boxes if boxes.dtype in (torch.float32, torch.float64) else boxes.float()
    else:
        boxes = boxes if boxes.dtype in (torch.int32, torch.int64) else boxes.int()
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS of float boxes [N, 4] -> kept indices [K] int64 in decreasing score order (torchvision CPU)."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64)
    x1, y1, x2, y2 = (boxes[:, k].contiguous() for k in range(4))
    areas = (x2 - x1) * (y2 - y1)
    order = torch.sort(scores, dim=0, descending=True, stable=True)[1]
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    zero = torch.zeros((), dtype=boxes.dtype)
    for pos in range(len(order)):
        i = order[pos]
        if suppressed[i]:
            continue
        rest = order[pos + 1 :]
        w = torch.maximum(zero, torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest]))
        h = torch.maximum(zero, torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest]))
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter)
        # The kernel compares a float IoU with a double threshold; a torch float32 tensor would round the
        # threshold to float32 instead, so compare in float64.
        suppressed[rest] |= iou.double() > iou_threshold
    return order[~suppressed[order]]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Per-category NMS with torchvision's two code paths (chosen by size, as on CPU); [K] int64 indices."""
    if boxes.numel() > 4000:
        keep_mask = torch.zeros_like(scores, dtype=torch.bool)
        for class_id in torch.unique(idxs):
            curr = torch.where(idxs == class_id)[0]
            keep_mask[curr[nms(boxes[curr], scores[curr], iou_threshold)]] = True
        keep = torch.where(keep_mask)[0]
        return keep[scores[keep].sort(descending=True)[1]]
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    offsets = idxs.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def _package(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name, f"sam2-trt test stub of {name} (tests/official_torchvision_stub.py)")
    mod.__path__ = []  # a package, so submodule imports resolve through sys.modules
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
    setattr(mod, _MARK, True)
    for k, v in attrs.items():
        setattr(mod, k, v)
    return mod


def install() -> bool:
    """Make `import torchvision` work; returns True if the stub is in use, False if real torchvision is.

    Idempotent. Real torchvision wins when it imports; a broken one (e.g. built for another torch) is
    removed from sys.modules and replaced by the stub.
    """
    current = sys.modules.get("torchvision")
    if current is not None and getattr(current, _MARK, False):
        return True
    try:
        import torchvision  # noqa: F401

        return False
    except Exception:  # ImportError, or RuntimeError from a torchvision built against another torch
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]

    boxes = _package("torchvision.ops.boxes", box_area=box_area, batched_nms=batched_nms, nms=nms)
    ops = _package("torchvision.ops", boxes=boxes, box_area=box_area, batched_nms=batched_nms, nms=nms)
    transforms = _package("torchvision.transforms", ToTensor=ToTensor, Resize=Resize, Normalize=Normalize)
    root = _package("torchvision", ops=ops, transforms=transforms)
    sys.modules.update({m.__name__: m for m in (root, transforms, ops, boxes)})
    return True
