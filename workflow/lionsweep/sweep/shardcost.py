"""Shard sizes from estimated training cost, so that each job is tens of seconds of work.

Why: starting a training process (Python, torch, the data) costs seconds on the
2-core CI machine, and a fixed count of configurations per shard made Titanic's
cheap 8,001-point grid 8 jobs per seed that spent longer starting than training.
A shard is instead sized by what its configurations cost to train: the engine's
FLOPs (4(D+1)H + 6H per training row, 2(D+1)H + 2H per evaluated row) plus its
elementwise passes (activations and optimizer updates), from the prepared data's
``meta.json`` (rows per split, features) and the training settings.

Stable boundaries: a shard's rows depend only on the grid's size, the meta, the
settings, the time budget and the cost model's *version*. The constants of a version
never change; a better model is a new entry in :data:`COST_MODELS`, selected in the
config, so finished work is never re-sharded by a code change. Results do not depend
on the sharding (common random numbers), only the number of jobs does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lionsweep.errors import LionSweepError
from lionsweep.optim.hparams import describe
from lionsweep.sweep.grid import shard_bounds


@dataclass(frozen=True)
class CostModel:
    """Throughputs of the reference machine that turn work into seconds."""

    gflops: float  # sustained GEMM rate of the engine, GFLOP/s
    elem_ns: float  # ns per element per elementwise pass
    passes_per_state: int  # optimizer passes over the parameters per state tensor


# Version 1: fitted to `make bench --full-grid` on the 2-core CI machine (2026-11-24:
# Titanic 0.95, Mushroom 19.1, Spambase 6.1 ms per Lion configuration; within 2% for
# Mushroom/Spambase, Titanic's per-step overheads make it ~2x low there). FROZEN.
COST_MODELS: dict[int, CostModel] = {1: CostModel(gflops=326.0, elem_ns=0.068, passes_per_state=5)}
DEFAULT_COST_MODEL = 1


def cost_model(version: int) -> CostModel:
    if version not in COST_MODELS:
        raise LionSweepError(
            f"sweep.shard_cost_model: unknown version {version!r}; known: {sorted(COST_MODELS)}"
        )
    return COST_MODELS[version]


def check_sharding(sweep: Mapping[str, Any]) -> None:
    """The config's `sweep` sharding keys, before any job: a cost model this code
    knows (even when unused, so a typo never waits for the day it is used) and a
    finite, positive time budget."""
    cost_model(sweep["shard_cost_model"])
    seconds = sweep["shard_seconds"]
    if seconds is not None:
        _check_seconds(seconds)


def _check_seconds(seconds: float) -> None:
    if not (seconds > 0 and math.isfinite(seconds)):
        raise LionSweepError(
            f"sweep.shard_seconds must be a finite number > 0 (or null: shard_size "
            f"configurations per shard), got {seconds!r}"
        )


def _meta_shape(meta: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """(train, val, test rows, features) from a prepared dataset's meta.json."""
    try:
        rows = meta["rows"]
        train, val, test = (int(rows[s]) for s in ("train", "val", "test"))
        features = len(meta["features"])
    except (KeyError, TypeError, ValueError):
        raise LionSweepError(
            f"meta of dataset {meta.get('dataset', '?')!r} lacks rows.train/val/test or features"
        ) from None
    return train, val, test, features


def seconds_per_config(
    meta: Mapping[str, Any], training: Mapping[str, Any], optimizer: str, version: int
) -> float:
    """Estimated seconds to train one configuration (``training``: hidden, epochs,
    batch_size, the config's ``model`` and ``training`` sections merged)."""
    model = cost_model(version)
    h, epochs, b = int(training["hidden"]), int(training["epochs"]), int(training["batch_size"])
    train, val, test, d = _meta_shape(meta)
    steps = epochs * math.ceil(train / b)
    evaluated = epochs * val + 2 * (train + val + test)  # val curve each epoch; final + best
    flops = steps * b * (4 * (d + 1) * h + 6 * h) + evaluated * (2 * (d + 1) * h + 2 * h)
    n_params = (d + 1) * h + h + 1
    passes = model.passes_per_state * len(describe(optimizer).state)
    elems = steps * b * h * 6 + evaluated * h * 2 + steps * n_params * passes
    return flops / (model.gflops * 1e9) + elems * model.elem_ns * 1e-9


def cost_shard_bounds(
    grid_rows: int,
    meta: Mapping[str, Any],
    training: Mapping[str, Any],
    optimizer: str,
    shard_seconds: float,
    version: int = DEFAULT_COST_MODEL,
) -> list[tuple[int, int]]:
    """[start, stop) of each shard: as many configurations as fit ``shard_seconds``
    by the cost model (at least one), the remainder joining the last shard."""
    _check_seconds(shard_seconds)
    per_config = seconds_per_config(meta, training, optimizer, version)
    return shard_bounds(grid_rows, max(1, math.floor(shard_seconds / per_config)))
