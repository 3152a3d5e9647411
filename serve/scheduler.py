"""The one thread that runs the model, and how it shares it between clients.

Every graph call of the server happens on this thread, so the backend (ONNX Runtime or TensorRT sessions, the
CUDA stream) is never used from two threads, and sessions change only here. Requests hand it work and wait on a
Future; the queue is bounded, and a full queue is the client's back-pressure (Busy -> 503 with Retry-After).

Each turn of the loop runs the jobs queued when it began, then one step of the running propagations:
  - a job is a function (a click, a box, automatic masks), or an image encoding: the turn's encodings are
    encoded together, up to `batch_images` per call (embed_images);
  - a step tracks the next frame of up to `batch_sessions` propagating video sessions with one call per graph
    (runtime/video/batch.py), each session's result identical to tracking it alone.
So a click waits for at most one step, and N sessions propagating together cost one call per graph per frame
instead of N. Propagations past `batch_sessions` take turns (round-robin).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

from sam2_trt.runtime.video.batch import track_sessions

log = logging.getLogger("sam2_trt.serve")


class Busy(Exception):
    """The model's queue is full; retry after `retry_after` seconds."""

    def __init__(self, queued: int, retry_after: int = 1):
        super().__init__(f"the model is busy ({queued} jobs queued); retry in {retry_after} s")
        self.retry_after = retry_after


class ShuttingDown(Exception):
    """The server is stopping: queued work was cancelled."""


@dataclass
class _Job:
    future: Future
    fn: Callable | None = None  # run on the model thread; its return value is the result
    encode: tuple | None = None  # (predictor, image): encodings are batched, then predictor.set_image_embedding


@dataclass
class SchedulerStats:
    """What the thread did, for /api/stats and the benchmark: steps, and how many sessions each step held."""

    jobs: int = 0
    encode_calls: int = 0
    images_encoded: int = 0
    steps: int = 0
    step_sizes: Counter = field(default_factory=Counter)  # sessions in a step -> how many steps had that many

    def as_json(self) -> dict:
        return {"jobs": self.jobs, "encode_calls": self.encode_calls, "images_encoded": self.images_encoded,
                "steps": self.steps, "step_sizes": {str(k): v for k, v in sorted(self.step_sizes.items())}}


class Scheduler:
    def __init__(self, max_queue: int, batch_images: int, batch_sessions: int):
        self.max_queue, self.batch_images, self.batch_sessions = max_queue, batch_images, batch_sessions
        self.stats = SchedulerStats()
        self._queue: deque[_Job] = deque()
        self._control: deque[Callable] = deque()  # never refused: closing sessions, cancelling
        self._propagations: list = []  # Propagation (propagation.py), in turn order
        self._cv = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="sam2-trt model", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # -- handing work in (any thread) -------------------------------------------------------------------------
    def submit(self, fn: Callable) -> Future:
        """Run fn() on the model thread; a Future of its result. Busy when the queue is full."""
        return self._put(_Job(Future(), fn=fn))

    def encode(self, predictor, image) -> Future:
        """Encode `image` for `predictor` (set_image), batched with other waiting encodings; a Future of None."""
        return self._put(_Job(Future(), encode=(predictor, image)))

    def call_soon(self, fn: Callable) -> None:
        """Run fn() on the model thread before the next job (no graph calls: closing, cancelling)."""
        with self._cv:
            self._control.append(fn)
            self._cv.notify()

    def add_propagation(self, propagation) -> None:
        with self._cv:
            if self._stopping:
                raise ShuttingDown("the server is shutting down")
            self._propagations.append(propagation)
            self._cv.notify()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _put(self, job: _Job) -> Future:
        with self._cv:
            if self._stopping:
                raise ShuttingDown("the server is shutting down")
            if len(self._queue) >= self.max_queue:
                raise Busy(len(self._queue))
            self._queue.append(job)
            self._cv.notify()
        return job.future

    def stop(self, timeout: float = 60.0) -> None:
        """Finish the step or job under way, then cancel everything queued and every propagation (their clients
        are told), run the pending closes, and end the thread."""
        with self._cv:
            self._stopping = True
            self._cv.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._cv:
            cancelled, self._queue = list(self._queue), deque()
            propagations, self._propagations = self._propagations, []
            control, self._control = list(self._control), deque()
        for job in cancelled:
            job.future.set_exception(ShuttingDown("the server shut down before this request ran"))
        for p in propagations:
            p.cancel("the server is shutting down")
            p.finish()
        for fn in control:
            _run_safely(fn)

    # -- the model thread ---------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cv:
                while not (self._stopping or self._queue or self._control or self._propagations):
                    self._cv.wait()
                if self._stopping:
                    return
                control, self._control = list(self._control), deque()
                jobs = self._take_jobs()
                step = self._take_step()
            for fn in control:
                _run_safely(fn)
            for unit in jobs:
                self._run_jobs(unit)
            if step:
                self._run_step(step)

    def _take_jobs(self) -> list:
        """Every queued job, as units to run in order: a function job alone, encodings in groups of up to
        batch_images (each group where its first encoding was queued) (lock held)."""
        jobs, self._queue = list(self._queue), deque()
        units, group = [], None
        for job in jobs:
            if job.encode is None:
                units.append([job])
                continue
            if group is None or len(group) >= self.batch_images:
                group = []
                units.append(group)
            group.append(job)
        return units

    def _take_step(self) -> list:
        """Up to batch_sessions propagations for this step, in turns (lock held); finished ones leave."""
        self._propagations = [p for p in self._propagations if not p.finished]
        step = self._propagations[: self.batch_sessions]
        self._propagations = self._propagations[len(step):] + step  # the others go first next time
        return step

    def _run_jobs(self, jobs: list) -> None:
        if jobs[0].encode is None:
            job = jobs[0]
            self.stats.jobs += 1
            if job.future.set_running_or_notify_cancel():
                try:
                    job.future.set_result(job.fn())
                except BaseException as e:  # noqa: BLE001 - the request that asked gets it
                    job.future.set_exception(e)
            return
        jobs = [j for j in jobs if j.future.set_running_or_notify_cancel()]
        if not jobs:
            return
        try:
            embeddings = jobs[0].encode[0].embed_images([j.encode[1] for j in jobs])
        except BaseException as e:  # noqa: BLE001
            for j in jobs:
                j.future.set_exception(e)
            return
        self.stats.encode_calls += 1
        self.stats.images_encoded += len(jobs)
        for j, embedding in zip(jobs, embeddings):
            j.encode[0].set_image_embedding(embedding)
            j.future.set_result(None)

    def _run_step(self, step: list) -> None:
        """One frame of each propagation of the step, tracked together; each gets its result or its error."""
        for p in step:
            if p.cancelled:
                p.finish()
        ready = [p for p in step if not p.finished and p.begin()]  # begin: consolidate prompts once
        frames = [(p, p.next_frame()) for p in ready]
        if not frames:
            return
        t = time.perf_counter()
        try:
            results = track_sessions([(p.tracking, f, reverse) for p, (f, reverse) in frames])
        except Exception as e:  # noqa: BLE001 - a backend failure: every session of the step is told
            log.exception("tracking step failed")
            for p, _ in frames:
                p.fail(f"tracking failed: {e}")
            return
        self.stats.steps += 1
        self.stats.step_sizes[len(frames)] += 1
        seconds = time.perf_counter() - t
        for (p, _), result in zip(frames, results):
            p.deliver(result, seconds)


def _run_safely(fn: Callable) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001 - a failing close must not stop the model thread
        log.exception("control task failed")
