"""The opt-in int8 export (`sam2-trt export --int8`): its graphs are quantized where the policy says and within
their recorded tolerances, and an int8 model directory runs only where it can (ONNX Runtime on the CPU)."""

import json

import numpy as np
import pytest

from sam2_trt.core.graph_check import sample_inputs
from sam2_trt.core.specs import GRAPHS
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def int8_256(tiny_checkpoint, tmp_path_factory):
    from sam2_trt.export.exporter import export_model

    out = tmp_path_factory.mktemp("int8") / "tiny256-int8"
    export_model("sam2.1_hiera_t", out, checkpoint=tiny_checkpoint, image_size=256, log=lambda m: None,
                 precision="int8")
    return out


def _ops(path) -> dict:
    import onnx

    return {n.name: n.op_type for n in onnx.load(str(path)).graph.node}


def test_int8_export_is_validated_and_recorded(int8_256):
    from sam2_trt.core.metadata import load_metadata

    meta = load_metadata(int8_256)
    assert meta.precision == "int8"
    meta.verify_graphs()  # the sha256 recorded are those of the int8 files
    validation = json.loads((int8_256 / "validation.json").read_text())
    int8 = validation["int8_outputs"]
    assert {(r["graph"], r["output"]) for r in int8} == {(g, o) for g, s in GRAPHS.items() for o in s.output_names}
    assert all(r["passed"] for r in int8 + validation["outputs"])
    assert max(r["max_rel_err"] for r in int8) > 1e-4  # quantized for real: fp32 graphs are within ~1e-6
    ops = set(_ops(meta.graph_path("image_encoder")).values())
    assert "DynamicQuantizeLinear" in ops and "MatMulInteger" in ops
    decoder = _ops(meta.graph_path("prompt_decoder"))
    assert "MatMul" in decoder.values()  # the point encoding's matmul feeds Sin/Cos: an fp32 island


def test_int8_graphs_stay_within_their_tolerances_of_fp32(tiny512_dir, tmp_path):
    """At 512 px, on the validation cases: every output within the int8 tolerance of the fp32 graph."""
    import onnxruntime as ort

    from sam2_trt.export.int8 import quantize_graph, tolerance

    for graph, spec in GRAPHS.items():
        src, dst = tiny512_dir / spec.filename, tmp_path / spec.filename
        kept = quantize_graph(src, dst)["kept_fp32"]
        assert (graph == "prompt_decoder") == bool(kept), kept  # only the decoder has a matmul feeding Sin/Cos
        fp32, int8 = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (src, dst))
        for k, case in enumerate(spec.validation_cases):
            inputs = sample_inputs(spec, 512, case, k)
            for name, ref, got in zip(spec.output_names, fp32.run(None, inputs), int8.run(None, inputs)):
                tol = tolerance(spec, name)
                err, scale = float(np.abs(got - ref).max()), float(np.abs(ref).max())
                assert tol.passes(err, scale), f"{graph}.{name} {case}: {err / scale:.2e} > {tol.rtol}"


def test_int8_model_runs_on_onnxruntime_cpu_only(int8_256):
    from sam2_trt.runtime import SAM2ImagePredictor

    predictor = SAM2ImagePredictor.load(int8_256, device="cuda")  # auto: the CPU backend, whatever the device
    assert predictor.model.backend.name == "onnxruntime-cpu"
    predictor.set_image(np.full((120, 160, 3), 90, np.uint8))
    masks, ious, _ = predictor.predict(point_coords=np.array([[80.0, 60.0]]), point_labels=np.array([1]))
    assert masks.shape == (3, 120, 160) and masks.dtype == bool and ious.shape == (3,)
    with pytest.raises(ValueError, match="int8 export.*onnxruntime-cpu"):
        SAM2ImagePredictor.load(int8_256, backend="tensorrt")
    with pytest.raises(ValueError, match="precision='fp16' picks TensorRT engines"):
        SAM2ImagePredictor.load(int8_256, precision="fp16")


def test_int8_cli_refuses_tensorrt(int8_256, tmp_path):
    proc = run_cli("build", int8_256)
    assert proc.returncode == 3 and "int8 export for ONNX Runtime on CPUs" in proc.stderr, proc.stderr
    proc = run_cli("export", "--config", "sam2.1_hiera_t", "--random-weights", "--out", tmp_path / "m", "--int8",
                   "--build")
    assert proc.returncode == 3 and "--int8" in proc.stderr and not (tmp_path / "m").exists(), proc.stderr
