"""Kernel handles and launches: compile (compiler.py) and load each source once per device, launch on a stream.

Arguments are packed as the CUDA driver expects them: one host buffer per argument holding exactly the C type
of the kernel's parameter, and an array of their addresses. `ptr`, `i32`, `f32` and `f64` say the type at the
call site, so a wrapper's argument list reads like the kernel's signature it must match.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from . import compiler
from .device import (DeviceArray, as_stream, check, compute_capability, cuda_driver, current_device,
                     retain_pool_memory, use_device)


def ptr(array: DeviceArray | None) -> np.ndarray:
    """A pointer parameter (a DeviceArray's address; None is a null pointer)."""
    return np.array(0 if array is None else array.ptr, np.uint64)


def i32(v) -> np.ndarray:
    return np.array(int(v), np.int32)


def f32(v) -> np.ndarray:
    return np.array(v, np.float32)


def f64(v) -> np.ndarray:
    return np.array(v, np.float64)


def blocks(n: int, per_block: int) -> int:
    """Blocks of `per_block` covering n items (at least 1: a zero-sized grid is a launch error)."""
    return max(1, -(-int(n) // per_block))


def launch_raw(function, grid: tuple, block: tuple, shared: int, stream: int, params_address: int) -> None:
    """cuLaunchKernel: the one place a kernel is started (a test double can stand in for it)."""
    driver = cuda_driver()
    check(driver.cuLaunchKernel(function, *grid, *block, shared, driver.CUstream(stream), params_address, 0),
          "cuLaunchKernel")


@dataclass
class Kernel:
    name: str
    function: object  # CUfunction

    def __call__(self, grid, block, *args: np.ndarray, stream=None, shared: int = 0) -> None:
        """Launch on `stream` with grid/block (x, y, z) tuples (shorter ones are padded with 1)."""
        grid = tuple(int(g) for g in grid) + (1,) * (3 - len(grid))
        block = tuple(int(b) for b in block) + (1,) * (3 - len(block))
        if min(grid) < 1 or grid[1] > 65535 or grid[2] > 65535 or np.prod(block) > 1024:
            raise ValueError(f"{self.name}: invalid launch configuration grid={grid} block={block}")
        # The argument buffers must live until cuLaunchKernel returns (it copies the values).
        params = np.array([a.ctypes.data for a in args], np.uint64)
        launch_raw(self.function, grid, block, int(shared), as_stream(stream).handle, params.ctypes.data)


class _Registry:
    """Loaded modules by (device, source stem); kernels by (device, name)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.modules: dict = {}
        self.kernels: dict = {}


_REGISTRY = _Registry()


def load_module(binary: bytes):
    """cuModuleLoadData into the current context (a CUBIN, or PTX that the driver JIT-compiles)."""
    return check(cuda_driver().cuModuleLoadData(binary), "cuModuleLoadData")


def get_function(module, name: str):
    return check(cuda_driver().cuModuleGetFunction(module, name.encode()), f"cuModuleGetFunction({name})")


def kernel(stem: str, name: str, device_id: int | None = None) -> Kernel:
    """The kernel `name` of cuda/<stem>.cu on the current (or given) device, compiled and loaded on first use.
    A launch must happen with that device current (the wrappers run inside the caller's `use_device`)."""
    if name not in compiler.ENTRY_POINTS.get(stem, ()):
        raise KeyError(f"{name!r} is not an entry point of {stem}.cu ({compiler.ENTRY_POINTS.get(stem)})")
    if device_id is None:
        device_id = current_device()
    key = (device_id, name)
    found = _REGISTRY.kernels.get(key)
    if found is not None:
        return found
    with _REGISTRY.lock:
        if (device_id, stem) not in _REGISTRY.modules:
            with use_device(device_id):  # the module loads into that device's context; the thread's stays
                retain_pool_memory(device_id)
                target = compiler.target_for(compute_capability(device_id))
                _REGISTRY.modules[device_id, stem] = load_module(compiler.compile_source(stem, target).binary)
        found = Kernel(name, get_function(_REGISTRY.modules[device_id, stem], name))
        _REGISTRY.kernels[key] = found
    return found


class DeviceTables:
    """Small constant tables (interpolation taps, lookup tables) uploaded once per device and key."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tables: dict = {}

    def get(self, key: tuple, build) -> tuple[DeviceArray, ...]:
        """build() -> tuple of host arrays; returns them on the current device (a synchronous one-time copy)."""
        device_id = current_device()
        found = self.tables.get((device_id, *key))
        if found is None:
            with self.lock:
                found = tuple(DeviceArray.from_host(np.ascontiguousarray(a)) for a in build())
                found[0].stream.synchronize()  # the host arrays may go away: finish the copies
                self.tables[(device_id, *key)] = found
        return found


TABLES = DeviceTables()
