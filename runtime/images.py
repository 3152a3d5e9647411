"""Images as SAM 2 takes them, HxWx3 uint8 RGB, from PIL images of any mode and from image files.

PIL's `convert("RGB")` is right for 8-bit modes (L, P, RGBA, CMYK, ...) but clips 16-bit grayscale ("I;16",
"I") at 255, turning most of a 16-bit image white. Here high-bit-depth grayscale keeps its top 8 bits, which is
what an 8-bit rendering of it shows; float images ("F") have no known range and are refused with the fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def pil_to_rgb(image, what: str = "image") -> np.ndarray:
    """A PIL image of any mode -> [H, W, 3] uint8 RGB (16-bit grayscale scaled by >> 8)."""
    mode = image.mode
    if mode == "RGB":
        return np.asarray(image)
    if mode in _SIXTEEN_BIT or mode == "I":
        values = np.asarray(image).astype(np.int64)
        if mode == "I" and values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(f"{what} is a 32-bit integer image (PIL mode 'I') with values "
                             f"{values.min()}..{values.max()}, outside 16 bits; scale it to 0..255 and pass an "
                             f"HxWx3 uint8 RGB array")
        gray = (values >> 8).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        raise ValueError(f"{what} is a floating-point image (PIL mode 'F') whose range is unknown; scale it to "
                         f"0..255 and pass an HxWx3 uint8 RGB array, e.g. (np.asarray(image) * 255).round()"
                         f".clip(0, 255).astype(np.uint8) for values in [0, 1], repeated on 3 channels")
    return np.asarray(image.convert("RGB"))  # 8-bit modes: palette, gray, alpha dropped, CMYK, YCbCr, ...


def read_image(path) -> np.ndarray:
    """An image file -> [H, W, 3] uint8 RGB; ValueError naming the file when it cannot be read as an image."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"image {path} is a folder, not an image file")
    try:
        with Image.open(path) as image:
            image.load()
            return pil_to_rgb(image, f"image {path}")
    except FileNotFoundError:
        raise ValueError(f"image {path} does not exist") from None
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"cannot read image {path}: {e}") from None
