"""track_many: every video of a manifest tracked into one output folder, in this process or across a Ray cluster.

    from sam2_trt.jobs import JobOptions, track_many
    summary = track_many("videos.jsonl", "models/t", "out/")                          # here, one after another
    summary = track_many("videos.jsonl", "models/t", "out/", ray=True)                # the Ray cluster here
    summary = track_many("videos.jsonl", "models/t", "out/", ray="head:6379", options=JobOptions(classes=("dog",)))

The job holds OUT/.lock while it runs, removes what killed attempts left, skips every video already done with
the same inputs (layout.py), runs the rest and keeps OUT/job.json current (summary.py).
"""

from __future__ import annotations

from pathlib import Path

from sam2_trt.core.metadata import METADATA_FILENAME, load_metadata, sha256_file

from .errors import JobError
from .layout import JobFolder, fingerprint
from .manifest import read_manifest
from .summary import JobSummary
from .video_job import JobOptions, VideoRunner


def track_many(manifest, model_dir, out_dir, *, ray: bool | str = False, workers: int | None = None,
               gpus_per_worker: float | None = None, cpus_per_worker: float = 1, options: JobOptions = JobOptions(),
               progress: bool = True, on_event=None, worker_setup=None) -> dict:
    """Track every video of `manifest` (manifest.py) with the model in `model_dir` into `out_dir`.

    ray: False runs here, one video after another (the embedded default); True connects to the Ray cluster
        that `ray start` or RAY_ADDRESS names, or starts a local one; a string is the cluster's address.
    workers, gpus_per_worker, cpus_per_worker: the Ray workers (ray_pool.plan_workers: default one per GPU, or
        one per cpus_per_worker CPUs on a cluster without GPUs).
    progress: a progress bar over the videos on stderr. on_event: called with each event (summary.py).
    worker_setup: a function each worker calls in its own process before loading the model (importable by
        name, as Ray pickles it so): `sam2-trt track-many` passes the hook that builds missing TensorRT engines.
    Returns the job summary, as written to OUT/job.json. Raises JobError (or ModelDirError) for a job that cannot
    start; a video that fails is in the summary with its reason.
    """
    if not ray and (workers not in (None, 1) or gpus_per_worker):
        raise JobError("--workers and --gpus-per-worker place Ray workers: add --ray (without it the videos run "
                       "here, one after another)")
    tasks = read_manifest(manifest)
    load_metadata(model_dir)  # a missing or broken model directory stops the job before anything runs
    model_sha256 = sha256_file(Path(model_dir) / METADATA_FILENAME)
    settings = options.settings()
    folder = JobFolder(out_dir)
    with folder.locked():
        folder.clear_attempts()
        job = {"manifest": str(Path(manifest).resolve()), "model": str(Path(model_dir).resolve()),
               "out": str(folder.root.resolve()), "mode": "ray" if ray else "local", "settings": settings}
        summary = JobSummary(folder.summary, tasks, job, progress, on_event)
        work = []
        for task in tasks:
            fp = fingerprint(task, model_sha256, settings)
            record = folder.done_record(task.id, fp)
            if record is not None:
                summary.skipped(task, record)
            else:
                work.append((task, fp))
        interrupted = True
        try:
            if work and ray:
                from .ray_pool import run_on_ray

                run_on_ray(work, model_dir, options, folder, summary, None if ray is True else str(ray), workers,
                           gpus_per_worker, cpus_per_worker, worker_setup)
            elif work:
                run_here(work, model_dir, options, folder, summary, worker_setup)
            interrupted = False
        finally:
            doc = summary.close(interrupted)
    return doc


def run_here(work: list, model_dir, options: JobOptions, folder: JobFolder, summary: JobSummary,
             setup=None) -> None:
    """[(VideoTask, fingerprint)] one after another in this process, with one loaded model."""
    runner = VideoRunner(model_dir, options, setup=setup)
    summary.workers.append(runner.describe())
    for task, fp in work:
        attempt_dir = folder.new_attempt(task.id, 1)
        summary.started(task, runner.where, 1, attempt_dir)
        summary.finished(task, runner.run(task, fp, attempt_dir, folder.video_dir(task.id)))
