"""A model directory whose metadata is valid JSON of the wrong shape fails on load with the key named (not as a
KeyError inside a predictor), and a graph swapped for another (its recorded hash edited to match) fails when it
is opened, naming the file."""

import json
import shutil

import numpy as np
import pytest

from sam2_trt.core.errors import ModelDirError
from sam2_trt.core.metadata import METADATA_FILENAME, load_metadata


def model_copy(src, dst):
    """The model directory with its graphs linked (not copied: they are large) and its metadata editable."""
    dst.mkdir()
    for f in src.iterdir():
        if f.suffix == ".onnx":
            (dst / f.name).symlink_to(f)
        else:
            shutil.copy(f, dst / f.name)
    return dst


def edit(raw, path, value):
    *parents, last = path
    for key in parents:
        raw = raw[key]
    if value is DELETE:
        del raw[last]
    else:
        raw[last] = value


DELETE = object()
CASES = [
    ([], None, r"holds a JSON NoneType, not the object"),
    ([], [1, 2], r"holds a JSON list"),
    (["graphs"], DELETE, r"graphs is missing"),
    (["graphs", "memory_encoder"], DELETE, r"graphs\.memory_encoder is missing"),
    (["graphs", "prompt_decoder", "file"], "../../etc/passwd", r"graphs\.prompt_decoder\.file must be a file name"),
    (["graphs", "image_encoder", "sha256"], 12, r"graphs\.image_encoder\.sha256 must be a string, got int 12"),
    (["official_postprocessing"], DELETE, r"official_postprocessing is missing"),
    (["official_postprocessing", "fill_hole_area"], "eight", r"official_postprocessing\.fill_hole_area must be a "
                                                             r"number or true/false, got str"),
    (["image_size"], "1024px", r"image_size must be a whole number, got str '1024px'"),
    (["image_size"], 512.0, r"image_size must be a whole number, got float"),
    (["image_size"], 500, r"image_size must be a positive multiple of 32, got 500"),
    (["flags", "num_maskmem"], DELETE, r"flags\.num_maskmem is missing"),
    (["flags"], [], r"flags must be an object, got list"),
    (["model"], None, r"model must be an object"),
    (["constants", "no_obj_ptr", "data"], [1.0], r"constants\.no_obj_ptr must hold \[1, 256\] numbers"),
]


@pytest.mark.parametrize("path, value, message", CASES, ids=[f"{'.'.join(p) or 'top'}={v!r:.12}" for p, v, _ in CASES])
def test_metadata_of_the_wrong_shape_names_the_key(tiny512_dir, tmp_path, path, value, message):
    model = model_copy(tiny512_dir, tmp_path / "m")
    raw = json.loads((model / METADATA_FILENAME).read_text())
    if path:
        edit(raw, path, value)
    else:
        raw = value
    (model / METADATA_FILENAME).write_text(json.dumps(raw))
    with pytest.raises(ModelDirError, match=message) as e:
        load_metadata(model)
    assert str(model / METADATA_FILENAME) in str(e.value) and "re-export" in str(e.value)


def test_a_graph_swapped_for_another_fails_when_opened(tiny512_dir, tmp_path):
    """memory_encoder.onnx replaced by the prompt decoder, its hash edited to match: loading passes the checksum,
    and the first use of the graph names the file and what it is not (the session is left as it was)."""
    from sam2_trt.runtime import SAM2VideoPredictor
    from tests.official_reference import scene

    model = model_copy(tiny512_dir, tmp_path / "m")
    (model / "memory_encoder.onnx").unlink()
    (model / "memory_encoder.onnx").symlink_to(tiny512_dir / "prompt_decoder.onnx")
    raw = json.loads((model / METADATA_FILENAME).read_text())
    raw["graphs"]["memory_encoder"]["sha256"] = raw["graphs"]["prompt_decoder"]["sha256"]
    (model / METADATA_FILENAME).write_text(json.dumps(raw))
    predictor = SAM2VideoPredictor.load(model, device="cpu")
    state = predictor.init_state([scene(96, 128)] * 2)
    predictor.add_new_points_or_box(state, 0, 1, points=[[40, 30]], labels=[1])
    with pytest.raises(ModelDirError, match=r"memory_encoder.onnx is not this model's memory_encoder graph: it lacks "
                                            r"the input 'vision_features'.*'mask_logits'.*it has a tensor 'point_coords' that the spec "
                                            r"does not.*; re-export"):
        next(predictor.propagate_in_video(state))
    assert [o.obj_id for o in state.objects] == [1] and not len(state.objects[0].cond)


def test_the_spec_check_compares_directions_dtypes_and_ranks():
    from sam2_trt.core.specs import GRAPHS

    spec = GRAPHS["memory_encoder"]
    good = {t.name: ("input", t.dtype, len(t.shape)) for t in spec.inputs}
    good.update({t.name: ("output", t.dtype, len(t.shape)) for t in spec.outputs})
    assert spec.io_problems(good) == []
    assert spec.io_problems({**good, "binarize": ("input", "int32", 1)}) == \
        ["'binarize' is a input of int32, the spec says a input of float32"]
    assert spec.io_problems({**good, "memory": ("output", "float32", 3)}) == \
        ["'memory' has 3 dimensions, the spec says 4"]
    assert spec.io_problems({**good, "memory": ("output", "float32", None)}) == []  # rank unknown: not judged
    assert np.dtype(spec.inputs[0].dtype) == np.float32
