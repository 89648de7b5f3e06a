"""The budget curve (issue 21): the exact order-statistics expectation against brute-force
enumeration of every N-subset, the full grid against the honest selection, a
lower-is-better metric, diverged configurations, sampled prefixes, halving, and the
`budget` stage writing its table and figure from a tiny sweep."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_sweep import diverge, make_sweep, to_parquet

from lionsweep.errors import LionSweepError
from lionsweep.results.budget import (
    budget_table,
    candidates,
    selection_probabilities,
    sizes,
    subset_curve,
    weighted_quantile,
)
from lionsweep.results.scoring import FINAL, with_primary
from lionsweep.results.selection import check_sweep, config_table, rank_grid, select_honest

TINY = {"lion": {"lr": [1e-4, 1e-3, 1e-2], "beta1": [0.8, 0.9], "weight_decay": [0.0, 0.1]}}


def tiny(seed: int = 7) -> pd.DataFrame:
    """One dataset, Lion, 12 grid points, 3 seeds (planted: ties happen)."""
    return check_sweep(
        make_sweep(datasets=("titanic",), optimizers=("lion",), grids=TINY, rng_seed=seed)
    )


def brute_force(frame: pd.DataFrame, n: int) -> tuple[float, float]:
    """(mean selected test metric, P(some candidate works)) over every N-subset, each
    subset selected by the study's own ``select_honest`` on its candidates' rows of the
    config table (a configuration's seed means do not depend on the other candidates)."""
    configs = config_table(frame, FINAL)
    grid = configs[~configs["is_default"]]
    values, selected = [], 0
    for subset in itertools.combinations(range(len(grid)), n):
        chosen = select_honest(grid.iloc[list(subset)])
        if len(chosen):
            selected += 1
            values.append(float(chosen["test_mean"].iloc[0]))
    total = math.comb(len(grid), n)
    return (float(np.mean(values)) if values else math.nan), selected / total


def curve(frame: pd.DataFrame, kind: str = "subsets") -> pd.DataFrame:
    return budget_table(frame, kind, kind, FINAL, 0.95)


def test_sizes_are_powers_of_two_then_the_grid() -> None:
    assert sizes(1) == [1]
    assert sizes(8) == [1, 2, 4, 8]
    assert sizes(12) == [1, 2, 4, 8, 12]


def test_selection_probabilities_sum_to_one_and_match_counting() -> None:
    p = selection_probabilities(12, 12, 4)
    assert p.sum() == pytest.approx(1.0)
    assert p[0] == pytest.approx(4 / 12)  # the best is selected iff it is drawn
    assert p[-1] == 0.0  # the worst is never the best of 4
    # 3 failed points: P(no working point in a 2-subset) = C(3,2)/C(12,2)
    assert selection_probabilities(12, 9, 2).sum() == pytest.approx(1 - 3 / 66)


@pytest.mark.parametrize("n", [1, 2, 3, 12])
def test_exact_expectation_equals_brute_force(n: int) -> None:
    frame = tiny()
    table = curve(frame)
    table = table if n in table["n_candidates"].tolist() else None

    configs = config_table(frame, FINAL)
    c = candidates(frame, configs, FINAL)
    probs = selection_probabilities(12, len(c.ranked_ids), n)
    exact = float(probs @ c.tests.mean(axis=1) / probs.sum())
    want, _ = brute_force(frame, n)
    assert exact == pytest.approx(want, abs=1e-12)
    if table is not None:
        row = table[table["n_candidates"] == n].iloc[0]
        assert row["test_acc_mean"] == pytest.approx(want, abs=1e-12)
    assert subset_curve(c, 0.95)  # the curve's own rows exist too


def test_full_grid_equals_the_honest_selection() -> None:
    frame = tiny(seed=3)
    row = curve(frame).iloc[-1]
    honest = select_honest(config_table(frame, FINAL)).iloc[0]
    assert row["n_candidates"] == 12 and row["p_selected"] == pytest.approx(1.0)
    assert row["config_id"] == honest["config_id"] and row["p_grid_best"] == 1.0
    assert row["test_acc_mean"] == pytest.approx(honest["test_mean"], abs=1e-12)
    seeds = frame[frame["config_id"] == honest["config_id"]]["test_acc"]
    assert (row["test_acc_lo"], row["test_acc_hi"]) == (seeds.min(), seeds.max())
    assert row["subset_lo"] == row["subset_hi"] == pytest.approx(honest["test_mean"])


def test_one_candidate_is_the_grid_mean_and_the_curve_rises() -> None:
    frame = tiny()
    table = curve(frame)
    configs = config_table(frame, FINAL)
    grid_mean = configs.loc[~configs["is_default"], "test_mean"].mean()
    assert table["test_acc_mean"].iloc[0] == pytest.approx(grid_mean)
    assert table["compute_epochs"].tolist() == [5 * n for n in table["n_candidates"]]
    # selection on validation, report on test: with planted structure more candidates help
    assert table["test_acc_mean"].iloc[-1] > table["test_acc_mean"].iloc[0]


def test_lower_is_better_metric_selects_the_lowest() -> None:
    frame = with_primary(tiny(), {"titanic": "logloss"})
    table = curve(frame)
    assert "test_logloss_mean" in table.columns
    want, _ = brute_force(frame, 3)
    c = candidates(frame, config_table(frame, FINAL), FINAL)
    probs = selection_probabilities(12, len(c.ranked_ids), 3)
    assert float(probs @ c.tests.mean(axis=1)) == pytest.approx(want, abs=1e-12)
    full = table.iloc[-1]
    ranked = rank_grid(config_table(frame, FINAL))
    assert full["config_id"] == ranked["config_id"].iloc[0]
    assert ranked["val_mean"].iloc[0] == ranked["val_mean"].min()  # lowest log-loss wins


def test_diverged_configurations_count_but_are_never_selected() -> None:
    raw = make_sweep(datasets=("titanic",), optimizers=("lion",), grids=TINY)
    configs = config_table(check_sweep(raw), FINAL)
    best = int(select_honest(configs)["config_id"].iloc[0])
    # the honest choice and two more diverge in one seed: failed for every statistic
    bad = raw["config_id"].isin([best, 0, 1]) & (raw["seed"] == 1) & ~raw["is_default"]
    diverge(raw, bad)
    frame = check_sweep(raw)
    table = curve(frame)
    for n in (1, 2, 4):  # 495 subsets at 4
        row = table[table["n_candidates"] == n].iloc[0]
        want, p_sel = brute_force(frame, n)
        assert row["test_acc_mean"] == pytest.approx(want, abs=1e-12)
        assert row["p_selected"] == pytest.approx(p_sel, abs=1e-12)
    assert table["n_grid"].iloc[0] == 12  # failed points are in the grid's size
    assert table["p_selected"].iloc[0] == pytest.approx(9 / 12)
    assert table["config_id"].iloc[-1] != best  # the whole grid selects another
    assert table["config_id"].iloc[:-1].isna().all()  # uncertain selections name none
    assert table["p_grid_best"].iloc[0] == pytest.approx(1 / 12)


def test_every_point_diverged_gives_nan_not_an_error() -> None:
    raw = make_sweep(datasets=("titanic",), optimizers=("lion",), grids=TINY)
    diverge(raw, ~raw["is_default"])
    table = curve(check_sweep(raw))
    assert (table["p_selected"] == 0).all() and table["test_acc_mean"].isna().all()


def test_samples_take_the_first_n_in_config_order() -> None:
    frame = tiny()
    table = curve(frame, "samples")
    configs = config_table(frame, FINAL)
    for n in (1, 2, 4, 8, 12):
        first = frame[frame["config_id"] < n]
        chosen = select_honest(config_table(pd.concat([first, frame[frame["is_default"]]]), FINAL))
        row = table[table["n_candidates"] == n].iloc[0]
        assert row["config_id"] == chosen["config_id"].iloc[0]
        assert row["test_acc_mean"] == pytest.approx(chosen["test_mean"].iloc[0])
    assert len(configs) == 13


def test_halving_selects_among_full_budget_survivors_and_counts_stopped_epochs() -> None:
    frame = tiny()
    honest = int(select_honest(config_table(frame, FINAL))["config_id"].iloc[0])
    frame["stopped_epoch"] = pd.array([pd.NA] * len(frame), dtype="Int64")  # null: full budget
    stop = frame["config_id"].isin([honest, 0, 1, 2, 3]) & (frame["seed"] == 2)
    frame.loc[stop, "stopped_epoch"] = 1  # the honest choice stopped early in one seed
    table = curve(frame, "halving")
    assert len(table) == 1
    row = table.iloc[0]
    assert row["compute_epochs"] == pytest.approx(12 * 5 - 4 * len({honest, 0, 1, 2, 3}) / 3)
    assert row["config_id"] != honest
    assert math.isnan(row["p_grid_best"]) and math.isnan(row["default_test_acc_mean"])
    survivors = frame[~frame["config_id"].isin([honest, 0, 1, 2, 3])]
    want = select_honest(config_table(survivors, FINAL))
    assert row["config_id"] == want["config_id"].iloc[0]


def test_weighted_quantile_is_the_inverse_cdf() -> None:
    values = np.array([3.0, 1.0, 2.0, 4.0])
    for q in (0.025, 0.25, 0.5, 0.75, 0.975):
        assert weighted_quantile(values, np.ones(4), q) == np.quantile(
            values, q, method="inverted_cdf"
        )
    assert weighted_quantile(values, np.array([0, 0, 1.0, 0]), 0.5) == 2.0


def test_bad_kind_is_one_line() -> None:
    with pytest.raises(LionSweepError, match="kind must be one of"):
        budget_table(tiny(), "grid", "x", FINAL, 0.95)


def test_budget_stage_writes_table_and_figure(tmp_path: Path) -> None:
    from lionsweep.cli import main

    sweep = make_sweep(datasets=("titanic", "spambase"), optimizers=("lion", "adamw"))
    to_parquet(sweep, tmp_path / "sweep.parquet")
    settings = {
        "budget_curve": [
            {"study": "paper", "kind": "subsets", "label": "grid"},
            {"study": "paper", "kind": "samples"},
        ]
    }
    args = [
        "budget",
        "--sweeps",
        str(tmp_path / "sweep.parquet"),
        str(tmp_path / "sweep.parquet"),
        "--table-dir",
        str(tmp_path),
        "--figure-dir",
        str(tmp_path),
        "--settings",
        json.dumps(settings),
        "--datasets",
        "titanic",
        "spambase",
    ]
    assert main(args) in (0, None)
    table = pd.read_csv(tmp_path / "budget_curve.csv")
    assert set(table["method"]) == {"grid", "samples (paper)"}
    assert table["dataset"].iloc[0] == "titanic"
    full = table[(table["method"] == "grid") & (table["n_candidates"] == 18)]
    honest = select_honest(config_table(check_sweep(sweep), FINAL)).set_index(
        ["dataset", "optimizer"]
    )
    for r in full.itertuples():
        assert r.test_acc_mean == pytest.approx(honest.loc[(r.dataset, r.optimizer), "test_mean"])
    assert "Table: The budget curve" in (tmp_path / "budget_curve.md").read_text()
    assert (tmp_path / "budget_curve.png").stat().st_size > 10_000
    assert (tmp_path / "budget_curve.pdf").exists()


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"study": "paper", "kind": "grid"}, r"budget_curve\[0\]\.kind must be one of"),
        ({"kind": "subsets"}, r"budget_curve\[0\] must be \{study"),
        ("paper", r"budget_curve\[0\] must be \{study"),
    ],
)
def test_bad_budget_curve_entries_are_one_line(entry, words: str) -> None:
    from lionsweep.results.budget_stage import entries

    with pytest.raises(LionSweepError, match=words):
        entries({"budget_curve": [entry]})


def test_sweeps_must_match_the_entries(tmp_path: Path) -> None:
    from lionsweep.results.budget_stage import curve
    from lionsweep.results.selection import settings

    cfg = settings({"budget_curve": [{"study": "a", "kind": "subsets"}]})
    with pytest.raises(LionSweepError, match="2 path"):
        curve([tmp_path / "a", tmp_path / "b"], cfg, None, None)
