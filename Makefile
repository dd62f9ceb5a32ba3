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

# The quickstart suite: DARTS and beta-DARTS on NB201 CIFAR-10, 2 seeds x 100 epochs at the
# collapse preset (about 20 minutes on 2 cores, and the same job on a GPU machine), then an HTML report.
run: $(STAMP)
	$(BIN)/nbh sweep benchmarks/suites/quickstart.yaml --preset collapse --workers 2 --report reports/quickstart.html

lint: $(STAMP)
	$(BIN)/ruff check .

# xautodl (the NB201 authors' code) is the reference of the NB201 search benchmark; its metadata
# pins a numpy that does not exist for this Python, and the modules used need only torch. The
# NB-1Shot1 authors' code is not on PyPI: NB1SHOT1_PEER points at a checkout of it.
bench: $(STAMP)
	$(BIN)/pip install --quiet --no-deps xautodl==1.0.0
	$(BIN)/python benchmarks/perf/nb201_query.py
	$(BIN)/python benchmarks/perf/nb101_query.py
	$(BIN)/python benchmarks/perf/nb201_search.py
	$(BIN)/python benchmarks/perf/gdas_step.py
	$(BIN)/python benchmarks/perf/gpu_step.py
	$(BIN)/python benchmarks/perf/tracking_cost.py
	@if [ -n "$$NB1SHOT1_PEER" ]; then $(BIN)/python benchmarks/perf/nb1shot1_search.py; \
	else echo "skipping benchmarks/perf/nb1shot1_search.py: set NB1SHOT1_PEER to a checkout of automl/nasbench-1shot1"; fi

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
