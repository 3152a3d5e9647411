"""Run-time compilation of the CUDA kernels in `cuda/` with NVRTC, cached on disk.

The `.cu` files ship as package data of `sam2_trt.cuda` (pyproject maps it to the repository's `cuda/`), so a
wheel install finds them as well as a checkout. Each source compiles to a CUBIN for the GPU's own architecture (`sm_90`), or to PTX (`compute_XX`)
that the driver JIT-compiles when this NVRTC does not know the GPU. Results are cached per source hash,
target, options and NVRTC version under $SAM2_TRT_CACHE/kernels (default ~/.cache/sam2-trt/kernels), so a
process pays for NVRTC once per machine, not once per run.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .device import INSTALL_HINT, CudaUnavailable

KERNEL_PACKAGE = "sam2_trt.cuda"

# Every entry point of every source, by source stem: the wrappers launch only these names and the tests check
# that each source defines exactly these.
ENTRY_POINTS = {
    "pil_bicubic": ("pil_bicubic_pass",),
    "resize_antialias": ("aa_rows", "aa_cols", "aa_rows_rgb", "aa_cols_normalize"),
    "connected_components": ("ccl_init_logits", "ccl_init_mask", "ccl_merge", "ccl_flatten_count", "ccl_areas",
                             "ccl_filter"),
    "mask_frame": ("mask_stats_init", "mask_stats_finalize", "mask_frame"),
}

# The oldest GPUs the kernels run on: warp match (__match_any_sync) needs Volta (sm_70). The warp min/max
# reductions of mask_frame.cu use sm_80's redux instructions there and shuffles below (issue 19).
MIN_CAPABILITY = (7, 0)

# --fmad=false: the twins round every product and sum separately except where they fuse on purpose, and the
# kernels say so with explicit __fmaf_rn; without it NVRTC would contract other a * b + c into FMAs.
OPTIONS = ("--std=c++17", "--fmad=false")


class NvrtcUnavailable(CudaUnavailable):
    """NVRTC (libnvrtc) or its Python bindings cannot be loaded."""


class KernelCompileError(RuntimeError):
    """NVRTC rejected a kernel source; the message carries its log."""


@dataclass(frozen=True)
class CompiledSource:
    stem: str  # source name without .cu
    target: str  # "sm_90" (CUBIN) or "compute_90" (PTX)
    binary: bytes  # CUBIN (ELF) or PTX text, ready for cuModuleLoadData
    path: Path | None  # cache file, None when caching is off
    from_cache: bool

    @property
    def kind(self) -> str:
        return "cubin" if self.target.startswith("sm_") else "ptx"


# ---- sources ------------------------------------------------------------------------------------------------
def source_dir() -> Path:
    """The kernel sources: `cuda/` beside the runtime package, in a checkout (runtime/ and cuda/ at the repository
    top level) and in an installed wheel alike (sam2_trt/runtime and sam2_trt/cuda). Found by path, not by import:
    a `cuda` package with an __init__.py would shadow cuda-python's `cuda` namespace whenever the repository
    root is on sys.path, and setuptools' editable finder cannot resolve a nested namespace package."""
    path = Path(__file__).resolve().parents[2] / "cuda"
    if not any(path.glob("*.cu")):
        raise FileNotFoundError(f"the CUDA kernel sources (*.cu, package data {KERNEL_PACKAGE!r}) are not in {path}; "
                                "reinstall sam2-trt (pip install -e . in a checkout)")
    return path


def read_source(stem: str) -> str:
    if stem not in ENTRY_POINTS:
        raise KeyError(f"unknown kernel source {stem!r}; known: {sorted(ENTRY_POINTS)}")
    return source_dir().joinpath(f"{stem}.cu").read_text()


def declared_entry_points(source: str) -> tuple[str, ...]:
    """The extern "C" __global__ function names a source defines."""
    return tuple(re.findall(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(', source))


# ---- NVRTC --------------------------------------------------------------------------------------------------
def nvrtc_module():
    """cuda.bindings.nvrtc with libnvrtc loaded, or NvrtcUnavailable saying what is missing and what to do."""
    try:
        from cuda.bindings import nvrtc
    except ImportError as e:
        raise NvrtcUnavailable(f"cuda-bindings (NVRTC's Python bindings) is not installed ({e}); "
                               f"{INSTALL_HINT}") from e
    try:
        err, *_ = nvrtc.nvrtcVersion()  # the first call loads libnvrtc
    except Exception as e:  # cuda.pathfinder's DynamicLibNotFoundError and friends
        raise NvrtcUnavailable(f"libnvrtc could not be loaded ({type(e).__name__}: {e}); {INSTALL_HINT}, or put "
                               "the CUDA toolkit's libnvrtc.so on LD_LIBRARY_PATH") from e
    if int(err) != 0:
        raise NvrtcUnavailable(f"nvrtcVersion failed ({err}); {INSTALL_HINT}")
    return nvrtc


def nvrtc_version() -> tuple[int, int]:
    _, major, minor = nvrtc_module().nvrtcVersion()
    return int(major), int(minor)


def supported_archs() -> tuple[int, ...]:
    """Real architectures this NVRTC can compile for, e.g. (75, 80, 86, 89, 90, ...)."""
    err, archs = nvrtc_module().nvrtcGetSupportedArchs()
    return tuple(int(a) for a in archs)


def capability_reason(capability: tuple[int, int]) -> str | None:
    """None when the kernels support a GPU of this compute capability, else why not."""
    if tuple(capability) >= MIN_CAPABILITY:
        return None
    return (f"the CUDA kernels need compute capability {'.'.join(map(str, MIN_CAPABILITY))} or newer (warp match "
            f"intrinsics), this GPU has {'.'.join(map(str, capability))}; pre/post-processing runs on the CPU")


def target_for(capability: tuple[int, int]) -> str:
    """sm_XY when NVRTC knows the GPU (CUBIN, no JIT); else PTX for the newest older arch (the driver JITs it)."""
    reason = capability_reason(capability)
    if reason is not None:
        raise KernelCompileError(reason)
    cc = capability[0] * 10 + capability[1]
    archs = supported_archs()
    if cc in archs:
        return f"sm_{cc}"
    older = [a for a in archs if a <= cc]
    if not older:
        raise KernelCompileError(f"NVRTC {nvrtc_version()} supports {archs}, nothing for compute capability "
                                 f"{capability}; use a CUDA toolkit that supports this GPU")
    return f"compute_{max(older)}"


def _nvrtc_compile(source: str, name: str, target: str) -> bytes:
    nvrtc = nvrtc_module()

    def ok(result, what):
        err, *values = result
        if int(err) != 0:
            raise KernelCompileError(f"{what} failed for {name} ({target}): {err}")
        return values[0] if values else None

    prog = ok(nvrtc.nvrtcCreateProgram(source.encode(), name.encode(), 0, [], []), "nvrtcCreateProgram")
    try:
        opts = [f"--gpu-architecture={target}".encode(), *(o.encode() for o in OPTIONS)]
        (err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        if int(err) != 0:
            size = ok(nvrtc.nvrtcGetProgramLogSize(prog), "nvrtcGetProgramLogSize")
            log = bytearray(size)  # NVRTC writes into it: a mutable buffer, never an (immutable) bytes object
            ok(nvrtc.nvrtcGetProgramLog(prog, log), "nvrtcGetProgramLog")
            text = bytes(log).rstrip(b"\0").decode(errors="replace")
            raise KernelCompileError(f"{name} does not compile for {target}:\n{text}")
        cubin = target.startswith("sm_")
        get_size, get = (nvrtc.nvrtcGetCUBINSize, nvrtc.nvrtcGetCUBIN) if cubin else \
            (nvrtc.nvrtcGetPTXSize, nvrtc.nvrtcGetPTX)
        size = ok(get_size(prog), get_size.__name__)
        out = bytearray(size)
        ok(get(prog, out), get.__name__)
        return bytes(out)
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


# ---- the disk cache -------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    root = os.environ.get("SAM2_TRT_CACHE")
    if root:
        return Path(root) / "kernels"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sam2-trt" / "kernels"


def cache_key(source: str, target: str) -> str:
    """sha256 of everything that changes the binary: source, target, options, NVRTC version."""
    h = hashlib.sha256()
    for part in (source, target, " ".join(OPTIONS), "nvrtc %d.%d" % nvrtc_version()):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def compile_source(stem: str, target: str, *, source: str | None = None, cache: bool = True,
                   directory: Path | None = None) -> CompiledSource:
    """Compile kernel source `stem` (cuda/<stem>.cu, or the text `source`) for `target` ("sm_90" or
    "compute_90"), reusing the cached binary when source, target, options and NVRTC are unchanged."""
    source = read_source(stem) if source is None else source
    ext = "cubin" if target.startswith("sm_") else "ptx"
    path = None
    if cache:
        directory = cache_dir() if directory is None else Path(directory)
        path = directory / f"{stem}-{target}-{cache_key(source, target)[:24]}.{ext}"
        if path.is_file():
            return CompiledSource(stem, target, path.read_bytes(), path, from_cache=True)
    binary = _nvrtc_compile(source, f"{stem}.cu", target)
    if path is not None:
        try:  # write-then-rename, so a concurrent reader never sees half a file
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as f:
                f.write(binary)
            os.replace(f.name, path)
        except OSError:  # a read-only cache directory only costs a recompile next time
            path = None
    return CompiledSource(stem, target, binary, path, from_cache=False)
