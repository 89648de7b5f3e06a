# One command each: `make run` (the study) and `make test` (the whole suite).
# Both create .venv from the pinned requirements on first use.
VENV ?= .venv
PYTHON ?= python3
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
CORES ?= all

.PHONY: help install run test lint bench clean
.DEFAULT_GOAL := help

help:
	@echo "make run    - install into $(VENV) and run the whole study (snakemake --cores $(CORES))"
	@echo "make test   - install into $(VENV) and run the test suite"
	@echo "make lint   - ruff, snakefmt --check, snakemake --lint"
	@echo "make bench  - engine benchmark (batched vs naive training)"

$(VENV)/.installed: envs/requirements.txt envs/requirements-test.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r envs/requirements-test.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

run: install
	snakemake --cores $(CORES) --configfile config/config.yaml

test: install
	pytest

lint: install
	ruff check .
	ruff format --check .
	snakefmt --check Snakefile workflow/Snakefile workflow/rules
	snakemake --lint --configfile config/test.yaml

bench: install
	mkdir -p results/bench
	python bench/engine_bench.py --full-grid --out results/bench/full_grid.json
	python bench/engine_bench.py --dataset spambase --k 1000 --out results/bench/engine.json

clean:
	rm -rf results logs .snakemake
