"""`sam2-trt bench gpu-check` on a machine without a GPU: it runs end to end, prints the environment, skips every
GPU step with its reason and writes its results; its budgets fit in 8 minutes; a parity session's results are
split per step. (On a GPU machine it is the one command to run: README "Verifying a GPU machine".)"""

import json

from sam2_trt.benchmarks import gpu_check
from tests.conftest import run_cli


def test_the_budgets_fit_in_eight_minutes():
    assert gpu_check.TOTAL_BUDGET_S <= 8 * 60 - 20  # a margin for starting the children
    assert {s.name for s in gpu_check.STEPS} == {"kernels", "kernels-memcheck", "onnxruntime-cuda", "tensorrt",
                                                  "video", "video-vos"}
    assert set(gpu_check.PARITY_TESTS) == {"onnxruntime-cuda", "tensorrt"}


def test_without_a_gpu_every_step_is_skipped_with_its_reason(tmp_path):
    proc = run_cli("bench", "gpu-check", "--results", tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (path,) = tmp_path.glob("gpu_check-*.json")
    result = json.loads(path.read_text())
    steps = {s["step"]: s for s in result["steps"]}
    assert list(steps) == [s.name for s in gpu_check.STEPS]
    for name, step in steps.items():
        assert step["status"] == "skipped" and step["detail"], step
    assert "driver supports CUDA" in steps["kernels"]["detail"]  # the versions, not just "no GPU"
    assert "CUDAExecutionProvider" in steps["onnxruntime-cuda"]["detail"]
    assert "tensorrt" in steps["tensorrt"]["detail"]
    env = result["environment"]
    for key in ("cuda_unavailable", "driver_cuda", "cuda_runtime", "cuda_bindings", "nvrtc", "onnxruntime_providers",
                "tensorrt_version", "torch", "compute_sanitizer"):
        assert key in env, key
    assert result["budget_s"] == gpu_check.TOTAL_BUDGET_S
    for line in ("environment:", "cuda_bindings", "onnxruntime_providers", "step ", "no step failed"):
        assert line in proc.stdout, line
    assert not (tmp_path / "parity-junit.xml").exists()


def test_a_parity_session_is_reported_per_step(tmp_path, monkeypatch):
    (tmp_path / "test_a.py").write_text("def test_ok(): pass\ndef test_broken(): assert False\n")
    (tmp_path / "test_b.py").write_text("import pytest\ndef test_ok(): pass\n"
                                        "def test_skip(): pytest.skip('not a GPU test')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(gpu_check, "PARITY_TESTS", {"a": ["test_a.py"], "b": ["test_b.py::test_ok", "test_b.py"]})
    out = gpu_check.run_parity(["a", "b"], 120, tmp_path)
    assert out["a"]["status"] == "failed" and out["a"]["detail"] == "1 passed, 0 skipped, 1 failed: test_broken " \
                                                                     "(failure)"
    assert out["b"]["status"] == "passed" and out["b"]["detail"] == "1 passed, 1 skipped", out["b"]


def test_a_step_past_its_budget_is_stopped_with_everything_it_started(tmp_path):
    """A step's child and its own children (engine builds, torch.compile workers) go when its budget is spent."""
    import time

    from sam2_trt.benchmarks.child import run_with_budget

    late = tmp_path / "late"
    t0 = time.monotonic()
    proc = run_with_budget(["bash", "-c", f"echo started; (sleep 3; touch {late}) & sleep 60"], 1.0)
    assert proc.returncode is None and proc.stdout == "started\n" and time.monotonic() - t0 < 10
    time.sleep(3.5)
    assert not late.exists(), "a grandchild outlived the step's budget"


def test_the_readme_states_the_budgets_the_command_has():
    import re

    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text()
    table = dict(re.findall(r"^\| `([a-z-]+)` \| (\d+) s \|", readme, re.M))
    assert table == {s.name: str(s.budget_s) for s in gpu_check.STEPS}
    assert f"With {gpu_check.ENVIRONMENT_BUDGET_S} s of probes that is {gpu_check.TOTAL_BUDGET_S} s" in readme
