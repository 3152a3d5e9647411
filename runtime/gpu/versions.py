"""The CUDA versions in play, and what a mismatch between them means, for every "GPU unavailable" message.

Three versions decide whether the kernels (and cuda-bindings' runtime) can run: the CUDA version the NVIDIA
driver supports (`cudaDriverGetVersion`, 0 when no driver is loaded), the CUDA runtime that cuda-bindings
implements (`cudaRuntimeGetVersion`: 12.x for cuda-bindings 12, 13.x for 13) and NVRTC's. A runtime needs a
driver of at least its major version: cuda-bindings 13 needs an R580 or newer driver, and on a CUDA 12 driver
every call fails with cudaErrorInsufficientDriver. That case must not read as "no GPU here" (a skipped test suite
looks green): the message names both versions and the extra that matches the driver (`sam2-trt[gpu-cu12]`).
"""

from __future__ import annotations

from dataclasses import dataclass

# The oldest Linux driver branch for each CUDA major version (CUDA toolkit release notes, table 3).
MIN_DRIVER = {12: "R525", 13: "R580"}
EXTRA = {12: "gpu-cu12", 13: "gpu-cu13"}  # pyproject's extras: cuda-bindings and NVRTC of one CUDA major version


def version_text(version: int | None) -> str:
    """CUDA's integer version (1000 * major + 10 * minor, e.g. 12040) as "12.4"; "none" for 0 or None."""
    if not version:
        return "none"
    return f"{version // 1000}.{version % 1000 // 10}"


@dataclass(frozen=True)
class CudaVersions:
    driver: int | None  # the CUDA version the driver supports (0: no driver loaded, None: not queryable)
    runtime: int | None  # cuda-bindings' CUDA runtime
    bindings: str | None  # the cuda-bindings package version

    def describe(self) -> str:
        return (f"driver supports CUDA {version_text(self.driver)}, cuda-bindings {self.bindings or 'missing'} "
                f"(CUDA runtime {version_text(self.runtime)})")

    def advice(self) -> str | None:
        """What to do when the driver is too old for the runtime (None when it is not)."""
        if not self.runtime:
            return None
        need = self.runtime // 1000
        if not self.driver:
            return "no NVIDIA driver is loaded here (libcuda.so.1 missing: no GPU, or a container without one)"
        have = self.driver // 1000
        if have >= need:
            return None
        fix = f"pip install 'sam2-trt[{EXTRA[have]}]'" if have in EXTRA else "use a newer driver"
        return (f"the driver supports CUDA {version_text(self.driver)}, older than the CUDA {need} runtime of "
                f"cuda-bindings {self.bindings}, which needs a {MIN_DRIVER.get(need, 'newer')} or newer driver: "
                f"update the driver, or install the cuda-bindings and NVRTC of the driver's CUDA: {fix}")


def installed_versions() -> CudaVersions:
    """The versions here, each None when it cannot be queried (cuda-bindings missing, driver library missing)."""
    try:
        import cuda.bindings
        from cuda.bindings import runtime
    except ImportError:
        return CudaVersions(None, None, None)

    def query(call):
        try:
            err, value = call()
        except Exception:  # cuda.pathfinder cannot find the library
            return None
        return int(value) if int(err) == 0 else None

    return CudaVersions(query(runtime.cudaDriverGetVersion), query(runtime.cudaRuntimeGetVersion),
                        getattr(cuda.bindings, "__version__", None))


def no_device_reason(error_name: str, versions: CudaVersions) -> str:
    """Why cudaGetDeviceCount failed with `error_name`, with the versions and, when they explain it, the fix."""
    advice = versions.advice()
    what = advice or "is an NVIDIA GPU with a working driver here?"
    return f"no usable CUDA driver/device ({error_name}; {versions.describe()}): {what}"
