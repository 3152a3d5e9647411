"""Each measurement runs in a fresh interpreter, so that one run's threads, caches, allocator pools and peak
memory cannot leak into the next: the parent passes the job as JSON, the child prints its result as the last
line of stdout (its progress goes to stderr, which the parent leaves on the terminal).

    python -m sam2_trt.benchmarks.child MODULE JOB_JSON    # prints json.dumps(MODULE.run_child(job))

The child inherits the caller's current directory (a relative --checkpoint or --model-dir means the same in
both) and installs the in-process TensorRT engine builder, so a missing engine is built when the child first
loads the model, outside the timed passes.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import resource
import signal
import subprocess
import sys


def peak_rss_mb() -> float:
    """ru_maxrss of this process in MB (kB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def run_with_budget(cmd: list, timeout: float | None, **popen) -> subprocess.CompletedProcess:
    """Run `cmd` (stdout captured as text); past `timeout` seconds it is killed with every process it started (its
    own session: engine builds, torch.compile workers), and returncode is None."""
    if timeout is None:
        return subprocess.run(cmd, stdout=subprocess.PIPE, text=True, **popen)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True, **popen)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(cmd, proc.returncode, out)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return subprocess.CompletedProcess(cmd, None, out)


def run_in_child(module: str, job: dict, timeout: float | None = None) -> dict:
    """`module.run_child(job)` in a fresh interpreter (module: a dotted name, e.g. sam2_trt.benchmarks.video);
    its result, or {"error": ...} when the child fails or runs longer than `timeout` seconds (then killed)."""
    cmd = [sys.executable, "-m", "sam2_trt.benchmarks.child", module, json.dumps(job)]
    proc = run_with_budget(cmd, timeout)
    if proc.returncode is None:
        return {"error": f"{module} ran past its {timeout:.0f} s budget and was stopped"}
    if proc.returncode != 0:
        return {"error": f"{module} exited with status {proc.returncode} (its stderr is above)"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _main(module: str, job: str) -> None:
    from sam2_trt.engines import enable_build_on_first_use

    measured = importlib.import_module(module)
    enable_build_on_first_use()
    print(json.dumps(measured.run_child(json.loads(job))))


if __name__ == "__main__":
    _main(*sys.argv[1:])
