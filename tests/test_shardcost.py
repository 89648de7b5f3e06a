"""Cost-aware shards: sized by estimated training seconds, versioned, stable, and
never changing a number (common random numbers)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lionsweep.errors import LionSweepError
from lionsweep.sweep.shardcost import (
    COST_MODELS,
    cost_shard_bounds,
    seconds_per_config,
)
from lionsweep.train.engine import TrainSettings, train_grid

# The prepared data's meta.json of the paper's datasets (only the fields used).
META = {
    "titanic": {"dataset": "titanic", "rows": {"train": 455, "val": 114, "test": 143}},
    "mushroom": {"dataset": "mushroom", "rows": {"train": 5199, "val": 1300, "test": 1625}},
    "spambase": {"dataset": "spambase", "rows": {"train": 2944, "val": 736, "test": 921}},
}
FEATURES = {"titanic": 12, "mushroom": 116, "spambase": 57}
for _name, _meta in META.items():
    _meta["features"] = [f"f{i}" for i in range(FEATURES[_name])]
TRAINING = {"hidden": 64, "epochs": 20, "batch_size": 64, "dropout": 0.2}


def flop_floor_seconds(meta: dict, h: int = 64, epochs: int = 20, b: int = 64) -> float:
    """The issue's FLOP count, written out independently, at version 1's 326 GFLOP/s."""
    d1 = len(meta["features"]) + 1
    rows = meta["rows"]
    train_rows = epochs * b * math.ceil(rows["train"] / b)
    evaluated = epochs * rows["val"] + 2 * sum(rows.values())
    return (train_rows * (4 * d1 * h + 6 * h) + evaluated * (2 * d1 * h + 2 * h)) / 326e9


@pytest.mark.parametrize("dataset", sorted(META))
def test_version_1_is_the_flop_count_plus_elementwise_passes(dataset: str) -> None:
    got = seconds_per_config(META[dataset], TRAINING, "lion", 1)
    floor = flop_floor_seconds(META[dataset])
    assert floor < got < 4 * floor  # elementwise work on top (most for small D)
    assert seconds_per_config(META[dataset], TRAINING, "adamw", 1) > got  # 2 state tensors


def test_version_1_matches_the_measured_costs_it_was_fitted_to() -> None:
    """ms per Lion configuration of `make bench --full-grid` (docs/performance.md, 2026-11-24)."""
    measured = {"mushroom": 19.1e-3, "spambase": 6.1e-3}
    for dataset, seconds in measured.items():
        got = seconds_per_config(META[dataset], TRAINING, "lion", 1)
        assert got == pytest.approx(seconds, rel=0.05)


def test_version_1_boundaries_are_pinned() -> None:
    """A frozen version must never re-shard finished work: these exact bounds stay."""
    assert COST_MODELS[1].gflops == 326.0 and COST_MODELS[1].elem_ns == 0.068
    paper = {"titanic": 8001, "mushroom": 1001, "spambase": 1001}  # grid + default
    one_job = {d: cost_shard_bounds(n, META[d], TRAINING, "lion", 60.0) for d, n in paper.items()}
    assert one_job == {d: [(0, n)] for d, n in paper.items()}  # 60 s: one job per grid
    assert cost_shard_bounds(8001, META["mushroom"], TRAINING, "lion", 60.0) == [
        (0, 3150),
        (3150, 8001),
    ]
    assert cost_shard_bounds(1001, META["mushroom"], TRAINING, "lion", 5.0) == [
        (0, 262),
        (262, 524),
        (524, 1001),
    ]
    assert cost_shard_bounds(1001, META["mushroom"], TRAINING, "adamw", 5.0)[0] == (0, 214)


@pytest.mark.parametrize("seconds", [1e-9, 0.3, 4.0, 1e6])
def test_cost_shards_cover_every_row_once(seconds: float) -> None:
    bounds = cost_shard_bounds(1001, META["spambase"], TRAINING, "lion", seconds)
    assert [i for a, b in bounds for i in range(a, b)] == list(range(1001))
    per = seconds_per_config(META["spambase"], TRAINING, "lion", 1)
    size = max(1, math.floor(seconds / per))
    assert len(bounds) == max(1, 1001 // size)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"version": 99}, "sweep.shard_cost_model: unknown version 99"),
        ({"shard_seconds": 0.0}, "sweep.shard_seconds must be a finite number > 0"),
        ({"shard_seconds": -5.0}, "sweep.shard_seconds must be a finite number > 0"),
        ({"shard_seconds": float("nan")}, "sweep.shard_seconds must be a finite number > 0"),
        ({"shard_seconds": float("inf")}, "sweep.shard_seconds must be a finite number > 0"),
        ({"meta": {"dataset": "mine", "rows": {"train": 10}}}, "'mine' lacks rows"),
        ({"meta": {"dataset": "mine"}}, "'mine' lacks rows"),
    ],
)
def test_bad_inputs_are_one_line_errors(kwargs: dict, match: str) -> None:
    args = {"meta": META["titanic"], "shard_seconds": 10.0, "version": 1, **kwargs}
    with pytest.raises(LionSweepError, match=match):
        cost_shard_bounds(
            100, args["meta"], TRAINING, "lion", args["shard_seconds"], args["version"]
        )


def test_any_sharding_gives_identical_numbers() -> None:
    """Cost shards (one job) and small shards (SLURM) train to the same numbers."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 5)).astype(np.float32)
    y = (x[:, 0] + 0.3 * rng.normal(size=150) > 0).astype(np.int64)
    splits = {"train": (x[:90], y[:90]), "val": (x[90:120], y[90:120]), "test": (x[120:], y[120:])}
    k = 7
    hp = {
        "lr": np.geomspace(1e-4, 1e-1, k),
        "beta1": np.full(k, 0.9),
        "beta2": np.full(k, 0.99),
        "weight_decay": np.linspace(0, 1, k),
    }
    settings = TrainSettings(hidden=8, epochs=3, batch_size=16)
    whole = train_grid(splits, "lion", hp, 3, settings, progress=False)
    for a, b in [(0, 3), (3, 5), (5, 7)]:
        part = train_grid(splits, "lion", {n: v[a:b] for n, v in hp.items()}, 3, settings, False)
        for key in ("best_val_acc", "test_logloss", "curve_val_loss"):
            np.testing.assert_array_equal(part[key], whole[key][a:b])
