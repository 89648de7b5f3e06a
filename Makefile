# One command each: `make run` (the study) and `make test` (the whole suite).
# Both create .venv from the pinned requirements on first use.
VENV ?= .venv
PYTHON ?= python3
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
CORES ?= all
# Snakemake 9 creates its source cache in $XDG_CACHE_HOME (else ~/.cache) before it reads
# anything of ours: where that cannot be written (a read-only HOME), keep it in .cache/ here
# (with matplotlib's, which warns in every figures job otherwise).
CACHE_OK := $(shell d="$${XDG_CACHE_HOME:-$$HOME/.cache}"; mkdir -p "$$d" 2>/dev/null && test -w "$$d" && echo y)
ifneq ($(CACHE_OK),y)
export XDG_CACHE_HOME := $(abspath .cache)
export MPLCONFIGDIR := $(abspath .cache)/matplotlib
endif

.PHONY: help install run budget report test lint bench bench-gpu bench-scale gpu-check clean
.DEFAULT_GOAL := help

help:
	@echo "make run    - install into $(VENV) and run the whole study (snakemake --cores $(CORES); ARGS=-n: a dry run)"
	@echo "make budget - the budget curve's four studies (config/budget.yaml), then its table and figure"
	@echo "make report - results/paper/report.html, tables and figures brought up to date first"
	@echo "make test   - install into $(VENV) and run the test suite"
	@echo "make lint   - ruff, snakefmt --check, snakemake --lint"
	@echo "make bench  - engine benchmark (batched vs naive, vs torch.func) and the whole study vs its FLOP floor"
	@echo "make bench-gpu - the study-level and engine lines on cuda (needs a CUDA build of torch)"
	@echo "make bench-scale - results stages on synthetic sweeps 1x/10x/100x the study (SCALES=1 10)"

	@echo "make gpu-check - the CUDA path on this machine's GPU: gpu tests, test study, bench-gpu lines"

$(VENV)/.installed: envs/requirements.txt envs/requirements-test.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r envs/requirements-test.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

run: install
	snakemake --cores $(CORES) --configfile config/config.yaml $(ARGS)

# The budget curve (config/budget.yaml): the paper's grids, halving, random and Sobol samples.
budget: install
	snakemake --cores $(CORES) --configfile config/config.yaml $(ARGS)
	snakemake --cores $(CORES) --configfile config/budget.yaml config/budget_halving.yaml $(ARGS)
	snakemake --cores $(CORES) --configfile config/budget.yaml config/budget_random.yaml $(ARGS)
	snakemake --cores $(CORES) --configfile config/budget.yaml $(ARGS)

report: install
	snakemake report --cores $(CORES) --configfile config/config.yaml

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

SCALES ?= 1 10 100

# Synthetic shards with the real schema; time and peak RSS of aggregate, confirm's
# selection, tables and figures per scale, then their growth exponents.
bench-scale: install
	python bench/scale_bench.py --scales $(SCALES)

# One command for the first GPU that is lent (under 8 minutes); one line without CUDA.
gpu-check: install
	python bench/gpu_check.py

clean:
	rm -rf results logs .snakemake
