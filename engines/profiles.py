"""Optimization profiles, derived from the graph specs (runtime/specs.py) and nothing else.

Every dynamic axis of every graph input gets the range its DynamicAxis declares (what the runtime sends),
narrowed or widened by the build's limits (`--max-objects`, `--max-points`, ...). One profile per engine: the
runtime never switches profiles, and a second profile would double the engine's activation memory planning.
Spatial axes are fixed by the model's image size.

Worst case, memory attention: its score matrix is objects x F^2 x (slots x F^2 + 4 x pointers) values per
layer, e.g. 16 objects x 4096 x 65664 x 2 bytes = 8.6 GB at 1024 px in fp16 when attention is not fused. So
the default profile caps objects at 16 and the TensorRT backend runs larger batches in chunks of at most the
profile's objects (every graph's outputs are per object), which keeps the worst case buildable on a 24 GB card.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sam2_trt.core.engine_record import TensorProfile
from sam2_trt.core.specs import DYNAMIC_AXES, GraphSpec

DEFAULT_MAX_OBJECTS = 16


@dataclass(frozen=True)
class ProfileLimits:
    """The largest size per dynamic axis an engine accepts (`sam2-trt build --max-*`)."""

    max_objects: int = DEFAULT_MAX_OBJECTS
    max_points: int = DYNAMIC_AXES["points"].max
    max_slots: int = DYNAMIC_AXES["slots"].max
    max_pointers: int = DYNAMIC_AXES["pointers"].max
    max_images: int = DYNAMIC_AXES["images"].max
    max_frames: int = DYNAMIC_AXES["frames"].max  # videos whose objects share one call (sam2-trt serve)

    def __post_init__(self):
        for name, value in asdict(self).items():
            axis = DYNAMIC_AXES[name[len("max_"):]]
            if not isinstance(value, int) or isinstance(value, bool) or value < max(axis.min, 1):
                raise ValueError(f"--{name.replace('_', '-')} must be an integer >= {max(axis.min, 1)} "
                                 f"({axis.doc}), got {value!r}")

    def axis_range(self, axis: str) -> tuple:
        """(min, opt, max) of one dynamic axis under these limits; opt is the spec's, clamped into range."""
        spec = DYNAMIC_AXES[axis]
        hi = getattr(self, f"max_{'objects' if axis == 'embeds' else axis}")
        return spec.min, min(max(spec.opt, spec.min), hi), hi


def derive_profile(spec: GraphSpec, image_size: int, limits: ProfileLimits = ProfileLimits()) -> dict:
    """{input name: TensorProfile} for every input of `spec` (static inputs get min = opt = max)."""
    profile = {}
    for t in spec.inputs:
        lo, opt, hi = [], [], []
        for d in t.resolve(image_size):
            if isinstance(d, str):
                a, b, c = limits.axis_range(d)
            else:
                a = b = c = d
            lo.append(a), opt.append(b), hi.append(c)
        profile[t.name] = TensorProfile(tuple(lo), tuple(opt), tuple(hi))
    return profile


def polygraphy_profile(profile: dict):
    """The same profile as a Polygraphy `Profile` (what its TensorRT config loader takes)."""
    from polygraphy.backend.trt import Profile

    p = Profile()
    for name, t in profile.items():
        p.add(name, min=t.min, opt=t.opt, max=t.max)
    return p


def attention_scores_bytes(image_size: int, limits: ProfileLimits, itemsize: int = 2) -> int:
    """Size of one memory-attention score matrix at the profile's maximum (see the module docstring)."""
    tokens = (image_size // 16) ** 2
    keys = limits.max_slots * tokens + 4 * limits.max_pointers
    return limits.max_objects * tokens * keys * itemsize
