# The two entry points of the README. Both create .venv on first use and install everything:
# PyTorch pinned to the CPU build 2.13.0 first (a bare `torch` requirement would pull CUDA),
# then this package with its dev extra.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test run lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

run: $(STAMP)
	$(BIN)/nbh query nb201 "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
	$(BIN)/nbh data info

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/perf/nb201_query.py
	$(BIN)/python benchmarks/perf/nb101_query.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
