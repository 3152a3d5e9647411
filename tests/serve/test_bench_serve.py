"""`sam2-trt bench serve` end to end, small: both batching settings measured, every result checked, no errors,
and batching shows in the graph calls (speed itself is the benchmark's business, not a test's)."""

import json

from tests.conftest import run_cli


def test_bench_serve_measures_both_settings_and_checks_every_result(tiny256_dir, tmp_path):
    proc = run_cli("bench", "serve", "--model-dir", tiny256_dir, "--backend", "onnxruntime-cpu", "--device", "cpu",
                   "--seconds", 3, "--image-clients", 1, "--video-clients", 2, "--max-frames", 2,
                   "--frame-size", "320x240", "--results", tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    (path,) = tmp_path.glob("serve-*.json")
    result = json.loads(path.read_text())
    runs = {r["batching"]: r for r in result["runs"]}
    assert set(runs) == {"on", "off"}
    for r in runs.values():
        assert r["errors"] == 0 and r["checked"] >= r["predicts"] + r["frames"] > 0
        assert r["predict_latency"]["n"] == r["predicts"] and r["frame_latency"]["p50_ms"] > 0
        assert r["rss_start_mb"] > 50 and r["rss_end_mb"] > 50
    assert runs["off"]["memory_attention_calls_per_frame"] == 1.0  # one session per step
    assert runs["on"]["memory_attention_calls_per_frame"] < 1.0  # the two videos shared steps
    assert max(int(k) for k, v in runs["on"]["step_sizes"].items() if v) == 2
    assert any(line.startswith("batching on / off:") for line in result["summary"])
