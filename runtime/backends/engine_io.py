"""A TensorRT engine's tensors against the graph spec (sam2_trt.core.specs): pure checks, no TensorRT needed.

TensorRT reports what it will do instead of raising: `set_input_shape` returns False, `get_tensor_shape` gives
-1 for a dimension it could not infer, and an engine built from another graph has other tensor types. Each of
those is turned here into an error that names the tensor, the values and the fix, before one byte is allocated
or one kernel enqueued (issue 19, item 3).

    check_engine_io(spec, io, where, fix)               when the engine is opened: names, directions, dtypes
    output_shapes(spec, input_shapes)                   what the spec says the outputs are for these inputs
    checked_output_shapes(spec, expected, reported, ...) TensorRT's output shapes, refused unless they match
"""

from __future__ import annotations

from sam2_trt.core.engine_record import EngineError, EngineMismatch
from sam2_trt.core.specs import SPATIAL_SYMBOLS, GraphSpec

# Each spatial symbol's size as a multiple of the image size's divisor: S = 16 F = 8 F2 = 4 F4.
_IMAGE_SIZE_PER_SYMBOL = {"S": 1, "F": 16, "F2": 8, "F4": 4}


def check_engine_io(spec: GraphSpec, io: dict, where: str, fix: str) -> None:
    """io: {tensor name: ("input" | "output", dtype name, e.g. "float32")} as the engine reports them.
    EngineMismatch listing every difference from the spec (missing or extra tensors, direction, dtype)."""
    problems = spec.io_problems({name: (mode, dtype, None) for name, (mode, dtype) in io.items()})
    if problems:
        raise EngineMismatch(f"the {spec.name} engine {where} does not match its graph spec: {'; '.join(problems)}; "
                             f"{fix}")


def bound_symbols(spec: GraphSpec, input_shapes: dict) -> dict:
    """{symbol: size} for every dynamic axis and spatial symbol the input shapes give. ValueError naming the
    inputs when one symbol gets two sizes (e.g. 2 objects in one input and 3 in another), or a fixed axis is
    wrong."""
    bound, source = {}, {}
    for t in spec.inputs:
        shape = tuple(input_shapes[t.name])
        if len(shape) != len(t.shape):
            raise ValueError(f"{spec.name}: input {t.name!r} has shape {shape}, expected {len(t.shape)} dimensions "
                             f"{t.shape}")
        for axis, (symbol, size) in enumerate(zip(t.shape, shape)):
            if isinstance(symbol, int):
                if size != symbol:
                    raise ValueError(f"{spec.name}: input {t.name!r} has {size} at axis {axis}, the graph takes "
                                     f"{symbol} ({t.shape})")
            elif symbol not in bound:
                bound[symbol], source[symbol] = size, t.name
            elif bound[symbol] != size:
                raise ValueError(f"{spec.name}: {symbol} is {bound[symbol]} in {source[symbol]!r} but {size} in "
                                 f"{t.name!r}; the inputs of one call must agree")
    return bound


def output_shapes(spec: GraphSpec, input_shapes: dict) -> dict:
    """{output name: shape} that the spec gives for these input shapes."""
    bound = bound_symbols(spec, input_shapes)
    sizes = {s * _IMAGE_SIZE_PER_SYMBOL[k] for k, s in bound.items() if k in SPATIAL_SYMBOLS}
    if len(sizes) != 1:
        raise ValueError(f"{spec.name}: the inputs' spatial sizes {({k: v for k, v in bound.items() if k in SPATIAL_SYMBOLS})}"
                         f" do not give one image size")
    image_size = sizes.pop()
    dims = {k: v for k, v in bound.items() if k not in SPATIAL_SYMBOLS}
    return {t.name: t.resolve(image_size, dims) for t in spec.outputs}


def checked_output_shapes(spec: GraphSpec, expected: dict, reported: dict, fix: str) -> dict:
    """TensorRT's output shapes (`reported`, from get_tensor_shape) when they are the spec's (`expected`), else
    EngineError: a negative dimension means TensorRT could not infer the shape (nothing may be allocated for
    it), any other difference means the engine is not this graph's."""
    for name, shape in reported.items():
        shape = tuple(int(d) for d in shape)
        if any(d < 0 for d in shape):
            raise EngineError(f"TensorRT could not infer the shape of {spec.name} output {name!r} (it reports "
                              f"{shape}; the spec says {expected[name]}), so the call was not run; {fix}")
        if shape != tuple(expected[name]):
            raise EngineMismatch(f"the {spec.name} engine gives output {name!r} the shape {shape}, the spec says "
                                 f"{tuple(expected[name])}; {fix}")
    return {name: tuple(int(d) for d in shape) for name, shape in reported.items()}
