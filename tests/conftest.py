"""Shared fixtures: small seeded random-weight checkpoints in the official format, and a CLI runner."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args, timeout=1800, env=None, **kwargs):
    """Run `sam2-trt ARGS` in a fresh interpreter; returns the CompletedProcess (text output)."""
    return subprocess.run([sys.executable, "-m", "sam2_export.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env={**os.environ, **(env or {})}, **kwargs)


@pytest.fixture(scope="session")
def checkpoint_factory(tmp_path_factory):
    """checkpoint_factory("sam2.1_hiera_t", seed=0) -> path of a cached random checkpoint file."""
    cache = {}

    def make(name: str, seed: int = 0) -> Path:
        if (name, seed) not in cache:
            from sam2_export.configs import resolve_model_name
            from sam2_export.random_weights import write_random_checkpoint

            path = tmp_path_factory.mktemp("ckpt") / f"{name}_seed{seed}.pt"
            cache[name, seed] = write_random_checkpoint(resolve_model_name(name), path, seed)
        return cache[name, seed]

    return make


@pytest.fixture(scope="session")
def tiny_checkpoint(checkpoint_factory) -> Path:
    return checkpoint_factory("sam2.1_hiera_t")
