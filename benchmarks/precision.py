"""How far reduced precision moves each graph's outputs, with and without the precision policy's fp32 islands.

    sam2-trt bench precision [--model DIR] [--image-size 512] [--precisions fp16 bf16] [--seed 0] [--results DIR]
    sam2-trt bench precision --markdown JSON     # the README table of a results file

For every graph and validation case (seeded inputs covering the dynamic sizes, as the export's validation),
the fp32 ONNX graph runs in ONNX Runtime on the CPU and is compared with:
  * "simulated": the policy's rewrite (engines/lower_precision.py) with every reduced-precision tensor rounded
    through fp16/bf16 while computing in fp32 (the rounding points of a strongly typed TensorRT engine);
  * "fp16 graph": the real fp16 rewrite, run by ONNX Runtime's CPU kernels (fp16 only);
  * the same two for the unconstrained rewrite (no islands), which is what the islands are measured against.
The error is max |ours - fp32| / max |fp32| per output; the table shows the worst case over validation cases,
next to the tolerance the policy records. TensorRT's kernels are not run here: on a GPU, `sam2-trt check`
measures the engines themselves. Random weights (the default model) do not reproduce a trained model's
activation range (the fp16 LayerNorm overflow needs it), so this measures rounding, not overflow.

Results: a table on stdout and <--results>/precision-<host>-<date>.json (default ./benchmarks/results).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from sam2_trt.benchmarks.results_file import write_result



def _run(model, inputs: dict) -> dict:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in model.graph.output]
    return dict(zip(names, session.run(names, inputs)))


def measure(model_dir: Path, precisions, seed: int = 0) -> list:
    import onnx

    from sam2_trt.engines.lower_precision import lower_precision, lowered_node_names
    from sam2_trt.engines.precision import policy_for, unconstrained_policy
    from sam2_trt.core.graph_check import sample_inputs
    from sam2_trt.core.metadata import load_metadata
    from sam2_trt.core.specs import GRAPHS

    meta = load_metadata(model_dir)
    rows = []
    for graph, spec in GRAPHS.items():
        src = onnx.load(str(meta.graph_path(graph)))
        for precision in precisions:
            policies = {"policy": policy_for(precision), "no islands": unconstrained_policy(precision)}
            for label, policy in policies.items():
                variants = {"simulated": lower_precision(src, policy, simulate=True)}
                if precision == "fp16":
                    variants["fp16 graph"] = lower_precision(src, policy)
                lowered = len(lowered_node_names(src, policy))
                for mode, model in variants.items():
                    worst = {o: 0.0 for o in spec.output_names}
                    for k, case in enumerate(spec.validation_cases):
                        inputs = sample_inputs(spec, meta.image_size, case, seed + k)
                        ref, out = _run(src, inputs), _run(model, inputs)
                        for o in spec.output_names:
                            r = ref[o].astype(np.float64)
                            err = float(np.abs(out[o] - r).max() / max(np.abs(r).max(), 1e-30))
                            worst[o] = max(worst[o], err if np.isfinite(out[o]).all() else float("inf"))
                    for o, err in worst.items():
                        tol = policy_for(precision).tolerance(graph, o)
                        rows.append({"graph": graph, "output": o, "precision": precision, "rewrite": label,
                                     "mode": mode, "lowered_nodes": lowered, "nodes": len(src.graph.node),
                                     "max_rel_err": err, "tolerance_rtol": tol.rtol,
                                     "within_tolerance": err <= tol.rtol})
                    print(f"{graph:17} {precision} {label:10} {mode:10} "
                          + " ".join(f"{o}={e:.1e}" for o, e in worst.items()), flush=True)
    return rows


def _policy_rows(rows: list):
    """(row with the policy, max_rel_err of the same output without islands) per output, precision and mode."""
    keyed = {(r["graph"], r["output"], r["precision"], r["mode"], r["rewrite"]): r for r in rows}
    for (g, o, p, mode, rewrite), r in keyed.items():
        if rewrite == "policy":
            yield r, keyed[(g, o, p, mode, "no islands")]["max_rel_err"]


def table(rows: list) -> str:
    lines = [f"{'output':40} {'prec':5} {'mode':10} {'policy':>9} {'no islands':>10} {'tolerance':>9}"]
    for r, free in _policy_rows(rows):
        lines.append(f"{r['graph'] + '.' + r['output']:40} {r['precision']:5} {r['mode']:10} {r['max_rel_err']:9.1e} "
                     f"{free:10.1e} {r['tolerance_rtol']:9.1e}")
    return "\n".join(lines)


def markdown(result: dict) -> str:
    """The README's table from a results file: worst relative error per output, policy vs no islands."""
    env = result["environment"]
    lines = [f"Measured by `sam2-trt bench precision` on {result['model']} at {result['image_size']} px "
             f"(random weights) with ONNX Runtime {env['onnxruntime']} on {env['cpu']}; max |error| / max |fp32| "
             f"over the validation cases.", "",
             "| output | precision | how | policy | no fp32 islands | recorded tolerance |", "|---|---|---|---|---|---|"]
    for r, free in _policy_rows(result["rows"]):
        lines.append(f"| {r['graph']}.{r['output']} | {r['precision']} | {r['mode']} | {r['max_rel_err']:.1e} | "
                     f"{free:.1e} | {r['tolerance_rtol']:.0e} |")
    return "\n".join(lines)


def run(args) -> int:
    """`sam2-trt bench precision` (args: its options, sam2_trt.cli.bench): measure every graph, print the table and
    write the results file under args.results; with args.markdown, only print that file's README table."""
    if args.markdown is not None:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    from sam2_trt.benchmarks.environment import describe
    from sam2_trt.benchmarks.models import random_model
    from sam2_trt.core.metadata import load_metadata

    model_dir = args.model if args.model is not None else random_model("sam2.1_hiera_t", args.image_size).model_dir
    meta = load_metadata(model_dir)
    start = time.time()
    rows = measure(model_dir, args.precisions, args.seed)
    print(table(rows))
    env = describe(backend="onnxruntime-cpu")
    result = {"benchmark": "precision", "model": meta.model_name, "image_size": meta.image_size,
              "checkpoint": meta.raw.get("checkpoint"),
              "seed": args.seed, "seconds": time.time() - start, "environment": env, "rows": rows}
    path = write_result(args.results, "precision", env["host"], result)
    print(f"wrote {path}")
    return 0

