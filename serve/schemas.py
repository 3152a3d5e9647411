"""Request bodies of the API, validated before anything runs: a rejected request names the field (app.py turns
pydantic's errors into one line per field, e.g. `labels[1]: Input should be 0 or 1`).

Coordinates are pixels of the image or video frame, (x, y) from the top left; masks are COCO RLE
({"size": [H, W], "counts": "..."}, column-major, what pycocotools writes); object ids are 1..255 (a DAVIS
palette PNG stores one per pixel value).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Point = tuple[float, float]
Box = tuple[float, float, float, float]
ObjId = Field(ge=1, le=255, description="object id, 1..255 (a DAVIS palette PNG stores one per pixel value)")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _Prompt(_Strict):
    points: list[Point] = Field(default_factory=list, max_length=64,
                                description="clicks [[x, y], ...] in pixels")
    labels: list[Literal[0, 1]] = Field(default_factory=list, max_length=64,
                                        description="one per point: 1 on the object, 0 on the background")
    box: Box | None = Field(default=None, description="[x0, y0, x1, y1] in pixels, x1 >= x0, y1 >= y0")

    @model_validator(mode="after")
    def _consistent(self):
        if len(self.labels) != len(self.points):
            raise ValueError(f"labels: give one label per point ({len(self.points)} points, {len(self.labels)} "
                             f"labels)")
        if not self.points and self.box is None:
            raise ValueError("points, box: give at least one click (points + labels) or a box")
        if self.box is not None and (self.box[2] < self.box[0] or self.box[3] < self.box[1]):
            raise ValueError(f"box: {list(self.box)} has x1 < x0 or y1 < y0; boxes are [x0, y0, x1, y1]")
        return self


class ImagePredictRequest(_Prompt):
    obj_id: int = Field(default=1, ge=1, le=255, description="which object of the page (for use_previous_mask)")
    multimask: bool = Field(default=True, description="three candidate masks (one click is ambiguous) or one")
    use_previous_mask: bool = Field(default=False,
                                    description="feed this object's last best mask back as a prompt (refinement)")


class AutomaticRequest(_Strict):
    points_per_side: int = Field(default=16, ge=1, description="grid of points per image side (at most "
                                                               "--max-points-per-side)")
    pred_iou_thresh: float = Field(default=0.8, ge=0, le=1)
    stability_score_thresh: float = Field(default=0.95, ge=0, le=1)
    min_mask_region_area: int = Field(default=0, ge=0)


class VideoPromptRequest(_Prompt):
    frame: int = Field(ge=0, description="frame index, 0-based")
    obj_id: int = ObjId
    clear_old_points: bool = Field(default=True, description="replace this object's clicks on the frame")


class Rle(_Strict):
    size: tuple[int, int] = Field(description="[H, W]")
    counts: str = Field(min_length=1, description="COCO compressed RLE counts")


class VideoMaskRequest(_Strict):
    frame: int = Field(ge=0)
    obj_id: int = ObjId
    mask: Rle


class ClearRequest(_Strict):
    frame: int = Field(ge=0)
    obj_id: int | None = Field(default=None, ge=1, le=255, description="one object's prompts (default: every "
                                                                        "object's on the frame)")


class OpenRequest(_Strict):
    path: str = Field(min_length=1, max_length=4096, description="relative to --media-root")


class PropagateRequest(_Strict):
    """The first WebSocket message of a propagation."""

    start_frame: int | None = Field(default=None, ge=0, description="default: the earliest prompted frame")
    direction: Literal["forward", "backward", "both"] = "forward"
    max_frames: int | None = Field(default=None, ge=0, description="frames to track per direction (default all)")
