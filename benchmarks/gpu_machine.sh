#!/usr/bin/env bash
# Verify a lent GPU machine that cannot reach a package index (README: "Verifying a GPU machine").
#
#   here (with PyPI):  bash benchmarks/gpu_machine.sh download   # wheels -> .gpu_wheels/1 .. N, each <= 60 MiB
#   there, per part:   bash benchmarks/gpu_machine.sh receive K  # carrying .gpu_wheels/K (one part per call)
#   there, last:       bash benchmarks/gpu_machine.sh check      # join, verify, install, sam2-trt bench gpu-check
#
# The lent machine (../shared/ENVIRONMENT.md): Python 3.12, torch 2.11 (CUDA 13) with its nvidia-* libraries
# (cuDNN 9 included), cuda-bindings, NVRTC, onnx, onnxruntime (CPU build), Triton, compute-sanitizer; no network.
# It lacks what the steps need: onnxruntime-gpu (255 MB: it travels split), the official sam2 (an sdist, built
# there against the installed torch) and its pure-Python dependencies, OpenCV, SciPy, Pillow and pytest. A call
# carries at most 64 MiB with the working tree, so the files are packed into parts of at most PART_MIB (60) MiB,
# a file larger than that in pieces that `check` joins and verifies against SHA256SUMS.
#
# `pack` and `join` are the packing alone (tests/test_gpu_machine.py runs them on small files, PART_MIB=1).
set -euo pipefail

cd "$(dirname "$0")/.."
WHEELS=${GPU_WHEELS:-.gpu_wheels}
PART_MIB=${PART_MIB:-60}
PY=${PYTHON:-python3}
# Exact versions seen working together (this repository's test environment); the lent machine is cp312 x86-64.
BINARY=(onnxruntime-gpu==1.31.1 opencv-python-headless==5.1.0.95 scipy==1.17.1 pillow==13.0.0 hydra-core==1.3.8
        omegaconf==2.3.1 PyYAML==6.0.4 portalocker==4.4.2 tqdm==4.70.1 pytest==9.2.0 pluggy==1.7.0 iniconfig==2.3.1
        Pygments==2.21.0 polygraphy==0.53.6 setuptools==84.2.1)
SOURCE=(sam2==1.1.0 iopath==0.1.10 antlr4-python3-runtime==4.9.3)  # sdists only (pure Python; sam2 builds there)

download() {
    rm -rf "$WHEELS" && mkdir -p "$WHEELS/all"
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux2014_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 \
        -d "$WHEELS/all" "${BINARY[@]}"
    "$PY" -m pip download -q --no-deps --no-binary=:all: -d "$WHEELS/all" "${SOURCE[@]}"
    pack
}

# .gpu_wheels/all/* -> .gpu_wheels/1 .. N, each holding at most PART_MIB MiB (largest first, first fit); a file
# larger than a part is cut into PART_MIB pieces (NAME.piece000, ...). Part 1 also holds SHA256SUMS.
pack() {
    "$PY" - "$WHEELS" "$PART_MIB" <<'EOF'
import hashlib, shutil, sys
from pathlib import Path

root, limit = Path(sys.argv[1]), int(sys.argv[2]) * 2**20
files = sorted((p for p in (root / "all").iterdir() if p.is_file()), key=lambda p: -p.stat().st_size)
sums = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in files]
pieces = []  # (name, bytes)
for p in files:
    data = p.read_bytes()
    if len(data) <= limit:
        pieces.append((p.name, data))
    else:
        pieces += [(f"{p.name}.piece{k:03d}", data[o:o + limit]) for k, o in enumerate(range(0, len(data), limit))]
sums_bytes = "".join(sums).encode()
parts = [[("SHA256SUMS", sums_bytes)]]
for name, data in pieces:  # first fit, largest first
    part = next((q for q in parts if sum(len(d) for _, d in q) + len(data) <= limit), None)
    if part is None:
        parts.append(part := [])
    part.append((name, data))
for k, part in enumerate(parts, 1):
    folder = root / str(k)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for name, data in part:
        (folder / name).write_bytes(data)
    print(f"{folder}: {sum(len(d) for _, d in part) / 2**20:.1f} MiB, {len(part)} file(s)")
print(f"{len(parts)} part(s): carry each folder in its own call (the last one can run `check` in the same call)")
EOF
}

# .gpu_wheels/1 .. N -> .gpu_wheels/joined: pieces joined, every file checked against SHA256SUMS.
join() {
    rm -rf "$WHEELS/joined" && mkdir -p "$WHEELS/joined"
    "$PY" - "$WHEELS" <<'EOF'
import hashlib, sys
from pathlib import Path

root = Path(sys.argv[1])
parts = sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
sums_file = root / "1" / "SHA256SUMS"
if not sums_file.is_file():
    sys.exit(f"{sums_file} is missing: carry {root}/1 (every part folder must arrive)")
want = dict(line.split()[::-1] for line in sums_file.read_text().splitlines() if line.strip())
found = {p.name: p for part in parts for p in part.iterdir()}
for name, digest in want.items():
    pieces = sorted(n for n in found if n.startswith(f"{name}.piece"))
    data = found[name].read_bytes() if name in found else b"".join(found[n].read_bytes() for n in pieces)
    if hashlib.sha256(data).hexdigest() != digest:
        have = "no part has it" if not (name in found or pieces) else f"{len(pieces)} piece(s) arrived"
        sys.exit(f"{name} is incomplete or damaged ({have}): carry every part folder of {root} again")
    (root / "joined" / name).write_bytes(data)
print(f"{len(want)} file(s) joined and verified in {root / 'joined'}")
EOF
}

install() {
    join
    local found=(--no-index --find-links "$WHEELS/joined")
    if ! "$PY" -c 'import setuptools, sys; sys.exit(int(setuptools.__version__.split(".")[0]) < 68)' 2>/dev/null; then
        "$PY" -m pip install -q "${found[@]}" setuptools  # this package's build needs setuptools >= 68
    fi
    # onnxruntime-gpu installs the same `onnxruntime` package as the CPU build: remove that one first
    if "$PY" -m pip show -q onnxruntime >/dev/null 2>&1; then "$PY" -m pip uninstall -q -y onnxruntime; fi
    # --no-build-isolation: the sdists (antlr4, iopath) build with the installed setuptools, not one from an index
    "$PY" -m pip install -q --no-deps --no-build-isolation "${found[@]}" onnxruntime-gpu opencv-python-headless scipy pillow PyYAML \
        antlr4-python3-runtime omegaconf hydra-core portalocker iopath tqdm pytest pluggy iniconfig Pygments polygraphy
    # the official code, built against the installed torch; without its CUDA extension (the tests' stand-in
    # labels connected components with SciPy, see tests/official_reference.py)
    SAM2_BUILD_CUDA=0 "$PY" -m pip install -q --no-deps --no-build-isolation "${found[@]}" sam2==1.1.0
    "$PY" -m pip install -q --no-deps --no-build-isolation -e .
}

check() {
    install
    local out=${OUT:-benchmarks/results}
    "$PY" -m sam2_trt.cli bench gpu-check --results "$out"
}

case "${1:-}" in
    download) download ;;
    pack) pack ;;
    join) join ;;
    receive) echo "part ${2:?which part} is in $WHEELS/$2: $(ls "$WHEELS/$2" | wc -l) file(s)" ;;
    install) install ;;
    check) check ;;
    *) echo "usage: $0 download | receive K | check   (and pack | join | install on their own)" >&2; exit 2 ;;
esac
