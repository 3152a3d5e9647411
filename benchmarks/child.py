"""Each measurement runs in a fresh interpreter, so that one run's threads, caches, allocator pools and peak
memory cannot leak into the next: the parent passes the job as JSON, the child prints its result as the last
line of stdout (its progress goes to stderr, which the parent leaves on the terminal)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

from benchmarks.models import REPO


def peak_rss_mb() -> float:
    """ru_maxrss of this process in MB (kB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def run_in_child(module: str, job: dict) -> dict:
    """`python -m <module> --child <job as JSON>` from the repository root; its result, or {"error": ...}."""
    cmd = [sys.executable, "-m", module, "--child", json.dumps(job)]
    proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        return {"error": f"{module} exited with status {proc.returncode} (its stderr is above)"}
    return json.loads(proc.stdout.strip().splitlines()[-1])
