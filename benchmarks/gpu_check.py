"""One command that verifies a GPU machine: everything the GPU path has, run once, in under 8 minutes.

    sam2-trt bench gpu-check [--results DIR] [--only STEP ...]

First the environment as found (gpu_environment.py): GPU, driver and CUDA runtime versions, cuda-bindings, NVRTC,
the ONNX Runtime providers a session really runs on, TensorRT if it imports, torch, compute-sanitizer. Then the
steps, each in a child process with its own time budget (STEPS) and with SAM2_TRT_REQUIRE_GPU=1, so a GPU test
that cannot run fails with its reason instead of skipping (tests/require_gpu.py). A step is skipped only when
its prerequisites are missing, with the reason:

  kernels            every CUDA kernel against its numpy twin (tests/runtime/test_kernels_gpu.py)
  kernels-memcheck   the connected-components and frame-mask kernels under compute-sanitizer --tool memcheck
  onnxruntime-cuda   image (tiny, 1024 px) and video (tiny, 512 px) parity with the official predictors on the
                     ONNX Runtime CUDA backend (tests/runtime/test_onnxruntime_cuda.py, test_processing.py)
  tensorrt           engine build, `sam2-trt check`, parity and CUDA graphs (tests/engines/test_tensorrt.py)
  video              propagate_in_video FPS, tiny at 1024 px, 1 and 10 objects: official eager and ours
  video-vos          the same for the official vos_optimized predictor (its torch.compile included)

The two parity steps run in one pytest session (they share its exports) with the sum of their budgets. The
budgets add up to TOTAL_BUDGET_S (under 8 minutes); a step past its budget is stopped and reported as such.
Run it in the root of a source checkout (the steps run its tests); benchmarks/gpu_machine.sh prepares a machine
that cannot reach a package index. Result: a summary table on stdout and <results>/gpu_check-<machine>-<date>.json
(environment, each step's status, seconds, budget and details, the video rows). Exit code 0 when no step failed,
4 otherwise. Without a GPU every step is skipped with its reason and the command still runs end to end.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from sam2_trt.benchmarks.environment import machine_label
from sam2_trt.benchmarks.gpu_environment import gpu_environment, print_environment
from sam2_trt.benchmarks.results_file import write_result


@dataclass(frozen=True)
class Step:
    name: str
    budget_s: int  # wall-clock limit of the step's child process(es)
    what: str


STEPS = (
    Step("kernels", 55, "CUDA kernels against their numpy twins"),
    Step("kernels-memcheck", 50, "connected-components and frame-mask kernels under compute-sanitizer memcheck"),
    Step("onnxruntime-cuda", 105, "image (1024 px) and video (512 px) parity with the official predictors"),
    Step("tensorrt", 105, "engine build, check, parity and CUDA graphs (512 px)"),
    Step("video", 70, "video FPS, tiny 1024 px, 1 and 10 objects: official eager and ours"),
    Step("video-vos", 55, "video FPS, tiny 1024 px, 1 and 10 objects: official vos_optimized"),
)
ENVIRONMENT_BUDGET_S = 15  # the probes (a CUDA session of ONNX Runtime, importing torch and TensorRT)
TOTAL_BUDGET_S = ENVIRONMENT_BUDGET_S + sum(s.budget_s for s in STEPS)

KERNEL_TESTS = "tests/runtime/test_kernels_gpu.py"
MEMCHECK_SELECTION = "component_areas or fill_holes or hole_and_sprinkle or filters_on_adversarial or frame_masks " \
                     "or threshold_masks"
PARITY_TESTS = {"onnxruntime-cuda": ["tests/runtime/test_onnxruntime_cuda.py",
                                     "tests/runtime/test_processing.py::test_gpu_predictor_matches_the_cpu_predictor"],
                "tensorrt": ["tests/engines/test_tensorrt.py"]}
VIDEO = {"model": "sam2.1_hiera_t", "image_size": 1024, "objects": (1, 10), "frames": 16, "frame_hw": (480, 854),
         "warmup_frames": 3, "reps": 1, "precision": "fp16"}


# ---- why a step cannot run here ---------------------------------------------------------------------------------
def our_gpu_backends(env: dict) -> list:
    """Our backends that run on the GPU here (ONNX Runtime's only when a CUDA session really runs on CUDA)."""
    ready = [b for b in ("tensorrt", "onnxruntime-cuda") if env["backends"].get(b) is None]
    return [b for b in ready if b != "onnxruntime-cuda" or env["onnxruntime_cuda_inactive"] is None]


def skip_reasons(env: dict) -> dict:
    """{step: why it cannot run here, or None} from the environment (gpu_environment)."""
    checkout = None if Path(KERNEL_TESTS).is_file() else (
        f"{KERNEL_TESTS} is not here: run gpu-check in the root of a sam2-trt source checkout")
    kernels = checkout or env["cuda_unavailable"] or env["nvrtc_unavailable"]
    official = env["official_unavailable"]
    no_backend = None if our_gpu_backends(env) else "none of our GPU backends can run: " + "; ".join(
        f"{b}: {env['backends'].get(b) or env['onnxruntime_cuda_inactive']}" for b in ("tensorrt", "onnxruntime-cuda"))
    video = env["cuda_unavailable"] or official or env["torch_cuda_unavailable"]
    return {
        "kernels": kernels,
        "kernels-memcheck": kernels or (None if env["compute_sanitizer"] else
                                        "compute-sanitizer is not on PATH nor in $CUDA_HOME/bin or /usr/local/cuda/bin"),
        "onnxruntime-cuda": checkout or env["backends"].get("onnxruntime-cuda") or env["onnxruntime_cuda_inactive"]
                            or official,
        "tensorrt": checkout or env["backends"].get("tensorrt") or env["polygraphy_unavailable"] or official,
        "video": video or no_backend,
        "video-vos": video,
    }


# ---- running the test steps -------------------------------------------------------------------------------------
def _pytest(args: list, budget_s: float, prefix: list = ()) -> dict:
    """One pytest child with SAM2_TRT_REQUIRE_GPU=1, stopped after `budget_s`: status, seconds, output tail."""
    from sam2_trt.benchmarks.child import run_with_budget

    cmd = [*prefix, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", *args]
    t0 = time.monotonic()
    proc = run_with_budget(cmd, budget_s, env={**os.environ, "SAM2_TRT_REQUIRE_GPU": "1"}, stderr=subprocess.STDOUT)
    out = proc.stdout
    if proc.returncode is None:
        return {"status": "timeout", "seconds": time.monotonic() - t0, "detail": f"stopped at its {budget_s:.0f} s "
                f"budget", "output_tail": out[-4000:]}
    counts = re.findall(r"=+ (.*?) in [\d.]+s", out)
    status = "passed" if proc.returncode == 0 else "failed"
    return {"status": status, "seconds": time.monotonic() - t0, "returncode": proc.returncode,
            "detail": counts[-1] if counts else f"exit code {proc.returncode}", "output_tail": out[-4000:]}


def run_kernels(budget_s: float, env: dict) -> dict:
    return _pytest([KERNEL_TESTS], budget_s)


def run_memcheck(budget_s: float, env: dict) -> dict:
    sanitizer = [env["compute_sanitizer"], "--tool", "memcheck", "--error-exitcode", "3", "--print-limit", "20"]
    return _pytest([KERNEL_TESTS, "-k", MEMCHECK_SELECTION], budget_s, prefix=sanitizer)


def run_parity(steps: list, budget_s: float, workdir: Path) -> dict:
    """The parity tests of `steps` in one pytest session; {step: result} split by test file (junit XML)."""
    junit = workdir / "parity-junit.xml"
    paths = [p for step in steps for p in PARITY_TESTS[step]]
    result = _pytest([*paths, f"--junitxml={junit}"], budget_s)
    if result["status"] == "timeout" or not junit.is_file():
        return {step: {**result, "seconds": result["seconds"] / len(steps)} for step in steps}
    modules = {step: [p.split("::")[0].removesuffix(".py").replace("/", ".") for p in PARITY_TESTS[step]]
               for step in steps}
    by_step = {step: {"passed": 0, "skipped": 0, "failed": []} for step in steps}
    for case in ET.parse(junit).getroot().iter("testcase"):
        module = case.get("classname", "")
        step = next((s for s in steps if any(module == m or module.startswith(m + ".") for m in modules[s])), None)
        if step is None:
            continue
        outcome = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
        if outcome == "skipped":  # a test not marked gpu/tensorrt (SAM2_TRT_REQUIRE_GPU fails the marked ones)
            by_step[step]["skipped"] += 1
        elif outcome == "passed":
            by_step[step]["passed"] += 1
        else:
            by_step[step]["failed"].append(f"{case.get('name')} ({outcome})")
    out = {}
    for step, found in by_step.items():
        failed = found["failed"]
        ok = not failed and found["passed"] > 0
        detail = f"{found['passed']} passed, {found['skipped']} skipped" + (
            f", {len(failed)} failed: {', '.join(failed[:5])}" if failed else "")
        out[step] = {"status": "passed" if ok else "failed", "seconds": result["seconds"] / len(steps),
                     "detail": detail, "output_tail": result["output_tail"]}
    return out


# ---- the video steps --------------------------------------------------------------------------------------------
def run_video(modes: list, with_ours: bool, budget_s: float, env: dict) -> dict:
    """FPS rows of the official `modes` (and our GPU backends) at tiny 1024 px, 1 and 10 objects, each measured
    in a child stopped at what is left of the step's budget."""
    from sam2_trt.benchmarks import video
    from sam2_trt.benchmarks.models import random_model
    from sam2_trt.benchmarks.scene import cached_clip

    deadline = time.monotonic() + budget_s
    t0 = time.monotonic()
    try:
        model = random_model(VIDEO["model"], VIDEO["image_size"], timeout=budget_s)
    except SystemExit as e:
        return {"status": "failed", "seconds": time.monotonic() - t0, "detail": str(e), "rows": []}
    clip = cached_clip(VIDEO["frames"], *VIDEO["frame_hw"], video.DISCS)
    backends = our_gpu_backends(env) if with_ours else []
    args = SimpleNamespace(device="cuda", warmup_frames=VIDEO["warmup_frames"], reps=VIDEO["reps"])
    rows = []
    for objects in VIDEO["objects"]:
        for side, label, settings in video.sides("cuda", backends, VIDEO["precision"], modes):
            left = deadline - time.monotonic()
            if left < 5:
                rows.append({"label": label, "objects": objects, "error": "no time left in the step's budget"})
                continue
            rows.append(video.measure_side(model, clip, VIDEO["frame_hw"], objects, side, label, settings, args,
                                           timeout=left))
    video.summarize([r for r in rows if "model" in r])
    failed = [f"{r['label']} x{r['objects']}: {r['error']}" for r in rows if "error" in r]
    detail = "; ".join(f"{r['label']} x{r['objects']}: {r['fps']:.1f} FPS" for r in rows if "fps" in r)
    return {"status": "failed" if failed else "passed", "seconds": time.monotonic() - t0,
            "detail": "; ".join(failed) or detail, "rows": rows}


# ---- the command ------------------------------------------------------------------------------------------------
def run_steps(names: list, env: dict, workdir: Path) -> list:
    reasons = skip_reasons(env)
    budget = {s.name: s.budget_s for s in STEPS}
    results = {n: {"status": "skipped", "seconds": 0.0, "detail": reasons[n]} for n in names if reasons[n]}
    runnable = [n for n in names if not reasons[n]]
    parity = [n for n in runnable if n in PARITY_TESTS]
    for name in runnable:
        if name in results:
            continue
        print(f"gpu-check: {name} (budget {budget[name]} s) ...", file=sys.stderr, flush=True)
        if name == "kernels":
            results[name] = run_kernels(budget[name], env)
        elif name == "kernels-memcheck":
            results[name] = run_memcheck(budget[name], env)
        elif name in PARITY_TESTS:
            results.update(run_parity(parity, sum(budget[p] for p in parity), workdir))
        elif name == "video":
            results[name] = run_video(["eager-bf16"], True, budget[name], env)
        elif name == "video-vos":
            results[name] = run_video(["vos-bf16"], False, budget[name], env)
    return [{"step": n, "what": next(s.what for s in STEPS if s.name == n), "budget_s": budget[n], **results[n]}
            for n in names]


def print_summary(steps: list) -> None:
    print(f"\n{'step':18} {'status':8} {'seconds':>9} {'budget':>7}  detail")
    for s in steps:
        detail = str(s.get("detail") or "")
        print(f"{s['step']:18} {s['status']:8} {s['seconds']:9.1f} {s['budget_s']:7d}  {detail[:300]}")


def run(args) -> int:
    """`sam2-trt bench gpu-check` (args: its options, sam2_trt.cli.bench). Returns 0, or 4 when a step failed."""
    names = [s.name for s in STEPS if not args.only or s.name in args.only]
    t0 = time.monotonic()
    env = gpu_environment()
    print_environment(env)
    env_seconds = time.monotonic() - t0
    workdir = Path(args.results).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    steps = run_steps(names, env, workdir)
    (workdir / "parity-junit.xml").unlink(missing_ok=True)
    print_summary(steps)
    machine = machine_label(env)
    result = {"benchmark": "gpu_check", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine,
              "environment": env, "environment_seconds": env_seconds, "budget_s": TOTAL_BUDGET_S,
              "seconds": time.monotonic() - t0, "steps": steps}
    path = write_result(workdir, "gpu_check", machine, result)
    bad = [s["step"] for s in steps if s["status"] not in ("passed", "skipped")]
    print(f"\n{len(bad)} step(s) failed: {', '.join(bad)}" if bad else "\nno step failed")
    print(f"wrote {path}")
    return 4 if bad else 0
