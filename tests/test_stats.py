"""Seed statistics and selection protocols, checked against independent recomputation."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pandas as pd
import pytest
from synthetic_sweep import diverge, make_sweep

from lionsweep.errors import LionSweepError
from lionsweep.results.scoring import Metrics
from lionsweep.results.selection import (
    check_sweep,
    config_table,
    select_honest,
    select_paper,
    sensitivity,
    settings,
    unselectable,
)
from lionsweep.results.stats import (
    bootstrap_ci,
    importance,
    mean_ci,
    paired,
    signflip_p,
    t_quantile,
)


@pytest.fixture(scope="module")
def sweep() -> pd.DataFrame:
    return check_sweep(make_sweep())


# ------------------------------------------------------------------ t distribution


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [  # printed tables of Student's t
        (0.975, 1, 12.706205),
        (0.975, 2, 4.302653),
        (0.975, 4, 2.776445),
        (0.975, 30, 2.042272),
        (0.95, 10, 1.812461),
        (0.995, 5, 4.032143),
    ],
)
def test_t_quantile_matches_tables(p: float, df: int, expected: float) -> None:
    assert t_quantile(p, df) == pytest.approx(expected, abs=2e-6)
    assert t_quantile(1 - p, df) == pytest.approx(-expected, abs=2e-6)


@pytest.mark.parametrize("p", [1e-12, 1e-6, 0.01, 0.3, 0.5, 0.7, 0.975, 1 - 1e-6])
def test_t_quantile_is_exact_in_the_tails(p: float) -> None:
    """Issue 11: a hand-written incomplete beta lost digits far in the tails. For df 1
    (Cauchy) and df 2 the quantile has a closed form; both must hold to 1e-9."""
    cauchy = -1 / math.tan(math.pi * p)  # tan(pi (p - 1/2)), without its rounding near 0
    two = (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    assert t_quantile(p, 1) == pytest.approx(cauchy, rel=1e-9, abs=1e-12)
    assert t_quantile(p, 2) == pytest.approx(two, rel=1e-9, abs=1e-12)
    assert t_quantile(p, 1e7) == pytest.approx(
        math.sqrt(2) * _erfinv(2 * p - 1), rel=1e-5, abs=1e-9
    )


def _erfinv(y: float) -> float:
    """Inverse error function by Newton's method on math.erf (the normal limit of t)."""
    x = 0.0
    for _ in range(200):
        x -= (math.erf(x) - y) / (2 / math.sqrt(math.pi) * math.exp(-x * x))
    return x


def test_mean_ci_half_width() -> None:
    x = [0.80, 0.82, 0.84]
    ci = mean_ci(x)
    half = 4.302653 * np.std(x, ddof=1) / math.sqrt(3)
    assert ci.mean == pytest.approx(0.82)
    assert ci.hi - ci.mean == pytest.approx(half, rel=1e-6)
    assert ci.mean - ci.lo == pytest.approx(half, rel=1e-6)
    assert not ci.clipped


def test_accuracy_interval_is_clipped_to_0_1() -> None:
    """Issue 8 defect 8: [1, 1, 0.5] has a raw t-interval of [0.116, 1.551]."""
    x = [1.0, 1.0, 0.5]
    half = 4.302653 * np.std(x, ddof=1) / math.sqrt(3)
    raw = mean_ci(x)
    assert raw.hi == pytest.approx(np.mean(x) + half, rel=1e-6) and raw.hi > 1.5
    ci = mean_ci(x, bounds=(0.0, 1.0))
    assert ci.clipped and ci.hi == 1.0 and ci.mean == pytest.approx(5 / 6)
    assert ci.lo == pytest.approx(np.mean(x) - half, rel=1e-6)  # the inside end is untouched
    low = mean_ci([0.0, 0.0, 0.5], bounds=(0.0, 1.0))
    assert low.clipped and low.lo == 0.0 and 0 < low.hi < 1


def test_difference_interval_is_clipped_to_minus_1_1() -> None:
    # d = [1, 1, -1]: mean 1/3, raw t-interval [-2.54, +3.20]
    result = paired([1.0, 1.0, 0.0], [0.0, 0.0, 1.0])
    assert (result.diff.lo, result.diff.hi) == (-1.0, 1.0) and result.diff.clipped
    assert result.diff.mean == pytest.approx(1 / 3)
    unbounded = paired([1.0, 1.0, 0.0], [0.0, 0.0, 1.0], bounds=None)
    assert unbounded.diff.lo == pytest.approx(1 / 3 - 4.302653 * 2 / math.sqrt(3) / math.sqrt(3))


def test_paired_bootstrap_interval() -> None:
    # n = 3: 27 equally likely resamples; the all-min and all-max ones have 1/27 > 2.5%,
    # so the 95% percentile interval is exactly [min, max] of the differences.
    lo, hi = bootstrap_ci(np.array([0.1, 0.2, 0.3]))
    assert (lo, hi) == (pytest.approx(0.1), pytest.approx(0.3))
    d = np.random.default_rng(3).normal(0.02, 0.01, 40)
    lo, hi = bootstrap_ci(d)  # large n: close to the t-interval
    ci = mean_ci(d)
    assert lo == pytest.approx(ci.lo, abs=1e-3) and hi == pytest.approx(ci.hi, abs=1e-3)
    assert bootstrap_ci(d) == (lo, hi)  # seeded: same numbers every time
    assert all(math.isnan(v) for v in bootstrap_ci(np.array([0.1, 0.1, 0.1])))


def test_one_seed_gives_no_interval_and_no_p_value() -> None:
    ci = mean_ci([0.9])
    assert ci.mean == 0.9 and ci.n == 1
    assert math.isnan(ci.sd) and math.isnan(ci.lo) and math.isnan(ci.hi)
    result = paired([0.9], [0.8])
    assert result.diff.mean == pytest.approx(0.1)
    assert math.isnan(result.p_ttest) and math.isnan(result.p_signflip)


def test_identical_differences_do_not_claim_significance() -> None:
    assert math.isnan(paired([0.7, 0.6], [0.71, 0.61]).p_ttest)
    assert paired([0.7, 0.6], [0.7, 0.6]).p_ttest == 1.0


def test_paired_t_test_and_sign_flip() -> None:
    a = np.array([0.81, 0.83, 0.80, 0.84])
    b = np.array([0.79, 0.80, 0.80, 0.81])
    result = paired(a, b)
    d = a - b
    t = d.mean() / (d.std(ddof=1) / 2)
    assert t == pytest.approx(2.828427, rel=1e-6)
    assert result.p_ttest == pytest.approx(0.0662756, abs=1e-7)  # R: 2 * pt(-2.828427, 3)
    # Exact: all 16 sign patterns, count |mean| >= observed.
    means = [abs(np.dot(s, d)) / 4 for s in itertools.product((1, -1), repeat=4)]
    expected = np.mean([m >= abs(d.mean()) - 1e-12 for m in means])
    assert result.p_signflip == pytest.approx(expected)
    assert signflip_p(np.array([0.1, 0.2, 0.3])) == pytest.approx(2 / 8)


# ------------------------------------------------------------------ importance


def test_importance_is_exact_on_an_additive_grid() -> None:
    """y = f(a) + g(b): main effects carry everything, in the ratio of their variances."""
    a, b = np.array([0.0, 1.0, 2.0]), np.array([0.0, 3.0])
    grid = pd.DataFrame(list(itertools.product(a, b, [0.5])), columns=["a", "b", "c"])
    grid["y"] = grid["a"] + grid["b"]
    shares = importance(grid, "y", ["a", "b", "c"])
    va, vb = np.var(a), np.var(b)
    assert shares["a"] == pytest.approx(va / (va + vb))
    assert shares["b"] == pytest.approx(vb / (va + vb))
    assert shares["c"] == 0.0
    assert shares["interactions"] == pytest.approx(0.0, abs=1e-12)


def test_importance_pure_interaction_and_failed_points() -> None:
    grid = pd.DataFrame(list(itertools.product([0, 1], [0, 1])), columns=["a", "b"])
    grid["y"] = (grid["a"] ^ grid["b"]).astype(float)  # XOR: no main effects
    shares = importance(grid, "y", ["a", "b"])
    assert shares["a"] == pytest.approx(0) and shares["interactions"] == pytest.approx(1)
    grid.loc[0, "y"] = np.nan  # scored as the worst working point (0.0): same grid
    assert importance(grid, "y", ["a", "b"])["filled"] == 1
    with pytest.raises(LionSweepError, match="full factorial"):
        importance(grid.iloc[1:], "y", ["a", "b"])


# ------------------------------------------------------------------ selection


def test_honest_selection_equals_independent_argmax(sweep: pd.DataFrame) -> None:
    chosen = select_honest(config_table(sweep, Metrics("final"))).set_index(
        ["dataset", "optimizer"]
    )
    grid = sweep[~sweep["is_default"]]
    means = grid.groupby(["dataset", "optimizer", "config_id"])[["val_acc", "val_logloss"]].mean()
    for (dataset, opt), g in means.groupby(level=[0, 1]):
        g = g.droplevel([0, 1]).reset_index()
        top = g[g["val_acc"] == g["val_acc"].max()]
        top = top[top["val_logloss"] == top["val_logloss"].min()]
        assert chosen.loc[(dataset, opt), "config_id"] == top["config_id"].min()


def test_ties_go_to_lower_val_logloss_then_lower_config_id() -> None:
    frame = make_sweep(datasets=("toy",), optimizers=("lion",))
    grid = ~frame["is_default"]
    frame.loc[grid, "val_acc"] = 0.5
    for cid in (4, 9, 12):  # three-way tie at the top
        frame.loc[frame["config_id"] == cid, "val_acc"] = 0.9
        frame.loc[frame["config_id"] == cid, "val_logloss"] = 0.3
    frame.loc[frame["config_id"] == 4, "val_logloss"] = 0.31
    chosen = select_honest(config_table(check_sweep(frame), Metrics("final")))
    assert chosen["config_id"].tolist() == [9]


def test_best_epoch_metrics_select_on_best_columns(sweep: pd.DataFrame) -> None:
    chosen = select_honest(config_table(sweep, Metrics("best_epoch")))
    grid = sweep[~sweep["is_default"]]
    for r in chosen.itertuples():
        g = grid[(grid["dataset"] == r.dataset) & (grid["optimizer"] == r.optimizer)]
        assert r.val_acc_mean == pytest.approx(g.groupby("config_id")["best_val_acc"].mean().max())


def test_paper_selection_is_max_test_acc_per_seed(sweep: pd.DataFrame) -> None:
    chosen = select_paper(sweep)
    grid = sweep[~sweep["is_default"]]
    expected = grid.groupby(["dataset", "optimizer", "seed"])["test_acc"].max()
    got = chosen.set_index(["dataset", "optimizer", "seed"])["test_acc"]
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False)
    assert not chosen["is_default"].any()


def test_a_diverged_configuration_is_never_selected() -> None:
    frame = make_sweep()
    key = (frame["dataset"] == "titanic") & (frame["optimizer"] == "lion")
    best_val = frame[key & ~frame["is_default"]].groupby("config_id")["val_acc"].mean().idxmax()
    best_test = frame[key & ~frame["is_default"]].groupby("config_id")["test_acc"].max().idxmax()
    # The honest winner diverges in one seed only; the paper's winner diverges in every
    # seed but (a trap) keeps finite metrics: only the flag says it failed.
    diverge(frame, key & (frame["config_id"] == best_val) & (frame["seed"] == 1))
    diverge(frame, key & (frame["config_id"] == best_test), keep_metrics=True)
    frame["test_acc"] = np.where(key & (frame["config_id"] == best_test), 1.0, frame["test_acc"])
    frame = check_sweep(frame)
    configs = config_table(frame, Metrics("final"))
    honest = select_honest(configs).set_index(["dataset", "optimizer"])
    assert honest.loc[("titanic", "lion"), "config_id"] not in (best_val, best_test)
    paper = select_paper(frame)
    paper = paper[(paper["dataset"] == "titanic") & (paper["optimizer"] == "lion")]
    assert len(paper) == 3 and not (paper["config_id"] == best_test).any()
    assert (paper["test_acc"] < 1.0).all()
    row = configs.set_index(["dataset", "optimizer", "config_id"]).loc[
        ("titanic", "lion", best_val)
    ]
    assert row["failed"] and math.isnan(row["val_acc_mean"])
    sens = sensitivity(configs).set_index(["dataset", "optimizer"]).loc[("titanic", "lion")]
    assert sens["n_failed"] == 2 and sens["n_grid"] == 18


def test_everything_diverged_selects_nothing_and_says_which() -> None:
    """Tables and figures report n/a for such a pair instead of stopping (issue 8, defect 7)."""
    frame = make_sweep(datasets=("toy",))
    diverge(frame, ~frame["is_default"] & (frame["optimizer"] == "lion"))
    configs = config_table(check_sweep(frame), Metrics("final"))
    assert select_honest(configs)["optimizer"].tolist() == ["adamw"]
    assert unselectable(configs) == [("toy", "lion")]


def test_sensitivity_share(sweep: pd.DataFrame) -> None:
    configs = config_table(sweep, Metrics("final"))
    got = sensitivity(configs, 1.0).set_index(["dataset", "optimizer"])
    for (dataset, opt), g in sweep[~sweep["is_default"]].groupby(["dataset", "optimizer"]):
        means = g.groupby("config_id")["val_acc"].mean()
        share = (means >= means.max() - 0.01 - 1e-12).mean()
        assert got.loc[(dataset, opt), "share_within"] == pytest.approx(share)


def test_schema_violations_are_readable() -> None:
    frame = make_sweep(datasets=("toy",), optimizers=("lion",), seeds=(0, 1))
    with pytest.raises(LionSweepError, match="duplicate"):
        check_sweep(pd.concat([frame, frame.iloc[:1]]))
    with pytest.raises(LionSweepError, match="is_default"):
        check_sweep(frame.assign(is_default=False))
    with pytest.raises(LionSweepError, match="honest_metrics"):
        settings({"honest_metrics": "last"})


def test_scipy_and_tabulate_are_pinned_at_the_installed_versions() -> None:
    """The results import scipy.stats and DataFrame.to_markdown (tabulate) directly."""
    from importlib.metadata import version

    from conftest import ROOT

    lines = (ROOT / "envs" / "requirements.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))
    assert pins["scipy"] == version("scipy") and pins["tabulate"] == version("tabulate")


def test_results_defaults_are_the_schema_and_config_defaults() -> None:
    """One set of defaults: the code's, the schema's and config.yaml's agree."""
    import yaml

    from conftest import ROOT
    from lionsweep.results.selection import DEFAULTS

    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    block = schema["properties"]["results"]["properties"]
    assert set(block) == set(DEFAULTS)
    assert {k: v["default"] for k, v in block.items()} == DEFAULTS
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["results"]
    assert {k: v for k, v in config.items() if k != "paper_table"} == {
        k: v for k, v in DEFAULTS.items() if k != "paper_table"
    }


@pytest.mark.parametrize(
    ("results", "message"),
    [
        ({"tick_labels": 1}, "results.tick_labels must be a whole number >= 2, got 1"),
        ({"bootstrap_resamples": "many"}, "results.bootstrap_resamples must be a whole number"),
        ({"top_k": True}, "results.top_k must be a whole number >= 1, got True"),
        ({"ci_level": 95}, "results.ci_level must lie strictly between 0 and 1, got 95"),
    ],
)
def test_bad_results_settings_name_the_key(results: dict, message: str) -> None:
    with pytest.raises(LionSweepError, match=re.escape(message)):
        settings(results)
