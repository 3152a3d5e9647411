"""The graph specs are the single source of truth: every graph has an export module, a PyTorch reference
(its parity test) and validation cases that exercise each of its dynamic axes."""

from sam2_trt.core.specs import DYNAMIC_AXES, GRAPHS, PRECISION_KINDS


def test_every_graph_has_a_module_and_a_parity_reference():
    from sam2_trt.export.modules import GRAPH_MODULES
    from sam2_trt.export.references import REFERENCES

    assert set(GRAPH_MODULES) == set(GRAPHS) == set(REFERENCES)


def test_validation_cases_cover_every_dynamic_axis():
    for spec in GRAPHS.values():
        axes = {a for t in spec.inputs + spec.outputs for a in t.dynamic_axes.values()}
        assert axes <= set(DYNAMIC_AXES)
        for axis in axes:
            sizes = {case[axis] for case in spec.validation_cases}
            assert max(sizes) > 1, f"{spec.name}: no validation case with {axis} > 1"
            assert min(sizes) >= DYNAMIC_AXES[axis].min
    pointers = {case["pointers"] for case in GRAPHS["memory_attention"].validation_cases}
    assert 0 in pointers, "zero object pointers (tracking before the first prompt) must be validated"


def test_every_output_has_a_tolerance_with_a_reason():
    for spec in GRAPHS.values():
        for t in spec.outputs:
            assert t.tolerance is not None and t.tolerance.why, f"{spec.name}.{t.name}"


def test_every_output_has_a_precision_kind_that_every_policy_bounds():
    """The precision policy's tolerances come from the spec's kinds: no table of output names elsewhere."""
    from sam2_trt.core.engine_record import PRECISIONS
    from sam2_trt.engines.precision import policy_for

    for spec in GRAPHS.values():
        for t in spec.outputs:
            assert t.precision_kind in PRECISION_KINDS, f"{spec.name}.{t.name}"
        for t in spec.inputs:
            assert t.precision_kind is None and t.tolerance is None, f"{spec.name}.{t.name} is an input"
    for precision in PRECISIONS:
        policy = policy_for(precision)
        assert set(policy.tolerances) == {f"{g}.{t.name}" for g, s in GRAPHS.items() for t in s.outputs}
