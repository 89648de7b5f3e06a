"""Memory a job needs, from what it reads: the scheduler request of each rule and the
one-line refusal of a training job whose grant cannot hold its data and one model.

Why: a cluster that enforces ``--mem`` kills a job that outgrows its request without
a message, and a fixed request (the models' budget + 1 GB) did not count the data: a
1e6 x 100 dataset alone outgrew it. A training job's request is

    BASE_MB (Python, torch, pandas, pyarrow, oneDNN's workspaces)
    + the data as the training path holds it (:func:`data_bytes`, from ``meta.json``)
    + ``training.memory_budget_mb`` (the models trained together; at least one model)

and inside the job the engine's chunks get what is left of the grant after the base and
the data; when not even one model fits, the job says so before loading the data.

The results rules (aggregate, confirm's selection, tables, figures, report) read the
sweep: their request is a fixed base plus bytes per sweep row, the sweep's rows being
known when the workflow is planned (grid sizes x seeds). The constants are upper
bounds of `make bench-scale` and `bench/train_mem_bench.py` measurements
(docs/performance.md, "Memory requests"), rounded up; the tests check that they bound
measured peaks. No torch here: the rules import this module.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lionsweep.errors import LionSweepError
from lionsweep.optim.hparams import describe

MB = 2**20
ELEMENT_BYTES = {"float32": 4, "float64": 8}
# Resident memory of a training process besides its data and models: interpreter,
# torch (more with CUDA), pandas, pyarrow, thread pools, and the imports' transient peak.
BASE_MB = 1024
# Dropout masks are drawn per block of batches of at most this many elements (the
# engine's KEEP_BLOCK_ELEMENTS), the block and its scaled copy both resident.
KEEP_BLOCK_ELEMENTS = 2**21
# The results rules: (base MB, bytes per row of the study's largest grid, i.e. its
# configurations x seeds). They read the summary a (dataset, optimizer) at a time and
# the sweep a batch or a grid's rows at a time (lionsweep.results.reads), so what they
# hold grows with the largest grid, not with the study; `aggregate` holds a row group,
# a spill buffer and a configuration range. `report` runs Snakemake's report on the
# finished outputs. Fitted above docs/performance.md's scale bench at 1x-100x.
RESULTS_MEMORY: dict[str, tuple[int, int]] = {
    "aggregate": (768, 384),
    "tables": (512, 768),
    "figures": (512, 1024),
    "report": (1024, 0),
}
# `confirm` holds its selection (one grid's configurations) while it trains, on top of a
# training job's need: bytes per row of the largest grid.
CONFIRM_BYTES_PER_ROW = 768
# Where a user raises a training job's memory, named in the refusal.
MEMORY_KEY = "training.memory_budget_mb"


def data_shape(meta: Mapping[str, Any]) -> tuple[dict[str, int], int, int]:
    """(rows per split, features, target width) from a prepared dataset's meta.json."""
    try:
        rows = {s: int(meta["rows"][s]) for s in ("train", "val", "test")}
        features = len(meta["features"])
        width = len(meta["classes"]) if meta.get("task") == "multiclass" else 1
    except (KeyError, TypeError, ValueError):
        raise LionSweepError(
            f"meta of dataset {meta.get('dataset', '?')!r} lacks rows.train/val/test, "
            "features or (multiclass) classes: prepare it again"
        ) from None
    return rows, features, width


def data_bytes(rows: Mapping[str, int], features: int, dtype: str, width: int = 1) -> int:
    """Peak bytes the training path holds for the data (``lionsweep.data.prepare.load_splits``
    and ``lionsweep.train.trainer.Split``): X in float32 for every split (shared with the
    training tensors in float32 on the CPU; a second copy in another dtype), one column
    read as float64 at a time, the targets (labels, the metrics' and the training's
    encodings), the epoch's batch order and one block of dropout masks."""
    n, n_max = sum(rows.values()), max(rows.values())
    elem = ELEMENT_BYTES[dtype]
    x = 4 * n * features + (elem * n * features if dtype != "float32" else 0)
    targets = 8 * (2 + 3 * width) * n
    return x + 8 * n_max + targets + 16 * rows["train"] + 8 * KEEP_BLOCK_ELEMENTS


def n_params(features: int, hidden: int, width: int) -> int:
    return (features + 1) * hidden + width * hidden + width


def model_bytes(
    n_max: int,
    features: int,
    training: Mapping[str, Any],
    optimizer: str,
    width: int = 1,
    averaged: bool = False,
) -> int:
    """Estimated peak bytes one configuration needs (params, state, buffers, metrics);
    ``training``: hidden, batch_size, dtype (the config's model and training sections);
    ``averaged``: its chunk keeps a weight EMA (one more copy of the weights)."""
    elem = ELEMENT_BYTES[training.get("dtype", "float32")]
    h, rows = int(training["hidden"]), int(training["batch_size"])
    # model, grads, optimizer scratch, best-epoch copy, the optimizer's state tensors,
    # + 1 transient: oneDNN returns fresh GEMM outputs (grads, activations) each step.
    copies = 5 + len(describe(optimizer).state) + int(averaged)
    workspace = 2 * rows * h + 2 * rows * width + rows * h  # + the dropout columns
    # eval outputs in dtype plus ~10 float64/int64 [n] temporaries per output in the metrics
    evaluation = elem * n_max * width + 80 * n_max * width
    return elem * (copies * n_params(features, h, width) + workspace) + evaluation


def mb(nbytes: float) -> int:
    return math.ceil(nbytes / MB)


def training_need(
    meta: Mapping[str, Any], training: Mapping[str, Any], optimizer: str
) -> tuple[int, int]:
    """(MB of the data, MB of one model) of training ``optimizer`` on ``meta``'s data."""
    rows, features, width = data_shape(meta)
    data = data_bytes(rows, features, training.get("dtype", "float32"), width)
    # any optimizer's grid may have an ema_decay axis: its copy is counted (one of ~7)
    one = model_bytes(max(rows.values()), features, training, optimizer, width, averaged=True)
    return mb(data), mb(one)


def train_request_mb(meta: Mapping[str, Any], training: Mapping[str, Any], optimizer: str) -> int:
    """The scheduler request (MB) of a job training ``optimizer`` on ``meta``'s data:
    the base, the data and the models' budget (``training.memory_budget_mb``, at least
    one model)."""
    data, model = training_need(meta, training, optimizer)
    return BASE_MB + data + max(int(training["memory_budget_mb"]), model)


def models_budget_mb(
    meta: Mapping[str, Any], training: Mapping[str, Any], optimizer: str, granted_mb: int
) -> int:
    """The engine's chunking budget (MB) inside a job granted ``granted_mb``: what is left
    after the base and the data. A grant without room for one model is refused here,
    in one line, before any data is read."""
    data, model = training_need(meta, training, optimizer)
    left = granted_mb - BASE_MB - data
    if left < model:
        need = BASE_MB + data + model
        raise LionSweepError(
            f"dataset {meta.get('dataset', '?')!r}: training {optimizer} needs {need} MB "
            f"({data} MB data, {model} MB one model, {BASE_MB} MB Python and torch) but "
            f"the job is granted {granted_mb} MB: raise {MEMORY_KEY} (the rule asks for "
            "data + base + this), or the mem_mb a profile's set-resources gives the rule"
        )
    return left


def read_meta(data_dir: str | Path) -> dict[str, Any]:
    """A prepared dataset's meta.json, or a one-line error naming it."""
    path = Path(data_dir) / "meta.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise LionSweepError(
            f"{path}: not readable as the prepared data's meta ({type(err).__name__}); "
            "prepare it again"
        ) from None


def selection_mb(grid_rows: int) -> int:
    """MB the confirmation's selection holds while it trains, for a study whose largest
    grid has ``grid_rows`` rows (configurations x seeds)."""
    return mb(CONFIRM_BYTES_PER_ROW * grid_rows)


def results_request_mb(stage: str, grid_rows: int) -> int:
    """The scheduler request (MB) of a results rule, for a study whose largest grid has
    ``grid_rows`` rows (configurations x seeds)."""
    base, per_row = RESULTS_MEMORY[stage]
    return base + mb(per_row * grid_rows)
