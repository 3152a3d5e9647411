"""ONNX graphs of a model directory -> TensorRT engines, through Polygraphy's TensorRT loaders.

One engine per graph, into engines/<target>/ of the model directory (runtime/engine_record.py has the layout).
Each build: the precision policy rewrites the ONNX (engines/lower_precision.py), TensorRT parses it strongly
typed with the profile derived from the graph's spec (engines/profiles.py), and the engine is written to a
temporary file, fsynced and renamed into place; its record is written last. An interrupted or failed build
therefore leaves no engine and no record behind, and the engines already finished stay usable. A lock file
keeps two processes (two apps building on first use) from building into one folder at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import shutil
import sys
import tempfile
import time
from pathlib import Path

from sam2_trt.core.engine_record import (EngineMismatch, EngineRecord, EngineTarget, check_record, engine_path,
                                   read_record, write_atomically, write_record)
from sam2_trt.core.errors import BackendUnavailable, Sam2TrtError
from sam2_trt.core.metadata import load_metadata, sha256_file
from sam2_trt.core.specs import GRAPHS

from .precision import policy_for
from .profiles import ProfileLimits, attention_scores_bytes, derive_profile, polygraphy_profile


class BuildError(Sam2TrtError):
    BAD_INPUT = 3
    CHECK_FAILED = 4
    MISSING_DEPENDENCY = 5
    BUILD_FAILED = 6

    def __init__(self, message: str, code: int = BAD_INPUT):
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    precision: str = "fp16"
    limits: ProfileLimits = ProfileLimits()
    workspace_gb: float | None = None  # TensorRT's workspace pool limit; None: TensorRT's default (the GPU)
    timing_cache: Path | None = None  # read before and written after each build (faster rebuilds)
    force: bool = False  # rebuild engines that are up to date

    def __post_init__(self):
        policy_for(self.precision)  # validates the name
        if self.workspace_gb is not None and not self.workspace_gb > 0:
            raise ValueError(f"--workspace must be a positive number of GB, got {self.workspace_gb!r}")


def require_tensorrt():
    """The tensorrt and polygraphy modules, or BuildError (exit 5) saying what to install."""
    try:
        from sam2_trt.runtime.backends.tensorrt import import_tensorrt

        trt = import_tensorrt()
    except BackendUnavailable as e:
        raise BuildError(f"cannot build engines here: {e}", BuildError.MISSING_DEPENDENCY) from None
    try:
        import polygraphy  # noqa: F401
    except ImportError:
        raise BuildError("cannot build engines here: polygraphy is not installed (pip install polygraphy)",
                         BuildError.MISSING_DEPENDENCY) from None
    return trt


@contextlib.contextmanager
def build_lock(engine_dir: Path, log):
    engine_dir.mkdir(parents=True, exist_ok=True)
    with open(engine_dir / ".build.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another process building into {engine_dir} ...")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _progress_monitor(trt, log):
    """A TensorRT IProgressMonitor that logs each top-level build phase (the builder is silent otherwise)."""
    if not hasattr(trt, "IProgressMonitor"):
        return None

    class PhaseLog(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self.started = {}

        def phase_start(self, phase_name, parent_phase, num_steps):
            if parent_phase is None:
                self.started[phase_name] = time.monotonic()
                log(f"  {phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name, step):
            return True  # never cancel

        def phase_finish(self, phase_name):
            if phase_name in self.started:
                log(f"  {phase_name}: {time.monotonic() - self.started.pop(phase_name):.0f}s")

    return PhaseLog()


def _lowered_onnx(onnx_path: Path, policy, workdir: Path) -> Path:
    """The graph in the policy's mixed precision, written to `workdir` (the fp32 graph itself when no rewrite)."""
    if policy.low_dtype is None:
        return onnx_path
    import onnx

    from .lower_precision import lower_precision

    lowered = lower_precision(onnx.load(str(onnx_path)), policy)
    out = workdir / onnx_path.name
    large = lowered.ByteSize() > 1.8e9  # protobuf's 2 GB limit: weights go to a side file
    onnx.save(lowered, str(out), save_as_external_data=large, location=f"{onnx_path.stem}.weights" if large else None)
    return out


def build_engine(trt, meta, graph: str, target: EngineTarget, options: BuildOptions, log) -> EngineRecord:
    """Build one graph's engine into target's folder of the model `meta` describes; returns its record (written
    last). `trt` is the tensorrt module (require_tensorrt)."""
    from polygraphy.backend.trt import CreateConfig, EngineBytesFromNetwork, NetworkFromOnnxPath

    spec = GRAPHS[graph]
    policy = policy_for(options.precision)
    profile = derive_profile(spec, meta.image_size, options.limits)
    engine_dir = target.engine_dir(meta.model_dir)
    onnx_path = meta.graph_path(graph)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f".{graph}.", dir=engine_dir) as work:
        source = _lowered_onnx(onnx_path, policy, Path(work))
        pools = {trt.MemoryPoolType.WORKSPACE: int(options.workspace_gb * (1 << 30))} if options.workspace_gb else None
        cache = str(options.timing_cache) if options.timing_cache else None
        config = CreateConfig(tf32=policy.tf32, profiles=[polygraphy_profile(profile)], memory_pool_limits=pools,
                              load_timing_cache=cache if cache and Path(cache).is_file() else None,
                              progress_monitor=_progress_monitor(trt, log))
        network = NetworkFromOnnxPath(str(source), strongly_typed=True)
        try:
            data = EngineBytesFromNetwork(network, config, save_timing_cache=cache)()
        except Exception as e:  # Polygraphy raises its own error types; TensorRT's log above says more
            raise BuildError(f"TensorRT could not build the {graph} engine: {e}", BuildError.BUILD_FAILED) from None
    path = engine_path(engine_dir, graph)
    write_atomically(path, bytes(data))
    record = EngineRecord(
        graph=graph, target=target, onnx_sha256=meta.raw["graphs"][graph]["sha256"], engine_file=path.name,
        engine_bytes=path.stat().st_size, engine_sha256=sha256_file(path), profiles=profile,
        precision_policy=policy.to_json(),
        builder={"workspace_gb": options.workspace_gb, "timing_cache": cache, "seconds": time.monotonic() - start,
                 "limits": dataclasses.asdict(options.limits), "tensorrt": trt.__version__,
                 "python": sys.version.split()[0]})
    write_record(engine_dir, record)
    return record


def build_engines(model_dir, options: BuildOptions = BuildOptions(), graphs=None, device_id: int = 0,
                  log=lambda msg: print(msg, file=sys.stderr, flush=True)) -> Path:
    """Build every graph's engine (or `graphs`) on GPU `device_id` for it and this TensorRT; returns the engine
    folder. Up-to-date engines are kept unless options.force."""
    model_dir = Path(model_dir).absolute()
    meta = load_metadata(model_dir)  # ModelDirError for a wrong directory, before anything else
    meta.verify_graphs()
    if meta.precision != "fp32":
        raise BuildError(f"{model_dir} is an {meta.precision} export for ONNX Runtime on CPUs; TensorRT engines are "
                         f"built from an fp32 export (sam2-trt export without --precision; then sam2-trt build "
                         f"--precision fp16 or bf16)")
    graphs = list(GRAPHS) if graphs is None else list(graphs)
    unknown = [g for g in graphs if g not in GRAPHS]
    if unknown:
        raise BuildError(f"unknown graph(s) {unknown}; choose from {', '.join(GRAPHS)}")
    trt = require_tensorrt()
    from sam2_trt.runtime.backends.tensorrt import current_target

    target = current_target(options.precision, device_id)
    engine_dir = target.engine_dir(model_dir)
    if "memory_attention" in graphs:
        worst = attention_scores_bytes(meta.image_size, options.limits) / 2**30
        log(f"memory attention profile: up to {options.limits.max_objects} objects per call x "
            f"{options.limits.max_slots} slots (one unfused score matrix would be {worst:.1f} GiB)")
    from sam2_trt.runtime.gpu.device import use_device

    try:  # TensorRT builds on the current device: make it device_id for the build, not for the caller afterwards
        with build_lock(engine_dir, log), use_device(device_id):
            _build_missing(trt, meta, graphs, target, engine_dir, options, log)
    finally:  # a first build that failed or was interrupted leaves no empty engine folder behind
        if engine_dir.is_dir() and not any(engine_dir.glob("*.json")):
            shutil.rmtree(engine_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                engine_dir.parent.rmdir()  # engines/, when it is empty now
    return engine_dir


def _build_missing(trt, meta, graphs, target, engine_dir, options, log) -> None:
    for graph in graphs:
        record = read_record(engine_dir, graph)
        if record is not None and not options.force:
            try:
                check_record(record, target, meta.raw["graphs"][graph]["sha256"], engine_dir)
                if record.profiles == derive_profile(GRAPHS[graph], meta.image_size, options.limits):
                    log(f"{graph}: up to date ({engine_path(engine_dir, graph)})")
                    continue
            except EngineMismatch as e:
                log(f"{graph}: rebuilding: {e}")
        log(f"{graph}: building {options.precision} engine for {target.gpu_name} with TensorRT "
            f"{target.tensorrt_version} ...")
        record = build_engine(trt, meta, graph, target, options, log)
        log(f"{graph}: {record.engine_bytes / 2**20:.0f} MiB in {record.builder['seconds']:.0f}s")
