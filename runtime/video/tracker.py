"""One video frame through the four graphs, for any number of objects at once.

These are the official SAM2Base steps (sam2/modeling/sam2_base.py) with the Python around the graphs done in
numpy: `_forward_sam_heads` (mask and pointer selection, no-object handling), `_use_mask_as_output`,
`_encode_new_memory` (in the memory_encoder graph) and the memory-conditioned features (memory_attention
graph, fed by the MemoryBank). Every method takes a batch of objects and runs each graph once.

A FrameTracker holds no video state: one serves every tracking session of a predictor (and of the sessions
copied from them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import ops
from ..mask_selection import StabilityFallback, select_masks
from ..model import SAM2Model
from .bank import MemoryBank
from .memory_selection import MemoryRule
from .outputs import FrameOutput, next_serial

NO_OBJ_SCORE = -1024.0  # sam2_base.NO_OBJ_SCORE: mask logits of an absent object
MASK_OUT_SCALE, MASK_OUT_BIAS = 20.0, -10.0  # _use_mask_as_output: a binary mask as logits -10 / +10


@dataclass
class FrameFeatures:
    """Image-encoder outputs of one frame (backend tensors: numpy, or device arrays on a GPU backend)."""

    frame_idx: int
    vision_features: object  # [1, 256, F, F] float32, raw stride-16 features
    image_embed: object  # [1, 256, F, F] float32, vision_features + no_mem_embed
    high_res_feat0: object  # [1, 32, 4F, 4F] float32
    high_res_feat1: object  # [1, 64, 2F, 2F] float32


@dataclass
class HeadOutputs:
    """The decoder's result after the official selection, for n objects."""

    low_res: np.ndarray  # [n, 1, h, w] float32 mask logits (absent objects: -1024), before hole filling
    pointers: np.ndarray  # [n, 256] float32 object pointers, no-object mixing applied
    scores: np.ndarray  # [n] float32 object score logits


class FrameTracker:
    def __init__(self, model: SAM2Model, stability: StabilityFallback | None):
        meta, flags = model.meta, model.meta.flags
        self.model = model
        self.processing = model.processing
        self.stability = stability
        self.flags = flags
        self.rule = MemoryRule.from_flags(flags)  # which memories and pointers a frame attends to
        self.no_obj_ptr = meta.constant("no_obj_ptr").reshape(-1).astype(np.float32)  # [256]
        self.mask_down_w = meta.constant("mask_downsample_weight").reshape(4, 4).astype(np.float32)
        self.mask_down_b = np.float32(meta.constant("mask_downsample_bias").reshape(-1)[0])

    def __deepcopy__(self, memo):  # stateless and shared: a copied tracking state keeps its tracker
        return self

    def new_bank(self) -> MemoryBank:
        """A memory bank for one video: on the backend's device when the CUDA kernels run there (only the frame
        that enters the window is copied in each frame), else on the host."""
        meta = self.model.meta
        dims = (meta.flags["mem_dim"], meta.feature_size, meta.flags["hidden_dim"])
        if self.processing.name == "cuda":  # CUDA kernels can run, so device arrays can be made here
            from .device_bank import CudaMirror, MirroredMemoryBank

            return MirroredMemoryBank(*dims, CudaMirror(self.processing.stream, self.processing.device_id))
        return MemoryBank(*dims)

    def frame_outputs(self, heads: "HeadOutputs", fill_hole_area: int) -> list:
        """FrameOutputs (memory still None) from decoder results, after hole filling as the official
        _run_single_frame_inference (which encodes memories from the unfilled masks)."""
        masks = heads.low_res
        if fill_hole_area > 0:
            masks = self.processing.fill_holes_in_mask_scores(masks, fill_hole_area)
        return [FrameOutput(masks[k, 0], heads.pointers[k], float(heads.scores[k]), None, next_serial())
                for k in range(masks.shape[0])]

    # -- graphs -------------------------------------------------------------------------------------------
    def features(self, frame_idx: int, frame_u8: np.ndarray) -> FrameFeatures:
        """Image encoder on one decoded frame ([H, W, 3] uint8)."""
        image = self.processing.preprocess_video_frame(frame_u8, self.model.image_size)
        out = self.model.run("image_encoder", image=image)
        return FrameFeatures(frame_idx, out["vision_features"], out["image_embed"], out["high_res_feat0"],
                             out["high_res_feat1"])

    def condition(self, feats: FrameFeatures, bank_inputs: dict):
        """memory_attention: [n, 256, F, F] memory-conditioned features (backend tensor)."""
        return self.model.run("memory_attention", vision_features=feats.vision_features,
                              **bank_inputs)["conditioned_features"]

    def use_multimask(self, is_init_cond_frame: bool, num_points: int) -> bool:
        """SAM2Base._use_multimask."""
        f = self.flags
        return bool(f["multimask_output_in_sam"] and (is_init_cond_frame or f["multimask_output_for_tracking"])
                    and f["multimask_min_pt_num"] <= num_points <= f["multimask_max_pt_num"])

    def decode(self, feats: FrameFeatures, image_embed, coords: np.ndarray, labels: np.ndarray,
               mask_input: np.ndarray | None, multimask: bool) -> HeadOutputs:
        """prompt_decoder + SAM2Base._forward_sam_heads' selection. image_embed [1 or n, 256, F, F];
        coords [n, N, 2] float32 model pixels; labels [n, N] int32; mask_input [n, 1, h, w] float32 or None."""
        n, low = coords.shape[0], self.model.low_res_size
        out = self.model.run(
            "prompt_decoder", image_embed=image_embed, high_res_feat0=feats.high_res_feat0,
            high_res_feat1=feats.high_res_feat1, point_coords=coords, point_labels=labels,
            mask_input=mask_input if mask_input is not None else np.zeros((n, 1, low, low), np.float32),
            has_mask_input=np.full(n, mask_input is not None, np.float32))
        masks, ious = self.model.host(out["masks"]), self.model.host(out["iou_predictions"])
        tokens = self.model.host(out["object_pointers"])  # [n, 4, 256]: obj_ptr_proj of every mask token
        scores = self.model.host(out["object_score_logits"])[:, 0].astype(np.float32)
        rows = np.arange(n)
        if multimask:
            best = 1 + np.argmax(ious[:, 1:], axis=-1)
            low_res = masks[rows, best][:, None]
            token = best if self.flags["use_multimask_token_for_obj_ptr"] else np.zeros(n, np.int64)
        else:  # token 0, even when the stability fallback picks a multimask mask
            low_res, _ = select_masks(masks, ious, False, self.stability)
            token = np.zeros(n, np.int64)
        low_res = np.ascontiguousarray(low_res, np.float32)
        pointers = tokens[rows, token].astype(np.float32)
        if self.flags["pred_obj_scores"]:
            present = scores > 0
            low_res[~present] = NO_OBJ_SCORE
            lam = (1 / (1 + np.exp(-scores)) if self.flags["soft_no_obj_ptr"] else present).astype(np.float32)
            pointers = self._mix_no_obj(pointers, lam)
        return HeadOutputs(low_res, pointers, scores)

    def _mix_no_obj(self, pointers: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """obj_ptr = lam * ptr + (1 - lam) * no_obj_ptr (fixed_no_obj_ptr), per object lam in [0, 1]."""
        lam = lam[:, None]
        if self.flags["fixed_no_obj_ptr"]:
            pointers = lam * pointers
        return (pointers + (1 - lam) * self.no_obj_ptr).astype(np.float32)

    def encode_memory(self, feats: FrameFeatures, low_res: np.ndarray, binarize: bool,
                      scores: np.ndarray) -> np.ndarray:
        """memory_encoder: low_res [n, 1, h, w] float32 logits -> memories [n, 64, F, F] float32 (host)."""
        n = low_res.shape[0]
        out = self.model.run("memory_encoder", vision_features=feats.vision_features,
                             mask_logits=np.ascontiguousarray(low_res, np.float32),
                             binarize=np.full(n, binarize, np.float32),
                             object_score_logits=scores.reshape(n, 1).astype(np.float32))
        return self.model.host(out["memory"])

    # -- mask prompts -------------------------------------------------------------------------------------
    def mask_as_output(self, feats: FrameFeatures, mask: np.ndarray) -> HeadOutputs:
        """SAM2Base._use_mask_as_output for one binary mask [S, S] float32 (S = image_size)."""
        s, low = self.model.image_size, self.model.low_res_size
        high = mask * np.float32(MASK_OUT_SCALE) + np.float32(MASK_OUT_BIAS)
        low_res = ops.resize_bilinear_antialias(high[None, None], (low, low))
        # the pointer comes from the decoder on the raw features with the mask as a dense prompt
        down = np.einsum("iajb,ab->ij", mask.reshape(low, 4, low, 4), self.mask_down_w) + self.mask_down_b
        heads = self.decode(feats, feats.vision_features, np.zeros((1, 1, 2), np.float32),
                            -np.ones((1, 1), np.int32), down[None, None].astype(np.float32), multimask=False)
        present = np.float32(mask.any())
        pointers = heads.pointers
        if self.flags["pred_obj_scores"]:
            pointers = self._mix_no_obj(pointers, np.array([present], np.float32))
        score = np.array([MASK_OUT_SCALE * present + MASK_OUT_BIAS], np.float32)
        assert low_res.shape == (1, 1, low, low) and s == mask.shape[0]
        return HeadOutputs(np.ascontiguousarray(low_res, np.float32), pointers, score)
