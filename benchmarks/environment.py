"""The machine and library versions a benchmark ran with: one description for every results file.

Nothing here imports torch, TensorRT or CUDA unless asked: a child process measuring our runtime must not pay for
(or be changed by) importing torch, so `describe` takes the extras that apply to it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import subprocess

import numpy as np


def _first(path: str, key: str) -> str | None:
    try:
        with open(path) as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith(key)), None)
    except OSError:
        return None


# The CPU's vector extensions that change what ONNX Runtime's and torch's CPU kernels can do: AVX2 / AVX-512 for
# float32 matmuls, VNNI for int8 dot products, bf16 and AMX for reduced precision. Two "AMD EPYC (2 cores)"
# machines of a cloud can differ in exactly these, so a CPU result names them.
_SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8",
               "amx_bf16")


def cpu_simd() -> list | None:
    """The `_SIMD_FLAGS` this CPU reports in /proc/cpuinfo (None where there is no /proc/cpuinfo)."""
    flags = _first("/proc/cpuinfo", "flags")
    if flags is None:
        return None
    have = set(flags.split())
    return [f for f in _SIMD_FLAGS if f in have]


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def gpu_description() -> dict | None:
    """{name, driver, memory_mb} of GPU 0 from nvidia-smi, or None where there is no NVIDIA GPU."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    line = out.strip().splitlines()[0] if out.strip() else ""
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != 3:
        return None
    return {"name": parts[0], "driver": parts[1], "memory_mb": int(parts[2]) if parts[2].isdigit() else parts[2]}


def describe(**extra) -> dict:
    """Host, CPU, memory, GPU, Python and the versions of every library a benchmark may use (None: not
    installed; versions come from package metadata, so nothing heavy is imported). `extra` is merged in."""
    mem = _first("/proc/meminfo", "MemTotal")
    env = {
        "host": platform.node(), "os": platform.platform(),
        "cpu": _first("/proc/cpuinfo", "model name") or platform.processor() or platform.machine(),
        "cpu_simd": cpu_simd(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_total_gb": None if mem is None else round(int(mem.split()[0]) / 2**20, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "gpu": gpu_description(), "python": platform.python_version(), "numpy": np.__version__,
    }
    for dist in ("onnxruntime", "onnxruntime-gpu", "tensorrt", "torch", "sam2", "pillow", "opencv-python-headless",
                 "opencv-python", "cuda-python", "cuda-bindings", "polygraphy", "ray"):
        env[dist] = _version(dist)
    env.update(extra)
    return env


def machine_label(env: dict) -> str:
    """A short name for where a result was measured: the GPU when there is one, else the CPU and its cores."""
    if env.get("gpu"):
        return env["gpu"]["name"]
    return f"{env['cpu']} ({env['cpus_usable']} cores)"
