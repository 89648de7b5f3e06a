"""Sampled grid axes (issue 21): {param, low, high, scale} with `samples`, `sampler` and
`sample_seed` beside `grid`. The points are checked against scipy's scrambled Sobol
sequence and numpy's generator directly, not against our own mapping."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT
from lionsweep.errors import LionSweepError
from lionsweep.sweep.grid import (
    check_grids,
    expand,
    grid_size,
    grid_spec,
    grid_summary,
    mean_budget,
)
from lionsweep.sweep.sampling import Range, derived_seed, sample

LR = {"param": "lr", "low": 1.0e-5, "high": 1.0e-1, "scale": "log"}
WD = {"param": "weight_decay", "low": 0.0, "high": 0.5}


def study(grid: list[dict], **entry) -> dict:
    """config.yaml + test.yaml with Lion's grid replaced by ``grid`` (and ``entry`` keys
    beside it), as `snakemake --configfile` would merge them; not yet validated."""
    from snakemake.utils import update_config

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    update_config(config, yaml.safe_load((ROOT / "config" / "test.yaml").read_text()))
    config["optimizers"]["lion"] = {"grid": grid, **entry}
    return config


def checked(config: dict) -> dict:
    """What the workflow does on load: the grid checks, then the schema and the rest."""
    from lionsweep.config import validate

    check_grids(config)
    validate(config, ROOT / "workflow" / "schemas" / "config.schema.yaml")
    return config


def points(config: dict, dataset: str = "spambase") -> pd.DataFrame:
    frame = expand(grid_spec(config, dataset, "lion"))
    return frame[~frame.is_default]


def log_map(u: np.ndarray, low: float, high: float) -> np.ndarray:
    return 10 ** (np.log10(low) + u * (np.log10(high) - np.log10(low)))


@pytest.mark.parametrize("sampler", ["sobol", "random"])
def test_points_are_scipy_s_scrambled_sobol_or_numpy_s_uniform_mapped(sampler: str) -> None:
    from scipy.stats import qmc

    config = checked(study([LR, WD], samples=16, sampler=sampler, sample_seed=3))
    grid = points(config)
    seed = derived_seed(3, "lion", "spambase")
    assert grid_spec(config, "spambase", "lion")["sampling"]["seed"] == seed
    if sampler == "sobol":
        u = qmc.Sobol(d=2, scramble=True, seed=seed).random(16)
    else:
        u = np.random.default_rng(seed).random((16, 2))
    np.testing.assert_allclose(grid.lr, log_map(u[:, 0], 1e-5, 1e-1), rtol=1e-11)
    np.testing.assert_allclose(grid.weight_decay, 0.5 * u[:, 1], rtol=1e-11, atol=1e-15)
    assert grid.config_id.tolist() == list(range(16))
    assert set(grid.beta1) == {0.9} and set(grid.beta2) == {0.99}  # defaults elsewhere


def test_a_log_range_is_uniform_in_log_space() -> None:
    """16 Sobol points (a power of two) put exactly one point in each sixteenth of the
    range's log span: a linear mapping would crowd them into the top decade."""
    config = checked(study([LR], samples=16))
    lr = points(config).lr.to_numpy()
    assert ((lr >= 1e-5) & (lr < 1e-1)).all()
    cell = np.floor(16 * (np.log(lr) - np.log(1e-5)) / (np.log(1e-1) - np.log(1e-5)))
    assert sorted(cell) == list(range(16))
    assert (lr < 1e-2).sum() == 12  # three of the four decades


def test_same_config_same_points_and_ids_in_another_process() -> None:
    """The seed is derived from the config by a digest, not Python's (salted) str hash."""
    config = checked(study([{"param": "epochs", "values": [2, 3]}, LR, WD], samples=5))
    here = expand(grid_spec(config, "titanic", "lion"))
    code = (
        "import json, sys; from lionsweep.sweep.grid import expand;"
        "print(expand(json.loads(sys.stdin.read())).to_json(orient='split', double_precision=15))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT / "workflow")}
    spec = json.dumps(grid_spec(config, "titanic", "lion"))
    out = subprocess.run(
        [sys.executable, "-c", code], input=spec, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    there = pd.read_json(__import__("io").StringIO(out.stdout), orient="split")
    pd.testing.assert_frame_equal(here, there, check_dtype=False, rtol=1e-14)
    assert here.equals(expand(grid_spec(checked(copy.deepcopy(config)), "titanic", "lion")))


def test_seed_dataset_and_optimizer_each_give_other_points() -> None:
    config = checked(study([LR], samples=4))
    base = points(config).lr.tolist()
    assert points(config, "mushroom").lr.tolist() != base  # each dataset its own draw
    assert points(checked(study([LR], samples=4, sample_seed=1))).lr.tolist() != base
    assert points(checked(study([LR], samples=4, sampler="random"))).lr.tolist() != base
    assert derived_seed(0, "lion", "spambase") != derived_seed(0, "adamw", "spambase")


def test_value_axes_are_crossed_with_the_sampled_points_where_written() -> None:
    """[epochs values, lr, wd sampled]: epochs slowest, the N points fastest; the points
    repeat unchanged for each epochs value. Written after them, epochs is fastest."""
    epochs = {"param": "epochs", "values": [2, 3]}
    first = points(checked(study([epochs, LR, WD], samples=4)))
    assert first.epochs.tolist() == [2, 2, 2, 2, 3, 3, 3, 3]
    pairs = first[["lr", "weight_decay"]].to_numpy()
    np.testing.assert_array_equal(pairs[:4], pairs[4:])
    assert len(np.unique(pairs[:4, 0])) == 4  # 4 points, not 4 x 4 lr x wd
    last = points(checked(study([LR, WD, epochs], samples=4)))
    assert last.epochs.tolist() == [2, 3] * 4
    np.testing.assert_array_equal(last[["lr", "weight_decay"]].to_numpy()[::2], pairs[:4])
    spec = grid_spec(checked(study([epochs, LR, WD], samples=4)), "spambase", "lion")
    assert grid_size(spec) == 9 and mean_budget(spec, 3) == 2.5
    lines = grid_summary(checked(study([epochs, LR, WD], samples=4)))
    assert "grid spambase/lion: 9 configurations (epochs: 2, 4 sobol samples of (lr, " in (
        "\n".join(lines)
    )


def test_overrides_sample_with_the_same_samples_and_value_grids_are_unchanged() -> None:
    titanic = [{"param": "lr", "low": 1e-4, "high": 1e-2, "scale": "log"}]
    config = study([{"param": "lr", "values": [1e-3, 1e-2]}], samples=3)
    config["optimizers"]["lion"]["grid_overrides"] = {"titanic": titanic}
    checked(config)
    assert points(config, "titanic").lr.between(1e-4, 1e-2).all()
    assert len(points(config, "titanic")) == 3
    assert "sampling" not in grid_spec(config, "spambase", "lion")  # value grid: spec as before
    assert points(config).lr.tolist() == [1e-3, 1e-2]


def test_whole_number_axes_are_rounded_down_from_low_to_high_inclusive() -> None:
    """epochs on [1, 4]: drawn on [1, 5) and rounded down, so each of 1..4 gets a
    quarter of 64 Sobol points exactly; a log scale favours the small ones."""
    axis = {"param": "epochs", "low": 1, "high": 4}
    epochs = points(checked(study([axis, LR], samples=64))).epochs
    assert epochs.value_counts().sort_index().tolist() == [16, 16, 16, 16]
    logged = points(checked(study([{**axis, "scale": "log"}, LR], samples=64))).epochs
    assert set(logged) == {1, 2, 3, 4} and logged.is_monotonic_increasing is False
    assert (logged == 1).sum() > (logged == 4).sum()
    spec = grid_spec(checked(study([axis, LR], samples=64)), "spambase", "lion")
    assert mean_budget(spec, 99) == 2.5


def test_sample_draws_random_and_sobol_points_of_given_ranges() -> None:
    """The helper the budget curve calls: nested in N, in range, scipy's for Sobol."""
    from scipy.stats import qmc

    ranges = [Range(1e-5, 1e-1, "log"), Range(0.0, 0.5)]
    for sampler in ("sobol", "random"):
        eight = sample(ranges, 8, sampler, seed=11)
        assert eight.shape == (8, 2)
        np.testing.assert_array_equal(sample(ranges, 4, sampler, seed=11), eight[:4])
        assert (eight[:, 0] >= 1e-5).all() and (eight[:, 1] < 0.5).all()
    u = qmc.Sobol(d=2, scramble=True, seed=11).random(8)
    np.testing.assert_allclose(sample(ranges, 8, "sobol", 11)[:, 1], 0.5 * u[:, 1], rtol=1e-11)


def test_a_sampled_best_near_its_range_end_is_flagged_like_a_grid_edge() -> None:
    """lr sampled on [1e-5, 1e-1] (log): a best at 9e-2 lies within 5% of the log span of
    high (lr=max); a best at 2e-5, the lowest lr sampled but 0.08 of the span inside
    low, is not at the edge (a value grid would say lr=min). Weight decay 0.49 of [0,
    0.5] is within 5% of high."""
    from synthetic_sweep import make_sweep

    from lionsweep.results.selection import check_sweep
    from lionsweep.results.tables import run_tables

    grids = {"lion": {"lr": [2e-5, 3e-4, 9e-2], "beta1": [0.9], "weight_decay": [0.1, 0.2, 0.49]}}
    frame = make_sweep(datasets=("toy",), optimizers=("lion",), grids=grids)
    grid = ~frame.is_default
    frame.loc[grid, ["val_acc", "test_acc"]] = 0.6
    ranges = {"toy": {"lion": {"lr": [1e-5, 1e-1, "log"], "weight_decay": [0.0, 0.5, "linear"]}}}

    def flag(lr: float, wd: float, **cfg) -> str:
        planted = frame.copy()
        best = grid & np.isclose(planted.lr, lr) & np.isclose(planted.weight_decay, wd)
        planted.loc[best, ["val_acc", "test_acc"]] = 0.9
        tables = run_tables(check_sweep(planted), {"sampled_ranges": ranges, **cfg})
        return tables["honest_table"].set_index("optimizer").loc["lion", "at_grid_edge"]

    assert flag(9e-2, 0.2) == "lr=max"
    assert flag(2e-5, 0.2) == "no"
    assert flag(2e-5, 0.49) == "weight_decay=max"
    assert flag(2e-5, 0.2, sampled_edge_fraction=0.1) == "lr=min"  # 0.08 < 0.1 of the span
    assert run_tables(check_sweep(frame), {})["honest_table"]["at_grid_edge"].notna().all()


BAD = {
    "low>=high": ([{**WD, "low": 0.5, "high": 0.1}], {"samples": 4}, "low (0.5) must be below"),
    "low==high": ([{**WD, "low": 0.1, "high": 0.1}], {"samples": 4}, "low (0.1) must be below"),
    "samples=0": ([LR], {"samples": 0}, "optimizers.lion.samples: must be a whole number from 1"),
    "samples=1e9": ([LR], {"samples": 10**9}, "from 1 to 10,000,000, got 1000000000"),
    "samples=-3": ([LR], {"samples": -3}, "optimizers.lion.samples: must be a whole number"),
    "samples=2.5": ([LR], {"samples": 2.5}, "optimizers.lion.samples: must be a whole number"),
    "samples='10'": ([LR], {"samples": "10"}, "optimizers.lion.samples: '10' is not a whole"),
    "samples=true": ([LR], {"samples": True}, "optimizers.lion.samples: True is not a whole"),
    "log-low=0": ([{**LR, "low": 0.0}], {"samples": 4}, "a log scale needs low > 0"),
    "log-low<0": ([{**LR, "low": -1e-3}], {"samples": 4}, "a log scale needs low > 0"),
    "sampler=halton": ([LR], {"samples": 4, "sampler": "halton"}, "sampler: 'halton' is not"),
    "sampler=Sobol": ([LR], {"samples": 4, "sampler": "Sobol"}, "sampler: 'Sobol' is not"),
    "samples-no-axis": (
        [{"param": "lr", "values": [1e-3]}],
        {"samples": 4},
        "optimizers.lion.samples: no axis of optimizers.lion.grid",
    ),
    "axis-no-samples": ([LR], {}, "optimizers.lion.grid: axis 'lr' is sampled (low/high) but"),
    "sampler-no-samples": ([{"param": "lr", "values": [1e-3]}], {"sampler": "sobol"}, "sampler"),
    "values+low": ([{**LR, "values": [1e-3]}], {"samples": 4}, "mixes `values` with `low`"),
    "num+high": ([{**LR, "num": 3}], {"samples": 4}, "mixes `num` with `low`/`high`"),
    "low-only": ([{"param": "lr", "low": 1e-5}], {"samples": 4}, "needs both `low` and `high`"),
    "high-string": ([{**LR, "high": "1e-1"}], {"samples": 4}, "as a string: write 1.0e-5"),
    "samples-in-axis": ([{**LR, "samples": 8}], {}, "`samples` goes beside `grid`"),
    "high=inf": ([{**WD, "high": math.inf}], {"samples": 4}, "`high` must be a finite number"),
    "scale=logarithmic": ([{**LR, "scale": "logarithmic"}], {"samples": 4}, "scale must be"),
    "typo-key": ([{**LR, "hgih": 1}], {"samples": 4}, "unknown key(s) ['hgih']"),
    "lr-low=0-linear": ([{**LR, "low": 0.0, "scale": "linear"}], {"samples": 4}, "low 0.0 is"),
    "beta1-high=1": (
        [{"param": "beta1", "low": 0.8, "high": 1.0}],
        {"samples": 4},
        "high 1.0 is not in [0, 1)",
    ),
    "epochs-fraction": (
        [LR, {"param": "epochs", "low": 1.5, "high": 4}],
        {"samples": 4},
        "low 1.5 is not a whole number",
    ),
    "unknown-param": ([{**LR, "param": "learning_rate"}], {"samples": 4}, "not 'learning_rate'"),
    "seed=-1": ([LR], {"samples": 4, "sample_seed": -1}, "sample_seed: must be a whole number"),
    "seed=1.5": ([LR], {"samples": 4, "sample_seed": 1.5}, "sample_seed: must be a whole"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_sampling_is_one_line_naming_the_key(case: str) -> None:
    grid, entry, needle = BAD[case]
    with pytest.raises(LionSweepError) as err:
        checked(study(grid, **entry))
    message = str(err.value)
    assert needle in message and "\n" not in message, message
    assert "optimizers.lion" in message, message


def test_a_bad_results_edge_fraction_is_one_line() -> None:
    config = checked(study([LR], samples=4))
    config["results"]["sampled_edge_fraction"] = 0.5
    with pytest.raises(LionSweepError, match=r"results\.sampled_edge_fraction"):
        checked(config)


SAMPLED_STUDY = {
    "study": {"name": "sampled", "datasets": ["titanic"], "optimizers": ["lion", "adamw"]},
    "model": {"hidden": 8, "dropout": 0.2},
    "training": {"epochs": 2, "batch_size": 64, "memory_budget_mb": 256, "threads": 1},
    "sweep": {"seeds": [0, 1], "shard_seconds": None, "shard_size": 100},
    "confirm": {"seeds": 2},
    "optimizers": {
        "lion": {"grid": [LR, WD], "samples": 4, "grid_overrides": {"titanic": None}},
        "adamw": {
            "grid": [{"param": "epochs", "values": [1, 2]}, {**LR, "low": 1e-4}],
            "samples": 2,
            "sampler": "random",
            "grid_overrides": {"titanic": None},
        },
    },
}


@pytest.mark.slow
def test_a_sampled_study_runs_by_configuration_alone(tmp_path, mirror) -> None:
    """`snakemake --configfile` with sampled axes: Sobol points of the config's seed in
    the grid table, tables and figures, the edge flag from the ranges, and a second
    Snakemake process plans nothing (same points, same config ids)."""
    from scipy.stats import qmc

    from conftest import copy_workflow, snakemake

    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "config" / "sampled.yaml").write_text(yaml.safe_dump(SAMPLED_STUDY))
    args = ("--configfile", "config/sampled.yaml")
    proc = snakemake(workdir, "tables", "figures", "--cores", "2", *args, mirror=mirror)
    out = proc.stdout + proc.stderr
    assert "grid titanic/lion: 5 configurations (4 sobol samples of (lr, weight_decay)" in out
    assert "grid titanic/adamw: 5 configurations (epochs: 2, 2 random samples of (lr)" in out
    results = workdir / "results" / "sampled"
    lion = pd.read_parquet(results / "grids" / "titanic" / "lion.parquet")
    u = qmc.Sobol(d=2, scramble=True, seed=derived_seed(0, "lion", "titanic")).random(4)
    np.testing.assert_allclose(lion.lr[:4], log_map(u[:, 0], 1e-5, 1e-1), rtol=1e-11)
    sweep = pd.read_parquet(results / "sweep.parquet")
    assert sorted(sweep.groupby("optimizer").config_id.nunique().items()) == [
        ("adamw", 5),
        ("lion", 5),
    ]
    honest = pd.read_csv(results / "tables" / "honest_table.csv").set_index("optimizer")
    lr, wd = honest.loc["lion", ["lr", "weight_decay"]]
    span = np.log(1e-1) - np.log(1e-5)
    near = {
        "lr=min": np.log(lr / 1e-5) <= 0.05 * span,
        "lr=max": np.log(1e-1 / lr) <= 0.05 * span,
        "weight_decay=min": wd <= 0.025,
        "weight_decay=max": wd >= 0.475,
    }
    ends = [label for label, yes in near.items() if yes]
    assert honest.loc["lion", "at_grid_edge"] == (", ".join(ends) or "no")
    assert "within 5% of the range" in (results / "tables" / "honest_table.md").read_text()
    assert (results / "figures" / "heatmap_titanic.png").stat().st_size > 0
    again = snakemake(workdir, "tables", "figures", "-n", *args, mirror=mirror)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_sampled_points_are_drawn_as_dots_not_slivers_of_cells() -> None:
    """8 (lr, wd) points of 8 x 8 distinct values: the heatmap draws 8 dots on a log lr
    axis (a lattice would be 64 cells, 56 of them empty); a product grid keeps cells."""
    import matplotlib.pyplot as plt
    from synthetic_sweep import make_sweep

    from lionsweep.results.figures import plot_heatmaps
    from lionsweep.results.scoring import Metrics
    from lionsweep.results.selection import check_sweep, config_table, select_honest

    u = sample([Range(1e-5, 1e-1, "log"), Range(0.0, 0.5)], 8, "sobol", seed=1)
    grids = {"lion": {"lr": list(u[:, 0]), "beta1": [0.9], "weight_decay": list(u[:, 1])}}
    frame = make_sweep(datasets=("toy",), optimizers=("lion",), seeds=(0, 1), grids=grids)
    drawn = frame.is_default.copy()
    for lr, wd in u:
        drawn |= np.isclose(frame.lr, lr) & np.isclose(frame.weight_decay, wd)
    configs = config_table(check_sweep(frame[drawn].reset_index(drop=True)), Metrics("final"))
    fig, data = plot_heatmaps(configs, select_honest(configs), "toy", ["lion"])
    assert data["lion"]["scattered"] and data["lion"]["present"].sum() == 8
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and not any(
        type(c).__name__ == "QuadMesh" for c in ax.collections
    )
    dots = ax.collections[0].get_offsets()
    assert sorted(map(tuple, np.asarray(dots))) == sorted(map(tuple, u))
    plt.close(fig)
    grid = config_table(check_sweep(frame), Metrics("final"))
    fig, data = plot_heatmaps(grid, select_honest(grid), "toy", ["lion"])
    assert not data["lion"]["scattered"]
    plt.close(fig)
