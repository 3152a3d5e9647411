"""SAM2ImagePredictor on an exported model: the official class's methods, arguments and return values
(sam2/sam2_image_predictor.py), with numpy in and out and no PyTorch.

Threads: the image a predictor holds belongs to the thread that set it, so threads sharing one predictor each
predict on their own image (set_image and predict in the same thread) instead of on whichever was set last;
the model runs one graph call at a time (SAM2Model.run).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from sam2_trt.core.specs import DYNAMIC_AXES

from .mask_selection import StabilityFallback, select_masks
from .model import SAM2Model
from .prompts import DecoderPrompts, check_image, prepare_prompts


_EMBEDDING = ("image_embed", "high_res_feat0", "high_res_feat1")  # the encoder outputs the decoder reads


@dataclass(frozen=True)
class ImageEmbedding:
    """What set_image computes for one image: the encoder's outputs (backend tensors) and the image's size."""

    features: dict  # image_embed [1, 256, F, F], high_res_feat0 [1, 32, 4F, 4F], high_res_feat1 [1, 64, 2F, 2F]
    orig_hw: tuple  # (H, W) of the image


class _ImageState(threading.local):
    """The set image of one thread: its features, original sizes, and whether it was a batch."""

    def __init__(self):
        self.features = None  # [{image_embed, high_res_feat0, high_res_feat1}] per image (backend tensors)
        self.orig_hw = None  # [(H, W)] per image
        self.is_image_set = False
        self.is_batch = False


class SAM2ImagePredictor:
    def __init__(self, model: SAM2Model, mask_threshold: float = 0.0, max_hole_area: float = 0.0,
                 max_sprinkle_area: float = 0.0, apply_postprocessing: bool = True):
        """
        model: an exported model opened on a backend (see `load`).
        mask_threshold: logits above it are foreground.
        max_hole_area / max_sprinkle_area: fill background holes / remove foreground specks up to this area
            (in low-res pixels) before upsampling, as the official predictor.
        apply_postprocessing: the stability-based fallback to a multimask output for single-mask predictions,
            which build_sam2 (apply_postprocessing=True, its default) turns on for the official predictor.
        """
        self.model = model
        self.mask_threshold = mask_threshold
        self.max_hole_area = max_hole_area
        self.max_sprinkle_area = max_sprinkle_area
        post = model.meta.raw["official_postprocessing"]
        self._stability = (StabilityFallback(post["dynamic_multimask_stability_delta"],
                                             post["dynamic_multimask_stability_thresh"])
                           if apply_postprocessing else None)
        self._image = _ImageState()

    # the official predictor's attribute names, read from the calling thread's image
    _features = property(lambda self: self._image.features)
    _orig_hw = property(lambda self: self._image.orig_hw)
    _is_image_set = property(lambda self: self._image.is_image_set)
    _is_batch = property(lambda self: self._image.is_batch)

    @classmethod
    def load(cls, model_dir, backend: str = "auto", device: str = "cuda", mask_threshold: float = 0.0,
             max_hole_area: float = 0.0, max_sprinkle_area: float = 0.0, apply_postprocessing: bool = True,
             stream=None, precision: str | None = None) -> "SAM2ImagePredictor":
        """Open an exported model directory; backend "auto" picks TensorRT, ONNX Runtime CUDA, then CPU;
        `precision` picks the TensorRT engines (default: the ones built, else fp16, built on first use)."""
        model = SAM2Model.load(model_dir, backend=backend, device=device, stream=stream, precision=precision)
        return cls(model, mask_threshold, max_hole_area, max_sprinkle_area, apply_postprocessing)

    # -- images -------------------------------------------------------------------------------------------
    def _encode(self, image: np.ndarray) -> dict:
        image = self.model.processing.preprocess_image(image, self.model.image_size)  # CUDA kernels or numpy twins
        out = self.model.run("image_encoder", image=image)
        return {k: out[k] for k in _EMBEDDING}

    def set_image(self, image) -> None:
        """image: HxWx3 uint8 RGB numpy array or RGB PIL image. Computes and keeps its embedding."""
        image = check_image(image)
        features = [self._encode(image)]
        self._commit_images(features, [image.shape[:2]], batch=False)

    def set_image_batch(self, image_list) -> None:
        """image_list: list of HxWx3 uint8 RGB numpy arrays; use predict_batch afterwards."""
        if not isinstance(image_list, (list, tuple)) or not image_list:
            raise TypeError("image_list must be a non-empty list of HxWx3 uint8 numpy arrays")
        images = [check_image(im, f"image_list[{i}]") for i, im in enumerate(image_list)]
        if not all(isinstance(im, np.ndarray) for im in image_list):
            raise TypeError("Images are expected to be an np.ndarray in RGB format, and of shape HWC")
        features = [self._encode(im) for im in images]
        self._commit_images(features, [im.shape[:2] for im in images], batch=True)

    def embed_images(self, images) -> list:
        """[ImageEmbedding] of HxWx3 uint8 RGB images, encoded in as few calls as the image encoder's `images` axis
        allows (each exactly as set_image would encode it alone); this predictor's state is not changed. For a
        server that batches the images of many clients: each then gets its own with set_image_embedding."""
        images = [check_image(im, f"images[{i}]") for i, im in enumerate(images)]
        size, step = self.model.image_size, DYNAMIC_AXES["images"].max
        found = []
        for lo in range(0, len(images), step):
            chunk = images[lo:lo + step]
            batch = self.model.concat([self.model.processing.preprocess_image(im, size) for im in chunk])
            out = self.model.run("image_encoder", image=batch)
            for i, im in enumerate(chunk):  # own copies on the host: a kept embedding does not pin its batch
                rows = {k: self.model.rows(out[k], i, i + 1) for k in _EMBEDDING}
                found.append(ImageEmbedding({k: v.copy() if isinstance(v, np.ndarray) else v for k, v in rows.items()},
                                            im.shape[:2]))
        return found

    def set_image_embedding(self, embedding: ImageEmbedding) -> None:
        """Use an embedding from embed_images (of a predictor of the same model) as set_image would."""
        if not isinstance(embedding, ImageEmbedding):
            raise TypeError(f"embedding must be an ImageEmbedding from embed_images, not {type(embedding).__name__}")
        self._commit_images([embedding.features], [embedding.orig_hw], batch=False)

    def get_image_embedding(self) -> np.ndarray:
        """[num_images, 256, F, F] float32: vision features + no_mem_embed, F = image_size / 16 (64 at 1024)."""
        self._require_image("to generate an embedding")
        return np.concatenate([self.model.host(f["image_embed"]) for f in self._features])

    def reset_predictor(self) -> None:
        """Forget this thread's image."""
        self._image.__init__()

    def _commit_images(self, features: list, orig_hw: list, batch: bool) -> None:
        """The only change set_image(_batch) makes, after everything that can fail."""
        state = self._image
        state.features, state.orig_hw, state.is_image_set, state.is_batch = features, orig_hw, True, batch

    # -- prompts ------------------------------------------------------------------------------------------
    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None,
                multimask_output: bool = True, return_logits: bool = False, normalize_coords: bool = True):
        """Masks for prompts on the image of set_image.

        point_coords Nx2 or BxNx2 (x, y) pixels, point_labels N or BxN (1 fg, 0 bg), box 4 or Bx4 XYXY,
        mask_input 1x256x256 (or Bx1x256x256) low-res logits from a previous call.
        Returns masks [C,H,W] (bool, or float32 logits with return_logits), ious [C] float32 and low-res
        logits [C,256,256] float32 clamped to +-32, with C = 3 (multimask) or 1; with B > 1 prompts each gets
        a leading B axis.
        """
        self._require_image("before mask prediction")
        prompts = prepare_prompts(point_coords, point_labels, box, mask_input, normalize_coords,
                                  self._orig_hw[-1], self.model.image_size, self.model.low_res_size)
        # as the official predictor: after set_image_batch, predict() uses the last image
        return tuple(_squeeze0(x) for x in self._predict(prompts, multimask_output, return_logits, -1))

    def predict_batch(self, point_coords_batch=None, point_labels_batch=None, box_batch=None,
                      mask_input_batch=None, multimask_output: bool = True, return_logits: bool = False,
                      normalize_coords: bool = True):
        """predict() for each image of set_image_batch; each argument is a list with one entry per image.
        Returns three lists (masks, ious, low-res logits)."""
        self._require_image("before mask prediction", batch=True)
        n = len(self._features)
        args = (point_coords_batch, point_labels_batch, box_batch, mask_input_batch)
        for name, value in zip(("point_coords_batch", "point_labels_batch", "box_batch", "mask_input_batch"), args):
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} entries for {n} images")
        prompts = [prepare_prompts(*(a[i] if a is not None else None for a in args), normalize_coords,
                                   self._orig_hw[i], self.model.image_size, self.model.low_res_size)
                   for i in range(n)]
        results = [self._predict(p, multimask_output, return_logits, i) for i, p in enumerate(prompts)]
        return tuple([_squeeze0(r[k]) for r in results] for k in range(3))

    def _predict(self, prompts: DecoderPrompts, multimask_output: bool, return_logits: bool, img_idx: int):
        """Decoder + official selection + post-processing: masks [B,C,H,W], ious [B,C], low-res [B,C,h,w]."""
        b, size = prompts.batch, self.model.low_res_size
        mask = prompts.mask_input if prompts.mask_input is not None else np.zeros((b, 1, size, size), np.float32)
        feats = self._features[img_idx]
        out = self.model.run(
            "prompt_decoder", image_embed=feats["image_embed"], high_res_feat0=feats["high_res_feat0"],
            high_res_feat1=feats["high_res_feat1"], point_coords=prompts.coords, point_labels=prompts.labels,
            mask_input=mask, has_mask_input=np.full(b, prompts.mask_input is not None, np.float32),
            frame_index=np.zeros(b, np.int32))
        low, ious = select_masks(self.model.host(out["masks"]), self.model.host(out["iou_predictions"]),
                                 multimask_output, self._stability)
        masks = self.model.processing.postprocess_image_masks(low, self._orig_hw[img_idx], self.mask_threshold,
                                                         self.max_hole_area, self.max_sprinkle_area)
        if not return_logits:
            masks = masks > self.mask_threshold
        return masks, ious, np.clip(low, -32.0, 32.0)

    def _require_image(self, purpose: str, batch: bool = False) -> None:
        if not self._is_image_set:
            call = "set_image_batch" if batch else "set_image"
            raise RuntimeError(f"An image must be set with .{call}(...) {purpose}.")
        if batch and not self._is_batch:
            raise RuntimeError("predict_batch needs images set with .set_image_batch(...); use predict() after "
                               ".set_image(...)")


def _squeeze0(x: np.ndarray) -> np.ndarray:
    """torch's squeeze(0): drops the leading axis only when it has size 1."""
    return x[0] if x.shape[0] == 1 else x
