"""benchmarks/gpu_machine.sh's packing: wheels cut into parts that fit one call's carry, joined and verified on the
other side (here with 1 MiB parts instead of 60; nothing is downloaded)."""

import os
import shutil
import subprocess

import numpy as np

from tests.conftest import REPO

SCRIPT = REPO / "benchmarks" / "gpu_machine.sh"


def script(*args, wheels):
    env = {**os.environ, "GPU_WHEELS": str(wheels), "PART_MIB": "1"}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120)


def test_parts_fit_and_join_back_verified(tmp_path):
    rng = np.random.default_rng(0)
    here, there = tmp_path / "here", tmp_path / "there"
    (here / "all").mkdir(parents=True)
    sizes = {"onnxruntime_gpu-1.31.1-cp312-manylinux.whl": 2_600_000, "scipy.whl": 700_000, "small.whl": 200_000,
             "sam2-1.1.0.tar.gz": 10_000}
    for name, size in sizes.items():
        (here / "all" / name).write_bytes(rng.bytes(size))
    proc = script("pack", wheels=here)
    assert proc.returncode == 0, proc.stderr
    parts = sorted(p for p in here.iterdir() if p.name.isdigit())
    assert len(parts) >= 4 and "carry each folder in its own call" in proc.stdout
    for part in parts:
        assert sum(f.stat().st_size for f in part.iterdir()) <= 2**20, part  # one part fits one call
    assert any(f.name.startswith("onnxruntime_gpu") and ".piece" in f.name for p in parts for f in p.iterdir())

    for part in parts[:-1]:  # the machine got every part but the last
        shutil.copytree(part, there / part.name)
    missing = script("join", wheels=there)
    assert missing.returncode != 0 and "carry every part folder" in missing.stderr, missing.stderr
    shutil.copytree(parts[-1], there / parts[-1].name)
    proc = script("join", wheels=there)
    assert proc.returncode == 0, proc.stderr
    for name in sizes:
        assert (there / "joined" / name).read_bytes() == (here / "all" / name).read_bytes(), name


def test_usage():
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "download | receive K | check" in proc.stderr
