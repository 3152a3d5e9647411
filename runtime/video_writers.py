"""Where tracked masks go: DAVIS palette PNGs, an overlay video a person can watch, COCO-RLE JSON.

Each writer takes per-frame results as (frame_idx, obj_ids, masks [O, H, W] bool) and writes under a hidden
temporary name beside its destination, renamed into place by `close()` (the mask folder as a whole, the
video and the JSON each as one file). Used as context managers, an exception or Ctrl-C removes the temporary
output instead, so an interrupted run never leaves a half-written file (or half a mask folder) under the final
name. An earlier output of the same name is replaced only at that rename.
"""

from __future__ import annotations

import json
import os
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np

from .overlay import color


def davis_palette() -> np.ndarray:
    """[256, 3] uint8: the palette of the DAVIS annotations (the PASCAL VOC colour map: 1 dark red, 2 green...)."""
    idx = np.arange(256)
    pal = np.zeros((256, 3), np.int64)
    for bit in range(8):
        for ch in range(3):
            pal[:, ch] |= ((idx >> (3 * bit + ch)) & 1) << (7 - bit)
    return pal.astype(np.uint8)


def _temp_beside(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial-{os.getpid()}{path.suffix}")


def _check_masks(obj_ids, masks) -> tuple[list, np.ndarray]:
    masks = np.asarray(masks)
    obj_ids = [int(o) for o in obj_ids]
    if masks.ndim != 3 or masks.shape[0] != len(obj_ids):
        raise ValueError(f"masks must be [objects, H, W] with one mask per object id; got shape {masks.shape} "
                         f"for {len(obj_ids)} object ids")
    return obj_ids, masks.astype(bool, copy=False)


class _Atomic:
    """Context-manager protocol: close() on success, abort() on any exception (KeyboardInterrupt included)."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()


class DavisMaskWriter(_Atomic):
    """out_dir/{frame:05d}.png per frame: mode "P", pixel value = object id (1..255), 0 = background."""

    def __init__(self, out_dir):
        self.out_dir = Path(out_dir)
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = _temp_beside(self.out_dir)
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp.mkdir()
        self._palette = davis_palette().ravel().tolist()

    def write(self, frame_idx: int, obj_ids, masks) -> None:
        """masks [O, H, W] bool for `obj_ids`; where objects overlap the smaller id wins, as the official
        tools/vos_inference.py (put_per_obj_mask) writes them."""
        from PIL import Image

        obj_ids, masks = _check_masks(obj_ids, masks)
        bad = [o for o in obj_ids if not 1 <= o <= 255]
        if bad:
            raise ValueError(f"object id {bad[0]} cannot be stored in a DAVIS palette PNG: ids must be 1..255 "
                             f"(0 is the background)")
        labels = np.zeros(masks.shape[1:], np.uint8)
        for o, m in sorted(zip(obj_ids, masks), key=lambda om: -om[0]):
            labels[m] = o
        image = Image.fromarray(labels)
        image.putpalette(self._palette)  # turns the "L" image into "P"
        image.save(self._tmp / f"{int(frame_idx):05d}.png")

    def labels(self, frame_idx: int) -> np.ndarray:
        """[H, W] uint8 object ids of a frame written earlier in this run."""
        from PIL import Image

        with Image.open(self._tmp / f"{int(frame_idx):05d}.png") as im:
            return np.asarray(im)

    def close(self) -> None:
        old = None
        if self.out_dir.exists():
            old = self.out_dir.with_name(f".{self.out_dir.name}.old-{os.getpid()}")
            os.rename(self.out_dir, old)
        os.rename(self._tmp, self.out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


def blend_masks(frame: np.ndarray, obj_ids, masks, alpha: float = 0.45) -> np.ndarray:
    """frame [H, W, 3] uint8 RGB -> same, each object tinted with its colour and outlined (2 px, antialiased)."""
    import cv2

    obj_ids, masks = _check_masks(obj_ids, masks)
    out = frame.astype(np.float32)
    for o, m in zip(obj_ids, masks):
        out[m] = (1 - alpha) * out[m] + alpha * color(o - 1)
    out = out.round().clip(0, 255).astype(np.uint8)
    for o, m in zip(obj_ids, masks):
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in color(o - 1)), 2, cv2.LINE_AA)
    return out


def burn_caption(frame: np.ndarray, text: str) -> np.ndarray:
    """White text on a dark band across the top of `frame` [H, W, 3] uint8 (modified in place and returned)."""
    import cv2

    h, w = frame.shape[:2]
    font, thick = cv2.FONT_HERSHEY_SIMPLEX, 1 if w < 800 else 2
    scale = max(0.35, w / 1280)
    while scale > 0.3 and cv2.getTextSize(text, font, scale, thick)[0][0] > w - 16:
        scale *= 0.9
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    band = min(h, th + base + 12)
    frame[:band] = (frame[:band].astype(np.float32) * 0.35).astype(np.uint8)
    cv2.putText(frame, text, (8, 6 + th), font, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return frame


class OverlayVideoWriter(_Atomic):
    """An H.264 mp4 (yuv420p, libx264; mpeg4 where libx264 is missing) of masks blended over the frames.

    yuv420p needs even sides: an odd width or height is padded by one replicated row/column.
    """

    def __init__(self, path, fps: float, width: int, height: int, caption: str | None = None, crf: int = 23):
        import av

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.width, self.height, self.caption = int(width), int(height), caption
        self._tmp = _temp_beside(self.path)
        self._container = av.open(str(self._tmp), mode="w", format="mp4")
        codec = "libx264" if _has_encoder("libx264") else "mpeg4"
        rate = Fraction(fps).limit_denominator(1001) if fps and fps > 0 else Fraction(24)
        self._stream = self._container.add_stream(codec, rate=rate)
        self._stream.width, self._stream.height = self.width + self.width % 2, self.height + self.height % 2
        self._stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            self._stream.options = {"crf": str(crf), "preset": "medium"}
        else:
            self._stream.bit_rate = 4_000_000
        self.frames_written = 0

    def write(self, frame: np.ndarray, obj_ids=(), masks=None) -> None:
        """frame [H, W, 3] uint8 RGB; masks [O, H, W] bool for obj_ids (None: the frame as it is)."""
        import av

        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame must be [{self.height}, {self.width}, 3] uint8 RGB, got {frame.shape} "
                             f"{frame.dtype}")
        image = blend_masks(frame, obj_ids, masks) if masks is not None else frame.copy()
        if self.caption:
            burn_caption(image, self.caption)
        if self.width % 2 or self.height % 2:
            image = np.pad(image, ((0, self.height % 2), (0, self.width % 2), (0, 0)), mode="edge")
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        for packet in self._stream.encode():  # flush the encoder's delayed frames
            self._container.mux(packet)
        self._container.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - a broken container is being thrown away anyway
            pass
        self._tmp.unlink(missing_ok=True)


def _has_encoder(name: str) -> bool:
    import av

    try:
        av.codec.Codec(name, "w")
        return True
    except Exception:  # noqa: BLE001 - PyAV raises UnknownCodecError (a ValueError) or FFmpegError by version
        return False


def coco_rle(mask: np.ndarray) -> dict:
    """[H, W] bool -> {"segmentation": {"size": [H, W], "counts": str}, "area": int, "bbox": [x, y, w, h]}: COCO's
    compressed RLE (column-major, what pycocotools' mask.decode reads back)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, bool).astype(np.uint8)))
    return {"segmentation": {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")},
            "area": int(mask_utils.area(rle)), "bbox": [float(v) for v in mask_utils.toBbox(rle)]}


def coco_document(video: str | None, height: int | None, width: int | None, frames: dict) -> dict:
    """The JSON document CocoRleWriter writes: frames {frame_idx: [{"obj_id", **coco_rle(mask)}]}, in frame order."""
    return {"video": video, "height": height, "width": width,
            "frames": [{"frame": f, "objects": frames[f]} for f in sorted(frames)]}


class CocoRleWriter(_Atomic):
    """One JSON file: {"video", "height", "width", "frames": [{"frame", "objects": [{"obj_id", "segmentation":
    {"size": [H, W], "counts": str}, "area", "bbox": [x, y, w, h]}]}]}, frames in order, written by close().

    categories: {obj_id: {"category_id": int | None, "category": str | None}} (a detector's class of each track):
    each object of a frame then carries its track's two fields, and the document lists every track with them
    under "tracks": [{"obj_id", "category_id", "category"}].
    """

    def __init__(self, path, video: str | None = None, categories: dict | None = None):
        self.path = Path(path)
        self.video = video
        self.categories = {int(o): dict(c) for o, c in categories.items()} if categories is not None else None
        self.height = self.width = None
        self._frames = {}

    def add(self, frame_idx: int, obj_ids, masks) -> None:
        obj_ids, masks = _check_masks(obj_ids, masks)
        self.height, self.width = masks.shape[1:]
        categories = self.categories or {}
        self._frames[int(frame_idx)] = [{"obj_id": o, **categories.get(o, {}), **coco_rle(m)}
                                        for o, m in zip(obj_ids, masks)]

    def close(self) -> None:
        doc = coco_document(self.video, self.height, self.width, self._frames)
        if self.categories is not None:
            doc["tracks"] = [{"obj_id": o, **self.categories[o]} for o in sorted(self.categories)]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_beside(self.path)
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.path)

    def abort(self) -> None:
        self._frames.clear()
