"""Image sessions: upload (or open) an image once, then masks from clicks, boxes and a previous mask, or
automatic masks. Masks are COCO RLE at the image's size, bit for bit what SAM2ImagePredictor.predict returns."""

from __future__ import annotations

import io

import numpy as np
from fastapi import APIRouter, Request, Response

from sam2_trt.runtime.automatic_mask_generator import SAM2AutomaticMaskGenerator
from sam2_trt.runtime.video_writers import coco_rle

from .schemas import AutomaticRequest, ImagePredictRequest, OpenRequest
from .server import TooLarge
from .sessions import ImageSession

router = APIRouter(prefix="/api/images", tags=["images"])


async def _open(server, data: bytes, name: str) -> dict:
    image = server.decode_image(data, name)
    predictor = server.image_predictor()
    await server.encode(predictor, image)  # batched with other clients' images on the model thread
    session = ImageSession(predictor, image, name)
    server.store.add(session)
    return session.describe()


@router.post("", status_code=201)
async def upload_image(request: Request, name: str = "image") -> dict:
    """The body is an image file (JPEG, PNG, ...); returns the new session: {session_id, width, height}."""
    server = request.app.state.server
    return await _open(server, await server.receive_upload(request), name)


@router.post("/open", status_code=201)
async def open_image(request: Request, body: OpenRequest) -> dict:
    """An image under --media-root, by relative path."""
    server = request.app.state.server
    if server.media is None:
        raise ValueError("path: this server has no media root (start it with --media-root DIR); upload the image")
    path = server.media.resolve(body.path)
    if not path.is_file():
        raise ValueError(f"path: {body.path!r} is not a file")
    if path.stat().st_size > server.config.max_upload_bytes:
        raise TooLarge(f"{body.path} is larger than {server.config.max_upload_mb:g} MB (--max-upload-mb)")
    return await _open(server, path.read_bytes(), body.path)


@router.get("/{session_id}")
async def describe(request: Request, session_id: str) -> dict:
    return request.app.state.server.store.get(session_id, "image").describe()


@router.get("/{session_id}/image", response_class=Response)
async def image_file(request: Request, session_id: str):
    """The session's image as PNG (what the page draws under the masks)."""
    from PIL import Image

    session = request.app.state.server.store.get(session_id, "image")
    buf = io.BytesIO()
    Image.fromarray(session.image).save(buf, format="PNG")
    return Response(buf.getvalue(), media_type="image/png")


@router.post("/{session_id}/predict")
async def predict(request: Request, session_id: str, body: ImagePredictRequest) -> dict:
    """Masks for one object's clicks and/or box: {"masks": [{segmentation, area, bbox, score}], "best": index}
    (three candidates with multimask, else one)."""
    server = request.app.state.server
    session = server.store.get(session_id, "image")

    def run():
        mask_input = None
        if body.use_previous_mask:
            mask_input = session.low_res.get(body.obj_id)
            if mask_input is None:
                raise ValueError(f"use_previous_mask: object {body.obj_id} has no mask yet in this session; predict "
                                 f"once without it")
        masks, scores, low_res = session.predictor.predict(
            point_coords=np.asarray(body.points, np.float32) if body.points else None,
            point_labels=np.asarray(body.labels, np.int32) if body.points else None,
            box=np.asarray(body.box, np.float32) if body.box is not None else None, mask_input=mask_input,
            multimask_output=body.multimask)
        best = int(np.argmax(scores))
        session.low_res[body.obj_id] = low_res[best][None]
        return {"masks": [{**coco_rle(m), "score": float(s)} for m, s in zip(masks, scores)], "best": best}

    return await server.run(run)


@router.post("/{session_id}/automatic")
async def automatic(request: Request, session_id: str, body: AutomaticRequest) -> dict:
    """Every object found on a grid of points (SAM2AutomaticMaskGenerator): {"masks": [{segmentation, area, bbox,
    predicted_iou, stability_score}]}, largest first."""
    server = request.app.state.server
    session = server.store.get(session_id, "image")
    if body.points_per_side > server.config.max_points_per_side:
        raise ValueError(f"points_per_side: {body.points_per_side} is more than this server allows "
                         f"({server.config.max_points_per_side}, --max-points-per-side)")

    def run():
        generator = SAM2AutomaticMaskGenerator(
            server.model, points_per_side=body.points_per_side, pred_iou_thresh=body.pred_iou_thresh,
            stability_score_thresh=body.stability_score_thresh, min_mask_region_area=body.min_mask_region_area,
            output_mode="coco_rle")
        records = generator.generate(session.image)
        keys = ("segmentation", "area", "bbox", "predicted_iou", "stability_score")
        return {"masks": [{k: r[k] for k in keys} for r in sorted(records, key=lambda r: -r["area"])]}

    return await server.run(run)


@router.delete("/{session_id}", status_code=204)
async def close(request: Request, session_id: str) -> Response:
    request.app.state.server.store.remove(session_id, "image")
    return Response(status_code=204)
