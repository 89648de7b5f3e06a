"""A lower-is-better primary metric (log-loss) end to end: every best, gain and verdict.

The sweep is synthetic with a planted truth (``loss_sweep``): log-loss is a function of
the hyperparameters, lowest at lr 1e-3, beta1 0.9, weight decay 0.1; each default is
worse than its grid's best by a known amount per dataset; Lion is better than AdamW by
a known amount. The convention under test (lionsweep.results.stats.MetricInfo.improvement):
every gain and difference is "how much better", so tuned-better-than-default is
positive for a loss too (default minus tuned), and claims read it so.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from synthetic_sweep import diverge, make_sweep, to_parquet

from lionsweep.cli import main
from lionsweep.results.figures import marginal_data
from lionsweep.results.heatmap import heatmap_data
from lionsweep.results.overview import decay_data, importance_data
from lionsweep.results.scoring import FINAL, with_primary
from lionsweep.results.selection import check_sweep, config_table, select_honest
from lionsweep.results.stats import importance, metric_info
from lionsweep.results.tables import caption, run_tables, settings
from lionsweep.results.tradeoff import seeds_tradeoff

DATASETS = ("titanic", "spambase", "mushroom")
LOSS = {d: "logloss" for d in DATASETS}
# The default's log-loss above its grid's best (a "point" is 0.01): Titanic gains 15
# points (the claim holds), Spambase 5 (not within 0.5 points), Mushroom 0.2 (within).
EXCESS = {"titanic": 0.15, "spambase": 0.05, "mushroom": 0.002}
LION_EDGE = 0.03  # Lion's log-loss is this much lower than AdamW's, point for point
BEST = 0.29  # Lion's best grid point: lr 1e-3, beta1 0.9, weight decay 0.1
LOSS_COLUMNS = [f"{p}{s}_logloss" for p in ("", "best_") for s in ("val", "test")]
CLAIMS = {
    "Spambase: defaults within 0.5 points of the best grid point": "does not hold",
    "Mushroom: defaults within 0.5 points of the best grid point": "holds",
    "Titanic: tuning gains about 15 points (read as 15 +- 5)": "holds",
    "Tuning matters most on the small dataset (Titanic)": "holds",
}


def planted(lr: float, beta1: float, wd: float, optimizer: str) -> float:
    """The grid's log-loss: lowest at lr 1e-3, beta1 0.9, the largest weight decay."""
    edge = 0.0 if optimizer == "lion" else LION_EDGE
    return 0.30 + 0.05 * abs(math.log10(lr) + 3) + 0.02 * (beta1 != 0.9) - 0.1 * wd + edge


def loss_sweep() -> pd.DataFrame:
    """Three binary datasets scored by log-loss with the planted truth above."""
    frame = make_sweep(datasets=DATASETS, task="binary")
    loss = [planted(r.lr, r.beta1, r.weight_decay, r.optimizer) for r in frame.itertuples()]
    frame["_loss"] = loss
    best = frame[~frame["is_default"]].groupby(["dataset", "optimizer"])["_loss"].min()
    for (dataset, optimizer), low in best.items():
        rows = frame["is_default"] & (frame["dataset"] == dataset)
        rows &= frame["optimizer"] == optimizer
        # the default's seeds wobble a little, so the gain has an interval
        frame.loc[rows, "_loss"] = low + EXCESS[dataset] + 5e-4 * (frame.loc[rows, "seed"] - 1)
    for col in LOSS_COLUMNS:
        frame[col] = frame["_loss"]
    return with_primary(check_sweep(frame.drop(columns="_loss")), LOSS)


@pytest.fixture(scope="module")
def sweep() -> pd.DataFrame:
    return loss_sweep()


@pytest.fixture(scope="module")
def tables(sweep: pd.DataFrame) -> dict[str, pd.DataFrame]:
    published = {"titanic": {"default": 0.67832, "best": 0.83217}}  # accuracies
    return run_tables(sweep, {"paper_table": published, "primary_metrics": LOSS}, list(DATASETS))


def loss_of(sweep: pd.DataFrame, dataset: str, optimizer: str, default: bool) -> pd.Series:
    rows = sweep[(sweep["dataset"] == dataset) & (sweep["optimizer"] == optimizer)]
    return rows[rows["is_default"] == default].groupby("seed")["test_logloss"]


def test_the_metric_direction_has_one_definition() -> None:
    loss, acc = metric_info("logloss"), metric_info("acc")
    assert (loss.sign, loss.best, acc.sign, acc.best) == (-1.0, "min", 1.0, "max")
    assert loss.improvement(0.2, 0.5) == pytest.approx(0.3)  # 0.5 -> 0.2: better by 0.3
    assert acc.improvement(0.9, 0.8) == pytest.approx(0.1)
    assert loss.ordered("tuned", "default") == ("default", "tuned")
    assert "lower is better" in loss.axis() and "lower" not in acc.axis()


def test_honest_selection_is_the_lowest_loss_and_its_gain_says_tuned_is_better(
    sweep, tables
) -> None:
    honest = tables["honest_table"].set_index(["dataset", "optimizer"])
    for (dataset, optimizer), row in honest.iterrows():
        assert row["metric"] == "logloss"
        low = BEST + (0 if optimizer == "lion" else LION_EDGE)
        assert row["val_logloss_mean"] == pytest.approx(low)  # the minimum, not the maximum
        assert (row["lr"], row["beta1"], row["weight_decay"]) == (1e-3, 0.9, 0.1)
        tuned = loss_of(sweep, dataset, optimizer, False).min()
        base = loss_of(sweep, dataset, optimizer, True).first()
        assert row["gain_mean"] == pytest.approx((base - tuned).mean())  # default - tuned
        assert row["gain_mean"] == pytest.approx(EXCESS[dataset]) and row["gain_mean"] > 0
        assert 0 < row["gain_lo"] <= row["gain_mean"] <= row["gain_hi"]
        assert row["gain_boot_lo"] <= row["gain_mean"] <= row["gain_boot_hi"]


def test_paper_table_picks_the_lowest_test_loss_per_seed(sweep, tables) -> None:
    seeds = tables["paper_table_seeds"].set_index(["dataset", "seed"])
    for dataset in DATASETS:
        best = loss_of(sweep, dataset, "lion", False).min()
        base = loss_of(sweep, dataset, "lion", True).first()
        for seed in best.index:
            assert seeds.loc[(dataset, seed), "best_test_logloss"] == best[seed]
            assert seeds.loc[(dataset, seed), "gain"] == pytest.approx(base[seed] - best[seed])
            assert seeds.loc[(dataset, seed), "gain"] > 0
    paper = tables["paper_table"].set_index("dataset")
    assert (paper["gain_mean"] > 0).all()
    # the published numbers are accuracies: nothing to set beside a log-loss
    assert paper[["paper_default", "paper_best", "paper_gain"]].isna().all().all()


def test_comparisons_say_which_optimizer_is_better(tables) -> None:
    vs = tables["lion_vs_adamw"]
    assert len(vs) == 2 * len(DATASETS)
    assert vs["diff_mean"].to_numpy() == pytest.approx(LION_EDGE)  # AdamW - Lion: Lion better
    assert (vs["lion_test_logloss_mean"] < vs["adamw_test_logloss_mean"]).all()
    comparison = tables["comparison"]
    assert set(comparison["optimizer"]) == {"lion"}
    assert comparison["diff_mean"].to_numpy() == pytest.approx(LION_EDGE)


@pytest.mark.parametrize("protocol", ["paper: test-selected, mean", "honest"])
def test_claims_decide_the_right_way(tables, protocol: str) -> None:
    claims = tables["claims_check"]
    rows = claims[claims["protocol"].str.startswith(protocol)].set_index("claim")
    assert (rows["metric"] == "logloss").all()
    for claim, verdict in CLAIMS.items():
        assert rows.loc[claim, "ci_verdict"] == verdict, claim
    titanic = rows.loc["Titanic: tuning gains about 15 points (read as 15 +- 5)"]
    assert titanic["value_points"] == pytest.approx(15.0)
    assert titanic["statistic"] == "default - best (points)"


def fresh_confirm(sweep: pd.DataFrame) -> pd.DataFrame:
    """confirm.parquet's reading columns: the sweep's default and honest choice on seeds
    1000-1002 (the same planted numbers)."""
    picks = select_honest(config_table(sweep, FINAL)).set_index(["dataset", "optimizer"])
    rows = []
    for (dataset, optimizer), g in sweep.groupby(["dataset", "optimizer"]):
        tuned = g["config_id"] == picks.loc[(dataset, optimizer), "config_id"]
        for role, part in (("default", g[g["is_default"]]), ("tuned", g[tuned])):
            rows.append(part.assign(role=role, note="", seed=part["seed"] + 1000))
    keep = ["dataset", "optimizer", "seed", "role", "config_id", "primary_metric", "note"]
    return pd.concat(rows)[[*keep, "test_logloss", "lr", "beta1", "weight_decay"]]


def test_confirmed_gains_and_claims_follow_the_direction(sweep) -> None:
    confirm = fresh_confirm(sweep)
    cfg = {"primary_metrics": LOSS}
    out = run_tables(sweep, cfg, list(DATASETS), confirm=confirm)
    confirmed = out["confirmed"].set_index(["dataset", "optimizer"])
    for (dataset, _), row in confirmed.iterrows():
        assert row["gain_mean"] == pytest.approx(EXCESS[dataset]) and row["gain_lo"] > 0
    claims = out["claims_check"]
    rows = claims[claims["protocol"].str.startswith("honest, confirmed")].set_index("claim")
    for claim, verdict in CLAIMS.items():
        assert rows.loc[claim, "ci_verdict"] == verdict, claim
    trade = seeds_tradeoff(confirm, [2, 3], draws=20).set_index(["claim", "n_seeds"])
    for claim, verdict in CLAIMS.items():
        assert trade.loc[(claim, 3), "verdict_all_seeds"] == verdict, claim


def test_decay_table_compares_the_lowest_losses(tables) -> None:
    decay = tables["decay_product"]
    lion = decay[decay["optimizer"] == "lion"]
    assert lion["decayed_val_logloss_mean"].to_numpy() == pytest.approx(BEST)
    assert lion["no_decay_val_logloss_mean"].to_numpy() == pytest.approx(BEST + 0.01)
    # decay helps (lower loss with it): positive points, as for an accuracy that rises
    assert lion["decay_points"].to_numpy() == pytest.approx(1.0)


def test_figures_draw_the_best_as_the_lowest_loss(sweep) -> None:
    configs = config_table(sweep, FINAL)
    grid = configs[~configs["is_default"] & (configs["dataset"] == "titanic")]
    lion = grid[grid["optimizer"] == "lion"]
    d = decay_data(configs, "titanic", "lion")
    assert d["best_wd0"] == pytest.approx(lion.loc[lion["weight_decay"] == 0, "val_mean"].min())
    marg = marginal_data(sweep, FINAL, "titanic", "lion")
    best = marg[(marg["axis"] == "lr") & (marg["stat"] == "best")].set_index("value")["mean"]
    assert best.to_numpy() == pytest.approx(lion.groupby("lr")["val_mean"].min().to_numpy())
    heat = heatmap_data(configs, "titanic", "lion", None)
    cells = lion.groupby(["weight_decay", "lr"])["val_mean"].min().unstack().to_numpy()
    assert heat["acc"] == pytest.approx(cells)
    assert (heat["beta1"] == 0.9).all()  # the side axis at the lowest-loss value


def test_importance_fills_a_failed_point_with_the_worst_loss(sweep) -> None:
    frame = sweep.copy()
    diverge(frame, (frame["dataset"] == "titanic") & (frame["config_id"] == 4))
    configs = config_table(frame, FINAL)
    data = importance_data(configs)
    got = data[(data["dataset"] == "titanic") & (data["optimizer"] == "lion")]
    g = configs[(configs["dataset"] == "titanic") & (configs["optimizer"] == "lion")]
    g = g[~g["is_default"]]
    assert g["val_mean"].isna().sum() == 1
    worst = g["val_mean"].max()  # the highest log-loss on the grid
    axes = ["lr", "beta1", "weight_decay"]
    filled = importance(g.assign(val_mean=g["val_mean"].fillna(worst)), "val_mean", axes)
    shares = got.set_index("part")["share"]
    for part in (*axes, "interactions"):
        assert shares[part] == pytest.approx(filled[part], abs=1e-12), part
    assert got["n_failed_filled"].iloc[0] == 1


def test_captions_state_the_sign_for_a_loss_and_only_then(tables) -> None:
    cfg = settings({})
    for name, words in (
        ("honest_table", "gain = default minus tuned"),
        ("lion_vs_adamw", "diff = AdamW minus Lion"),
        ("comparison", "diff = baseline minus optimizer"),
        ("decay_product", "best without decay minus best with"),
        ("claims_check", "a gain = default minus tuned"),
    ):
        text = caption(name, tables[name], cfg, tables["datasets"])
        assert "For log-loss (logloss), lower is better" in text and words in text, name
        assert "a positive value always means better" in text
    acc = run_tables(check_sweep(make_sweep()), {})
    assert "lower is better" not in caption(
        "honest_table", acc["honest_table"], cfg, acc["datasets"]
    )
    assert np.isfinite(acc["honest_table"]["gain_mean"]).all()


# ------------------------------------------------------------------ careless inputs


def test_a_loss_on_a_dataset_whose_every_run_diverged_gives_n_a_rows() -> None:
    """Every titanic run diverged: its metric is still its task's, so n/a rows, not an error
    asking whether log-loss is a metric of its task."""
    frame = make_sweep(task="binary")
    diverge(frame, frame["dataset"] == "titanic")
    frame = with_primary(check_sweep(frame), {"titanic": "logloss"})
    honest = run_tables(frame, {"primary_metrics": {"titanic": "logloss"}})["honest_table"]
    titanic = honest[honest["dataset"] == "titanic"]
    assert (titanic["metric"] == "logloss").all() and titanic["config_id"].isna().all()
    assert titanic["note"].str.contains("no working grid point").all()


def test_claims_mixing_metrics_get_a_caption(tmp_path) -> None:
    """A loss on the claimed datasets, accuracy for a claim whose dataset did not run: the
    claims table mixes metrics without a dataset column, and its caption names both."""
    frame = with_primary(check_sweep(make_sweep(task="binary")), {"titanic": "logloss"})
    out = run_tables(frame, {"primary_metrics": {"titanic": "logloss"}})
    text = caption("claims_check", out["claims_check"], settings({}), out["datasets"])
    assert "log-loss (logloss)" in text.split(" (a point")[0]
    assert "accuracy (acc)" in text.split(" (a point")[0]


def test_equal_losses_are_no_gain_and_never_minus_zero() -> None:
    frame = make_sweep(task="binary")
    for col in [c for c in frame.columns if c.endswith("_logloss")]:
        frame[col] = 0.5
    chosen = {d: "logloss" for d in frame["dataset"].unique()}
    out = run_tables(with_primary(check_sweep(frame), chosen), {"primary_metrics": chosen})
    gains = out["paper_table_seeds"]["gain"].to_numpy()
    assert (gains == 0).all() and not np.signbit(gains).any()
    assert (out["honest_table"]["gain_mean"] == 0).all()
    assert (out["lion_vs_adamw"]["p_ttest"] == 1.0).all()  # no difference: p = 1, not 0


def test_tables_refuse_a_confirmation_scored_by_another_metric(tmp_path, capsys) -> None:
    """primary_metric changed to log-loss after confirming on accuracy: the confirmed
    gains (and the configuration they retrained) belong to accuracy, so one line."""
    frame = check_sweep(make_sweep(datasets=DATASETS, task="binary"))
    confirm = fresh_confirm(frame).assign(test_acc=0.8)
    to_parquet(frame, tmp_path / "sweep.parquet")
    confirm.to_parquet(tmp_path / "confirm.parquet")
    argv = ["tables", "--sweep", str(tmp_path / "sweep.parquet"), "--outdir", str(tmp_path)]
    argv += ["--confirm", str(tmp_path / "confirm.parquet")]
    assert main([*argv, "--settings", '{"primary_metrics": {"titanic": "logloss"}}']) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dataset 'titanic' was confirmed on 'acc'" in err
    assert "rerun lionsweep confirm" in err
    assert main(argv) == 0  # the same confirmation under its own metric
