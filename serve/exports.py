"""A video session's masks as a download: DAVIS palette PNGs and COCO RLE JSON in one zip.

The zip holds masks/00000.png ... (runtime.video_writers.DavisMaskWriter: pixel value = object id) for every
frame of the video (frames without masks are empty) and masks.json (CocoRleWriter's format). It is written under
a hidden temporary name in the export folder and renamed into place only when complete, so a failure, a
cancellation or a shutdown never leaves a half-written export under the final name; `cancel` (an Event) is
checked between frames.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import zipfile
from pathlib import Path

import numpy as np

from sam2_trt.runtime.video_writers import CocoRleWriter, DavisMaskWriter


class ExportCancelled(Exception):
    pass


def export_zip(masks: dict, num_frames: int, height: int, width: int, video_name: str, out: Path,
               cancel: threading.Event) -> Path:
    """masks {frame: [{"obj_id", "segmentation"}]} -> `out` (.zip), written atomically; ExportCancelled when
    `cancel` is set before it is complete (nothing is left behind)."""
    from pycocotools import mask as mask_utils

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.stem}.partial-", dir=out.parent))
    try:
        obj_ids = sorted({o["obj_id"] for objs in masks.values() for o in objs})
        coco = CocoRleWriter(work / "masks.json", video=video_name)
        with DavisMaskWriter(work / "masks") as davis:
            for f in range(num_frames):
                if cancel.is_set():
                    raise ExportCancelled("the export was cancelled")
                found = {o["obj_id"]: o["segmentation"] for o in masks.get(f, [])}
                frame_masks = np.zeros((len(obj_ids), height, width), bool)
                for k, o in enumerate(obj_ids):
                    if o in found:
                        seg = found[o]
                        frame_masks[k] = mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()})
                davis.write(f, obj_ids, frame_masks)
                coco.add(f, obj_ids, frame_masks)
        coco.close()
        partial = work / "export.zip"
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted((work / "masks").iterdir()):
                z.write(path, f"masks/{path.name}")
            z.write(work / "masks.json", "masks.json")
        if cancel.is_set():
            raise ExportCancelled("the export was cancelled")
        os.replace(partial, out)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)
