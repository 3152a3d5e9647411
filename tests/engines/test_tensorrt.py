"""The TensorRT backend on a GPU: engines built by `sam2-trt build`, checked, run by the predictors with the
parity bars of the ONNX Runtime backends (IoU >= 0.99 against the official predictor, run here), and the safety
rules on real engines. Every test here skips cleanly where `import tensorrt` or a GPU is missing."""

import json
import shutil

import numpy as np
import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.tensorrt


def test_build_writes_engines_with_records_and_check_passes(engines512):
    folders = sorted((engines512 / "engines").iterdir())
    assert [f.name.rsplit("-", 1)[1] for f in folders] == ["fp16", "fp32"]
    for folder in folders:
        for graph in ("image_encoder", "prompt_decoder", "memory_attention", "memory_encoder"):
            record = json.loads((folder / f"{graph}.json").read_text())
            assert (folder / f"{graph}.engine").stat().st_size == record["engine_bytes"]
            assert record["profiles"] and record["precision_policy"]["precision"] == folder.name.rsplit("-", 1)[1]
        assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    for precision in ("fp32", "fp16"):  # the tolerances the policy records, on seeded inputs
        proc = run_cli("check", engines512, "--precision", precision)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_a_second_build_keeps_up_to_date_engines(engines512):
    proc = run_cli("build", engines512, "--precision", "fp32", "--max-objects", "4", "--no-check")
    assert proc.returncode == 0 and proc.stderr.count("up to date") == 4, proc.stderr


def test_image_predictor_matches_official(tensorrt_here, tiny1024_dir, official_tiny, tmp_path):
    from sam2_trt.runtime import SAM2ImagePredictor
    from tests.runtime.test_image_predictor_parity import assert_every_case_matches_official

    model = tmp_path / "tiny1024"
    shutil.copytree(tiny1024_dir, model)
    ours = SAM2ImagePredictor.load(model, backend="tensorrt", precision="fp32")  # engines built on first use
    assert ours.model.backend.name == "tensorrt"
    assert_every_case_matches_official(ours, official_tiny)


@pytest.mark.parametrize("name", ["one_click", "two_objects", "refinement_click_then_repropagation"])
def test_video_predictor_matches_official(engines512, tiny_checkpoint, clip, name):
    from sam2_trt.runtime.model import SAM2Model
    from tests.runtime.test_video_parity import SCENARIOS, assert_same_results, play_both

    model = SAM2Model.load(engines512, backend="tensorrt", precision="fp32")
    got, expected = play_both(model, tiny_checkpoint, "configs/sam2.1/sam2.1_hiera_t.yaml", clip, SCENARIOS[name])
    assert_same_results(got, expected)


def test_fp16_video_masks_stay_close_to_fp32(engines512, clip):
    from sam2_trt.runtime import SAM2VideoPredictor
    from tests.official_reference import mask_iou

    results = {}
    for precision in ("fp32", "fp16"):
        predictor = SAM2VideoPredictor.load(engines512, backend="tensorrt", precision=precision)
        state = predictor.init_state(str(clip))
        predictor.add_new_points_or_box(state, 0, 1, points=np.array([[95.0, 70.0]]), labels=np.array([1]))
        results[precision] = {f: m[0, 0] > 0 for f, _, m in predictor.propagate_in_video(state)}
    ious = [mask_iou(results["fp32"][f], results["fp16"][f]) for f in results["fp32"]]
    assert min(ious) >= 0.95, ious


def test_more_objects_than_the_profile_run_in_chunks(engines512):
    from sam2_trt.core.graph_check import sample_inputs
    from sam2_trt.runtime.model import SAM2Model
    from sam2_trt.core.specs import GRAPHS

    trt = SAM2Model.load(engines512, backend="tensorrt", precision="fp32")
    ort = SAM2Model.load(engines512, backend="onnxruntime-cpu", device="cpu")
    spec = GRAPHS["memory_encoder"]
    inputs = sample_inputs(spec, 512, {"objects": 9}, seed=1)  # profile max is 4: three calls
    got = trt.host(trt.run("memory_encoder", **inputs)["memory"])
    want = ort.run("memory_encoder", **inputs)["memory"]
    assert got.shape == want.shape == (9, 64, 32, 32)
    assert np.abs(got - want).max() <= 2e-2 * np.abs(want).max()


@pytest.mark.parametrize("graph,case", [("prompt_decoder", {"objects": 2, "embeds": 1, "points": 3}),
                                        ("memory_attention", {"objects": 2, "slots": 3, "pointers": 5})])
def test_cuda_graph_replays_equal_plain_runs(engines512, graph, case):
    """Memory attention gathers with memory_tpos_index: the warm-up before a capture must read the call's own
    inputs (issue 19). Two execution contexts may pick other tactics (or accumulate atomically): a tight
    tolerance, not bitwise equality."""
    from sam2_trt.runtime.backends.tensorrt import TensorRTBackend
    from sam2_trt.core.graph_check import sample_inputs
    from sam2_trt.core.metadata import load_metadata
    from sam2_trt.core.specs import GRAPHS

    spec = GRAPHS[graph]
    path = load_metadata(engines512).graph_path(spec.name)
    inputs = sample_inputs(spec, 512, case, seed=2)
    outs = {}
    for graphs in (False, True):
        backend = TensorRTBackend(precision="fp32", cuda_graphs=graphs)
        session = backend.open(spec, path)
        outs[graphs] = [{k: backend.to_host(v) for k, v in session.run(inputs).items()} for _ in range(3)]
        if graphs:
            assert len(session.graphs) == 1, "the third call should have replayed a captured graph"
    for plain, replayed in zip(outs[False], outs[True]):
        for k in plain:
            scale = float(np.abs(plain[k]).max())
            assert np.abs(replayed[k] - plain[k]).max() <= 1e-5 * max(scale, 1.0), k


def test_mismatched_engine_is_refused_and_shape_outside_profile_is_named(engines512, tmp_path):
    from sam2_trt.core.engine_record import EngineMismatch, ShapeOutsideProfile, record_path
    from sam2_trt.core.graph_check import sample_inputs
    from sam2_trt.runtime.model import SAM2Model
    from sam2_trt.core.specs import GRAPHS

    model = tmp_path / "m"
    shutil.copytree(engines512, model)
    folder = next(p for p in (model / "engines").iterdir() if p.name.endswith("fp32"))
    rec = json.loads(record_path(folder, "memory_encoder").read_text())
    rec["onnx_sha256"] = "0" * 64
    record_path(folder, "memory_encoder").write_text(json.dumps(rec))
    loaded = SAM2Model.load(model, backend="tensorrt", precision="fp32")
    with pytest.raises(EngineMismatch, match="built from another memory_encoder.onnx"):
        loaded.session("memory_encoder")
    spec = GRAPHS["memory_attention"]
    inputs = sample_inputs(spec, 512, {"objects": 1, "slots": 17, "pointers": 2}, seed=0)  # profile: slots <= 16
    with pytest.raises(ShapeOutsideProfile, match=r"slots = 17 is outside 1..16.*--max-slots 17"):
        loaded.run("memory_attention", **inputs)
