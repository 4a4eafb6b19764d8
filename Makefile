# Two commands: `make demo` (set up, fetch the embedded model, run the demo sweep on the CPU) and `make test`
# (lint, the import-layer contracts, then the test suite).
VENV   ?= .venv
PYTHON ?= python3
# torch 2.13.0, installed before anything that depends on torch (a range would let pip pick a newer CUDA build).
# On Linux, PyPI's torch==2.13.0 is the CUDA build (GBs); pip takes the CPU build where it has one at hand (a
# find-links folder), else name PyTorch's CPU index: `make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu`.
# GPU users: `make demo TORCH=` after installing their own CUDA torch into the venv.
TORCH  ?= torch==2.13.0
TORCH_INDEX ?=
BIN    := $(VENV)/bin

.PHONY: setup demo test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(if $(TORCH),$(BIN)/python -m pip install --quiet $(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)))
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: setup
	$(BIN)/harness models pull smollm2-135m
	$(BIN)/harness sweep experiments/demo.yaml

test: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n auto --maxprocesses 4 --dist loadfile

clean:
	rm -rf $(VENV) build *.egg-info results/*.duckdb results/optuna-journal.log results/artifacts results/cache
