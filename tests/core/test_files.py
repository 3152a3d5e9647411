"""Nothing of the user's is touched, nothing half-written is left: atomic writes, locks on output paths, and a
folder of outputs replaced as one set (sam2_trt.core.files)."""

import os
import subprocess
import sys

import pytest

from sam2_trt.core.files import (OutputPathError, OutputSet, path_lock, remove_stale_partials, write_atomically)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def run_set(out, names, tool="track", fail=False, content="new"):
    with OutputSet(out, names, tool=tool) as outputs:
        for name in names:
            if name.endswith(".json") or "." in name:
                outputs.path(name).write_text(content)
            else:
                outputs.path(name).mkdir()
                (outputs.path(name) / "00000.png").write_text(content)
        if fail:
            raise RuntimeError("tracking failed")
    return outputs


def visible(folder):
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_a_run_replaces_the_previous_set_and_removes_its_stale_outputs(tmp_path):
    out = tmp_path / "out"
    run_set(out, ["masks", "overlay.mp4", "masks.json"], content="first")
    (out / "notes.txt").write_text("mine")  # the user's own file beside the outputs
    run_set(out, ["masks", "overlay.mp4"], content="second")
    assert visible(out) == ["masks", "notes.txt", "overlay.mp4"]  # masks.json was the first run's: gone
    assert (out / "masks" / "00000.png").read_text() == "second" and (out / "notes.txt").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging or lock left behind"


def test_a_users_entry_is_refused_before_work_and_never_moved(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "masks").write_text("a user's file")  # a regular file named like an output
    with pytest.raises(OutputPathError, match=r"already has 'masks', which sam2-trt track did not write; remove or "
                                              r"rename it, or choose another --out \(it is left as it is\)"):
        OutputSet(out, ["masks", "overlay.mp4"], tool="track")
    assert visible(out) == ["masks"] and (out / "masks").read_text() == "a user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failed_run_changes_nothing_and_leaves_no_folder_it_created(tmp_path):
    out = tmp_path / "new" / "out"
    with pytest.raises(RuntimeError, match="tracking failed"):
        run_set(out, ["masks"], fail=True)
    assert list(tmp_path.iterdir()) == []
    run_set(tmp_path / "kept", ["masks"], content="first")
    with pytest.raises(RuntimeError):
        run_set(tmp_path / "kept", ["masks", "masks.json"], fail=True, content="second")
    assert visible(tmp_path / "kept") == ["masks"] and (tmp_path / "kept" / "masks" / "00000.png").read_text() == \
        "first"


@pytest.mark.parametrize("make", ["file", "under_file"])
def test_an_output_path_that_is_or_lies_under_a_file(tmp_path, make):
    (tmp_path / "f").write_text("x")
    out = tmp_path / "f" if make == "file" else tmp_path / "f" / "out"
    match = "is a file, not a folder" if make == "file" else r"lies under .*/f, which is a file"
    with pytest.raises(OutputPathError, match=match):
        OutputSet(out, ["masks"], tool="segment")
    assert (tmp_path / "f").read_text() == "x"


def test_leftovers_of_a_killed_run_are_cleaned_by_the_next(tmp_path):
    out = tmp_path / "out"
    pid = dead_pid()
    out.mkdir()
    (out / f".masks.partial-{pid}").mkdir()  # what the mask writer of a killed run left inside
    (tmp_path / f".out.partial-{pid}-abc").mkdir()  # a killed run's staging folder
    (tmp_path / f".other.partial-{pid}").mkdir()  # not ours to judge: another output's name
    (out / ".masks.partial-1").mkdir()  # pid 1 is alive: a running run's, left alone
    run_set(out, ["masks"])
    assert not (out / f".masks.partial-{pid}").exists() and not (tmp_path / f".out.partial-{pid}-abc").exists()
    assert (tmp_path / f".other.partial-{pid}").exists() and (out / ".masks.partial-1").exists()


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    target = tmp_path / "model"
    with path_lock(target, "--out"):
        with pytest.raises(OutputPathError, match=rf"--out {target} is being written by sam2-trt \(pid {os.getpid()}\)"):
            OutputSet(target, ["masks"], tool="track")
        child = subprocess.run([sys.executable, "-c", "import sys; from sam2_trt.core.files import path_lock\n"
                                f"with path_lock(__import__('pathlib').Path({str(target)!r}), '--out'): pass"],
                               capture_output=True, text=True)
        assert child.returncode != 0 and "is being written by sam2-trt" in child.stderr
    with path_lock(target, "--out"):  # released: free again
        pass
    assert list(tmp_path.iterdir()) == []


def test_write_atomically_leaves_the_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "record.json"
    write_atomically(path, b"old")

    def broken_fsync(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, b"new")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_stale_partials_only_of_the_given_names(tmp_path):
    pid = dead_pid()
    for name in (f".masks.partial-{pid}", f".photo.jpg.partial-{pid}", "masks.partial-1"):
        (tmp_path / name).write_text("x")
    removed = remove_stale_partials(tmp_path, {"masks"})
    assert [p.name for p in removed] == [f".masks.partial-{pid}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".photo.jpg.partial-{pid}", "masks.partial-1"]
