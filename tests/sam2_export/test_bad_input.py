"""Each bad input gets a clear message and exit code, and nothing is left behind."""

import os
import signal
import subprocess
import sys
import time

import pytest

from sam2_trt.export.errors import ExportError
from tests.conftest import REPO, run_cli


def _leftovers(parent):
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name)


def _export_fails(tmp_path, *args, code=ExportError.BAD_INPUT):
    out = tmp_path / "out"
    proc = run_cli("export", *args, "--out", out)
    assert proc.returncode == code, proc.stderr[-2000:]
    assert not out.exists(), "a failed export must not create the model directory"
    assert _leftovers(tmp_path) == []
    assert "Traceback" not in proc.stderr
    return proc.stderr


def test_missing_checkpoint(tmp_path):
    err = _export_fails(tmp_path, "--config", "sam2.1_hiera_t", "--checkpoint", tmp_path / "nope.pt")
    assert "checkpoint not found" in err and "nope.pt" in err


def test_truncated_checkpoint(tmp_path, tiny_checkpoint):
    cut = tmp_path / "cut.pt"
    cut.write_bytes(tiny_checkpoint.read_bytes()[: tiny_checkpoint.stat().st_size // 2])
    err = _export_fails(tmp_path, "--config", "sam2.1_hiera_t", "--checkpoint", cut)
    assert "truncated or corrupt" in err and "download it again" in err


def test_file_that_is_not_a_checkpoint(tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("these are not weights\n")
    err = _export_fails(tmp_path, "--config", "sam2.1_hiera_t", "--checkpoint", bad)
    assert "is not a PyTorch checkpoint" in err


def test_checkpoint_without_model_entry(tmp_path):
    import torch

    bare = tmp_path / "bare.pt"
    torch.save({"weights": torch.zeros(2)}, bare)
    err = _export_fails(tmp_path, "--config", "sam2.1_hiera_t", "--checkpoint", bare)
    assert "no 'model' state dict" in err and "['weights']" in err


@pytest.mark.parametrize("config, what", [
    ("sam2_hiera_t", "unexpected keys"),  # SAM 2.0 config, SAM 2.1 file: four 2.1-only parameters
    ("sam2.1_hiera_s", "missing keys"),  # small has 16 trunk blocks, tiny 12
    ("sam2.1_hiera_b+", "size mismatches"),  # wider trunk
])
def test_checkpoint_that_does_not_match_the_config(tmp_path, tiny_checkpoint, config, what):
    err = _export_fails(tmp_path, "--config", config, "--checkpoint", tiny_checkpoint)
    assert what in err
    assert "try --config sam2.1_hiera_t" in err  # the config that fits this file


def test_unknown_config_lists_valid_names(tmp_path):
    err = _export_fails(tmp_path, "--config", "sam2.1_hiera_xl", "--random-weights")
    assert "unknown config 'sam2.1_hiera_xl'" in err and "sam2.1_hiera_b+" in err and "sam2_hiera_l" in err


@pytest.mark.parametrize("size", ["1000", "520", "64"])
def test_image_size_not_a_multiple_of_the_stride(tmp_path, size):
    err = _export_fails(tmp_path, "--config", "sam2.1_hiera_t", "--random-weights", "--image-size", size)
    assert f"--image-size {size}" in err and "multiple of 32" in err


def test_output_directory_with_other_content_is_untouched(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    for extra in ([], ["--overwrite"]):
        proc = run_cli("export", "--config", "sam2.1_hiera_t", "--random-weights", "--out", out, *extra)
        assert proc.returncode == ExportError.BAD_INPUT
        assert "already exists and is not empty" in proc.stderr and "'keep.txt'" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"


def test_output_directory_that_is_not_writable(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    proc = run_cli("export", "--config", "sam2.1_hiera_t", "--random-weights", "--out", blocker / "model")
    assert proc.returncode == ExportError.BAD_INPUT
    assert "is not writable" in proc.stderr and str(blocker) in proc.stderr
    if os.geteuid() != 0:  # root ignores directory permissions
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        proc = run_cli("export", "--config", "sam2.1_hiera_t", "--random-weights", "--out", ro / "model")
        assert proc.returncode == ExportError.BAD_INPUT and "is not writable" in proc.stderr


def test_validation_failure_writes_nothing(tmp_path, tiny_checkpoint, monkeypatch):
    """A graph that disagrees with PyTorch fails the export (here: a zero tolerance no fp32 kernel meets)."""
    import dataclasses

    from sam2_trt.core import specs
    from sam2_trt.export.exporter import export_model

    enc = specs.GRAPHS["memory_encoder"]
    strict = dataclasses.replace(enc.outputs[0], tolerance=specs.Tolerance(0.0, 0.0, "test"))
    monkeypatch.setitem(specs.GRAPHS, "memory_encoder", dataclasses.replace(enc, outputs=(strict,)))
    out = tmp_path / "out"
    with pytest.raises(ExportError) as e:
        export_model("sam2.1_hiera_t", out, checkpoint=tiny_checkpoint, image_size=256, log=lambda m: None)
    assert e.value.code == ExportError.VALIDATION_FAILED
    assert "memory_encoder.memory" in str(e.value) and "nothing was written" in str(e.value)
    assert not out.exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_export_leaves_nothing(tmp_path, tiny_checkpoint, sig):
    out = tmp_path / "out"
    # A job started with `&` by a non-interactive shell inherits SIGINT ignored, and Python then keeps it
    # ignored: restore the default, so the test checks the exporter, not how the test run was launched.
    proc = subprocess.Popen([sys.executable, "-m", "sam2_trt.cli", "export", "--config", "sam2.1_hiera_t",
                             "--checkpoint", str(tiny_checkpoint), "--out", str(out), "--image-size", "512"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while not _leftovers(tmp_path) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert _leftovers(tmp_path), "the export should be writing into its temporary directory by now"
    time.sleep(1.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted; nothing was left behind" in err
    assert not out.exists() and _leftovers(tmp_path) == []


def _start_export(out, checkpoint):
    return subprocess.Popen([sys.executable, "-m", "sam2_trt.cli", "export", "--config", "sam2.1_hiera_t",
                             "--checkpoint", str(checkpoint), "--out", str(out), "--image-size", "256"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_partial(proc, parent):
    deadline = time.time() + 300
    while not _leftovers(parent) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert _leftovers(parent), "the export should be writing into its temporary directory by now"


def test_a_second_export_into_the_same_out_is_refused_while_the_first_runs(tmp_path, tiny_checkpoint):
    """Both used to exit 0, the second silently replacing the first."""
    out = tmp_path / "out"
    first = _start_export(out, tiny_checkpoint)
    _wait_for_partial(first, tmp_path)
    second = run_cli("export", "--config", "sam2.1_hiera_t", "--checkpoint", tiny_checkpoint, "--out", out,
                     "--image-size", "256")
    assert second.returncode == ExportError.BAD_INPUT, second.stderr[-2000:]
    assert f"--out {out} is being written by sam2-trt (pid {first.pid}); wait for it to finish" in second.stderr
    _, err = first.communicate(timeout=900)
    assert first.returncode == 0, err[-2000:]
    assert (out / "sam2_trt.json").is_file() and _leftovers(tmp_path) == [] and not (tmp_path / ".out.lock").exists()


def test_a_folder_made_at_out_during_the_export_is_left_alone(tmp_path, tiny_checkpoint):
    """It used to be swapped out and deleted at the final move; now the finished export is kept beside it."""
    out = tmp_path / "out"
    proc = _start_export(out, tiny_checkpoint)
    _wait_for_partial(proc, tmp_path)
    out.mkdir()
    (out / "mine.txt").write_text("a user's file")
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == ExportError.BAD_INPUT, err[-2000:]
    assert f"--out {out} was created by someone else while the export ran; it is left as it is, and the finished, " \
           f"validated export was kept at {out}.export-" in err
    assert [p.name for p in out.iterdir()] == ["mine.txt"] and (out / "mine.txt").read_text() == "a user's file"
    (kept,) = tmp_path.glob("out.export-*")
    assert (kept / "sam2_trt.json").is_file() and _leftovers(tmp_path) == []
