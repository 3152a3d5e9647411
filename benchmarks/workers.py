"""Measuring several sides in turn on one machine: one long-lived child process per side, driven line by line.

A side's numbers are only comparable with another's if both saw the same machine. On a shared machine the load
changes from minute to minute, so measuring side A for five minutes and then side B compares two machines. Here
every side is loaded once in its own interpreter (a side that imports torch never shares a process with one that
must not), then the parent asks each side in turn for one timed call, round after round, and takes medians:

    python -m sam2_trt.benchmarks.workers MODULE JOB_JSON
        MODULE.open_side(job) -> {call name: fn() -> result or None}; then, per line on stdin, a call name:
        the child runs that call, times it, and answers one JSON line {"ms": ..., "result": ...} on stdout
        (stdout carries only answers; the side's own prints must go to stderr). An empty line ends it.
"""

from __future__ import annotations

import importlib
import json
import statistics
import subprocess
import sys
import time


class Worker:
    """The parent's handle on one side's child process."""

    def __init__(self, label: str, module: str, job: dict):
        self.label = label
        self.proc = subprocess.Popen([sys.executable, "-m", "sam2_trt.benchmarks.workers", module, json.dumps(job)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.error = None
        ready = self._answer()
        if ready is not None and "error" in ready:
            self.error = ready["error"]

    def _answer(self) -> dict | None:
        line = self.proc.stdout.readline()
        if not line:
            self.error = self.error or f"{self.label}: its process ended (status {self.proc.wait()}; stderr above)"
            return None
        return json.loads(line)

    def call(self, name: str) -> dict | None:
        """One timed call: {"ms": float, "result": ...}, or None once the side has failed (self.error says why)."""
        if self.error is not None:
            return None
        self.proc.stdin.write(name + "\n")
        self.proc.stdin.flush()
        answer = self._answer()
        if answer is not None and "error" in answer:
            self.error = f"{self.label}: {name}: {answer['error']}"
            return None
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            self.proc.wait()


def interleaved(workers: list, call: str, warmup: int, reps: int) -> dict:
    """`call` on every worker, `warmup` untimed rounds then `reps` timed rounds; in each round every worker runs
    once, the order rotating so that no side always runs first. {label: {median_ms, min_ms, times_ms, reps, warmup,
    results (what each timed call returned)}}."""
    live = [w for w in workers if w.error is None]
    for _ in range(warmup):
        for w in live:
            w.call(call)
    times, results = {w.label: [] for w in live}, {w.label: [] for w in live}
    for rep in range(reps):
        k = rep % max(len(live), 1)
        for w in live[k:] + live[:k]:
            answer = w.call(call)
            if answer is not None:
                times[w.label].append(answer["ms"])
                results[w.label].append(answer["result"])
    return {label: {"median_ms": statistics.median(t), "min_ms": min(t), "times_ms": t, "reps": len(t),
                    "warmup": warmup, "results": results[label]} for label, t in times.items() if t}


def _serve(module: str, job: str) -> None:
    answers = sys.stdout
    sys.stdout = sys.stderr  # whatever the side prints must not mix with the answers
    try:
        calls = importlib.import_module(module).open_side(json.loads(job))
    except Exception as e:  # noqa: BLE001 (reported to the parent as this side's reason)
        answers.write(json.dumps({"error": f"{type(e).__name__}: {e}"}) + "\n")
        answers.flush()
        return
    answers.write(json.dumps({"ready": True}) + "\n")
    answers.flush()
    for line in sys.stdin:
        name = line.strip()
        if not name:
            break
        try:
            t0 = time.perf_counter()
            result = calls[name]()
            answer = {"ms": (time.perf_counter() - t0) * 1000, "result": result}
        except Exception as e:  # noqa: BLE001
            answer = {"error": f"{type(e).__name__}: {e}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    _serve(*sys.argv[1:])
