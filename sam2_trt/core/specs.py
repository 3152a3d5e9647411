"""The four exported graphs, defined once.

Every name, shape, dtype, dynamic axis and tolerance of the ONNX graphs lives here and nowhere else:
the exporter (`sam2_export`) traces with these names, the engine builder derives its optimization
profiles from the dynamic axes, the runtime binds buffers by these names, and the tests check parity
per output with these tolerances. This module imports nothing heavy (no torch, no onnxruntime).

Shapes are written with symbols:
  * spatial symbols, fixed per exported model by its image size S:
      "S" = S, "F" = S/16 (the stride-16 feature map, 64 at 1024), "F2" = 2F, "F4" = 4F (the
      low-res mask size, 256 at 1024)
  * dynamic axes (see DYNAMIC_AXES): "images", "frames", "objects", "embeds", "points", "slots", "pointers".

The per-object graphs take a frame's shared features as a batch of frames plus a per-object `frame_index`: one
video sends its one frame and index 0 for every object; a server tracking several videos at once sends the frames
of all of them and each object says which is its own, so objects of different videos share one call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Opset 17 is the first with LayerNormalization as one op (TensorRT maps it to its normalization layer,
# which keeps fp32 statistics under fp16) and is parsed by every TensorRT from 8.6 on. Nothing in the
# graphs needs 18+: the antialiased resizes of SAM 2 happen in runtime pre/post-processing.
DEFAULT_OPSET = 17
SUPPORTED_OPSETS = (17, 18, 19, 20)

HIDDEN_DIM = 256  # transformer width of SAM 2 (all sizes)
MEMORY_DIM = 64  # memory encoder output channels (all sizes)
POINTER_TOKENS = HIDDEN_DIM // MEMORY_DIM  # an object pointer is split into 4 memory tokens
NUM_MASKS = 4  # mask decoder tokens: token 0 single-mask, tokens 1..3 multimask


@dataclass(frozen=True)
class DynamicAxis:
    """A dynamic dimension, with the range the runtime sends (for profiles and validation)."""

    name: str
    min: int
    opt: int
    max: int
    doc: str


DYNAMIC_AXES = {
    a.name: a
    for a in (
        DynamicAxis("images", 1, 1, 4, "images encoded in one call (set_image_batch)"),
        DynamicAxis(
            "frames", 1, 1, 16,
            "frames whose shared features one call takes: 1 for one video, more when objects of several videos "
            "(a server's sessions) are tracked in one call; `frame_index` gives each object its frame",
        ),
        DynamicAxis("objects", 1, 1, 64, "objects tracked together, or prompts decoded together"),
        DynamicAxis(
            "embeds", 1, 1, 64,
            "batch of the image embedding fed to the decoder: 1 (one image, shared by every prompt, "
            "broadcast inside the graph) or equal to `objects` (memory-conditioned features per object)",
        ),
        DynamicAxis("points", 1, 2, 16, "prompt points per object, before the graph appends its pad point"),
        DynamicAxis(
            "slots", 1, 7, 16,
            "spatial memory slots per object: conditioning frames plus the last num_maskmem-1 frames; "
            "unused slots are padding, masked by memory_valid",
        ),
        DynamicAxis(
            "pointers", 0, 16, 32,
            "object pointers per object (0 when an object is tracked before its first prompt); "
            "unused ones are masked by pointer_valid",
        ),
    )
}

SPATIAL_SYMBOLS = {
    "S": lambda s: s,
    "F": lambda s: s // 16,
    "F2": lambda s: s // 8,
    "F4": lambda s: s // 4,
}


@dataclass(frozen=True)
class Tolerance:
    """Pass when max|ours - reference| <= atol + rtol * max|reference| for this output."""

    atol: float
    rtol: float
    why: str

    def passes(self, max_abs_err: float, max_abs_ref: float) -> bool:
        return max_abs_err <= self.atol + self.rtol * max_abs_ref


# How reduced precision moves an output: deep feature maps, mask logits, heads on a few tokens, bf16-rounded
# memories. The precision policy sets one tolerance per kind and precision.
PRECISION_KINDS = ("features", "logits", "small", "memory")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name: "float32" or "int32"
    shape: tuple  # ints, spatial symbols or dynamic axis names
    doc: str
    # How validation draws a value for an input (see sam2_trt/core/graph_check.py): "normal", "image",
    # "coords", "labels", "binary", "tpos_index", "tpos", "valid", "logits", "frame_index".
    sample: str = "normal"
    tolerance: Tolerance | None = None  # outputs only: fp32 ONNX Runtime against fp32 PyTorch
    # Outputs only: how reduced precision moves this output (one of PRECISION_KINDS), which picks its
    # tolerance per engine precision in the TensorRT precision policy (engines/precision.py).
    precision_kind: str | None = None

    def resolve(self, image_size: int, dims: dict | None = None) -> tuple:
        """Concrete shape for an image size; dynamic axes from `dims` (name -> size), or their names."""
        out = []
        for d in self.shape:
            if isinstance(d, int):
                out.append(d)
            elif d in SPATIAL_SYMBOLS:
                out.append(SPATIAL_SYMBOLS[d](image_size))
            elif dims is not None:
                out.append(int(dims[d]))
            else:
                out.append(d)
        return tuple(out)

    @property
    def dynamic_axes(self) -> dict:
        """{axis index: dynamic axis name} as torch.onnx.export wants it."""
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str) and d in DYNAMIC_AXES}


@dataclass(frozen=True)
class GraphSpec:
    name: str
    doc: str
    inputs: tuple
    outputs: tuple
    # Dynamic sizes the exporter validates against PyTorch; each dict names a size for every axis.
    validation_cases: tuple = field(default_factory=tuple)

    @property
    def filename(self) -> str:
        return f"{self.name}.onnx"

    @property
    def input_names(self) -> list:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list:
        return [t.name for t in self.outputs]

    @property
    def dynamic_axes(self) -> dict:
        axes = {t.name: t.dynamic_axes for t in self.inputs + self.outputs}
        return {k: v for k, v in axes.items() if v}

    def io_problems(self, declared: dict) -> list:
        """What a graph file or engine declares, against this spec: declared is {tensor name: (direction "input" or
        "output", numpy dtype name, rank or None when unknown)}; returns one phrase per difference (missing or extra
        tensors, direction, dtype, rank), [] when it is this graph. ONNX Runtime and TensorRT backends both check
        with it when they open a graph, so a file swapped for another graph fails there, not inside a call."""
        want = {t.name: ("input", t.dtype, len(t.shape)) for t in self.inputs}
        want.update({t.name: ("output", t.dtype, len(t.shape)) for t in self.outputs})
        problems = [f"it lacks the {want[n][0]} {n!r}" for n in want if n not in declared]
        problems += [f"it has a tensor {n!r} that the spec does not" for n in declared if n not in want]
        for name in [n for n in want if n in declared]:
            (mode, dtype, rank), (want_mode, want_dtype, want_rank) = declared[name], want[name]
            if (mode, str(dtype)) != (want_mode, want_dtype):
                problems.append(f"{name!r} is a {mode} of {dtype}, the spec says a {want_mode} of {want_dtype}")
            elif rank is not None and rank != want_rank:
                problems.append(f"{name!r} has {rank} dimensions, the spec says {want_rank}")
        return problems

    def tensor(self, name: str) -> TensorSpec:
        for t in self.inputs + self.outputs:
            if t.name == name:
                return t
        raise KeyError(f"graph {self.name!r} has no tensor {name!r}; it has {self.input_names + self.output_names}")


# Tolerances: fp32 ONNX Runtime vs fp32 PyTorch. Measured on all eight models at 1024 (random weights, x86
# CPU): relative errors <= 1.4e-6 (features), 7e-7 (masks), 3e-7 (memory attention). The bounds leave one to
# two orders of magnitude for other CPUs' kernels while still catching any real divergence (a wrong op shows
# up at >= 1e-2).
_FEATURES_TOL = Tolerance(1e-5, 1e-4, "up to 48 Hiera blocks: summation order differs between kernels and "
                                       "the error grows with depth (measured <= 1.4e-6 relative)")
_LOGITS_TOL = Tolerance(1e-5, 5e-5, "mask logits of the two-way transformer (measured <= 7e-7 relative)")
_SMALL_TOL = Tolerance(1e-5, 1e-5, "small MLP heads on transformer tokens (measured <= 1e-6 relative)")


def _frame_index(features: str) -> TensorSpec:
    return TensorSpec("frame_index", "int32", ("objects",),
                      f"which frame of {features} each object is on (all 0 for one video)", sample="frame_index")


IMAGE_ENCODER = GraphSpec(
    name="image_encoder",
    doc="Hiera trunk + FPN neck + the decoder's conv_s0/conv_s1 projections, as SAM2Base.forward_image.",
    inputs=(
        TensorSpec("image", "float32", ("images", 3, "S", "S"),
                   "RGB resized to S x S, /255, normalized with ImageNet mean/std", sample="image"),
    ),
    outputs=(
        TensorSpec("high_res_feat0", "float32", ("images", 32, "F4", "F4"),
                   "stride-4 FPN level after sam_mask_decoder.conv_s0", tolerance=_FEATURES_TOL,
                   precision_kind="features"),
        TensorSpec("high_res_feat1", "float32", ("images", 64, "F2", "F2"),
                   "stride-8 FPN level after sam_mask_decoder.conv_s1", tolerance=_FEATURES_TOL,
                   precision_kind="features"),
        TensorSpec("vision_features", "float32", ("images", HIDDEN_DIM, "F", "F"),
                   "stride-16 FPN level: input of memory attention and the memory encoder",
                   tolerance=_FEATURES_TOL, precision_kind="features"),
        TensorSpec("image_embed", "float32", ("images", HIDDEN_DIM, "F", "F"),
                   "vision_features + no_mem_embed: the decoder input for images and initial conditioning frames",
                   tolerance=_FEATURES_TOL, precision_kind="features"),
    ),
    validation_cases=({"images": 2},),  # batch > 1; batch 1 is what every runtime test runs
)

PROMPT_DECODER = GraphSpec(
    name="prompt_decoder",
    doc="Prompt encoder + mask decoder + obj_ptr_proj on every mask token. Selection (multimask argmax, "
        "stability fallback), no-object masking and no_obj_ptr mixing are left to the runtime.",
    inputs=(
        TensorSpec("image_embed", "float32", ("embeds", HIDDEN_DIM, "F", "F"),
                   "image_embed of the encoder, or memory-conditioned features; batch 1 or `objects`"),
        TensorSpec("high_res_feat0", "float32", ("frames", 32, "F4", "F4"), "from the image encoder, per frame"),
        TensorSpec("high_res_feat1", "float32", ("frames", 64, "F2", "F2"), "from the image encoder, per frame"),
        TensorSpec("point_coords", "float32", ("objects", "points", 2),
                   "x, y in model input pixels (0..S); the graph appends the (0,0) pad point", sample="coords"),
        TensorSpec("point_labels", "int32", ("objects", "points"),
                   "1 positive, 0 negative, 2/3 box corners, -1 not a point", sample="labels"),
        TensorSpec("mask_input", "float32", ("objects", 1, "F4", "F4"),
                   "low-res mask logits fed back as a dense prompt; ignored where has_mask_input is 0",
                   sample="logits"),
        TensorSpec("has_mask_input", "float32", ("objects",),
                   "1 to use mask_input, 0 for the learned no-mask embedding", sample="binary"),
        _frame_index("high_res_feat0/1"),
    ),
    outputs=(
        TensorSpec("masks", "float32", ("objects", NUM_MASKS, "F4", "F4"),
                   "low-res mask logits of all four mask tokens", tolerance=_LOGITS_TOL, precision_kind="logits"),
        TensorSpec("iou_predictions", "float32", ("objects", NUM_MASKS),
                   "predicted IoU (sigmoid) of each mask", tolerance=_SMALL_TOL, precision_kind="small"),
        TensorSpec("object_pointers", "float32", ("objects", NUM_MASKS, HIDDEN_DIM),
                   "obj_ptr_proj(mask token) for each of the four tokens", tolerance=_SMALL_TOL,
                   precision_kind="small"),
        TensorSpec("object_score_logits", "float32", ("objects", 1),
                   "object presence logit (> 0: present)", tolerance=_SMALL_TOL, precision_kind="small"),
    ),
    validation_cases=(
        {"objects": 1, "embeds": 1, "points": 1, "frames": 1},
        {"objects": 3, "embeds": 1, "points": 4, "frames": 1},
        {"objects": 2, "embeds": 2, "points": 2, "frames": 1},
        {"objects": 3, "embeds": 3, "points": 2, "frames": 2},  # objects of two videos in one call
    ),
)

MEMORY_ATTENTION = GraphSpec(
    name="memory_attention",
    doc="Conditions the current frame's features on each object's memories. Memory positional encodings are "
        "built inside from slot indices (the bank stays in place); padded slots/pointers are masked.",
    inputs=(
        TensorSpec("vision_features", "float32", ("frames", HIDDEN_DIM, "F", "F"),
                   "raw stride-16 features of the current frame of each video (shared by its objects)"),
        TensorSpec("memory", "float32", ("objects", "slots", MEMORY_DIM, "F", "F"),
                   "spatial memories (memory encoder outputs, bf16-rounded)"),
        TensorSpec("memory_tpos_index", "int32", ("objects", "slots"),
                   "index into maskmem_tpos_enc: 6 for conditioning frames, num_maskmem-1-t_pos otherwise",
                   sample="tpos_index"),
        TensorSpec("memory_valid", "float32", ("objects", "slots"),
                   "1 for a real memory, 0 for padding (at least one per object)", sample="valid"),
        TensorSpec("object_pointers", "float32", ("objects", "pointers", HIDDEN_DIM),
                   "object pointers of past frames"),
        TensorSpec("pointer_tpos", "float32", ("objects", "pointers"),
                   "signed frame distance / (min(num_frames, 16) - 1); unused by SAM 2.0", sample="tpos"),
        TensorSpec("pointer_valid", "float32", ("objects", "pointers"),
                   "1 for a real pointer, 0 for padding", sample="valid"),
        _frame_index("vision_features"),
    ),
    outputs=(
        TensorSpec("conditioned_features", "float32", ("objects", HIDDEN_DIM, "F", "F"),
                   "pix_feat_with_mem: the decoder's image embedding on tracked frames",
                   tolerance=Tolerance(1e-5, 2e-5, "four transformer layers over up to ~30k keys; softmax sums "
                                       "in a different order (measured <= 3.1e-7 relative)"),
                   precision_kind="features"),
    ),
    validation_cases=(
        {"objects": 2, "slots": 3, "pointers": 5, "frames": 1},
        {"objects": 1, "slots": 2, "pointers": 0, "frames": 1},
        {"objects": 3, "slots": 2, "pointers": 3, "frames": 2},  # objects of two videos in one call
    ),
)

MEMORY_ENCODER = GraphSpec(
    name="memory_encoder",
    doc="Encodes a frame's predicted masks into memories, as SAM2Base._encode_new_memory, from the low-res "
        "logits (upsampled inside), rounded to bf16 as the official predictor stores them.",
    inputs=(
        TensorSpec("vision_features", "float32", ("frames", HIDDEN_DIM, "F", "F"),
                   "raw stride-16 features of the frame of each video (shared by its objects)"),
        TensorSpec("mask_logits", "float32", ("objects", 1, "F4", "F4"),
                   "low-res mask logits (after no-object masking)", sample="logits"),
        TensorSpec("binarize", "float32", ("objects",),
                   "1: mask = (logits > 0) (masks from clicks); 0: mask = sigmoid(logits)", sample="binary"),
        TensorSpec("object_score_logits", "float32", ("objects", 1),
                   "object presence logit; absent objects get no_obj_embed_spatial (SAM 2.1)"),
        _frame_index("vision_features"),
    ),
    outputs=(
        TensorSpec("memory", "float32", ("objects", MEMORY_DIM, "F", "F"),
                   "maskmem_features, values rounded to bfloat16",
                   tolerance=Tolerance(0.0, 8e-3, "values are rounded to bf16: an fp32 difference of one ulp "
                                       "can flip a rounding by one bf16 step (2^-8 of the value); allow two"),
                   precision_kind="memory"),
    ),
    validation_cases=({"objects": 1, "frames": 1}, {"objects": 3, "frames": 1}, {"objects": 3, "frames": 2}),
)

GRAPHS = {g.name: g for g in (IMAGE_ENCODER, PROMPT_DECODER, MEMORY_ATTENTION, MEMORY_ENCODER)}
