"""The benchmarks (`sam2-trt bench NAME`) run end to end on the CPU, measure both sides, write their results
where they are run, and the README's tables are theirs.

Small on purpose (512 px, a few frames, one repetition): these check that each benchmark measures the official
predictor and ours on the same weights and writes a complete results file, not how fast anything is (speed
targets live in the benchmarks' output, not in tests).
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, run_cli


def run_bench(name: str, *args, cache, cwd=REPO):
    """`sam2-trt bench NAME ARGS` in `cwd` (the checkout's root: the official side's CPU stand-ins are in tests/)."""
    env = {**os.environ, "SAM2_TRT_CACHE": str(cache)}  # the clip cache: keep the user's cache untouched
    return subprocess.run([sys.executable, "-m", "sam2_trt.cli", "bench", name, *map(str, args)],
                          capture_output=True, text=True, timeout=1200, cwd=cwd, env=env)


def files_under(folder) -> set:
    return {p for p in folder.rglob("*") if "__pycache__" not in p.parts}


def only_result(out_dir, benchmark: str) -> dict:
    (path,) = out_dir.glob(f"{benchmark}-*.json")
    return json.loads(path.read_text())


def test_video_benchmark_measures_official_and_ours(tiny512_dir, tiny_checkpoint, tmp_path):
    proc = run_bench("video", "--checkpoint", tiny_checkpoint, "--model-dir", tiny512_dir, "--device", "cpu",
                     "--frames", 3, "--reps", 1, "--warmup-frames", 1, "--frame-size", "320x240",
                     "--results", tmp_path / "out", cache=tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = only_result(tmp_path / "out", "video")
    rows = {r["label"]: r for r in result["rows"]}
    assert set(rows) == {"official fp32", "ours onnxruntime-cpu"}
    for r in rows.values():
        assert r["image_size"] == 512 and r["objects"] == 1
        assert [p["frames"] for p in r["passes"]] == [3]  # every frame was tracked and its masks fetched
        assert r["fps"] == pytest.approx(3 / r["passes"][0]["seconds"])
    ours, theirs = rows["ours onnxruntime-cpu"], rows["official fp32"]
    assert ours["speedup"] == pytest.approx(ours["fps"] / theirs["fps"]) and ours["speedup_vs"] == "official fp32"
    assert result["environment"]["cpu"] and result["environment"]["onnxruntime"]
    assert result["models"][0]["weights"] == tiny_checkpoint.name
    assert any("x official fp32" in line for line in result["summary"])


def test_image_benchmark_measures_official_and_ours(tiny512_dir, tiny_checkpoint, tmp_path):
    proc = run_bench("image", "--checkpoint", tiny_checkpoint, "--model-dir", tiny512_dir, "--device", "cpu",
                     "--points-per-side", 2, "--image-px", "320x240", "--results", tmp_path / "out",
                     cache=tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = only_result(tmp_path / "out", "image")
    rows = {r["label"]: r for r in result["rows"]}
    measured = {label for label, r in rows.items() if "error" not in r}
    assert measured == {"official fp32", "ours onnxruntime-cpu"}
    # the peers export only at their config's 1024 px, and int8 needs an int8 export of the user's checkpoint:
    # each is a row with its reason, not a silent gap
    skipped = {label: r["error"] for label, r in rows.items() if "error" in r}
    assert set(skipped) == {"peer sam2-onnx 0.3.12", "peer samexporter 0.5.0", "ours onnxruntime-cpu int8"}
    assert all("1024" in why for label, why in skipped.items() if label.startswith("peer")), skipped
    for label in measured:
        r = rows[label]
        for what in ("encoder", "predict", "amg"):
            assert r[what]["median_ms"] > 0 and r[what]["reps"] >= 1
        assert len(r["encoder"]["times_ms"]) == r["encoder"]["reps"]  # every interleaved round, kept
    ours, theirs = rows["ours onnxruntime-cpu"], rows["official fp32"]
    assert ours["speedup"]["encoder"] == pytest.approx(theirs["encoder"]["median_ms"] / ours["encoder"]["median_ms"])
    assert ours["backend"] == "onnxruntime-cpu"
    (ious,) = result["mask_agreement"].values()  # the same click's masks on both sides
    assert min(ious["official fp32 vs ours onnxruntime-cpu"]) >= 0.99
    assert result["settings"]["interleaved"] and result["settings"]["threads"] >= 1
    env = result["environment"]  # the load when the run started, and (describe()'s own) when it ended
    assert len(env["load_average_before"]) == 3 and len(env["load_average"]) == 3


def test_memory_benchmark_measures_both_sides_at_each_length(tiny512_dir, tiny_checkpoint, tmp_path):
    proc = run_bench("memory", "--checkpoint", tiny_checkpoint, "--model-dir", tiny512_dir, "--device", "cpu",
                     "--backend", "onnxruntime-cpu", "--frames", 2, 4, "--frame-size", "320x240",
                     "--results", tmp_path / "out", cache=tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = only_result(tmp_path / "out", "video_memory")
    runs = [(r["side"], r["frames"]) for r in result["runs"]]
    assert runs == [("official", 2), ("official", 4), ("ours", 2), ("ours", 4)]
    for r in result["runs"]:
        assert r["peak_rss_mb"] > 100 and r["vm_hwm_mb"] > 100  # the model is in there
    ours = [r for r in result["runs"] if r["side"] == "ours"]
    assert result["peak_ratio"]["ours"] == pytest.approx(ours[1]["peak_rss_mb"] / ours[0]["peak_rss_mb"])
    assert result["target_met"] == (result["peak_ratio"]["ours"] <= 1.10)


def test_many_benchmark_measures_the_local_and_the_ray_job(tiny512_dir, tiny_checkpoint, tmp_path):
    proc = run_bench("many", "--checkpoint", tiny_checkpoint, "--model-dir", tiny512_dir, "--device", "cpu",
                     "--backend", "onnxruntime-cpu", "--videos", 2, "--frames", 2, "--objects", 1,
                     "--results", tmp_path / "out", cache=tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = only_result(tmp_path / "out", "many")
    local, on_ray = result["rows"]
    assert (local["mode"], local["workers"], on_ray["mode"], on_ray["workers"]) == ("local", 1, "ray", 2)
    for r in (local, on_ray):
        assert r["videos"] == 2 and r["failed"] == 0 and r["backend"] == "onnxruntime-cpu"
        assert r["videos_per_minute"] == pytest.approx(60 * 2 / r["seconds"])
    assert on_ray["speedup"] == pytest.approx(on_ray["videos_per_minute"] / local["videos_per_minute"])
    assert on_ray["cluster_start_s"] > 0 and local["cluster_start_s"] is None
    assert all(v["worker"].startswith("ray-worker-") for v in on_ray["per_video"])
    assert [v["worker"] for v in local["per_video"]] == ["local", "local"]


def test_a_model_dir_from_other_weights_is_refused(tiny512_dir, checkpoint_factory, tmp_path):
    other = checkpoint_factory("sam2.1_hiera_t", seed=1)
    proc = run_bench("video", "--checkpoint", other, "--model-dir", tiny512_dir, "--device", "cpu",
                     "--results", tmp_path / "out", cache=tmp_path / "cache")
    assert proc.returncode != 0
    assert "was exported from checkpoint sha256" in proc.stderr and str(other) in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_benchmark_writes_its_results_where_it_runs_not_next_to_the_code(tiny512_dir, tiny_checkpoint, tmp_path):
    work = tmp_path / "work"  # outside the checkout
    work.mkdir()
    before = files_under(REPO / "benchmarks")
    proc = run_bench("memory", "--checkpoint", tiny_checkpoint, "--model-dir", tiny512_dir, "--device", "cpu",
                     "--backend", "onnxruntime-cpu", "--no-official", "--frames", 1, "--frame-size", "64x48",
                     cache=tmp_path / "cache", cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = only_result(work / "benchmarks" / "results", "video_memory")
    assert [(r["side"], r["frames"]) for r in result["runs"]] == [("ours", 1)]
    assert files_under(REPO / "benchmarks") == before


def test_readme_tables_are_generated_from_the_results_files():
    proc = run_cli("bench", "report", "--check", timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_report_rewrites_only_its_blocks_and_names_a_missing_one():
    from sam2_trt.benchmarks.report import rewrite

    readme = "intro\n<!-- results:video -->\nold table\n<!-- /results:video -->\noutro\n"
    assert rewrite(readme, {"video": "| new |"}) == ("intro\n<!-- results:video -->\n| new |\n"
                                                     "<!-- /results:video -->\noutro\n")
    with pytest.raises(SystemExit, match="results:image"):
        rewrite(readme, {"image": "| x |"})


def test_bench_command_lists_and_runs_the_scripts():
    listing = run_cli("bench", "--help", timeout=120)
    assert listing.returncode == 0
    for name in ("video", "image", "memory", "precision", "kernels", "many", "report"):
        assert name in listing.stdout
    options = run_cli("bench", "video", "--help", timeout=120)
    assert options.returncode == 0 and "--frame-size" in options.stdout and "--results" in options.stdout
    report = run_cli("bench", "report", timeout=120)
    assert report.returncode == 0, report.stderr
    assert "| model | input px | objects |" in report.stdout


def test_a_peer_wheel_for_python_3_12_is_made_importable_here(tmp_path):
    """sam2-onnx declares Python >= 3.12 for its `type X = ...` aliases only: they become assignments."""
    from sam2_trt.benchmarks.peers import _rewrite_type_aliases

    (tmp_path / "types.py").write_text("type Float = float | None\nx: Float = type(1)\n")
    _rewrite_type_aliases(tmp_path)
    namespace = {}
    exec((tmp_path / "types.py").read_text(), namespace)  # noqa: S102 (the file written above)
    assert namespace["Float"] == (float | None) and namespace["x"] is int


def test_mask_agreement_pairs_a_best_mask_side_with_the_others_best(tmp_path):
    """Multimask sides compare mask by mask; a side with only its best mask (samexporter) is compared with the
    other side's best by its predicted IoU, and a side whose IoUs do not match its masks is refused."""
    import numpy as np

    from sam2_trt.benchmarks.image import _save_masks, mask_agreement

    masks = np.zeros((3, 8, 8), bool)
    masks[0, :2], masks[1, :4], masks[2, :6] = True, True, True
    saved = {"official": _save_masks(str(tmp_path / "a.npz"), masks, np.array([0.1, 0.9, 0.2])),
             "peer": _save_masks(str(tmp_path / "b.npz"), masks, np.array([0.3, 0.3, 0.8])),
             "best only": _save_masks(str(tmp_path / "c.npz"), masks[1:2], None)}
    got = mask_agreement(saved)
    assert got == {"official vs peer": [1.0, 1.0, 1.0], "official vs best only": [1.0],
                   "peer vs best only": [4 / 6]}
    saved["peer"] = _save_masks(str(tmp_path / "b.npz"), masks, None)
    with pytest.raises(ValueError, match="peer: 3 masks but 0 predicted IoUs"):
        mask_agreement(saved)


def test_ours_is_compared_with_the_fastest_peer_round_by_round():
    """The ratio of medians, and the same interleaved rounds paired: their per-round ratios' median and the
    rounds ours won; rounds that do not pair up (a side missed one) give no paired figures; the README's note
    reports them."""
    from sam2_trt.benchmarks.image import _ratios
    from sam2_trt.benchmarks.report import image_table

    def side(label, kind, encoder, predict):
        return {"label": label, "side": kind, "model": "m", "image_size": 1024,
                **{k: {"median_ms": sorted(t)[len(t) // 2], "times_ms": t} for k, t in
                   (("encoder", encoder), ("predict", predict))}}

    ours = side("ours", "ours", [100, 90, 120], [10, 10, 10])
    slow_peer = side("peer slow", "peer", [200, 200, 200], [9, 9, 9])
    fast_peer = side("peer fast", "peer", [95, 100, 110], [8, 12])  # missed a predict round
    rows = [ours, slow_peer, fast_peer]
    _ratios(rows)
    enc, pred = ours["vs_fastest_peer"]["encoder"], ours["vs_fastest_peer"]["predict"]
    assert enc["peer"] == "peer fast" and enc["ratio"] == pytest.approx(100 / 100)
    assert enc["paired_ratio"] == pytest.approx(95 / 100)  # the rounds' ratios: 0.95, 1.11, 0.92
    assert (enc["rounds_ahead"], enc["rounds"]) == (1, 3)
    assert pred["peer"] == "peer slow" and pred["ratio"] == pytest.approx(9 / 10)
    assert pred["paired_ratio"] == pytest.approx(0.9) and pred["rounds_ahead"] == 0
    fast_peer["predict"]["median_ms"] = 1  # now the fastest on predict, with rounds that do not pair
    _ratios(rows)
    assert "paired_ratio" not in ours["vs_fastest_peer"]["predict"]
    result = {"_file": "f.json", "rows": rows, "date": "2026-12-03", "machine": "m", "environment": {"python": "3.11"},
              "settings": {"image_size_px": "1280x720", "points_per_side": 16}}
    table = image_table([result])
    assert "ours against the fastest peer round by round" in table and "set_image 0.95 against peer fast, 1 of 3" \
        in table


def test_a_result_names_the_cpus_vector_extensions():
    """Machines with one label ("AMD EPYC (2 cores)") can differ in AVX-512, VNNI or bf16: the environment lists
    the ones /proc/cpuinfo reports, and the README's note names them."""
    from sam2_trt.benchmarks.environment import _SIMD_FLAGS, describe
    from sam2_trt.benchmarks.report import _versions

    flags = next(line.split(":", 1)[1].split() for line in open("/proc/cpuinfo") if line.startswith("flags"))
    env = describe()
    assert env["cpu_simd"] == [f for f in _SIMD_FLAGS if f in flags]
    note = _versions({"_file": "x.json", "date": "2026-12-03", "machine": "m", "environment": env})
    if env["cpu_simd"]:
        assert "CPU extensions: " + ", ".join(env["cpu_simd"]) + "." in note
    else:
        assert "CPU extensions" not in note
