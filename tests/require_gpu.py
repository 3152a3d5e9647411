"""SAM2_TRT_REQUIRE_GPU=1: a test marked `gpu` or `tensorrt` that would be skipped fails instead, with its reason.

On a CPU machine (CI) those tests skip, as they must. On a GPU machine a skip hides what is broken: a driver too
old for cuda-bindings, an onnxruntime-gpu whose provider does not load, a missing TensorRT, all look like "no
GPU here" and the run looks green. `sam2-trt bench gpu-check` sets the variable for every step it runs. The hook
turns the skip report of such a test (from a skipif mark, a fixture's pytest.skip or the test's own) into a
failure whose message is the skip reason. Loaded by tests/conftest.py.
"""

import os

import pytest

REQUIRED_MARKS = ("gpu", "tensorrt")
ENV = "SAM2_TRT_REQUIRE_GPU"


def gpu_required() -> bool:
    return os.environ.get(ENV, "").strip() not in ("", "0")


def skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (file, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and gpu_required()) or hasattr(report, "wasxfail"):
        return
    marks = [m for m in REQUIRED_MARKS if item.get_closest_marker(m) is not None]
    if marks:
        report.outcome = "failed"
        report.longrepr = (f"{ENV}=1 and this {'/'.join(marks)} test would have been skipped: "
                           f"{skip_reason(report)}")
