"""`sam2-trt build` / `check` / `export --build` where TensorRT cannot run (as on CI): every bad option and the
missing TensorRT get a clear message and their exit code, and nothing is written into the model directory.
`check` runs for real against ONNX Runtime with an ONNX Runtime backend."""

import json
import os
import subprocess
import sys

import pytest

from sam2_trt.core.specs import GRAPHS
from tests.conftest import REPO, run_cli
from tests.engines.conftest import tensorrt_unavailable_reason

NO_TRT = tensorrt_unavailable_reason() is not None


def snapshot(path):
    return sorted((p.relative_to(path).as_posix(), p.stat().st_size) for p in path.rglob("*"))


@pytest.mark.parametrize("args, code, message", [
    (["--max-objects", "0"], 3, "--max-objects must be an integer >= 1"),
    (["--max-slots", "0"], 3, "--max-slots must be an integer >= 1"),
    (["--workspace", "0"], 3, "--workspace must be a positive number of GB"),
    (["--precision", "int8"], 2, "invalid choice: 'int8'"),
    (["--graphs", "decoder"], 2, "invalid choice: 'decoder'"),
    (["--device", "cpu"], 3, "TensorRT engines are built on a GPU; --device 'cpu' is not one"),
])
def test_bad_build_options_are_rejected_and_nothing_is_written(tiny512_dir, args, code, message):
    before = snapshot(tiny512_dir)
    proc = run_cli("build", tiny512_dir, *args)
    assert proc.returncode == code and message in proc.stderr, proc.stderr
    assert snapshot(tiny512_dir) == before


def test_build_of_a_directory_that_is_not_a_model(tmp_path):
    proc = run_cli("build", tmp_path / "missing")
    assert proc.returncode == 3 and "model directory not found" in proc.stderr
    proc = run_cli("build", tmp_path)
    assert proc.returncode == 3 and "is not a sam2-trt model directory" in proc.stderr and "sam2-trt export" in \
        proc.stderr


@pytest.mark.skipif(not NO_TRT, reason="TensorRT runs here: tests/engines/test_tensorrt.py builds for real")
@pytest.mark.parametrize("entry", ["sam2-trt", "python -m sam2_trt.cli"])
def test_without_tensorrt_build_says_what_to_install_and_leaves_nothing(tiny512_dir, entry):
    before = snapshot(tiny512_dir)
    if entry == "sam2-trt":
        proc = run_cli("build", tiny512_dir, "--precision", "bf16")
    else:  # what the CLI's engine builder runs when an engine is missing on first use
        proc = subprocess.run([sys.executable, "-m", "sam2_trt.cli", "build", str(tiny512_dir)], capture_output=True,
                              text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 5, proc.stderr
    assert "cannot build engines here: tensorrt is not installed" in proc.stderr and "pip install tensorrt" in \
        proc.stderr
    assert snapshot(tiny512_dir) == before and not (tiny512_dir / "engines").exists()


@pytest.mark.skipif(not NO_TRT, reason="TensorRT runs here")
def test_export_with_build_stops_before_exporting_without_tensorrt(tiny_checkpoint, tmp_path):
    out = tmp_path / "model"
    proc = run_cli("export", "--config", "sam2.1_hiera_t", "--checkpoint", tiny_checkpoint, "--out", out,
                   "--image-size", "256", "--build")
    assert proc.returncode == 5 and "tensorrt is not installed" in proc.stderr, proc.stderr
    assert not out.exists() and os.listdir(tmp_path) == []


@pytest.mark.skipif(not NO_TRT, reason="TensorRT runs here")
def test_check_needs_tensorrt_by_default_and_the_predictors_say_so(tiny512_dir):
    proc = run_cli("check", tiny512_dir)
    assert proc.returncode == 5 and "backend 'tensorrt' is not available: tensorrt is not installed" in proc.stderr
    from sam2_trt.runtime import SAM2ImagePredictor
    from sam2_trt.core.errors import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="tensorrt is not installed"):
        SAM2ImagePredictor.load(tiny512_dir, backend="tensorrt", precision="fp16")
    with pytest.raises(ValueError, match="precision='fp16' applies to TensorRT engines"):
        SAM2ImagePredictor.load(tiny512_dir, backend="onnxruntime-cpu", device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="precision 'half' is not one of fp32, tf32, fp16, bf16"):
        SAM2ImagePredictor.load(tiny512_dir, backend="auto", device="cpu", precision="half")


def test_check_with_an_onnxruntime_backend_reports_every_output(tiny512_dir, tmp_path):
    report = tmp_path / "check.json"
    proc = run_cli("check", tiny512_dir, "--backend", "onnxruntime-cpu", "--device", "cpu", "--json", report)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(report.read_text())
    # every output of every graph, in each of its spec's validation cases (the per-object graphs' include objects
    # of two frames): 4 + 4 x 4 + 1 x 3 + 1 x 3 rows
    expected = {(name, len(spec.outputs) * len(spec.validation_cases)) for name, spec in GRAPHS.items()}
    assert expected == {("image_encoder", 4), ("prompt_decoder", 16), ("memory_attention", 3), ("memory_encoder", 3)}
    assert {(g, sum(r["graph"] == g for r in rows)) for g in {r["graph"] for r in rows}} == expected
    assert all(r["passed"] and r["max_abs_err"] <= 1e-4 for r in rows)
    assert "memory_attention.conditioned_features" in proc.stdout and "objects=2,slots=3,pointers=5" in proc.stdout


@pytest.mark.skipif(not NO_TRT, reason="TensorRT runs here")
def test_check_without_tensorrt_exits_5_as_documented(tiny512_dir):
    proc = run_cli("check", tiny512_dir)
    assert proc.returncode == 5, proc.stderr
    assert "backend 'tensorrt' is not available: tensorrt is not installed" in proc.stderr
