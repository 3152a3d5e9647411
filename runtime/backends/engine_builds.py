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

import logging
import threading
from pathlib import Path
from typing import Callable

from sam2_trt.core.engine_record import EngineError, EngineRecord, build_command, read_record
from sam2_trt.core.errors import Sam2TrtError

log = logging.getLogger("sam2_trt")

# builder(model_dir, graph, precision, device_id): writes <model_dir>/engines/<target>/<graph>.engine and its
# record (sam2_trt.core.engine_record), or raises. Called one at a time in a process.
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


def record_or_build(model_dir: Path, graph: str, precision: str, engine_dir: Path, device_id: int,
                    allow_build: bool = True) -> EngineRecord:
    """The record of `graph`'s engine in engine_dir; when there is none, the installed builder builds it first.
    EngineError naming the command to run when none is installed (or allow_build is False) or the build fails."""
    record = read_record(engine_dir, graph)
    if record is not None:
        return record
    command = build_command(model_dir, precision)
    with _lock:  # two predictors of one process opening the same model: the second finds the first's engine
        record = read_record(engine_dir, graph)
        if record is not None:
            return record
        builder = _builder if allow_build else None
        if builder is None:
            raise EngineError(f"no {precision} TensorRT engine for {graph} in {engine_dir}; run `{command}` (or "
                              f"call sam2_trt.engines.enable_build_on_first_use() to build missing engines when "
                              f"they are first needed)")
        log.warning("sam2-trt: no %s TensorRT engine for %s in %s yet; building it now (once, minutes; cached in "
                    "its engines/ folder)", precision, graph, model_dir)
        try:
            builder(Path(model_dir), graph, precision, device_id)
        except Sam2TrtError:  # the builder's own message names the problem and its fix
            raise
        except Exception as e:
            raise EngineError(f"building the {graph} engine failed ({type(e).__name__}: {e}); fix that and run "
                              f"`{command}`") from e
        record = read_record(engine_dir, graph)
    if record is None:
        raise EngineError(f"the engine builder returned without writing {engine_dir}/{graph}.json; run `{command}`")
    return record
