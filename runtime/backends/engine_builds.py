"""How the TensorRT backend gets an engine that was not built yet: through a builder that the application or
the `sam2-trt` command installs, never by reaching up into the engine builder itself (the runtime sits
downstream of `sam2_trt.engines` and never imports it).

    import sam2_trt.engines
    sam2_trt.engines.enable_build_on_first_use()        # builds in this process (needs tensorrt + polygraphy)

    from sam2_trt.runtime.backends.engine_builds import install_engine_builder
    install_engine_builder(my_builder)                  # or any callable with the EngineBuilder signature

With no builder installed, a missing engine is an EngineError naming the `sam2-trt build` command to run.
The CLI installs one that runs `sam2-trt build` in a child process (so the builder's peak host and GPU memory
goes back to the system when it exits).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

# builder(model_dir, graph, precision, device_id): writes <model_dir>/engines/<target>/<graph>.engine and its
# record (sam2_trt.core.engine_record), or raises. Called at most once at a time per process.
EngineBuilder = Callable[[Path, str, str, int], None]

_builder: EngineBuilder | None = None
_lock = threading.Lock()


def install_engine_builder(builder: EngineBuilder | None) -> EngineBuilder | None:
    """Make `builder` build missing engines from now on (None: no builds, missing engines are errors); returns
    the builder it replaces."""
    global _builder
    if builder is not None and not callable(builder):
        raise TypeError(f"an engine builder must be callable (model_dir, graph, precision, device_id), got "
                        f"{type(builder).__name__}")
    previous, _builder = _builder, builder
    return previous


def installed_engine_builder() -> EngineBuilder | None:
    return _builder


def build_missing_engine(model_dir: Path, graph: str, precision: str, device_id: int) -> bool:
    """Run the installed builder for one engine; False when none is installed."""
    builder = _builder
    if builder is None:
        return False
    with _lock:  # two predictors opening the same model in one process build it once, one after the other
        builder(Path(model_dir), graph, precision, device_id)
    return True
