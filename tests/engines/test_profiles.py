"""Optimization profiles come from the graph specs: every dynamic input covered, from empty to full."""

import pytest

from sam2_trt.engines.profiles import ProfileLimits, attention_scores_bytes, derive_profile, polygraphy_profile
from sam2_trt.core.specs import DYNAMIC_AXES, GRAPHS


@pytest.mark.parametrize("graph", list(GRAPHS))
def test_every_input_gets_a_profile_that_covers_the_spec_ranges(graph):
    spec = GRAPHS[graph]
    limits = ProfileLimits(max_objects=DYNAMIC_AXES["objects"].max)  # the spec's own maxima
    profile = derive_profile(spec, 512, limits)
    assert set(profile) == set(spec.input_names)
    for t in spec.inputs:
        p = profile[t.name]
        assert len(p.min) == len(p.opt) == len(p.max) == len(t.shape)
        for axis, lo, opt, hi in zip(t.resolve(512), p.min, p.opt, p.max):
            assert lo <= opt <= hi
            if isinstance(axis, str):
                assert (lo, hi) == (DYNAMIC_AXES[axis].min, DYNAMIC_AXES[axis].max), (t.name, axis)
            else:
                assert lo == opt == hi == axis


def test_pointers_start_empty_and_slots_at_one():
    p = derive_profile(GRAPHS["memory_attention"], 1024)
    assert p["object_pointers"].min == (1, 0, 256) and p["pointer_valid"].min == (1, 0)
    assert p["memory"].min == (1, 1, 64, 64, 64) and p["memory"].max == (16, 16, 64, 64, 64)
    # one frame per video whose objects share the call (sam2-trt serve), each object's frame by index
    assert p["vision_features"].min == (1, 256, 64, 64) and p["vision_features"].max == (16, 256, 64, 64)
    assert p["frame_index"].min == (1,) and p["frame_index"].max == (16,)


def test_limits_change_the_ranges_and_opt_stays_inside():
    limits = ProfileLimits(max_objects=3, max_points=1, max_slots=9, max_pointers=4)
    dec = derive_profile(GRAPHS["prompt_decoder"], 512, limits)
    assert dec["point_coords"].max == (3, 1, 2) and dec["point_coords"].opt == (1, 1, 2)
    assert dec["image_embed"].max == (3, 256, 32, 32)  # embeds follows objects
    att = derive_profile(GRAPHS["memory_attention"], 512, limits)
    assert att["memory_tpos_index"].max == (3, 9) and att["pointer_tpos"].opt == (1, 4)


@pytest.mark.parametrize("field, value", [("max_objects", 0), ("max_points", -1), ("max_slots", 0),
                                          ("max_pointers", 1.5), ("max_images", True)])
def test_bad_limits_name_the_option(field, value):
    with pytest.raises(ValueError, match=f"--{field.replace('_', '-')} must be an integer"):
        ProfileLimits(**{field: value})


def test_worst_case_attention_estimate():
    # 16 objects x 4096 queries x (16 x 4096 + 4 x 32) keys x 2 bytes
    assert attention_scores_bytes(1024, ProfileLimits()) == 16 * 4096 * (16 * 4096 + 128) * 2


def test_polygraphy_profile_carries_every_range():
    pytest.importorskip("polygraphy")
    profile = derive_profile(GRAPHS["prompt_decoder"], 512)
    p = polygraphy_profile(profile)
    for name, t in profile.items():
        shapes = p[name]
        assert (tuple(shapes.min), tuple(shapes.opt), tuple(shapes.max)) == (t.min, t.opt, t.max)
