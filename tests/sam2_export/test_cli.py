import subprocess
import sys

from tests.conftest import REPO, run_cli

# Run the CLI with torch, tensorrt and onnx made unimportable, as on a runtime-only install.
_BLOCKED = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'tensorrt', 'onnx', 'sam2', 'torchvision'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
from sam2_trt.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _run_blocked(*args):
    return subprocess.run([sys.executable, "-c", _BLOCKED, *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


def test_help_needs_no_torch():
    for args in (["--help"], ["export", "--help"]):
        proc = _run_blocked(*args)
        assert proc.returncode == 0, proc.stderr
        assert "usage: sam2-trt" in proc.stdout
    assert "sam2.1_hiera_b+" in _run_blocked("export", "--help").stdout


def test_export_without_the_export_extra_says_what_to_install(tmp_path):
    proc = _run_blocked("export", "--config", "sam2.1_hiera_t", "--random-weights", "--out", str(tmp_path / "m"))
    assert proc.returncode == 5
    assert "pip install 'sam2-trt[export]'" in proc.stderr and "torch" in proc.stderr
    assert not (tmp_path / "m").exists()


def test_checkpoint_and_random_weights_are_exclusive(tmp_path):
    proc = run_cli("export", "--config", "sam2.1_hiera_t", "--random-weights", "--checkpoint", "x.pt",
                   "--out", tmp_path / "m")
    assert proc.returncode == 2 and "not allowed with argument" in proc.stderr


def test_unsupported_opset(tmp_path):
    proc = run_cli("export", "--config", "sam2.1_hiera_t", "--random-weights", "--opset", "11",
                   "--out", tmp_path / "m")
    assert proc.returncode == 3 and "--opset 11 is not supported" in proc.stderr
