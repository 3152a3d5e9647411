"""The CUDA kernels on a machine without a GPU: every source compiles with NVRTC for the GPUs we target, the
disk cache keys on source and architecture, a wheel ships the sources, and the host-side tables the kernels
read are right (PIL's fixed-point passes replayed in numpy match PIL bit for bit).

CI installs the `gpu` extra (cuda-bindings, nvidia-cuda-nvrtc), so NVRTC is there; the kernels themselves run
only in test_kernels_gpu.py.
"""

import ast
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from sam2_trt.runtime.gpu import compiler, launch, tables, unavailable_reason
from sam2_trt.runtime.ops import resize as twin_resize
from tests.conftest import REPO

ARCHS = ("sm_75", "sm_80", "sm_86", "sm_89", "sm_90")  # Turing (sm_75) runs the shuffle fallback of sm_80's redux
STEMS = sorted(compiler.ENTRY_POINTS)


# ---- compilation ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("stem", STEMS)
def test_source_compiles_to_cubin(stem, arch):
    out = compiler.compile_source(stem, arch, cache=False)
    assert out.kind == "cubin" and not out.from_cache and out.path is None
    assert out.binary[:4] == b"\x7fELF"  # a CUBIN is an ELF image
    for name in compiler.ENTRY_POINTS[stem]:
        assert name.encode() + b"\0" in out.binary, f"{name} missing from {stem} ({arch})"


@pytest.mark.parametrize("stem", STEMS)
def test_source_compiles_to_ptx(stem):
    """The fallback for a GPU newer than this NVRTC: PTX that the driver JIT-compiles."""
    out = compiler.compile_source(stem, "compute_80", cache=False)
    ptx = out.binary.decode()
    assert out.kind == "ptx" and ".target sm_80" in ptx
    entries = set(re.findall(r"\.entry\s+(\w+)", ptx))
    assert entries == set(compiler.ENTRY_POINTS[stem])


def test_warp_reductions_use_redux_from_sm_80_and_shuffles_before():
    """__reduce_min/max_sync exist from sm_80 on; older GPUs get the butterfly of shuffles (same result)."""
    def ptx(arch):
        return compiler.compile_source("mask_frame", arch, cache=False).binary.decode()

    assert "redux.sync.min" in ptx("compute_80") and "redux.sync.max" in ptx("compute_80")
    turing = ptx("compute_75")
    assert "redux.sync" not in turing and "shfl.sync.bfly" in turing


def test_gpus_older_than_volta_are_refused_with_a_reason():
    assert compiler.capability_reason((7, 0)) is None and compiler.capability_reason((9, 0)) is None
    reason = compiler.capability_reason((6, 1))
    assert "compute capability 7.0 or newer" in reason and "6.1" in reason and "on the CPU" in reason
    with pytest.raises(compiler.KernelCompileError, match="compute capability 7.0 or newer"):
        compiler.target_for((6, 1))


def test_entry_points_match_sources_and_wrappers():
    """ENTRY_POINTS lists exactly the extern "C" kernels of each source, and every kernel a wrapper launches."""
    assert {p.stem for p in (REPO / "cuda").glob("*.cu")} == set(STEMS)
    for stem in STEMS:
        assert compiler.declared_entry_points(compiler.read_source(stem)) == compiler.ENTRY_POINTS[stem]
    tree = ast.parse((REPO / "runtime" / "gpu" / "kernels.py").read_text())
    launched = {(c.args[0].value, c.args[1].value) for c in ast.walk(tree)
                if isinstance(c, ast.Call) and getattr(c.func, "id", None) == "kernel"}
    assert launched == {(stem, n) for stem, names in compiler.ENTRY_POINTS.items() for n in names}
    with pytest.raises(KeyError, match="not an entry point"):
        launch.kernel("mask_frame", "no_such_kernel", device_id=0)


def test_compile_error_carries_the_log():
    with pytest.raises(compiler.KernelCompileError, match=r"(?s)broken\.cu.*sm_80.*undefined_thing"):
        compiler.compile_source("broken", "sm_80", source='extern "C" __global__ void k() { undefined_thing; }',
                                cache=False)


def test_target_for_known_and_unknown_gpus():
    archs = compiler.supported_archs()
    assert {75, 80, 86, 89, 90} <= set(archs)
    assert compiler.target_for((9, 0)) == "sm_90" and compiler.target_for((8, 6)) == "sm_86"
    assert compiler.target_for((99, 9)) == f"compute_{max(archs)}"  # newer than NVRTC: PTX, JIT by the driver
    with pytest.raises(compiler.KernelCompileError, match="compute capability"):
        compiler.target_for((1, 0))
    if 70 not in archs:  # NVRTC 13 dropped Volta: a 7.0 GPU passes the kernels' floor but not this NVRTC's
        with pytest.raises(compiler.KernelCompileError, match=r"nothing for compute capability \(7, 0\)"):
            compiler.target_for((7, 0))


# ---- the disk cache -------------------------------------------------------------------------------------------
def test_cache_is_keyed_by_source_and_arch(tmp_path, monkeypatch):
    monkeypatch.setenv("SAM2_TRT_CACHE", str(tmp_path))
    first = compiler.compile_source("mask_frame", "sm_90")
    assert not first.from_cache and first.path.parent == tmp_path / "kernels" and first.path.is_file()
    assert first.path.name.startswith("mask_frame-sm_90-") and first.path.read_bytes() == first.binary

    def no_nvrtc(*args):
        raise AssertionError("NVRTC ran although the cache holds this binary")

    with monkeypatch.context() as m:
        m.setattr(compiler, "_nvrtc_compile", no_nvrtc)
        again = compiler.compile_source("mask_frame", "sm_90")
    assert again.from_cache and again.binary == first.binary and again.path == first.path

    changed = compiler.compile_source("mask_frame", "sm_90", source=compiler.read_source("mask_frame") + "\n// x\n")
    other_arch = compiler.compile_source("mask_frame", "sm_80")
    assert not changed.from_cache and not other_arch.from_cache
    assert len({first.path, changed.path, other_arch.path}) == 3
    assert len(list((tmp_path / "kernels").iterdir())) == 3  # no temporary files left behind


def test_cache_location(tmp_path, monkeypatch):
    monkeypatch.delenv("SAM2_TRT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compiler.cache_dir() == tmp_path / "sam2-trt" / "kernels"
    monkeypatch.setenv("SAM2_TRT_CACHE", str(tmp_path / "c"))
    assert compiler.cache_dir() == tmp_path / "c" / "kernels"


# ---- missing NVRTC / driver -----------------------------------------------------------------------------------
LIB_MISSING = """
import cuda.pathfinder, cuda.pathfinder._dynamic_libs.load_nvidia_dynamic_lib as loader
def missing(name, *args, **kwargs):
    raise cuda.pathfinder.DynamicLibNotFoundError(f"Failure finding lib{name}.so (simulated)")
cuda.pathfinder.load_nvidia_dynamic_lib = loader.load_nvidia_dynamic_lib = missing
from sam2_trt.runtime.gpu import compiler
try:
    compiler.compile_source("mask_frame", "sm_90", cache=False)
except compiler.NvrtcUnavailable as e:
    print("ERROR:", e)
"""


def test_clear_error_when_libnvrtc_cannot_be_loaded():
    """cuda-python's library loader fails (in a fresh process, before libnvrtc was ever loaded)."""
    proc = subprocess.run([sys.executable, "-c", LIB_MISSING], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ERROR: libnvrtc could not be loaded" in proc.stdout and "simulated" in proc.stdout
    assert "pip install 'sam2-trt[gpu]'" in proc.stdout and "LD_LIBRARY_PATH" in proc.stdout


def test_clear_error_without_cuda_bindings(monkeypatch):
    import cuda.bindings

    monkeypatch.setitem(sys.modules, "cuda.bindings.nvrtc", None)
    monkeypatch.delattr(cuda.bindings, "nvrtc", raising=False)
    with pytest.raises(compiler.NvrtcUnavailable, match=r"cuda-bindings .* not installed.*sam2-trt\[gpu\]"):
        compiler.compile_source("mask_frame", "sm_90", cache=False)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", None)
    monkeypatch.delattr(cuda.bindings, "runtime", raising=False)
    reason = unavailable_reason()
    assert "cuda-bindings is not installed" in reason and "sam2-trt[gpu]" in reason


def test_importing_runtime_gpu_needs_no_cuda():
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('cuda', 'torch'): raise ImportError('blocked: ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import sam2_trt.runtime.gpu as gpu, sam2_trt.runtime.gpu.kernels\n"
            "print(gpu.unavailable_reason())\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "cuda-bindings is not installed" in proc.stdout and "sam2-trt[gpu]" in proc.stdout


# ---- where the sources come from ------------------------------------------------------------------------------
def test_sources_found_beside_the_runtime_package():
    """The checkout's cuda/ (the wheel's sam2_trt/cuda: test_wheel_ships_the_kernel_sources)."""
    assert compiler.source_dir() == REPO / "cuda"
    found = {p.name for p in compiler.source_dir().iterdir() if p.name.endswith(".cu")}
    assert found == {f"{s}.cu" for s in STEMS}
    for stem in STEMS:
        assert compiler.read_source(stem) == (REPO / "cuda" / f"{stem}.cu").read_text()


def test_repo_cuda_dir_does_not_shadow_cuda_python():
    """cuda/ has no __init__.py: from the repository root, `cuda` still resolves to cuda-python."""
    assert not (REPO / "cuda" / "__init__.py").exists()
    proc = subprocess.run([sys.executable, "-c", "import cuda.bindings.nvrtc, sam2_trt.runtime.gpu.compiler as c; "
                           "c.read_source('mask_frame'); print('ok')"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_wheel_ships_the_kernel_sources(built_wheel, tmp_path):
    wheel = built_wheel
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"sam2_trt/cuda/{s}.cu" for s in STEMS} <= names
    assert {f"sam2_trt/runtime/gpu/{m}.py" for m in ("device", "compiler", "launch", "tables", "kernels")} <= names
    assert not any(n.startswith("cuda/") for n in names)

    site = tmp_path / "site"  # a plain (non-editable) install: the sources come from the installed package
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                           str(wheel)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    code = ("from sam2_trt.runtime.gpu import compiler; d = compiler.source_dir(); print(d);"
            "print(len(compiler.read_source('connected_components')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(site)}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    where, size = proc.stdout.split()[-2:]
    assert where == str(site / "sam2_trt" / "cuda")
    assert int(size) == len((REPO / "cuda" / "connected_components.cu").read_text())


# ---- host-side tables -----------------------------------------------------------------------------------------
def replay_pil_pass(src: np.ndarray, p: tables.PilPass) -> np.ndarray:
    """pil_bicubic_pass in numpy: int32 fixed-point sums from 2^21, >> 22, clamped to uint8."""
    s = src.astype(np.int64)
    out = np.empty((p.out_h, p.out_w, 3), np.uint8)
    for o in range(p.out_h if p.vertical else p.out_w):
        first, n = p.bounds[o]
        acc = np.int64(1 << (tables.PRECISION_BITS - 1))
        for t in range(n):
            taps = s[first + t, :p.out_w] if p.vertical else s[p.row0:p.row0 + p.out_h, first + t]
            acc = acc + taps * int(p.coeffs[o, t])
        assert np.abs(acc).max() < 2 ** 31  # the kernel accumulates in int32, as Pillow does
        v = np.clip(acc >> tables.PRECISION_BITS, 0, 255).astype(np.uint8)
        if p.vertical:
            out[o] = v
        else:
            out[:, o] = v
    return out


PIL_CASES = [((540, 960), 256), ((257, 131), 64), ((131, 257), 64), ((300, 100), 64), ((30, 20), 64),
             ((7, 300), 32), ((100, 100), 100), ((64, 100), 64), ((100, 64), 64), ((1, 1), 5), ((600, 600), 96),
             ((480, 640), 128)]


@pytest.mark.parametrize("hw,size", PIL_CASES, ids=lambda v: str(v))
def test_pil_bicubic_passes_match_pil(hw, size):
    """The kernel's plan and coefficients, replayed with its integer arithmetic, are PIL's resize exactly
    (both pass orders, upsampling, downsampling, unchanged axes; extreme 0/255 content for the clipping)."""
    rng = np.random.default_rng(hw[0] * 1000 + hw[1])
    img = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
    img[: hw[0] // 2] = rng.choice(np.uint8([0, 255]), (hw[0] // 2, hw[1], 3))
    x = img
    for p in tables.pil_bicubic_passes(*hw, size):
        assert x.shape[1] == p.src_w
        x = replay_pil_pass(x, p)
    np.testing.assert_array_equal(x, np.asarray(Image.fromarray(img).resize((size, size), Image.BICUBIC)))


def test_torch_resize_tables_are_the_twins():
    idx, w, plain = tables.antialias_taps(1080, 1024)
    t_idx, t_w, t_plain = twin_resize._antialias_table(1080, 1024)
    assert idx.dtype == np.int32 and w.dtype == np.float32 and plain.dtype == np.uint8
    np.testing.assert_array_equal(idx, t_idx)
    np.testing.assert_array_equal(w, t_w)
    np.testing.assert_array_equal(plain, t_plain.T)  # the kernel reads [out, k]
    i0, i1, w0, w1 = tables.linear_taps(256, 1080)
    for got, want in zip((i0, i1, w0, w1), twin_resize._linear_table(256, 1080)):
        np.testing.assert_array_equal(got, want)
    assert i0.dtype == i1.dtype == np.int32 and w0.dtype == w1.dtype == np.float32
