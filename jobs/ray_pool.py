"""Videos across a Ray cluster: one long-lived worker (a Ray actor) per GPU, or per N CPUs, each holding a loaded
model for its whole life; videos are handed out one at a time as workers free up.

A worker that dies (its process killed, its node lost, out of memory) has its video retried on another worker,
at most JobOptions.max_attempts attempts in all, and a fresh worker takes its place. What a dead attempt wrote
stays in its own folder under OUT/.partial and is removed; a video's outputs appear only by the rename at the
end of an attempt that completed (layout.py), so nothing is lost or written twice.

Every node reads the videos and writes OUT: on a multi-node cluster both live on a filesystem all nodes share,
at the same paths, and sam2-trt is installed on every node.
"""

from __future__ import annotations

import shutil
from collections import deque

from .errors import JobError
from .video_job import VideoRunner

START_TIMEOUT_S = 600  # how long to wait for a worker when none is running: the cluster may be scaling up


def connect(address: str | None):
    """(the ray module, whether this call started the connection); connects to `address`, or to the cluster
    that `ray start` / RAY_ADDRESS points at, or starts a local one."""
    try:
        import ray
    except ImportError:
        raise JobError("--ray needs Ray: pip install 'sam2-trt[ray]' (or pip install ray)",
                       JobError.MISSING_DEPENDENCY) from None
    if ray.is_initialized():
        return ray, False
    try:
        ray.init(address=address, include_dashboard=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"the Ray cluster at {address}" if address else "a Ray cluster"
        raise JobError(f"cannot connect to {where}: {str(e).strip().splitlines()[-1]}. Is `ray start` running "
                       f"there, and, if the cluster uses token authentication, are RAY_AUTH_MODE=token and its token "
                       f"(RAY_AUTH_TOKEN or ~/.ray/auth_token) set here?") from None
    return ray, True


def plan_workers(ray, workers: int | None, gpus_per_worker: float | None, cpus_per_worker: float) -> tuple:
    """(workers, GPUs and CPUs of each): one worker per gpus_per_worker GPUs (default: 1 where the cluster has
    GPUs), or per cpus_per_worker CPUs on a cluster without GPUs, unless `workers` says how many."""
    have = ray.cluster_resources()
    gpus, cpus = float(have.get("GPU", 0)), float(have.get("CPU", 0))
    if gpus_per_worker is None:
        gpus_per_worker = 1.0 if gpus >= 1 else 0.0
    if workers is None:
        workers = int(gpus // gpus_per_worker) if gpus_per_worker else int(cpus // cpus_per_worker)
    if workers < 1 or gpus_per_worker * workers > gpus or cpus_per_worker * workers > cpus:
        raise JobError(f"the Ray cluster has {gpus:g} GPUs and {cpus:g} CPUs: not enough for {max(workers, 1)} "
                       f"worker(s) of {gpus_per_worker:g} GPU(s) and {cpus_per_worker:g} CPU(s); lower --workers, "
                       f"--gpus-per-worker or --cpus-per-worker, or add nodes")
    return workers, gpus_per_worker, cpus_per_worker


class WorkerPool:
    """The job's actors: starting (their model loading), idle, and a fresh one for each that died."""

    def __init__(self, ray, model_dir, options, workers: int, gpus: float, cpus: float, setup=None):
        self.ray, self.model_dir, self.options, self.setup = ray, str(model_dir), options, setup
        self.actor = ray.remote(VideoRunner).options(num_gpus=gpus, num_cpus=cpus, max_restarts=0,
                                                      max_task_retries=0)
        self.threads = None if gpus else max(1, int(cpus))  # CPU workers: ONNX Runtime threads = their CPUs
        self.starting, self.idle, self.all, self.start_errors = {}, [], [], []
        self.spawned = 0
        for _ in range(workers):
            self.spawn()

    def spawn(self) -> None:
        self.spawned += 1
        handle = self.actor.remote(self.model_dir, self.options, f"ray-worker-{self.spawned}", self.threads,
                                   self.setup)
        self.starting[handle.describe.remote()] = handle

    def started(self, ref, summary) -> None:
        """A worker's describe() came back: it loaded the model and is idle, or it failed to start."""
        handle = self.starting.pop(ref)
        try:
            where = self.ray.get(ref)
        except self.ray.exceptions.RayError as e:
            self.start_errors.append(str(e))
            return
        self.idle.append((handle, where))
        self.all.append(handle)
        summary.workers.append(where)

    def shutdown(self) -> None:
        for handle in self.all + list(self.starting.values()):
            self.ray.kill(handle)


def run_on_ray(work: list, model_dir, options, folder, summary, address: str | None = None,
               workers: int | None = None, gpus_per_worker: float | None = None, cpus_per_worker: float = 1,
               setup=None) -> None:
    """Run [(VideoTask, fingerprint)] on the cluster, reporting every video to `summary` (summary.py)."""
    ray, connected_here = connect(address)
    pool, running = None, {}  # running: run() ref -> (handle, where, task, fingerprint, attempt, attempt folder)
    try:
        n, gpus, cpus = plan_workers(ray, workers, gpus_per_worker, cpus_per_worker)
        summary.job["cluster"] = {"address": address or "auto", "workers": min(n, len(work)), "gpus_per_worker": gpus,
                                  "cpus_per_worker": cpus, "resources": ray.cluster_resources()}
        pool = WorkerPool(ray, model_dir, options, min(n, len(work)), gpus, cpus, setup)
        queue = deque((task, fp, 1) for task, fp in work)
        while queue or running:
            while queue and pool.idle:
                handle, where = pool.idle.pop()
                task, fp, attempt = queue.popleft()
                attempt_dir = folder.new_attempt(task.id, attempt)
                ref = handle.run.remote(task, fp, str(attempt_dir), str(folder.video_dir(task.id)))
                running[ref] = (handle, where, task, fp, attempt, attempt_dir)
                summary.started(task, where, attempt, attempt_dir)
            if not running and not pool.starting:
                raise JobError(f"no Ray worker could load the model: {pool.start_errors[-1]}")
            ready, _ = ray.wait(list(running) + list(pool.starting), num_returns=1,
                                timeout=None if running else START_TIMEOUT_S)
            if not ready:
                raise JobError(f"no Ray worker started within {START_TIMEOUT_S} s: the cluster has no room for a "
                               f"worker with {gpus:g} GPU(s) and {cpus:g} CPU(s)")
            if ready[0] in pool.starting:
                pool.started(ready[0], summary)
                continue
            handle, where, task, fp, attempt, attempt_dir = running.pop(ready[0])
            try:
                record = ray.get(ready[0])
            except ray.exceptions.RayActorError as e:
                shutil.rmtree(attempt_dir, ignore_errors=True)
                pool.spawn()  # a fresh worker in its place
                reason = f"worker {where['worker']} (pid {where['pid']} on {where['host']}) died: " \
                         f"{str(e).strip().splitlines()[0]}"
                if attempt < options.max_attempts:
                    summary.retried(task, where, attempt, reason)
                    queue.appendleft((task, fp, attempt + 1))
                else:
                    summary.finished(task, {**where, "status": "failed", "reason": f"gave up after {attempt} "
                                            f"attempts, each ending with its worker's death; last: {reason}"})
                continue
            except ray.exceptions.RayTaskError as e:  # run() returns failures as records: this is Ray's own
                record = {**where, "status": "failed", "reason": str(e).strip().splitlines()[-1]}
            pool.idle.append((handle, where))
            summary.finished(task, record)
    finally:
        for *_, attempt_dir in running.values():  # interrupted: their workers are killed below
            shutil.rmtree(attempt_dir, ignore_errors=True)
        if pool is not None:
            if pool.start_errors:
                summary.job["worker_start_errors"] = pool.start_errors
            pool.shutdown()
        if connected_here:
            ray.shutdown()
