"""Where a benchmark's JSON goes: <results>/<benchmark>-<machine>-<date>.json, one writer for all.

The results folder is the user's (`sam2-trt bench NAME --results DIR`), by default benchmarks/results in the
current directory: never next to the installed code, which may be a read-only site-packages.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from sam2_trt.core.files import write_atomically

DEFAULT_RESULTS = Path("benchmarks") / "results"  # relative: resolved against the current directory when used


def write_result(out_dir: Path, benchmark: str, machine: str, result: dict) -> Path:
    """Write `result` as <out_dir>/<benchmark>-<machine slug>-<YYYY-MM-DD>.json; returns the path."""
    slug = re.sub(r"[^a-z0-9]+", "-", machine.lower()).strip("-") or "host"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{benchmark}-{slug}-{time.strftime('%Y-%m-%d')}.json"
    write_atomically(path, (json.dumps(result, indent=2) + "\n").encode())  # never half a record
    return path
