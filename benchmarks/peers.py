"""The other SAM 2 ONNX Runtime packages on PyPI, measured beside ours by `sam2-trt bench image`.

    sam2-onnx 0.3.12     image encoder + decoder, its own numpy/PIL predictor (OnnxImagePredictor)
    samexporter 0.5.0    export scripts + a cv2 predictor for SAM, SAM 2, SAM 3 (SegmentAnything2ONNX)

A peer is installed for the benchmark only, never as a dependency of sam2-trt: its wheel is fetched with pip
(`--no-deps`: the benchmark's environment already has what its code imports) and unpacked into
$SAM2_TRT_CACHE/peers/<name>-<version>/, which the measuring child puts on sys.path. Its exporter runs in a
child process on the benchmark's checkpoint (the same weights as ours and the official predictor's), once per
checkpoint (cached beside the wheel). Anything that fails is a reason, and the peer is skipped with it.

Each peer's own predictor code runs the measured calls; only its ONNX Runtime sessions are opened with the
benchmark's session options (thread count, graph optimization level), so that both sides run ONNX Runtime the
same way (`session_options`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Peer:
    name: str  # PyPI distribution
    version: str
    module: str  # its import name
    python: str | None  # --python-version for pip download when its metadata excludes this interpreter
    sizes: tuple  # image sizes its exporter can produce (both export at the config's 1024 px)

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


PEERS = {p.name: p for p in (
    # sam2-onnx declares Python >= 3.12 for its `type X = ...` aliases only (types.py); its code runs on 3.11
    # once they are plain assignments (ENVIRONMENT.md)
    Peer("sam2-onnx", "0.3.12", "sam2_onnx", "3.12", (1024,)),
    Peer("samexporter", "0.5.0", "samexporter", None, (1024,)),
)}

# samexporter's --model_type names for the official configs
_SAMEXPORTER_TYPES = {"sam2.1_hiera_t": "sam2.1_hiera_tiny", "sam2.1_hiera_s": "sam2.1_hiera_small",
                      "sam2.1_hiera_b+": "sam2.1_hiera_base_plus", "sam2.1_hiera_l": "sam2.1_hiera_large",
                      "sam2_hiera_t": "sam2_hiera_tiny", "sam2_hiera_s": "sam2_hiera_small",
                      "sam2_hiera_b+": "sam2_hiera_base_plus", "sam2_hiera_l": "sam2_hiera_large"}


class PeerUnavailable(Exception):
    """A peer cannot be installed, exported or run here; the message is the reason recorded in the results."""


def _cache() -> Path:
    from sam2_trt.export.download import cache_root

    return cache_root() / "peers"


def _rewrite_type_aliases(package: Path) -> None:
    """`type X = Y` (Python 3.12 syntax) -> `X = Y` in every module of an unpacked package."""
    for path in package.rglob("*.py"):
        text = path.read_text()
        fixed = re.sub(r"^type (\w+) = ", r"\1 = ", text, flags=re.M)
        if fixed != text:
            path.write_text(fixed)


def install(peer: Peer) -> Path:
    """The folder to put on sys.path for `peer` (fetched and unpacked once); PeerUnavailable with pip's reason."""
    folder = _cache() / f"{peer.name}-{peer.version}"
    if (folder / ".complete").is_file():
        return folder
    wheels = folder.with_name(folder.name + ".wheel")
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(wheels),
           f"{peer.name}=={peer.version}"] + (["--python-version", peer.python] if peer.python else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(wheels.glob("*.whl"))
    if proc.returncode != 0 or not found:
        lines = [line for line in (proc.stderr or proc.stdout).splitlines() if not line.startswith("WARNING")]
        raise PeerUnavailable(f"pip could not fetch {peer.label}: {' '.join(lines[-2:]) or 'no wheel'}")
    with zipfile.ZipFile(found[0]) as z:
        z.extractall(folder)
    _rewrite_type_aliases(folder / peer.module)
    (folder / ".complete").write_text(found[0].name + "\n")
    return folder


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export(peer: Peer, model) -> Path:
    """`peer`'s export of `model` (a benchmarks.models.BenchModel: its checkpoint and image size), made by the
    peer's own exporter in a child process once per checkpoint; PeerUnavailable with the reason."""
    if model.image_size not in peer.sizes:
        raise PeerUnavailable(f"{peer.label} exports only at {peer.sizes} px (its config's size), not "
                              f"{model.image_size}")
    path = install(peer)
    digest = _sha256(Path(model.checkpoint))[:16]
    out = _cache() / "exports" / f"{peer.name}-{peer.version}-{model.name}-{model.image_size}px-{digest}"
    if (out / ".complete").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    if peer.name == "sam2-onnx":
        cmd = ["-m", "sam2_onnx.export_onnx", "--config", model.config, "--checkpoint", str(model.checkpoint),
               "--output-dir", str(out)]
    else:
        cmd = ["-m", "samexporter.export_sam2", "--checkpoint", str(model.checkpoint),
               "--output_encoder", str(out / "encoder.onnx"), "--output_decoder", str(out / "decoder.onnx"),
               "--model_type", _SAMEXPORTER_TYPES[model.name]]
    print(f"exporting {model.name} {model.image_size}px with {peer.label} into {out} (once)", file=sys.stderr,
          flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, *cmd], capture_output=True, text=True, env=env, cwd=out)
    if proc.returncode != 0 or not (out / "encoder.onnx").is_file():
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise PeerUnavailable(f"{peer.label}'s exporter failed on {model.name}: {tail}")
    (out / ".complete").write_text(json.dumps({"checkpoint": str(model.checkpoint)}) + "\n")
    return out


def session_options(threads: int):
    """The ONNX Runtime session options every ONNX Runtime side of the benchmark uses (ours: the backend's own,
    runtime/backends/onnxruntime_cpu.session_options)."""
    from sam2_trt.runtime.backends.onnxruntime_cpu import session_options as ours

    return ours(threads)


class PeerPredictor:
    """One peer's predictor on its export, with the image benchmark's calls: set_image(image [H,W,3] uint8 RGB),
    predict(point [1,2] float32 (x, y), label [1] int32) -> masks [M,H,W] bool (M = 3 for sam2-onnx: its three
    multimask outputs; 1 for samexporter: the best one, which is all its predictor returns)."""

    def __init__(self, peer: Peer, path: Path, export_dir: Path, threads: int):
        sys.path.insert(0, str(path))
        opts = session_options(threads)
        self.peer = peer
        if peer.name == "sam2-onnx":
            from sam2_onnx import OnnxImagePredictor, Sam2OnnxSession

            self.predictor = OnnxImagePredictor(Sam2OnnxSession(export_dir, session_options=opts))
        else:
            import onnxruntime as ort
            from samexporter.sam2_onnx import SegmentAnything2ONNX

            self.predictor = SegmentAnything2ONNX(str(export_dir / "encoder.onnx"), str(export_dir / "decoder.onnx"))
            for part, name in ((self.predictor.encoder, "encoder"), (self.predictor.decoder, "decoder")):
                part.session = ort.InferenceSession(str(export_dir / f"{name}.onnx"), opts,
                                                    providers=["CPUExecutionProvider"])
        self.embedding = None

    def set_image(self, image):
        if self.peer.name == "sam2-onnx":
            self.predictor.set_image(image)
        else:  # its encoder converts BGR -> RGB (cv2 convention): hand it BGR so that it sees our RGB image
            with _quiet():
                self.embedding = self.predictor.encode(image[:, :, ::-1])

    def predict(self, point, label):
        """(masks [M, H, W] bool, their predicted IoUs [M] or None): sam2-onnx's three, samexporter's best alone
        (it returns no scores)."""
        if self.peer.name == "sam2-onnx":
            masks, scores, _ = self.predictor.predict(point_coords=point, point_labels=label, multimask_output=True)
            return _stack(masks > 0), np.asarray(scores, np.float32).ravel()
        prompt = [{"type": "point", "data": [float(point[0, 0]), float(point[0, 1])], "label": int(label[0])}]
        with _quiet():
            masks = self.predictor.predict_masks(self.embedding, prompt)
        return _stack(np.asarray(masks[0]) > 0), None


def _stack(masks: np.ndarray) -> np.ndarray:
    """Masks of any leading shape ([H, W], [1, M, H, W], ...) -> [M, H, W]."""
    masks = np.asarray(masks)
    return masks.reshape(-1, *masks.shape[-2:])


class _quiet:
    """samexporter prints its inference time on every call: send stdout to stderr while it runs (the child's
    stdout carries its answers)."""

    def __enter__(self):
        self._stdout = sys.stdout
        sys.stdout = sys.stderr

    def __exit__(self, *exc):
        sys.stdout = self._stdout
