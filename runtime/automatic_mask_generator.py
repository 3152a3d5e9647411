"""SAM2AutomaticMaskGenerator on an exported model: the official pipeline (sam2/automatic_mask_generator.py)
with the same arguments and record fields, in numpy."""

from __future__ import annotations

import numpy as np

from . import amg_utils as amg
from .image_predictor import SAM2ImagePredictor
from .model import SAM2Model
from .prompts import DecoderPrompts, check_image, numeric, to_model_coords

OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")


class SAM2AutomaticMaskGenerator:
    def __init__(self, model: SAM2Model, points_per_side: int | None = 32, points_per_batch: int = 64,
                 pred_iou_thresh: float = 0.8, stability_score_thresh: float = 0.95,
                 stability_score_offset: float = 1.0, mask_threshold: float = 0.0, box_nms_thresh: float = 0.7,
                 crop_n_layers: int = 0, crop_nms_thresh: float = 0.7, crop_overlap_ratio: float = 512 / 1500,
                 crop_n_points_downscale_factor: int = 1, point_grids=None, min_mask_region_area: int = 0,
                 output_mode: str = "binary_mask", use_m2m: bool = False, multimask_output: bool = True,
                 apply_postprocessing: bool = True):
        """Arguments as the official generator's (see its docstring); min_mask_region_area is passed on as
        the predictor's max_hole_area and max_sprinkle_area, exactly as the official code does."""
        if (points_per_side is None) == (point_grids is None):
            raise ValueError("Exactly one of points_per_side or point_grids must be provided.")
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode {output_mode!r} is unknown; use one of {', '.join(OUTPUT_MODES)}")
        _check_counts(points_per_side=points_per_side, points_per_batch=points_per_batch, crop_n_layers=crop_n_layers,
                      crop_n_points_downscale_factor=crop_n_points_downscale_factor)
        _check_fractions(pred_iou_thresh=pred_iou_thresh, stability_score_thresh=stability_score_thresh,
                         box_nms_thresh=box_nms_thresh, crop_nms_thresh=crop_nms_thresh,
                         crop_overlap_ratio=crop_overlap_ratio)
        for name, value in (("stability_score_offset", stability_score_offset), ("mask_threshold", mask_threshold),
                            ("min_mask_region_area", min_mask_region_area)):
            _check_number(name, value, low=0.0 if name == "min_mask_region_area" else None)
        self.point_grids = (_layer_grids(points_per_side, crop_n_layers, crop_n_points_downscale_factor)
                            if points_per_side is not None else _check_grids(point_grids, crop_n_layers))
        self.predictor = SAM2ImagePredictor(model, max_hole_area=min_mask_region_area,
                                            max_sprinkle_area=min_mask_region_area,
                                            apply_postprocessing=apply_postprocessing)
        self.points_per_batch = points_per_batch
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.mask_threshold = mask_threshold
        self.box_nms_thresh = box_nms_thresh
        self.crop_n_layers = crop_n_layers
        self.crop_nms_thresh = crop_nms_thresh
        self.crop_overlap_ratio = crop_overlap_ratio
        self.min_mask_region_area = min_mask_region_area
        self.output_mode = output_mode
        self.use_m2m = use_m2m
        self.multimask_output = multimask_output

    @classmethod
    def load(cls, model_dir, backend: str = "auto", device: str = "cuda", stream=None,
             precision: str | None = None, **kwargs) -> "SAM2AutomaticMaskGenerator":
        """Open an exported model directory; keyword arguments as the official generator's; `precision` picks
        the TensorRT engines."""
        return cls(SAM2Model.load(model_dir, backend=backend, device=device, stream=stream, precision=precision),
                   **kwargs)

    def generate(self, image) -> list:
        """image HxWx3 uint8 RGB -> list of records: segmentation (bool HxW, or RLE dict), area, bbox (XYWH),
        predicted_iou, point_coords [[x, y]], stability_score, crop_box (XYWH)."""
        image = check_image(image)
        data = self._generate_masks(image)
        if self.output_mode == "coco_rle":
            segs = [amg.coco_encode_rle(rle) for rle in data["rles"]]
        elif self.output_mode == "binary_mask":
            segs = [amg.rle_to_mask(rle) for rle in data["rles"]]
        else:
            segs = data["rles"]
        return [{
            "segmentation": segs[i],
            "area": amg.area_from_rle(data["rles"][i]),
            "bbox": amg.box_xyxy_to_xywh(data["boxes"][i]).tolist(),
            "predicted_iou": float(data["iou_preds"][i]),
            "point_coords": [data["points"][i].tolist()],
            "stability_score": float(data["stability_score"][i]),
            "crop_box": amg.box_xyxy_to_xywh(data["crop_boxes"][i]).tolist(),
        } for i in range(len(segs))]

    def _generate_masks(self, image: np.ndarray) -> amg.MaskData:
        orig_size = image.shape[:2]
        crop_boxes, layer_idxs = amg.generate_crop_boxes(orig_size, self.crop_n_layers, self.crop_overlap_ratio)
        data = amg.MaskData()
        for crop_box, layer_idx in zip(crop_boxes, layer_idxs):
            data.cat(self._process_crop(image, crop_box, layer_idx, orig_size))
        if len(crop_boxes) > 1:  # prefer masks from smaller crops
            scores = (1 / amg.box_area(data["crop_boxes"])).astype(np.float32)
            keep = amg.batched_nms(data["boxes"].astype(np.float32), scores, np.zeros(len(scores)),
                                   iou_threshold=self.crop_nms_thresh)
            data.filter(keep)
        # the official MaskData.to_numpy() makes every tensor float32, so boxes become float lists in records
        for key in ("boxes", "crop_boxes", "points", "iou_preds", "stability_score"):
            data[key] = np.asarray(data[key], dtype=np.float32)
        return data

    def _process_crop(self, image, crop_box, layer_idx, orig_size) -> amg.MaskData:
        x0, y0, x1, y1 = crop_box
        cropped = image[y0:y1, x0:x1, :]
        im_size = cropped.shape[:2]
        self.predictor.set_image(cropped)
        points_for_image = self.point_grids[layer_idx] * np.array(im_size)[None, ::-1]
        data = amg.MaskData()
        for (points,) in amg.batch_iterator(self.points_per_batch, points_for_image):
            data.cat(self._process_batch(points, im_size, crop_box, orig_size))
        self.predictor.reset_predictor()
        keep = amg.batched_nms(data["boxes"].astype(np.float32), data["iou_preds"], np.zeros(len(data["iou_preds"])),
                               iou_threshold=self.box_nms_thresh)
        data.filter(keep)
        data["boxes"] = amg.uncrop_boxes_xyxy(data["boxes"], crop_box)
        data["points"] = amg.uncrop_points(data["points"], crop_box)
        data["crop_boxes"] = np.array([crop_box for _ in range(len(data["rles"]))]).reshape(-1, 4)
        return data

    def _predict_points(self, points, im_size, mask_input=None, multimask_output=True):
        """Full-resolution logits [B,C,H,W], ious [B,C] and low-res logits for one click per point."""
        coords = to_model_coords(np.asarray(points, np.float32), True, im_size, self.predictor.model.image_size)
        prompts = DecoderPrompts(coords[:, None, :], np.ones((len(coords), 1), np.int32), mask_input)
        return self.predictor._predict(prompts, multimask_output, return_logits=True, img_idx=-1)

    def _process_batch(self, points, im_size, crop_box, orig_size) -> amg.MaskData:
        orig_h, orig_w = orig_size
        points = np.asarray(points, np.float32)
        masks, iou_preds, low_res = self._predict_points(points, im_size, multimask_output=self.multimask_output)
        c = masks.shape[1]
        data = amg.MaskData(masks=masks.reshape(-1, *masks.shape[2:]), iou_preds=iou_preds.reshape(-1),
                            points=np.repeat(points, c, axis=0), low_res_masks=low_res.reshape(-1, *low_res.shape[2:]))
        del masks
        if self.use_m2m:  # one refinement step: each mask fed back as the mask prompt of its own point
            masks, ious = self._refine_with_m2m(data["points"], data["low_res_masks"], im_size)
            data["masks"], data["iou_preds"] = masks[:, 0], ious[:, 0]
        if self.pred_iou_thresh > 0.0:
            data.filter(data["iou_preds"] > self.pred_iou_thresh)
        data["stability_score"] = amg.calculate_stability_score(data["masks"], self.mask_threshold,
                                                                self.stability_score_offset)
        if self.stability_score_thresh > 0.0:
            data.filter(data["stability_score"] >= self.stability_score_thresh)
        data["masks"] = data["masks"] > self.mask_threshold
        data["boxes"] = amg.batched_mask_to_box(data["masks"])
        keep = ~amg.is_box_near_crop_edge(data["boxes"], crop_box, [0, 0, orig_w, orig_h])
        if not np.all(keep):
            data.filter(keep)
        data["masks"] = amg.uncrop_masks(data["masks"], crop_box, orig_h, orig_w)
        data["rles"] = amg.mask_to_rle(data["masks"])
        del data["masks"]
        return data

    def _refine_with_m2m(self, points, low_res_masks, im_size):
        masks, ious = [], []
        for pts, low in amg.batch_iterator(self.points_per_batch, points, low_res_masks):
            m, i, _ = self._predict_points(pts, im_size, mask_input=np.asarray(low)[:, None], multimask_output=False)
            masks.append(m)
            ious.append(i)
        return np.concatenate(masks), np.concatenate(ious)


# ---- the official arguments, checked before any work (the official code fails deep inside, or divides by 0) --
def _check_counts(**counts) -> None:
    """points_per_side (or None) >= 1, points_per_batch >= 1, crop_n_layers >= 0, downscale factor >= 1."""
    lows = {"points_per_side": 1, "points_per_batch": 1, "crop_n_layers": 0, "crop_n_points_downscale_factor": 1}
    for name, value in counts.items():
        if value is None and name == "points_per_side":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be a whole number, got {type(value).__name__} {value!r}")
        if value < lows[name]:
            raise ValueError(f"{name} must be >= {lows[name]}, got {value}")


def _check_number(name: str, value, low: float | None = None, high: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not np.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        bounds = f" in [{low:g}, {high:g}]" if low is not None and high is not None else \
            f" >= {low:g}" if low is not None else ""
        raise ValueError(f"{name} must be a finite number{bounds}, got {value!r}")


def _check_fractions(**fractions) -> None:
    """Thresholds on IoUs and scores, and the crop overlap: numbers in [0, 1]."""
    for name, value in fractions.items():
        _check_number(name, value, 0.0, 1.0)


def _layer_grids(points_per_side: int, crop_n_layers: int, factor: int) -> list:
    """The official grids, refusing a crop layer that would get no point (int(n / factor**i) == 0)."""
    for layer in range(crop_n_layers + 1):
        if int(points_per_side / factor**layer) < 1:
            raise ValueError(f"crop layer {layer} would have no points: points_per_side {points_per_side} / "
                             f"crop_n_points_downscale_factor {factor}**{layer} < 1; use fewer crop_n_layers or a "
                             f"smaller downscale factor")
    return amg.build_all_layer_point_grids(points_per_side, crop_n_layers, factor)


def _check_grids(point_grids, crop_n_layers: int) -> list:
    """point_grids: one [N, 2] grid of (x, y) in [0, 1] per crop layer (crop_n_layers + 1 of them)."""
    if not isinstance(point_grids, (list, tuple)) or len(point_grids) != crop_n_layers + 1:
        what = f"{len(point_grids)} grids" if isinstance(point_grids, (list, tuple)) else type(point_grids).__name__
        raise ValueError(f"point_grids must be a list of crop_n_layers + 1 = {crop_n_layers + 1} grids, got {what}")
    grids = []
    for i, grid in enumerate(point_grids):
        g = numeric(f"point_grids[{i}]", grid)
        if g.ndim != 2 or g.shape[1] != 2 or len(g) == 0:
            raise ValueError(f"point_grids[{i}] has shape {g.shape}; expected Nx2 (x, y) with N >= 1")
        if not np.isfinite(g).all() or g.min() < 0 or g.max() > 1:
            raise ValueError(f"point_grids[{i}] must hold finite (x, y) in [0, 1] (fractions of the crop), got "
                             f"values {g.min():g}..{g.max():g}")
        grids.append(g)
    return grids
