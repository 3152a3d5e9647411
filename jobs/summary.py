"""The job summary: OUT/job.json lists every video of the manifest with its status, frames, objects, seconds,
FPS and worker, and is rewritten (atomically) after every video, so it is current even when the job is killed.

Video statuses: "done" (by this run), "skipped" (done by an earlier run with the same inputs; its numbers are
that run's), "failed" (with its "reason", and a "traceback" when the input was not the problem), "pending" (not
run: the job was interrupted). The job's status: "complete" (every video done or skipped), "failed videos" (some
failed: rerun to retry them), "interrupted".

A caller may follow the job through `on_event(event)`, called in the driver with a dict: {"event": "started",
"video", "attempt", "worker", "host", "pid", "attempt_dir"}, {"event": "retried", "video", "attempt", "worker",
"reason"} (its worker died), {"event": "done" | "failed" | "skipped", "video", "record"}.
"""

from __future__ import annotations

import sys
import time

from .layout import write_json

ROW_FIELDS = ("status", "frames", "objects", "seconds", "fps", "worker", "host", "pid", "passes", "reason",
              "traceback")


class JobSummary:
    def __init__(self, path, tasks: list, job: dict, progress: bool = True, on_event=None):
        from tqdm import tqdm

        self.path, self.job, self.on_event = path, job, on_event
        self.rows = {t.id: {"id": t.id, "video": t.video, "status": "pending", "attempts": 0} for t in tasks}
        self.workers = []  # describe() of every worker that started
        self.started_at = time.time()
        self.bar = tqdm(total=len(tasks), unit="video", desc="videos", file=sys.stderr, disable=not progress)

    def _event(self, event: str, video: str, **fields) -> None:
        if self.on_event is not None:
            self.on_event({"event": event, "video": video, **fields})

    def _set(self, video: str, record: dict, status: str) -> None:
        row = self.rows[video]
        row.update({k: record[k] for k in ROW_FIELDS if k in record}, status=status)
        self.bar.set_postfix_str(video, refresh=False)
        self.bar.update()
        self.write()
        self._event(status, video, record=record)

    def skipped(self, task, record: dict) -> None:
        self._set(task.id, record, "skipped")

    def started(self, task, where: dict, attempt: int, attempt_dir) -> None:
        self.rows[task.id]["attempts"] = attempt
        self._event("started", task.id, attempt=attempt, attempt_dir=str(attempt_dir), **where)

    def retried(self, task, where: dict, attempt: int, reason: str) -> None:
        self.rows[task.id].setdefault("worker_deaths", []).append({"worker": where["worker"], "reason": reason})
        self.write()
        self._event("retried", task.id, attempt=attempt, worker=where["worker"], reason=reason)

    def finished(self, task, record: dict) -> None:
        self._set(task.id, record, record["status"])

    def document(self, interrupted: bool = False) -> dict:
        rows = list(self.rows.values())
        counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "skipped", "failed", "pending")}
        seconds = time.time() - self.started_at
        status = "interrupted" if interrupted or counts["pending"] else \
            "failed videos" if counts["failed"] else "complete"
        return {**self.job, "status": status, "counts": counts, "workers": self.workers,
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started_at)),
                "seconds": round(seconds, 3), "videos_per_minute": round(60 * counts["done"] / seconds, 3),
                "videos": rows}

    def write(self, interrupted: bool = False) -> dict:
        doc = self.document(interrupted)
        write_json(self.path, doc)
        return doc

    def close(self, interrupted: bool = False) -> dict:
        self.bar.close()
        return self.write(interrupted)
