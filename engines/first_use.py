"""Building a missing engine when the runtime first needs it, in this process: the builder an application
installs with `sam2_trt.engines.enable_build_on_first_use()` (runtime/backends/engine_builds.py explains the
hook). The `sam2-trt` command installs its own, which runs `sam2-trt build` in a child process instead."""

from __future__ import annotations

from pathlib import Path


def build_one_engine(model_dir: Path, graph: str, precision: str, device_id: int) -> None:
    """An EngineBuilder: build `graph`'s engine for this GPU with the default profile limits (progress on
    stderr). The record it writes is what the backend then loads."""
    from .builder import BuildOptions, build_engines

    build_engines(model_dir, BuildOptions(precision=precision), graphs=[graph], device_id=device_id)


def enable_build_on_first_use() -> None:
    """From now on, a TensorRT backend in this process builds a missing engine instead of raising."""
    from sam2_trt.runtime.backends.engine_builds import install_engine_builder

    install_engine_builder(build_one_engine)
