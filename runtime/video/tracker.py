"""One video frame through the four graphs, for any number of objects at once.

These are the official SAM2Base steps (sam2/modeling/sam2_base.py) with the Python around the graphs done in
numpy: `_forward_sam_heads` (mask and pointer selection, no-object handling), `_use_mask_as_output`,
`_encode_new_memory` (in the memory_encoder graph) and the memory-conditioned features (memory_attention
graph, fed by the MemoryBank). Every method takes a batch of objects and runs each graph once.

A FrameTracker holds no video state: one serves every tracking session of a predictor (and of the sessions
copied from them). `track` runs the objects of several frames (one per session, several videos) through the
tracking graphs in one call each: the graphs take a batch of frames and each object's frame index, and compute
every object as they would alone (bit for bit on ONNX Runtime, see sam2_export/modules/layer_norm.py), which is
how a server advances many sessions together (session.py: prepare_track / commit_track).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam2_trt.core.specs import DYNAMIC_AXES

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

    def rows(self, lo: int, hi: int) -> "HeadOutputs":
        return HeadOutputs(self.low_res[lo:hi], self.pointers[lo:hi], self.scores[lo:hi])


@dataclass
class TrackedFrame:
    """What `track` computed for the objects of one frame."""

    heads: HeadOutputs
    memory: np.ndarray  # [n, 64, F, F] float32 (bf16-exact) memories of the objects' new masks


def _one_frame(n: int) -> np.ndarray:
    """frame_index [n] int32 for objects that all read frame 0 of a one-frame batch."""
    return np.zeros(n, np.int32)


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

    def features_batch(self, frames: list) -> list:
        """Image encoder on frames of several videos [(frame_idx, [H, W, 3] uint8)], up to the `images` axis'
        largest batch per call (every image is encoded as it would be alone) -> [FrameFeatures]."""
        size, step = self.model.image_size, DYNAMIC_AXES["images"].max
        found = []
        for lo in range(0, len(frames), step):
            chunk = frames[lo:lo + step]
            images = self.model.concat([self.processing.preprocess_video_frame(u8, size) for _, u8 in chunk])
            out = self.model.run("image_encoder", image=images)
            for k, (frame_idx, _) in enumerate(chunk):
                row = {name: self.model.rows(value, k, k + 1) for name, value in out.items()}
                found.append(FrameFeatures(frame_idx, row["vision_features"], row["image_embed"],
                                           row["high_res_feat0"], row["high_res_feat1"]))
        return found

    def condition(self, feats: FrameFeatures, bank_inputs: dict):
        """memory_attention: [n, 256, F, F] memory-conditioned features (backend tensor)."""
        n = bank_inputs["memory_valid"].shape[0]
        return self.model.run("memory_attention", vision_features=feats.vision_features, frame_index=_one_frame(n),
                              **bank_inputs)["conditioned_features"]

    def track(self, frames: list, bank_inputs: list) -> list:
        """Track the objects of several frames (one per session) with one call per graph: frames [FrameFeatures],
        bank_inputs [memory_attention inputs of that frame's objects]; the bank inputs of all frames must have the
        same slots and pointers (padding is masked). Returns a TrackedFrame per frame, each object's result as it
        would be tracked alone (SAM2Base.track_step without prompts)."""
        counts = [b["memory_valid"].shape[0] for b in bank_inputs]
        frame_index = np.repeat(np.arange(len(frames), dtype=np.int32), counts)
        vision, hr0, hr1 = ([getattr(f, name) for f in frames]
                            for name in ("vision_features", "high_res_feat0", "high_res_feat1"))
        vision, hr0, hr1 = self.model.concat(vision), self.model.concat(hr0), self.model.concat(hr1)
        inputs = {k: self.model.concat([b[k] for b in bank_inputs]) for k in bank_inputs[0]}
        embed = self.model.run("memory_attention", vision_features=vision, frame_index=frame_index,
                               **inputs)["conditioned_features"]
        n = int(frame_index.shape[0])
        heads = self._decode(embed, hr0, hr1, frame_index, np.zeros((n, 1, 2), np.float32),
                             -np.ones((n, 1), np.int32), None, self.use_multimask(False, 0))
        memory = self._encode_memory(vision, frame_index, heads.low_res, False, heads.scores)
        bounds = np.cumsum([0, *counts])
        return [TrackedFrame(heads.rows(lo, hi), memory[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]

    def use_multimask(self, is_init_cond_frame: bool, num_points: int) -> bool:
        """SAM2Base._use_multimask."""
        f = self.flags
        return bool(f["multimask_output_in_sam"] and (is_init_cond_frame or f["multimask_output_for_tracking"])
                    and f["multimask_min_pt_num"] <= num_points <= f["multimask_max_pt_num"])

    def decode(self, feats: FrameFeatures, image_embed, coords: np.ndarray, labels: np.ndarray,
               mask_input: np.ndarray | None, multimask: bool) -> HeadOutputs:
        """prompt_decoder + SAM2Base._forward_sam_heads' selection. image_embed [1 or n, 256, F, F];
        coords [n, N, 2] float32 model pixels; labels [n, N] int32; mask_input [n, 1, h, w] float32 or None."""
        return self._decode(image_embed, feats.high_res_feat0, feats.high_res_feat1, _one_frame(coords.shape[0]),
                            coords, labels, mask_input, multimask)

    def _decode(self, image_embed, high_res_feat0, high_res_feat1, frame_index: np.ndarray, coords: np.ndarray,
                labels: np.ndarray, mask_input: np.ndarray | None, multimask: bool) -> HeadOutputs:
        """decode() with the high-res features of T frames ([T, 32, 4F, 4F], [T, 64, 2F, 2F]) and each object's
        frame (frame_index [n] int32)."""
        n, low = coords.shape[0], self.model.low_res_size
        out = self.model.run(
            "prompt_decoder", image_embed=image_embed, high_res_feat0=high_res_feat0, high_res_feat1=high_res_feat1,
            point_coords=coords, point_labels=labels,
            mask_input=mask_input if mask_input is not None else np.zeros((n, 1, low, low), np.float32),
            has_mask_input=np.full(n, mask_input is not None, np.float32), frame_index=frame_index)
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
        return self._encode_memory(feats.vision_features, _one_frame(low_res.shape[0]), low_res, binarize, scores)

    def _encode_memory(self, vision_features, frame_index: np.ndarray, low_res: np.ndarray, binarize: bool,
                       scores: np.ndarray) -> np.ndarray:
        """encode_memory() with the features of T frames ([T, 256, F, F]) and each object's frame ([n] int32)."""
        n = low_res.shape[0]
        out = self.model.run("memory_encoder", vision_features=vision_features,
                             mask_logits=np.ascontiguousarray(low_res, np.float32),
                             binarize=np.full(n, binarize, np.float32),
                             object_score_logits=scores.reshape(n, 1).astype(np.float32), frame_index=frame_index)
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
