# One command each: `make run` (the study) and `make test` (the whole suite).
# Both create .venv from the pinned requirements on first use.
VENV ?= .venv
PYTHON ?= python3
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
CORES ?= all

.PHONY: help install run test lint bench bench-gpu gpu-check clean
.DEFAULT_GOAL := help

help:
	@echo "make run    - install into $(VENV) and run the whole study (snakemake --cores $(CORES))"
	@echo "make test   - install into $(VENV) and run the test suite"
	@echo "make lint   - ruff, snakefmt --check, snakemake --lint"
	@echo "make bench  - engine benchmark (batched vs naive, vs torch.func) and the whole study vs its FLOP floor"
	@echo "make bench-gpu - the study-level and engine lines on cuda (needs a CUDA build of torch)"
	@echo "make gpu-check - the CUDA path on this machine's GPU: gpu tests, test study, bench-gpu lines"

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

BENCH_REPEATS ?= 3

bench: install
	mkdir -p results/bench-engine
	python bench/engine_bench.py --full-grid --out results/bench-engine/full_grid.json
	python bench/engine_bench.py --dataset spambase --k 1000 --out results/bench-engine/engine.json
	python bench/study_bench.py --engine --k 1000 --device cpu --compile --repeats $(BENCH_REPEATS)
	python bench/study_bench.py --study --device cpu --repeats $(BENCH_REPEATS)

# training.device: auto picks cuda in every job; the GEMM peak is then torch.mm on cuda.
bench-gpu: install
	python -c "import torch, sys; sys.exit(not torch.cuda.is_available())" \
		|| { echo "bench-gpu: error: torch sees no CUDA device"; exit 1; }
	python bench/study_bench.py --engine --k 1000 --device cuda --compile --repeats $(BENCH_REPEATS)
	python bench/study_bench.py --study --device cuda --repeats $(BENCH_REPEATS)

# One command for the first GPU that is lent (under 8 minutes); one line without CUDA.
gpu-check: install
	python bench/gpu_check.py

clean:
	rm -rf results logs .snakemake
