"""Image -> model input, as the official image and video paths compute it (SAM2_REFERENCE.md section 7).

The two official paths differ and both are kept:
- image predictor (`utils/transforms.py::SAM2Transforms`): ToTensor (uint8 / 255 in float32), then torchvision
  `Resize((S, S))` on the float tensor (bilinear, antialias=True), then Normalize;
- video predictor (`utils/misc.py::load_video_frames`): PIL bicubic resize of the uint8 frame, then / 255 and
  Normalize. No aspect-ratio preservation in either.
"""

from __future__ import annotations

import numpy as np

from .resize import resize_bilinear_antialias, resize_pil_bicubic

IMG_MEAN = np.array((0.485, 0.456, 0.406), np.float32)  # [3] float32, the official defaults
IMG_STD = np.array((0.229, 0.224, 0.225), np.float32)

# The video loader: v / 255.0 in float64, stored into a float32 tensor, then (x - mean) / std in float32.
# [3, 256] float32. (Its async_loading_frames=True path normalises in float64 before the cast: <= 1 ulp apart.)
_VIDEO_LUT = ((np.arange(256) / 255.0).astype(np.float32)[None, :] - IMG_MEAN[:, None]) / IMG_STD[:, None]


def _check_rgb(image_u8) -> np.ndarray:
    image_u8 = np.asarray(image_u8)
    if image_u8.dtype != np.uint8 or image_u8.ndim != 3 or image_u8.shape[2] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3] uint8, got shape {image_u8.shape} {image_u8.dtype}; "
                         "convert grayscale/RGBA first, e.g. sam2_trt.runtime.images.read_image(path)")
    return image_u8


def preprocess_image(image_u8: np.ndarray, size: int) -> np.ndarray:
    """The image predictor's input: [H, W, 3] uint8 RGB -> [1, 3, size, size] float32.

    ToTensor, antialiased bilinear resize of the float image, Normalize; bit-exact with torch 2.13 CPU here.
    """
    image_u8 = _check_rgb(image_u8)
    x = image_u8.transpose(2, 0, 1).astype(np.float32)  # [3, H, W]
    x /= np.float32(255)  # ToTensor divides in float32
    x = resize_bilinear_antialias(x, (size, size))
    x -= IMG_MEAN[:, None, None]
    x /= IMG_STD[:, None, None]
    return x[None]


def preprocess_video_frame(image_u8: np.ndarray, size: int) -> np.ndarray:
    """The video predictor's input for a decoded JPEG frame: [H, W, 3] uint8 RGB -> [1, 3, size, size] float32.

    PIL bicubic resize on uint8, then / 255 and Normalize (one table lookup per pixel; exact).
    """
    small = resize_pil_bicubic(_check_rgb(image_u8), size)  # [size, size, 3] uint8
    out = np.empty((1, 3, size, size), np.float32)
    for c in range(3):
        np.take(_VIDEO_LUT[c], small[:, :, c], out=out[0, c])
    return out
