"""numpy pre/post-processing: the runtime's CPU path and the oracle of its CUDA kernels (no torch)."""

from .components import (component_areas, fill_holes, fill_holes_in_mask_scores, postprocess_image_masks,
                         remove_sprinkles)
from .masks import apply_non_overlapping_constraints, threshold_masks
from .preprocess import IMG_MEAN, IMG_STD, preprocess_image, preprocess_video_frame
from .resize import resize_bilinear, resize_bilinear_antialias, resize_pil_bicubic

__all__ = [
    "IMG_MEAN", "IMG_STD", "apply_non_overlapping_constraints", "component_areas", "fill_holes",
    "fill_holes_in_mask_scores", "postprocess_image_masks", "preprocess_image", "preprocess_video_frame",
    "remove_sprinkles", "resize_bilinear", "resize_bilinear_antialias", "resize_pil_bicubic", "threshold_masks",
]
