"""A production app installs only the runtime: the base install must not pull torch (or sam2)."""

import subprocess
import sys

from tests.conftest import REPO


def test_base_install_pulls_no_torch(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    proc = subprocess.run([str(py), "-m", "pip", "install", "-q", str(REPO)], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    listed = subprocess.run([str(py), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True,
                            check=True).stdout.lower()
    installed = {line.split("==")[0] for line in listed.splitlines()}
    assert "sam2-trt" in installed and "onnxruntime" in installed
    assert not installed & {"torch", "torchvision", "sam2"}, sorted(installed)
    # the installed (non-editable) package works without torch: CLI help and the runtime's metadata module
    check = subprocess.run([str(venv / "bin" / "sam2-trt"), "--help"], capture_output=True, text=True,
                           cwd=tmp_path)
    assert check.returncode == 0 and "export" in check.stdout
    check = subprocess.run([str(py), "-c", "import runtime.metadata, runtime.specs, runtime.engine_record, engines.profiles, sys; "
                            "assert 'torch' not in sys.modules"], capture_output=True, text=True, cwd=tmp_path)
    assert check.returncode == 0, check.stderr
