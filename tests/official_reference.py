"""Running the official SAM 2 code as the reference in tests, on a CPU-only machine.

Two stand-ins are needed (see ENVIRONMENT.md): torchvision cannot be imported with the CPU torch
(tests/official_torchvision_stub.py), and the official CUDA connected-components extension sam2._C is not
built, so `get_connected_components` is replaced by scipy's 8-connected labelling (only component areas
matter to the official callers).
"""

from __future__ import annotations

import contextlib

import numpy as np
import scipy.ndimage


def connected_components_scipy(mask):
    """Stand-in for sam2.utils.misc.get_connected_components: [N,1,H,W] -> (labels, areas) int32 tensors."""
    import torch

    m = mask.cpu().numpy().astype(bool)
    labels = np.zeros(m.shape, np.int32)
    areas = np.zeros(m.shape, np.int32)
    for i in range(m.shape[0]):
        lab, _ = scipy.ndimage.label(m[i, 0], structure=np.ones((3, 3), bool))
        counts = np.bincount(lab.ravel())
        labels[i, 0] = lab
        areas[i, 0] = np.where(lab > 0, counts[lab], 0)
    return torch.from_numpy(labels), torch.from_numpy(areas)


@contextlib.contextmanager
def official_connected_components():
    """Make the official hole filling / sprinkle removal run (instead of being skipped with a warning)."""
    import sam2.utils.misc as misc

    saved = misc.get_connected_components
    misc.get_connected_components = connected_components_scipy
    try:
        yield
    finally:
        misc.get_connected_components = saved


def official_image_classes():
    """(SAM2ImagePredictor, SAM2AutomaticMaskGenerator) of the official package, importable without torchvision."""
    from tests import official_torchvision_stub

    official_torchvision_stub.install()
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    return SAM2ImagePredictor, SAM2AutomaticMaskGenerator


def build_official(config: str, checkpoint, **kwargs):
    from sam2.build_sam import build_sam2

    return build_sam2(config, str(checkpoint), device="cpu", **kwargs)


def scene(h: int = 360, w: int = 480, seed: int = 0) -> np.ndarray:
    """A synthetic RGB photo: smooth background with a few solid shapes (so masks have structure)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([80 + 60 * np.sin(xx / 37.0), 90 + 50 * np.cos(yy / 29.0), 120 + 0 * xx], -1)
    for _ in range(5):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(20, 70)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, 255, 3)
    img[h // 4: h // 2, w // 2: w // 2 + 90] = (240, 240, 40)
    return img.clip(0, 255).astype(np.uint8)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union
