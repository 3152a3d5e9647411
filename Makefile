# The two commands of the README. Both set up .venv on first use (CPU torch, the official sam2 built
# without build isolation, this package in editable mode) and reuse it afterwards.
#   make demo   `sam2-trt demo`: export sam2.1_hiera_t (official checkpoint; offline: seeded random weights,
#               labelled as such), track the shipped clip, write sam2_trt_demo/overlay.mp4 and an FPS line
#   make test   run the whole test suite (CI runs exactly this)

PYTHON ?= python3
VENV ?= .venv
# torch 2.13 CPU build; override with e.g. TORCH_SPEC="torch==2.13.0" on a CUDA machine.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.sam2-trt-installed

.PHONY: setup demo test

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	# sam2 is an sdist that builds against torch: without --no-build-isolation pip would fetch a CUDA torch
	# to build it, and its torchvision requirement would replace the CPU torch (--no-deps).
	$(BIN)/python -m pip install -q hydra-core iopath tqdm
	SAM2_BUILD_CUDA=0 $(BIN)/python -m pip install -q --no-build-isolation --no-deps sam2==1.1.0
	$(BIN)/python -m pip install -q --no-warn-conflicts onnx -e ".[test,gpu,serve]"
	touch $(STAMP)

demo: setup
	$(BIN)/sam2-trt demo

test: setup
	$(BIN)/python -m pytest -q -ra
