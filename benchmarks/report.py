"""The README's result tables, generated from the JSON files under benchmarks/results/ and nothing else.

    sam2-trt bench report            print every table
    sam2-trt bench report --write    rewrite the tables in README.md (between <!-- results:NAME --> markers)
    sam2-trt bench report --check    exit 1 if README.md's tables differ from the results files

Both paths are relative to the current directory unless given (--results DIR, --readme PATH): run it in the root
of a source checkout to regenerate that checkout's README.

Every row says where it was measured (the machine and date of its file); the library versions of each file are
listed under its table. A results file that a benchmark script did not write has no place here.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from sam2_trt.benchmarks.results_file import DEFAULT_RESULTS

SECTIONS = ("video", "image", "video_memory", "precision", "int8", "many", "serve")


def load(results: Path = DEFAULT_RESULTS) -> dict:
    """{benchmark: [result, ...]} of every results file, oldest file first."""
    out = {}
    for path in sorted(results.glob("*.json")):
        data = json.loads(path.read_text())
        data["_file"] = path.name
        out.setdefault(data["benchmark"], []).append(data)
    return out


def _where(result: dict) -> str:
    return f"{result.get('machine') or result['environment'].get('cpu')}, {result['date'][:10]}"


def _versions(result: dict) -> str:
    env = result["environment"]
    names = [("onnxruntime", "ONNX Runtime"), ("onnxruntime-gpu", "ONNX Runtime GPU"), ("tensorrt", "TensorRT"),
             ("torch", "torch"), ("sam2", "official sam2"), ("ray", "Ray")]
    libs = ", ".join(f"{label} {env[key]}" for key, label in names if env.get(key))
    simd = f" CPU extensions: {', '.join(env['cpu_simd'])}." if env.get("cpu_simd") else ""
    return f"`{result['_file']}`: {_where(result)}; Python {env['python']}, {libs}.{simd}"


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def video_table(results: list) -> str:
    lines = ["| model | input px | objects | side | FPS | x official | time x one object | measured on |",
             "|---|---|---|---|---|---|---|---|"]
    for res in results:
        for r in res["rows"]:
            if "error" in r:
                continue
            speed = f"{r['speedup']:.2f} (vs {r['speedup_vs'].removeprefix('official ')})" if "speedup" in r else "-"
            lines.append(f"| {r['model']} | {r['image_size']} | {r['objects']} | {r['label']} | {r['fps']:.3f} | "
                         f"{speed} | {_fmt(r.get('time_vs_one_object'), '.2f')} | {_where(res)} |")
    notes = [f"- {_versions(res)} {res['settings']['frames']} frames of {res['settings']['frame_size']}, "
             f"median of {res['settings']['reps']} passes after a {res['settings']['warmup_frames']}-frame warm-up."
             + _load(res) + (f" {res['note']}" if res.get("note") else "") for res in results]
    return "\n".join(lines + [""] + notes)


CALL_NAMES = {"encoder": "set_image", "predict": "predict"}  # the image benchmark's names -> the API's


def image_table(results: list) -> str:
    lines = ["| model | input px | side | set_image ms | predict ms | automatic masks s | masks kept | x official "
             "(set_image / predict / automatic) | x fastest peer (set_image / predict) | measured on |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for res in results:
        for r in res["rows"]:
            if "error" in r:
                notes.append(f"- {r['label']} not measured in `{res['_file']}`: {r['error']}")
                continue
            sp, amg = r.get("speedup"), r.get("amg")
            ratio = "-" if not sp else " / ".join(_fmt(sp.get(k), ".2f") for k in ("encoder", "predict", "amg"))
            peer = r.get("vs_fastest_peer")
            vs_peer = "-" if not peer else " / ".join(f"{peer[k]['ratio']:.2f}" for k in ("encoder", "predict"))
            lines.append(f"| {r['model']} | {r['image_size']} | {r['label']} | {r['encoder']['median_ms']:.1f} | "
                         f"{r['predict']['median_ms']:.2f} | {_fmt(amg and amg['median_ms'] / 1000, '.2f')} | "
                         f"{'-' if not amg else amg['masks']} | {ratio} | {vs_peer} | {_where(res)} |")
    for res in results:
        st = res["settings"]
        how = (f" Interleaved: every side loaded once in its own process, then each round times every side once "
               f"(medians of {st['reps']['encoder']} set_image / {st['reps']['predict']} predict rounds); "
               f"{st['threads']} ONNX Runtime and torch threads, {st['onnxruntime_graph_optimization']};"
               + _load_span(res) if st.get("interleaved") else "")
        notes.append(f"- {_versions(res)} A {st['image_size_px']} image; automatic masks with "
                     f"points_per_side={st['points_per_side']} and the official thresholds (with random weights few "
                     f"or no masks pass them, so the time is mostly the grid's decoder calls).{how}")
        for r in res["rows"]:
            pairs = [(call, r.get("vs_fastest_peer", {}).get(key, {})) for key, call in CALL_NAMES.items()]
            if any("paired_ratio" in p for _, p in pairs):
                notes.append(f"- {r['label']} against the fastest peer round by round (the median of the per-round "
                             "ratios; rounds in which ours was at least as fast): " + "; ".join(
                                 f"{call} {p['paired_ratio']:.2f} against {p['peer']}, {p['rounds_ahead']} of "
                                 f"{p['rounds']}" for call, p in pairs if "paired_ratio" in p) + ".")
        for case, pairs in res.get("mask_agreement", {}).items():
            notes.append(f"- Mask IoU of the click ({case}, min over the masks): "
                         + "; ".join(f"{pair} {min(v):.4f}" for pair, v in pairs.items()) + ".")
    return "\n".join(lines + [""] + notes)


def memory_table(results: list) -> str:
    lines = ["| side | frames | peak RSS MB | peak GPU MB | measured on |", "|---|---|---|---|---|"]
    notes = []
    for res in results:
        for r in res["runs"]:
            if "error" in r:
                continue
            side = r["backend"] if r["side"] == "official" else f"ours ({r['backend']})"  # "official (fp32)"
            lines.append(f"| {side} | {r['frames']} | {r['peak_rss_mb']:.0f} | "
                         f"{_fmt(r.get('peak_gpu_mb'), '.0f')} | {_where(res)} |")
        ratios = "; ".join(f"{side} {ratio:.3f}" for side, ratio in res["peak_ratio"].items())
        m = res["model"]
        notes.append(f"- {_versions(res)} {m['name']} at {m['image_size']} px, {res['objects']} object(s), "
                     f"{res['frame_size']} frames. Peak RSS, longest / shortest video: {ratios} "
                     f"(target: {res['target']}: {'met' if res['target_met'] else 'missed'}).")
    return "\n".join(lines + [""] + notes)


def precision_table(results: list) -> str:
    from sam2_trt.benchmarks.precision import markdown

    return "\n\n".join(markdown(res) for res in results)


def serve_table(results: list) -> str:
    lines = ["| batching | image / video clients | predicts/s | predict p50 / p99 ms | tracked frames/s | "
             "between frames p50 / p99 ms | memory-attention calls per tracked frame | results checked | errors | "
             "server RSS start / end MB | measured on |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for res in results:
        for r in res["runs"]:
            p, f = r["predict_latency"], r["frame_latency"]
            lines.append(f"| {r['batching']} | {r['image_clients']} / {r['video_clients']} | "
                         f"{r['predicts_per_s']:.2f} | {_fmt(p['p50_ms'], '.0f')} / {_fmt(p['p99_ms'], '.0f')} | "
                         f"{r['frames_per_s']:.2f} | {_fmt(f['p50_ms'], '.0f')} / {_fmt(f['p99_ms'], '.0f')} | "
                         f"{_fmt(r['memory_attention_calls_per_frame'], '.2f')} | {r['checked']} | {r['errors']} | "
                         f"{_fmt(r['rss_start_mb'], '.0f')} / {_fmt(r['rss_end_mb'], '.0f')} | {_where(res)} |")
        m, st = res["model"], res["settings"]
        ratio = " ".join(line for line in res["summary"] if line.startswith("batching on /"))
        notes.append(f"- {_versions(res)} {m['name']} at {m['image_size']} px ({m['weights']}, {m['backend']} on "
                     f"{m['device']}); {st['seconds']} s per setting, propagations of {st['max_frames']} frames of "
                     f"{st['frame_size']}. {ratio}")
    return "\n".join(lines + [""] + notes)


def _load_span(res: dict) -> str:
    """The load average when the run started (results files since it was recorded) and when it ended."""
    env = res["environment"]
    before = env.get("load_average_before")
    start = f" {before[0]} when it started," if before else ""
    return f" load average{start} {env['load_average'][0]} when it ended."


def _load(res: dict) -> str:
    """The machine's load when the run ended: on a shared machine, compare a run's ratios, not its FPS."""
    load = res["environment"].get("load_average")
    return f" Load average {load[0]:.1f} when it ended." if load else ""


def many_table(results: list) -> str:
    lines = ["| model | input px | videos x frames | objects | mode | workers | videos/min | x local | "
             "cluster start s | measured on |", "|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for res in results:
        m, s = res["model"], res["settings"]
        for r in res["rows"]:
            if "error" in r:
                continue
            lines.append(f"| {m['name']} | {m['image_size']} | {s['videos']} x {s['frames']} | {s['objects']} | "
                         f"{r['mode']} ({r['backend']}) | {r['workers']} | {r['videos_per_minute']:.2f} | "
                         f"{_fmt(r.get('speedup'), '.2f')} | {_fmt(r['cluster_start_s'], '.1f')} | {_where(res)} |")
        load = res["environment"].get("load_average")
        notes.append(f"- {_versions(res)} Frames of {s['frame_size']}; load average {load[0]:.1f} when it ended "
                     f"(other work on the machine)." if load else f"- {_versions(res)} Frames of {s['frame_size']}.")
    return "\n".join(lines + [""] + notes)


def int8_table(results: list) -> str:
    from sam2_trt.benchmarks.int8 import markdown

    return "\n\n".join(markdown(res) for res in results)


RENDER = {"video": video_table, "image": image_table, "video_memory": memory_table, "precision": precision_table,
          "int8": int8_table, "many": many_table, "serve": serve_table}


def tables(results: Path = DEFAULT_RESULTS) -> dict:
    found = load(results)
    return {name: RENDER[name](found[name]) for name in SECTIONS if name in found}


def rewrite(readme: str, generated: dict) -> str:
    """README text with each <!-- results:NAME --> ... <!-- /results:NAME --> block replaced by its table."""
    for name, table in generated.items():
        pattern = re.compile(rf"(<!-- results:{name} -->\n).*?(<!-- /results:{name} -->)", re.S)
        if not pattern.search(readme):
            raise SystemExit(f"README.md has no <!-- results:{name} --> ... <!-- /results:{name} --> block for the "
                             f"{name} results; add one where the table belongs")
        readme = pattern.sub(lambda m: m[1] + table + "\n" + m[2], readme)
    return readme


def run(args) -> int:
    """`sam2-trt bench report` (args: its options, sam2_trt.cli.bench): print the tables of args.results, or
    with args.write / args.check rewrite / compare the ones in args.readme. Returns the exit code."""
    generated = tables(args.results)
    if not args.write and not args.check:
        for name, table in generated.items():
            print(f"## {name}\n\n{table}\n")
        return 0
    if not args.readme.is_file():
        raise ValueError(f"--readme {args.readme}: no such file (run this in the root of a source checkout, or "
                         f"pass the README to rewrite)")
    current = args.readme.read_text()
    updated = rewrite(current, generated)
    if args.check:
        if updated != current:
            print(f"{args.readme}'s result tables differ from {args.results}/*.json: run `sam2-trt bench report "
                  f"--write`", file=sys.stderr)
            return 1
        return 0
    args.readme.write_text(updated)
    print(f"rewrote {', '.join(generated)} in {args.readme}")
    return 0
