# Two entry points, both self-installing on a fresh machine (Python 3.11, pip, make):
#   make demo   -> installs umrf into .venv and runs `umrf demo`
#   make test   -> installs umrf[dev] into .venv and runs the whole test suite (notebooks included)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.umrf-dev-installed
PYTEST_WORKERS ?= 2

.PHONY: demo test install lint bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/umrf demo

test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --nbmake --doctest-modules umrf tests notebooks

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done
