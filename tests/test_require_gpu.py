"""The SAM2_TRT_REQUIRE_GPU switch itself (tests/require_gpu.py), on a tiny test file in a child pytest."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

TESTS = '''
import pytest

NO_GPU = "no CUDA: cudaErrorInsufficientDriver (driver supports CUDA none)"

@pytest.mark.gpu
@pytest.mark.skipif(True, reason=NO_GPU)
def test_marked_skipif():
    pass

@pytest.fixture
def trt_here():
    pytest.skip("TensorRT cannot run here: tensorrt is not installed")

@pytest.mark.tensorrt
def test_fixture_skip(trt_here):
    pass

@pytest.mark.gpu
def test_passes_on_a_gpu():
    pass

def test_unmarked_skip():
    pytest.skip("not a GPU test")

@pytest.mark.gpu
@pytest.mark.xfail(reason="known", run=False)
def test_xfail():
    pass
'''


def run_pytest(tmp_path, require: str | None):
    (tmp_path / "test_tiny.py").write_text(TESTS)
    env = {k: v for k, v in os.environ.items() if k != "SAM2_TRT_REQUIRE_GPU"}
    if require is not None:
        env["SAM2_TRT_REQUIRE_GPU"] = require
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.require_gpu", "-p", "no:cacheprovider",
                           "-rA", "-W", "ignore::pytest.PytestUnknownMarkWarning", str(tmp_path / "test_tiny.py")],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


@pytest.mark.parametrize("require", [None, "0"])
def test_gpu_tests_skip_by_default(tmp_path, require):
    proc = run_pytest(tmp_path, require)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "1 passed, 3 skipped, 1 xfailed" in proc.stdout, proc.stdout[-3000:]


def test_gpu_tests_fail_with_their_reason_when_required(tmp_path):
    proc = run_pytest(tmp_path, "1")
    out = proc.stdout
    assert proc.returncode == 1, out[-3000:]
    assert "1 passed, 1 skipped, 1 xfailed, 2 errors" in out, out[-3000:]  # skipped in setup: errors there
    assert "SAM2_TRT_REQUIRE_GPU=1 and this gpu test would have been skipped: no CUDA: cudaErrorInsufficientDriver" \
        in out
    assert "this tensorrt test would have been skipped: TensorRT cannot run here: tensorrt is not installed" in out
    assert "test_tiny.py:24: not a GPU test" in out  # unmarked tests skip as before, xfail stays xfail
