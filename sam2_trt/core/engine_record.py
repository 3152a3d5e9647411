"""TensorRT engines of a model directory: where they live, what each one records, and when one may be used.

Pure bookkeeping (no TensorRT, no GPU), shared by the engine builder (`engines/`, which writes the records) and
the TensorRT backend (which reads them, refuses a mismatch and checks every shape against the profile).

Layout, inside an exported model directory:

    engines/<target>/                   one folder per TensorRT version x GPU x precision, e.g.
                                        trt10.13.3-nvidia-h100-80gb-hbm3-sm90-fp16
        image_encoder.engine            the serialized engine
        image_encoder.json              its EngineRecord (below); written last, so it marks a finished engine
        ...                             the same for the other three graphs
        .build.lock                     held while a process builds into this folder

An engine is usable only when its record exists, names the same TensorRT version, GPU (name and compute
capability) and precision as the folder, was built from the ONNX file whose sha256 the model's metadata
records, and the engine file has the size the record says (a record is written only after its engine file
was renamed into place, so a half-written engine never has one).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import Sam2TrtError
from .files import write_atomically

ENGINES_DIRNAME = "engines"
RECORD_FORMAT = 1
PRECISIONS = ("fp32", "tf32", "fp16", "bf16")
DEFAULT_PRECISION = "fp16"


def check_precision(precision: str, what: str = "precision") -> str:
    """`precision` if it is one of PRECISIONS, else ValueError naming the choices."""
    if precision not in PRECISIONS:
        raise ValueError(f"{what} {precision!r} is not one of {', '.join(PRECISIONS)}")
    return precision


class EngineError(Sam2TrtError):
    """An engine cannot be used as it is (mismatched, missing or outside its profile); the message says how to
    rebuild it."""


class EngineMismatch(EngineError):
    """An engine was built for another TensorRT version, GPU, precision or ONNX graph."""


class ShapeOutsideProfile(EngineError, ValueError):
    """A tensor's shape is outside the optimization profile its engine was built with."""


@dataclass(frozen=True)
class EngineTarget:
    """What an engine is bound to: TensorRT refuses (or mis-runs) an engine from another version or GPU."""

    tensorrt_version: str  # tensorrt.__version__, e.g. "10.13.3.9"
    gpu_name: str  # cudaDeviceProp.name, e.g. "NVIDIA H100 80GB HBM3"
    compute_capability: tuple  # (major, minor)
    precision: str  # one of PRECISIONS

    def __post_init__(self):
        check_precision(self.precision)

    @property
    def folder_name(self) -> str:
        gpu = re.sub(r"[^a-z0-9]+", "-", self.gpu_name.lower()).strip("-") or "gpu"
        major, minor = self.compute_capability
        version = re.sub(r"[^0-9A-Za-z.]+", "", self.tensorrt_version)
        return f"trt{version}-{gpu}-sm{major}{minor}-{self.precision}"

    def engine_dir(self, model_dir) -> Path:
        return Path(model_dir) / ENGINES_DIRNAME / self.folder_name


@dataclass(frozen=True)
class TensorProfile:
    """min/opt/max shape of one engine input (the optimization profile TensorRT was given)."""

    min: tuple
    opt: tuple
    max: tuple

    def contains(self, shape) -> bool:
        return len(shape) == len(self.min) and all(lo <= s <= hi for s, lo, hi in zip(shape, self.min, self.max))


@dataclass(frozen=True)
class EngineRecord:
    graph: str
    target: EngineTarget
    onnx_sha256: str  # of the model directory's <graph>.onnx the engine was built from
    engine_file: str  # name inside the engine folder
    engine_bytes: int
    engine_sha256: str
    profiles: dict  # input name -> TensorProfile (one optimization profile)
    precision_policy: dict  # what ran in reduced precision and what stayed fp32, with its tolerances
    builder: dict = field(default_factory=dict)  # workspace, timing cache, limits, build seconds, versions

    # -- JSON ---------------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        d = asdict(self)
        d["format"] = RECORD_FORMAT
        d["target"]["compute_capability"] = list(self.target.compute_capability)
        d["profiles"] = {k: {"min": list(p.min), "opt": list(p.opt), "max": list(p.max)}
                         for k, p in self.profiles.items()}
        return d

    @classmethod
    def from_json(cls, d: dict) -> "EngineRecord":
        if d.get("format") != RECORD_FORMAT:
            raise EngineError(f"engine record format {d.get('format')!r} is not {RECORD_FORMAT}")
        t = d["target"]
        target = EngineTarget(t["tensorrt_version"], t["gpu_name"], tuple(t["compute_capability"]), t["precision"])
        profiles = {k: TensorProfile(tuple(p["min"]), tuple(p["opt"]), tuple(p["max"]))
                    for k, p in d["profiles"].items()}
        return cls(d["graph"], target, d["onnx_sha256"], d["engine_file"], int(d["engine_bytes"]),
                   d["engine_sha256"], profiles, d.get("precision_policy", {}), d.get("builder", {}))

    # -- checks -------------------------------------------------------------------------------------------
    def check_shape(self, name: str, shape, command: str = "sam2-trt build MODEL_DIR --force") -> None:
        """ShapeOutsideProfile naming the tensor, the axis, the range and the rebuild command (`command` plus
        the --max-* options that would fit), unless `shape` fits the profile."""
        profile = self.profiles.get(name)
        shape = tuple(int(s) for s in shape)
        if profile is None or profile.contains(shape):
            return
        from .specs import GRAPHS

        axes = GRAPHS[self.graph].tensor(name).shape
        if len(shape) != len(profile.min):
            raise ShapeOutsideProfile(f"{self.graph} engine: input {name!r} has shape {shape}, expected "
                                      f"{len(profile.min)} dimensions {tuple(axes)}")
        bad = [(axes[i], s, lo, hi) for i, (s, lo, hi) in enumerate(zip(shape, profile.min, profile.max))
               if not lo <= s <= hi]
        what = "; ".join(f"{axis} = {s} is outside {lo}..{hi}" for axis, s, lo, hi in bad)
        option = {"objects": "--max-objects", "embeds": "--max-objects", "points": "--max-points",
                  "slots": "--max-slots", "pointers": "--max-pointers", "images": "--max-images"}
        flags = {option[a]: s for a, s, lo, hi in bad if a in option and s > hi}
        fix = f"rebuild the engines for it: `{command}{''.join(f' {k} {v}' for k, v in flags.items())}`" \
            if flags else "the runtime never sends this; it is a bug to report"
        raise ShapeOutsideProfile(f"{self.graph} engine: input {name!r} shape {shape}: {what} (the range the engine "
                                  f"was built for); {fix}")


def record_path(engine_dir, graph: str) -> Path:
    return Path(engine_dir) / f"{graph}.json"


def engine_path(engine_dir, graph: str) -> Path:
    return Path(engine_dir) / f"{graph}.engine"


def write_record(engine_dir, record: EngineRecord) -> None:
    """Atomically: a record exists only complete."""
    write_atomically(record_path(engine_dir, record.graph), json.dumps(record.to_json(), indent=1).encode())


def read_record(engine_dir, graph: str) -> EngineRecord | None:
    """The record of `graph` in `engine_dir`, None when there is none (not built, or the build never finished)."""
    path = record_path(engine_dir, graph)
    if not path.is_file():
        return None
    try:
        return EngineRecord.from_json(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, EngineError) as e:
        raise EngineMismatch(f"{path} is not a valid engine record ({type(e).__name__}: {e}); delete "
                             f"{Path(engine_dir)} and rebuild with `sam2-trt build`") from None


def build_command(model_dir, precision: str) -> str:
    return f"sam2-trt build {model_dir} --precision {precision}"


def check_record(record: EngineRecord, target: EngineTarget, onnx_sha256: str, engine_dir) -> None:
    """EngineMismatch saying what differs and how to rebuild, unless `record` may run as `target`."""
    model_dir = Path(engine_dir).parent.parent
    rebuild = (f"rebuild with `{build_command(model_dir, target.precision)} --force`, or delete {engine_dir} "
               f"to have it rebuilt on first use")
    have, want = record.target, target
    problems = []
    if have.tensorrt_version != want.tensorrt_version:
        problems.append(f"it was built with TensorRT {have.tensorrt_version}, this is TensorRT {want.tensorrt_version}")
    if tuple(have.compute_capability) != tuple(want.compute_capability) or have.gpu_name != want.gpu_name:
        problems.append(f"it was built for {have.gpu_name} (sm{''.join(map(str, have.compute_capability))}), this GPU "
                        f"is {want.gpu_name} (sm{''.join(map(str, want.compute_capability))})")
    if have.precision != want.precision:
        problems.append(f"it is {have.precision}, {want.precision} was asked for")
    if record.onnx_sha256 != onnx_sha256:
        problems.append(f"it was built from another {record.graph}.onnx (sha256 {record.onnx_sha256[:12]}..., the "
                        f"model directory has {onnx_sha256[:12]}...: the model was re-exported)")
    if record.graph != Path(record.engine_file).stem:
        problems.append(f"its record names engine file {record.engine_file!r} for graph {record.graph!r}")
    path = Path(engine_dir) / record.engine_file
    if not path.is_file():
        problems.append(f"its engine file {path} is missing")
    elif path.stat().st_size != record.engine_bytes:
        problems.append(f"its engine file {path} has {path.stat().st_size} bytes, the record says "
                        f"{record.engine_bytes} (changed or copied incompletely)")
    if problems:
        raise EngineMismatch(f"the {record.graph} engine in {engine_dir} cannot be used: {'; '.join(problems)}; "
                             f"{rebuild}")


def built_precisions(model_dir, target: EngineTarget) -> list:
    """Precisions with an engine folder for this TensorRT version and GPU (complete or not), sorted."""
    root = Path(model_dir) / ENGINES_DIRNAME
    found = []
    for p in PRECISIONS:
        other = EngineTarget(target.tensorrt_version, target.gpu_name, target.compute_capability, p)
        if (root / other.folder_name).is_dir():
            found.append(p)
    return found


def choose_precision(model_dir, target_without_precision: EngineTarget, requested: str | None) -> str:
    """The precision to run: the one asked for; else the only one built for this TensorRT and GPU; else the
    default (built on first use). Several built and none asked for is ambiguous: EngineError listing them."""
    if requested is not None:
        return check_precision(requested)
    built = built_precisions(model_dir, target_without_precision)
    if len(built) == 1:
        return built[0]
    if not built:
        return DEFAULT_PRECISION
    raise EngineError(f"{model_dir} has TensorRT engines in several precisions for this GPU ({', '.join(built)}); "
                      f"pass precision= one of them to load()")
