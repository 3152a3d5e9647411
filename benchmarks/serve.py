"""Many clients on one server, on loopback: `sam2-trt bench serve`.

    sam2-trt bench serve [--model-dir DIR | --image-size 256] [--backend auto] [--device cuda|cpu]
                         [--image-clients 2] [--video-clients 3] [--seconds 60] [--max-frames 8]
                         [--frame-size 640x360] [--batching on off] [--results DIR]

For each batching setting a fresh `sam2-trt serve` process is started (a random token, a media folder with a
synthetic clip), then image clients (upload once, click again and again) and video clients (reset, click,
propagate --max-frames frames over the WebSocket, again and again) run at the same time for --seconds. Every
mask a client receives is compared with the library's for the same prompt, computed beforehand in this process;
a mismatch or a failed request is an error (there must be none). Measured, after one untimed request of each
kind (which opens every graph): predict requests and tracked frames per second, p50/p99 latency (a predict
request; the time between two frames of a propagation), the server's graph calls (memory-attention calls per
tracked frame show what batching saves), its RSS after the warm-up and at the end.
"on" is the server's default (up to 16 video sessions per step, 4 images per encoder call); "off" is
--batch-sessions 1 --batch-images 1 (one session per step: as many sessions side by side without batching).

The default model is sam2.1_hiera_t with seeded random weights at 256 px (benchmarks/models.py). Results: a
table and <--results>/serve-<machine>-<date>.json (default ./benchmarks/results).
"""

from __future__ import annotations

import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

from sam2_trt.benchmarks.environment import describe, machine_label
from sam2_trt.benchmarks.results_file import write_result
from sam2_trt.benchmarks.scene import MovingScene, clicks, write_clip
from sam2_trt.benchmarks.serve_clients import image_client, video_client

CONFIGS = {"on": [], "off": ["--batch-sessions", "1", "--batch-images", "1"]}
IMAGE_PROMPTS = [  # fractions of the image: clicks and a box, as an annotator's requests vary
    {"points": [[0.3, 0.4]], "labels": [1]},
    {"points": [[0.6, 0.5], [0.2, 0.2]], "labels": [1, 0], "multimask": False},
    {"box": [0.25, 0.25, 0.75, 0.75], "multimask": False},
]


def _scaled(prompt: dict, w: int, h: int) -> dict:
    out = dict(prompt)
    if "points" in prompt:
        out["points"] = [[x * w, y * h] for x, y in prompt["points"]]
    if "box" in prompt:
        x0, y0, x1, y1 = prompt["box"]
        out["box"] = [x0 * w, y0 * h, x1 * w, y1 * h]
    return out


def expected_results(model_dir, backend, device, image, prompts, clip, video_prompts, max_frames):
    """What the server must answer, from the library in this process: image masks per prompt, and per video
    client {frame: {obj_id: mask}} of its prompt and propagation."""
    from sam2_trt.runtime.image_predictor import SAM2ImagePredictor
    from sam2_trt.runtime.model import SAM2Model
    from sam2_trt.runtime.video.predictor import SAM2VideoPredictor

    model = SAM2Model.load(model_dir, backend=backend, device=device)
    predictor = SAM2ImagePredictor(model)
    predictor.set_image(image)
    images = []
    for p in prompts:
        masks, _, _ = predictor.predict(np.array(p["points"], np.float32) if "points" in p else None,
                                        np.array(p["labels"], np.int32) if "points" in p else None,
                                        box=np.array(p["box"], np.float32) if "box" in p else None,
                                        multimask_output=p.get("multimask", True))
        images.append(list(masks))
    video, videos = SAM2VideoPredictor(model), []
    for p in video_prompts:
        state = video.init_state(str(clip))
        frame, ids, logits = video.add_new_points_or_box(state, p["frame"], p["obj_id"], points=p["points"],
                                                         labels=p["labels"])
        found = {frame: {int(o): logits[k, 0] > 0 for k, o in enumerate(ids)}}
        for f, ids, logits in video.propagate_in_video(state, max_frame_num_to_track=max_frames):
            found[f] = {int(o): logits[k, 0] > 0 for k, o in enumerate(ids)}
        videos.append(found)
        state.close()
    return images, videos


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return None


def _get(port: int, token: str, path: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())


def start_server(model_dir, media: Path, backend: str, device: str, extra: list, log: Path):
    port, token = _free_port(), secrets.token_urlsafe(24)
    cmd = [sys.executable, "-m", "sam2_trt.cli", "serve", str(model_dir), "--port", str(port),
           "--media-root", str(media), "--backend", backend, "--device", device, "--max-queue", "256", *extra]
    # the token goes in the environment: not on the process list, and one of 64 tokens begins with "-", which
    # argparse would take for an option after a bare --token
    process = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                               env={**os.environ, "SAM2_TRT_TOKEN": token})
    for _ in range(1200):
        if process.poll() is not None:
            raise SystemExit(f"the server exited ({process.returncode}): {log.read_text()[-2000:]}")
        try:
            _get(port, token, "/api/health")
            return process, port, token
        except OSError:
            time.sleep(0.25)
    process.kill()
    raise SystemExit(f"the server did not start: {log.read_text()[-2000:]}")


def _percentiles(seconds: list) -> dict:
    if not seconds:
        return {"p50_ms": None, "p99_ms": None, "n": 0}
    ms = np.array(seconds) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "n": len(ms)}


def run_config(name, args, model_dir, media, image_png, prompts, video_prompts, expected, work: Path) -> dict:
    process, port, token = start_server(model_dir, media, args.backend, args.device, CONFIGS[name],
                                        work / f"server-{name}.log")
    try:
        # warm-up, not measured: one request of each kind opens every graph (ONNX Runtime plans on first use)
        warm = [image_client(port, token, image_png, prompts, expected[0], 0)] if args.image_clients else []
        warm += [video_client(port, token, "clip", video_prompts[0], expected[1][0], args.max_frames, 0)
                 ] if args.video_clients else []
        warm_errors = [e for t in warm for e in t.errors]
        rss_start = _rss_mb(process.pid)
        before = _get(port, token, "/api/stats")
        deadline = time.monotonic() + args.seconds
        jobs = [(image_client, (port, token, image_png, prompts, expected[0], deadline))
                for _ in range(args.image_clients)]
        jobs += [(video_client, (port, token, "clip", video_prompts[k], expected[1][k], args.max_frames, deadline))
                 for k in range(args.video_clients)]
        tallies = [None] * len(jobs)
        threads = [threading.Thread(target=lambda k=k: tallies.__setitem__(k, jobs[k][0](*jobs[k][1])))
                   for k in range(len(jobs))]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        after = _get(port, token, "/api/stats")
        rss_end = _rss_mb(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(120)
    images, videos = tallies[:args.image_clients], tallies[args.image_clients:]
    calls = {g: after["graph_calls"].get(g, 0) - before["graph_calls"].get(g, 0) for g in after["graph_calls"]}
    frames = sum(len(t.latencies) for t in videos)
    work_frames = frames - sum(len(t.propagations) for t in videos)  # each propagation starts on its prompted frame
    sizes = {k: v - before["scheduler"]["step_sizes"].get(k, 0) for k, v in after["scheduler"]["step_sizes"].items()}
    errors = warm_errors + [e for t in tallies for e in t.errors]
    return {
        "batching": name, "server_args": CONFIGS[name], "seconds": elapsed,
        "image_clients": args.image_clients, "video_clients": args.video_clients,
        "predicts": sum(len(t.latencies) for t in images),
        "predicts_per_s": sum(len(t.latencies) for t in images) / elapsed,
        "predict_latency": _percentiles([x for t in images for x in t.latencies]),
        "propagations": sum(len(t.propagations) for t in videos), "frames": frames, "frames_per_s": frames / elapsed,
        "frame_latency": _percentiles([x for t in videos for x in t.latencies]),
        "propagation_latency": _percentiles([x for t in videos for x in t.propagations]),
        "graph_calls": calls, "tracked_frames": work_frames,
        "memory_attention_calls_per_frame": calls.get("memory_attention", 0) / work_frames if work_frames else None,
        "step_sizes": sizes, "checked": sum(t.checked for t in tallies), "errors": len(errors),
        "error_examples": errors[:5], "rss_start_mb": rss_start, "rss_end_mb": rss_end,
    }


def run(args) -> int:
    """`sam2-trt bench serve` (args: its options in sam2_trt.cli.bench)."""
    from PIL import Image

    from sam2_trt.benchmarks.models import random_model

    if args.device is None:
        args.device = "cuda" if describe().get("gpu") else "cpu"
    if args.model_dir is not None:
        model_dir, weights = args.model_dir, str(args.model_dir)
    else:
        bench = random_model("sam2.1_hiera_t", args.image_size)
        model_dir, weights = bench.model_dir, bench.weights
    h, w = args.frame_size
    with tempfile.TemporaryDirectory(prefix="sam2-trt-bench-serve-") as tmp:
        work = Path(tmp)
        media = work / "media"
        scene = MovingScene(h, w, max(1, args.video_clients))
        clip = write_clip(media / "clip", args.max_frames + 1, h, w, max(1, args.video_clients))
        image = scene.frame(0)
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        prompts = [_scaled(p, w, h) for p in IMAGE_PROMPTS]
        video_prompts = [{"frame": 0, "obj_id": k, "points": pts.tolist(), "labels": lab.tolist()}
                         for k, pts, lab in clicks(scene, max(1, args.video_clients))][: args.video_clients]
        print(f"computing the expected masks with the library ({len(prompts)} image prompts, "
              f"{len(video_prompts)} videos of {args.max_frames + 1} frames) ...", file=sys.stderr, flush=True)
        expected = expected_results(model_dir, args.backend, args.device, image, prompts, clip, video_prompts,
                                    args.max_frames)
        runs = []
        for name in args.batching:
            print(f"batching {name}: {args.image_clients} image and {args.video_clients} video clients for "
                  f"{args.seconds} s ...", file=sys.stderr, flush=True)
            runs.append(run_config(name, args, model_dir, media, buf.getvalue(), prompts, video_prompts, expected,
                                   work))
    env = describe()
    from sam2_trt.core.metadata import load_metadata

    meta = load_metadata(model_dir)
    result = {"benchmark": "serve", "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine_label(env),
              "environment": env, "model": {"name": meta.model_name, "image_size": meta.image_size,
                                            "weights": weights, "backend": args.backend, "device": args.device},
              "settings": {"seconds": args.seconds, "max_frames": args.max_frames, "frame_size": f"{w}x{h}",
                           "image_clients": args.image_clients, "video_clients": args.video_clients},
              "runs": runs, "summary": summary(runs)}
    path = write_result(args.results, "serve", result["machine"], result)
    print("\n".join(result["summary"]))
    print(f"results: {path}")
    return 1 if any(r["errors"] for r in runs) else 0


def summary(runs: list) -> list:
    lines = []
    for r in runs:
        lines.append(f"batching {r['batching']}: {r['predicts_per_s']:.2f} predicts/s "
                     f"(p50 {r['predict_latency']['p50_ms'] or 0:.0f} ms), {r['frames_per_s']:.2f} tracked frames/s "
                     f"(p50 {r['frame_latency']['p50_ms'] or 0:.0f} ms between frames), "
                     f"{r['memory_attention_calls_per_frame'] or 0:.2f} memory-attention calls per tracked frame, "
                     f"{r['checked']} results checked, {r['errors']} errors, server RSS {r['rss_start_mb']:.0f} -> "
                     f"{r['rss_end_mb']:.0f} MB")
    by = {r["batching"]: r for r in runs}
    if "on" in by and "off" in by and by["off"]["frames_per_s"]:
        lines.append(f"batching on / off: {by['on']['frames_per_s'] / by['off']['frames_per_s']:.2f}x tracked "
                     f"frames per second")
    return lines
