"""Shared fixtures: small seeded random-weight checkpoints in the official format, and a CLI runner."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.require_gpu import pytest_runtest_makereport  # noqa: F401  (SAM2_TRT_REQUIRE_GPU=1: no silent skips)

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args, timeout=1800, env=None, **kwargs):
    """Run `sam2-trt ARGS` in a fresh interpreter; returns the CompletedProcess (text output)."""
    return subprocess.run([sys.executable, "-m", "sam2_trt.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env={**os.environ, **(env or {})}, **kwargs)


@pytest.fixture(scope="session")
def checkpoint_factory(tmp_path_factory):
    """checkpoint_factory("sam2.1_hiera_t", seed=0) -> path of a cached random checkpoint file."""
    cache = {}

    def make(name: str, seed: int = 0) -> Path:
        if (name, seed) not in cache:
            from sam2_trt.export.configs import resolve_model_name
            from sam2_trt.export.random_weights import write_random_checkpoint

            path = tmp_path_factory.mktemp("ckpt") / f"{name}_seed{seed}.pt"
            cache[name, seed] = write_random_checkpoint(resolve_model_name(name), path, seed)
        return cache[name, seed]

    return make


@pytest.fixture(scope="session")
def tiny_checkpoint(checkpoint_factory) -> Path:
    return checkpoint_factory("sam2.1_hiera_t")


def export_tiny(checkpoint, tmp_path_factory, image_size: int) -> Path:
    from sam2_trt.export.exporter import export_model

    out = tmp_path_factory.mktemp("models") / f"tiny{image_size}"
    export_model("sam2.1_hiera_t", out, checkpoint=checkpoint, image_size=image_size, log=lambda m: None)
    return out


@pytest.fixture(scope="session")
def tiny1024_dir(tiny_checkpoint, tmp_path_factory):
    """sam2.1_hiera_t (seeded random weights) exported at 1024: the official image predictor only runs at 1024."""
    return export_tiny(tiny_checkpoint, tmp_path_factory, 1024)


@pytest.fixture(scope="session")
def official_tiny(tiny_checkpoint):
    """The official SAM2Base for the same checkpoint, built as build_sam2 does by default."""
    from tests.official_reference import build_official

    return build_official("configs/sam2.1/sam2.1_hiera_t.yaml", tiny_checkpoint)


@pytest.fixture(scope="session")
def tiny512_dir(tiny_checkpoint, tmp_path_factory):
    """sam2.1_hiera_t exported at 512: fast, for tests that are not about parity with the 1024-only image predictor."""
    return export_tiny(tiny_checkpoint, tmp_path_factory, 512)


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """A short synthetic clip as a folder of <int>.jpg frames (CLIP_FRAMES frames of CLIP_H x CLIP_W)."""
    from tests.runtime.video_reference import write_jpeg_video

    return write_jpeg_video(tmp_path_factory.mktemp("clip") / "frames")


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory) -> Path:
    """The distribution's wheel, built once from a copy of this checkout's sources (no build isolation:
    offline-safe; a copy, because setuptools reuses a build/ folder, which may hold files deleted since)."""
    import shutil

    src, out = tmp_path_factory.mktemp("src") / "sam2-trt", tmp_path_factory.mktemp("wheel")
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info",
                                                            "__pycache__", ".pytest_cache", "models"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(out), str(src)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = out.glob("sam2_trt-*.whl")
    return wheel
