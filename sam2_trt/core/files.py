"""Writing what a user asked for without losing or touching anything else: atomic files, locks on an output
path, and a folder of outputs written as one set.

The rules every command follows (README, "Reliability"):
  * a file or folder is either complete or absent under its final name (written beside it, then renamed);
  * the tool removes or replaces only what it wrote itself: what a user put at an output path is refused with a
    message, never moved, renamed or deleted;
  * leftovers of a killed run (hidden `.NAME.partial-PID` entries whose process is gone) are removed by the next
    run into the same place;
  * two runs into one output path do not interleave: the second is refused while the first holds the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from .errors import Sam2TrtError

PARTIAL = ".partial-"  # hidden temporary entries: .<name>.partial-<pid>[...]
_PARTIAL_RE = re.compile(r"^\.(?P<name>.+)\.partial-(?P<pid>\d+)")


class OutputPathError(Sam2TrtError):
    """An output path cannot be used as it is (a file where a folder goes, a user's entry in the way, another run
    writing there); the message says what to do. Exit code 3."""


def write_atomically(path: Path, data: bytes) -> None:
    """Write a file so it either does not exist or is complete: a temp file beside it, fsynced, then renamed
    over it (removed again if anything fails or the process is interrupted)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{PARTIAL}{os.getpid()}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_partials(folder: Path, names) -> list:
    """Remove `.NAME.partial-PID...` entries (NAME one of `names`: only what this tool writes there) of processes
    that no longer run; returns what was removed."""
    removed = []
    if not Path(folder).is_dir():
        return removed
    for entry in Path(folder).iterdir():
        m = _PARTIAL_RE.match(entry.name)
        if m and m["name"] in names and int(m["pid"]) != os.getpid() and not pid_alive(int(m["pid"])):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
            removed.append(entry)
    return removed


def check_output_folder(path, flag: str = "--out") -> Path:
    """The absolute output folder, new or existing; OutputPathError when it (or a parent) is a file, or it
    cannot be created there."""
    path = Path(path).absolute()
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{flag} {path} is a file, not a folder; choose a folder (new or existing)")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OutputPathError(f"{flag} {path} lies under {probe}, which is a file; choose a folder path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputPathError(f"{flag} {path} is not writable: cannot create files in {probe}")
    return path


def make_parents(path: Path) -> list:
    """Create the missing folders above `path`; returns them, deepest first (to remove again if unused)."""
    missing = []
    probe = Path(path).parent
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return missing


def remove_if_empty(folders) -> None:
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only an empty folder: never anything a user put there meanwhile


@contextlib.contextmanager
def path_lock(target: Path, what: str):
    """Hold an exclusive lock on `target` (a file beside it, `.NAME.lock`; its folder must exist) for the block;
    OutputPathError at once when another process holds it. The lock file is removed on the way out."""
    target = Path(target)
    lock = target.with_name(f".{target.name}.lock")
    with open(lock, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise OutputPathError(f"{what} {target} is being written by {holder}; wait for it to finish or choose "
                                  f"another path") from None
        f.seek(0)
        f.truncate()
        f.write(f"sam2-trt (pid {os.getpid()})")
        f.flush()
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()


class OutputSet:
    """A run's named outputs (files or folders) in one output folder, replacing the previous run's as a set.

        with OutputSet(out_dir, ["masks", "overlay.mp4", "masks.json"], tool="track") as outputs:
            write into outputs.path("masks") ...        # a staging folder beside out_dir
        # on success: each output is renamed into out_dir; outputs of an earlier run that this run did not make
        # again are removed (they would describe another run); on failure: nothing in out_dir changed

    What belongs to the tool is recorded in out_dir/.sam2-trt-outputs.json: an entry of the same name that it does
    not list is a user's, and the run is refused before any work starts. A folder the set created is removed again
    when the run fails.
    """

    RECORD = ".sam2-trt-outputs.json"

    def __init__(self, out_dir, names, tool: str, flag: str = "--out"):
        self.out_dir = check_output_folder(out_dir, flag)
        self.names = list(names)
        self.tool = tool
        self._created = ([] if self.out_dir.exists() else [self.out_dir]) + make_parents(self.out_dir)
        self._lock = path_lock(self.out_dir, flag)
        try:
            self._lock.__enter__()
        except BaseException:
            remove_if_empty(self._created)
            raise
        try:
            remove_stale_partials(self.out_dir, set(self.names) | {self.RECORD})
            remove_stale_partials(self.out_dir.parent, {self.out_dir.name})  # staging of a killed run
            self._previous = self._recorded()
            mine = set(self._previous) | {self.RECORD}
            theirs = [n for n in self.names if (self.out_dir / n).exists() or (self.out_dir / n).is_symlink()]
            theirs = [n for n in theirs if n not in mine]
            if theirs:
                raise OutputPathError(f"{flag} {self.out_dir} already has {theirs[0]!r}, which sam2-trt {tool} did "
                                      f"not write; remove or rename it, or choose another {flag} (it is left as "
                                      f"it is)")
            self.staging = Path(tempfile.mkdtemp(prefix=f".{self.out_dir.name}{PARTIAL}{os.getpid()}-",
                                                 dir=self.out_dir.parent))
        except BaseException:
            self._lock.__exit__(None, None, None)
            remove_if_empty(self._created)
            raise

    def _recorded(self) -> list:
        path = self.out_dir / self.RECORD
        try:
            names = json.loads(path.read_text())["outputs"]
            return [n for n in names if isinstance(n, str) and "/" not in n and n not in ("", ".", "..")]
        except (FileNotFoundError, NotADirectoryError):
            return []
        except (ValueError, KeyError, TypeError):  # unreadable: treat nothing as ours, so nothing is replaced
            return []

    def path(self, name: str) -> Path:
        if name not in self.names:
            raise KeyError(f"{name!r} is not one of this run's outputs {self.names}")
        return self.staging / name

    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.commit()
            else:
                self.abort()
        finally:
            self._lock.__exit__(None, None, None)
            if exc_type is not None:
                remove_if_empty(self._created)  # the lock file is gone now: the parent may be empty

    def commit(self) -> dict:
        """Move every output that was written into place; returns {name: final path}."""
        written = [n for n in self.names if (self.staging / n).exists()]
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name in set(self._previous) - set(written):  # stale outputs of an earlier run: no longer the set
            _remove(self.out_dir / name)
        for name in written:
            final = self.out_dir / name
            if final.exists() and final.is_dir() and not final.is_symlink():
                aside = final.with_name(f".{name}{PARTIAL}{os.getpid()}-old")
                os.rename(final, aside)
                os.rename(self.staging / name, final)
                shutil.rmtree(aside, ignore_errors=True)
            else:
                os.replace(self.staging / name, final)
        write_atomically(self.out_dir / self.RECORD, json.dumps({"tool": f"sam2-trt {self.tool}",
                                                                 "outputs": written}, indent=1).encode())
        shutil.rmtree(self.staging, ignore_errors=True)
        return {n: self.out_dir / n for n in written}

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        remove_if_empty(self._created)  # folders this run created, when still empty


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class FolderOutputs:
    """Outputs written straight into an empty folder that the caller owns and commits itself (a job runner's
    attempt folder, renamed into place as a whole): OutputSet's interface without its staging, lock and record."""

    def __init__(self, folder, names):
        self.out_dir = Path(folder)
        self.names = list(names)
        taken = [n for n in self.names if (self.out_dir / n).exists()]
        if not self.out_dir.is_dir() or taken:
            raise OutputPathError(f"{self.out_dir} must be an existing folder without {taken or self.names} to write "
                                  f"outputs into")

    def path(self, name: str) -> Path:
        if name not in self.names:
            raise KeyError(f"{name!r} is not one of this run's outputs {self.names}")
        return self.out_dir / name

    def __enter__(self) -> "FolderOutputs":
        return self

    def __exit__(self, exc_type, exc, tb):
        return None  # the caller removes or commits the folder as a whole
