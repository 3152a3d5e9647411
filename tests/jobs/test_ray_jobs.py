"""track-many on a local Ray cluster started here (two CPU workers), against the same job run locally: the same
outputs; bad videos reported while the others complete; a worker killed (SIGKILL) in the middle of a video, and
the job completes with nothing lost or written twice; a job killed after its first video, and the rerun (the CLI,
connecting to the cluster by address) redoes only what was missing."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sam2_trt.jobs import JobOptions, track_many
from tests.conftest import REPO
from tests.jobs.conftest import BAD, GOOD, assert_clean, assert_same_outputs, video_outputs

ray = pytest.importorskip("ray", reason="the Ray tests need ray (pip install 'sam2-trt[ray]'; make setup installs it)")

OPTIONS = JobOptions(backend="onnxruntime-cpu")


@pytest.fixture(scope="module")
def ray_cluster():
    """A local cluster with 2 CPUs (two workers of one CPU); yields its address for other drivers."""
    ray.init(num_cpus=2, include_dashboard=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def local_run(job_inputs, tiny512_dir, tmp_path_factory):
    """The reference: every video of all.jsonl in this process, one after another."""
    out = tmp_path_factory.mktemp("local") / "out"
    return out, track_many(job_inputs / "all.jsonl", tiny512_dir, out, options=OPTIONS, progress=False)


@pytest.fixture(scope="module")
def ray_run(ray_cluster, job_inputs, tiny512_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray") / "out"
    events = []
    summary = track_many(job_inputs / "all.jsonl", tiny512_dir, out, ray=True, workers=2, options=OPTIONS,
                         progress=False, on_event=events.append)
    return out, summary, events


def rows(summary) -> dict:
    return {r["id"]: r for r in summary["videos"]}


def test_the_local_job_tracks_as_the_predictor_api(local_run, job_inputs, tiny512_dir):
    """The reference itself: a mask prompt and clicks on a later frame, as SAM2VideoPredictor tracks them."""
    from PIL import Image

    from sam2_trt.runtime import SAM2VideoPredictor

    out, _ = local_run
    predictor = SAM2VideoPredictor.load(tiny512_dir, backend="onnxruntime-cpu")
    state = predictor.init_state(str(job_inputs / "b"))
    predictor.add_new_mask(state, 0, 4, np.asarray(Image.open(job_inputs / "b-mask.png")) > 0)
    predictor.add_new_points_or_box(state, 1, 2, points=[[90, 70], [20, 20]], labels=[1, 0])
    labels, doc = video_outputs(out, "b")
    for f, ids, logits in predictor.propagate_in_video(state):
        want = np.zeros(labels.shape[1:], np.uint8)
        for o, m in sorted(zip(ids, logits[:, 0] > 0), key=lambda om: -om[0]):
            want[m] = o
        assert np.array_equal(labels[f], want), f"frame {f}"
    assert doc["tracks"] == [{"obj_id": 2, "category_id": None, "category": None},
                             {"obj_id": 4, "category_id": None, "category": None}]
    assert video_outputs(out, "a")[1]["tracks"][0] == {"obj_id": 1, "category_id": None, "category": "ball"}


def test_ray_job_writes_what_the_local_job_writes(ray_run, local_run):
    out, summary, _ = ray_run
    assert_same_outputs(out, local_run[0])
    assert_clean(out)
    assert summary["mode"] == "ray" and summary["cluster"]["workers"] == 2
    workers = summary["workers"]
    assert sorted(w["worker"] for w in workers) == ["ray-worker-1", "ray-worker-2"]
    assert len({w["pid"] for w in workers}) == 2 and os.getpid() not in {w["pid"] for w in workers}
    for v in GOOD:
        row = rows(summary)[v]
        assert row["status"] == "done" and row["frames"] == 3 and row["attempts"] == 1
        assert row["worker"] in {"ray-worker-1", "ray-worker-2"} and row["fps"] > 0 and row["seconds"] > 0
    assert rows(summary)["c"]["objects"] == 3 and rows(summary)["c"]["passes"] == 2  # a box started a track later


def test_bad_videos_are_reported_while_the_others_complete(ray_run, local_run):
    for out, summary in (ray_run[:2], local_run):
        assert summary["status"] == "failed videos"
        assert summary["counts"] == {"done": 3, "skipped": 0, "failed": 2, "pending": 0}
        broken, late = rows(summary)["broken"], rows(summary)["late"]
        assert broken["status"] == "failed" and "broken.mp4" in broken["reason"]
        assert late["status"] == "failed" and \
            late["reason"] == "object 1 is prompted on frame 9, but the video has frames 0..2"
        assert not any((out / "videos" / v).exists() for v in BAD)
    events = ray_run[2]
    assert sorted(e["video"] for e in events if e["event"] in ("done", "failed")) == sorted(GOOD + BAD)


def test_a_worker_killed_mid_video_loses_nothing(ray_cluster, local_run, job_inputs, tiny512_dir, tmp_path):
    victim, killed, events = "a", {}, []

    def kill_while_writing(pid, attempt_dir):
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if any(Path(attempt_dir).rglob("*.png")):  # it has tracked and written a frame, and is not done
                os.kill(pid, signal.SIGKILL)
                killed["pid"] = pid
                return
            time.sleep(0.005)

    def on_event(event):
        events.append(event)
        if event["event"] == "started" and event["video"] == victim and event["attempt"] == 1:
            threading.Thread(target=kill_while_writing, args=(event["pid"], event["attempt_dir"]), daemon=True).start()

    out = tmp_path / "out"
    summary = track_many(job_inputs / "good.jsonl", tiny512_dir, out, ray=True, workers=2, options=OPTIONS,
                         progress=False, on_event=on_event)
    assert "pid" in killed, "the victim's worker was never seen writing a frame"
    assert summary["status"] == "complete", summary
    row = rows(summary)[victim]
    assert row["attempts"] == 2 and row["pid"] != killed["pid"]
    (death,) = row["worker_deaths"]
    assert f"(pid {killed['pid']} on" in death["reason"] and "died" in death["reason"]
    assert [e["video"] for e in events if e["event"] == "retried"] == [victim]
    assert sorted(e["video"] for e in events if e["event"] == "done") == sorted(GOOD)  # each once
    assert_same_outputs(out, local_run[0])
    assert_clean(out)


def test_a_rerun_after_a_killed_job_redoes_only_what_was_missing(ray_cluster, local_run, job_inputs, tiny512_dir,
                                                                  tmp_path):
    out = tmp_path / "out"
    args = [sys.executable, "-m", "sam2_trt.cli", "track-many", str(job_inputs / "good.jsonl"), "--model",
            str(tiny512_dir), "--out", str(out), "--backend", "onnxruntime-cpu", "--quiet"]
    job = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = out / "videos" / "a" / "video.json"
    deadline = time.monotonic() + 600
    while not first.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    job.kill()  # SIGKILL: no cleanup of any kind
    assert job.wait() == -signal.SIGKILL, job.stderr.read()[-3000:]
    done_before = {p.name for p in (out / "videos").iterdir()}
    assert "a" in done_before and done_before != set(GOOD), "the job was not killed in the middle"
    assert (out / ".lock").exists()
    kept = {v: (out / "videos" / v / "video.json").stat() for v in done_before}

    proc = subprocess.run(args + ["--ray", ray_cluster, "--workers", "2"], cwd=REPO, capture_output=True, text=True,
                          timeout=900, env={**os.environ, "RAY_AUTH_MODE": "token"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "job.json").read_text())
    assert {v for v, r in rows(summary).items() if r["status"] == "skipped"} == done_before
    assert {v for v, r in rows(summary).items() if r["status"] == "done"} == set(GOOD) - done_before
    for v, before in kept.items():  # untouched: the same file, never rewritten
        after = (out / "videos" / v / "video.json").stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert f"3 videos: {3 - len(done_before)} done, {len(done_before)} skipped" in proc.stdout
    assert_same_outputs(out, local_run[0])
    assert_clean(out)
