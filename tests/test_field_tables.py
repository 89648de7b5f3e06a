"""The field's tables and figure (issue 20, lionsweep.results.field): ranks, improvement over the
baseline with intervals, wins/ties/losses, on small confirmation frames whose answers
are known by hand, and the tables stage writing them (only) for a study beyond the
paper's pair."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from synthetic_sweep import make_sweep, to_parquet

from lionsweep.cli import main
from lionsweep.results.field import (
    NO_NUMBER,
    field_tables,
    plot_field_ranks,
    plot_ranks,
    rank_table,
    tuned_scores,
    versus_baseline,
    wins_ties_losses,
)
from lionsweep.results.files import (
    FIELD_TABLES,
    figure_outputs,
    figure_stems,
    is_field,
    table_outputs,
)
from lionsweep.results.scoring import FINAL

CFG = {"ci_level": 0.95, "bootstrap_resamples": 999, "baseline": "adamw"}
ADAMW = [0.80, 0.82, 0.81, 0.79, 0.80, 0.83]  # the baseline's per-seed test metric


def confirm_frame(tuned: dict[tuple[str, str], list[float]], metric: str = "acc") -> pd.DataFrame:
    """confirm.parquet's reading columns: the tuned values given per (dataset, optimizer)
    and seed (1000, 1001, ...), a constant default beside them."""
    rows = []
    for (dataset, optimizer), values in tuned.items():
        for i, value in enumerate(values):
            for role in ("default", "tuned"):
                rows.append({"dataset": dataset, "optimizer": optimizer, "seed": 1000 + i,
                             "role": role, "config_id": 1 if role == "tuned" else 0,
                             "primary_metric": metric, "note": "",
                             f"test_{metric}": value if role == "tuned" else 0.5,
                             "lr": 1e-3, "beta1": 0.9, "weight_decay": 0.0})  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["config_id"] = frame["config_id"].astype("Int64")
    return frame


def shifted(delta: float, noise: tuple[float, ...] = (0.0,) * 6) -> list[float]:
    return [a + delta + e for a, e in zip(ADAMW, noise, strict=True)]


def ranks_of(confirm: pd.DataFrame, datasets: list[str]) -> pd.DataFrame:
    return rank_table(tuned_scores(confirm, FINAL), datasets).set_index("optimizer")


def test_ranks_break_ties_by_average_and_mean_over_datasets() -> None:
    conf = confirm_frame({
        ("a", "adamw"): ADAMW, ("a", "lion"): list(ADAMW),  # equal means: a tie
        ("a", "muon"): shifted(0.05), ("a", "sgd"): shifted(-0.10),
        ("b", "adamw"): ADAMW, ("b", "lion"): shifted(0.02),
        ("b", "muon"): shifted(-0.01), ("b", "sgd"): shifted(-0.02),
    })  # fmt: skip
    table = ranks_of(conf, ["a", "b"])
    assert table["rank_a"].to_dict() == {"muon": 1.0, "adamw": 2.5, "lion": 2.5, "sgd": 4.0}
    assert table["rank_b"].to_dict() == {"lion": 1.0, "adamw": 2.0, "muon": 3.0, "sgd": 4.0}
    assert table["mean_rank"].to_dict() == {"lion": 1.75, "muon": 2.0, "adamw": 2.25, "sgd": 4.0}
    assert list(table.index) == ["lion", "muon", "adamw", "sgd"]  # best mean rank first
    assert table["n_datasets"].eq(2).all() and table["n_optimizers"].eq(4).all()


def test_lower_is_better_metric_ranks_and_signs_the_improvement() -> None:
    losses = [0.40, 0.42, 0.41, 0.39, 0.40, 0.43]
    conf = confirm_frame({
        ("a", "adamw"): losses,
        ("a", "muon"): [v - 0.05 for v in losses],  # a lower loss: better
        ("a", "lion"): [v + 0.05 for v in losses],
    }, metric="logloss")  # fmt: skip
    assert ranks_of(conf, ["a"])["rank_a"].to_dict() == {"muon": 1.0, "adamw": 2.0, "lion": 3.0}
    vs = versus_baseline(conf, FINAL, "adamw", 0.95, 999).set_index("optimizer")
    assert vs.loc["muon", "diff_mean"] == pytest.approx(0.05)  # positive = better
    assert vs.loc["lion", "diff_mean"] == pytest.approx(-0.05)
    assert vs.loc["muon", "outcome"] == "win" and vs.loc["lion", "outcome"] == "loss"
    assert "test_logloss_mean" in vs.columns


def test_a_diverged_optimizer_ranks_last_and_loses() -> None:
    nan = [math.nan] * 6
    conf = confirm_frame({
        ("a", "adamw"): ADAMW, ("a", "lion"): shifted(-0.2),
        ("a", "sgd"): nan, ("a", "adan"): nan,  # two without a number: tied last
        ("a", "muon"): [math.nan, *shifted(0.01)[1:]],  # one seed diverged: mean of five
    })  # fmt: skip
    scores = tuned_scores(conf, FINAL).set_index("optimizer")
    assert scores.loc["muon", "test_mean"] == pytest.approx(np.mean(shifted(0.01)[1:]))
    assert scores.loc["muon", "n_seeds"] == 5 and "1 of 6" in scores.loc["muon", "note"]
    table = ranks_of(conf, ["a"])
    assert table["rank_a"].to_dict() == {
        "muon": 1.0, "adamw": 2.0, "lion": 3.0, "adan": 4.5, "sgd": 4.5
    }  # fmt: skip
    assert NO_NUMBER in table.loc["sgd", "note"]
    vs = versus_baseline(conf, FINAL, "adamw", 0.95, 999).set_index("optimizer")
    assert vs.loc["sgd", "outcome"] == "loss" and NO_NUMBER in vs.loc["sgd", "note"]
    assert vs.loc["muon", "n_seeds"] == 5  # paired on the seeds where both exist


def test_a_missing_optimizer_or_baseline_is_left_out_not_ranked() -> None:
    conf = confirm_frame({
        ("a", "adamw"): ADAMW, ("a", "lion"): shifted(0.01), ("a", "nadamw"): shifted(0.02),
        ("b", "adamw"): ADAMW, ("b", "lion"): shifted(-0.01),  # nadamw did not run on b
        ("c", "lion"): ADAMW, ("c", "nadamw"): ADAMW,  # the baseline did not run on c
    })  # fmt: skip
    table = ranks_of(conf, ["a", "b", "c"])
    assert math.isnan(table.loc["nadamw", "rank_b"])
    assert table.loc["nadamw", "n_datasets"] == 2 and table.loc["adamw", "n_datasets"] == 2
    assert table.loc["nadamw", "mean_rank"] == pytest.approx((1.0 + 1.5) / 2)
    vs = versus_baseline(conf, FINAL, "adamw", 0.95, 999)
    assert not ((vs.dataset == "b") & (vs.optimizer == "nadamw")).any()
    on_c = vs[vs.dataset == "c"]
    assert set(on_c.outcome) == {"n/a"} and on_c.note.str.contains("did not run on c").all()


def test_improvement_interval_matches_scipy_and_decides_the_outcome() -> None:
    noise = (0.01, -0.02, 0.015, -0.005, 0.0, 0.02)
    conf = confirm_frame({
        ("a", "adamw"): ADAMW, ("a", "muon"): shifted(0.03, noise),
        ("a", "lion"): shifted(0.0, noise), ("a", "sgd"): shifted(-0.03, noise),
    })  # fmt: skip
    vs = versus_baseline(conf, FINAL, "adamw", 0.95, 999).set_index("optimizer")
    d = np.array(shifted(0.03, noise)) - np.array(ADAMW)
    half = sps.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    row = vs.loc["muon"]
    assert row.diff_mean == pytest.approx(d.mean(), abs=1e-12)
    assert (row.diff_lo, row.diff_hi) == pytest.approx((d.mean() - half, d.mean() + half))
    assert row.p_ttest == pytest.approx(sps.ttest_rel(shifted(0.03, noise), ADAMW).pvalue)
    assert row.test_acc_mean == pytest.approx(np.mean(shifted(0.03, noise)))
    assert row.diff_lo > 0 and row.outcome == "win"
    assert vs.loc["lion", "diff_lo"] < 0 < vs.loc["lion", "diff_hi"]
    assert vs.loc["lion", "outcome"] == "tie" and vs.loc["sgd", "outcome"] == "loss"


def test_wins_ties_losses_count_the_outcomes_per_optimizer() -> None:
    noise = (0.01, -0.02, 0.015, -0.005, 0.0, 0.02)
    conf = confirm_frame({
        ("a", "adamw"): ADAMW, ("a", "muon"): shifted(0.03, noise),
        ("b", "adamw"): ADAMW, ("b", "muon"): shifted(0.0, noise),
        ("c", "adamw"): ADAMW, ("c", "muon"): shifted(0.03, noise),
        ("a", "sgd"): shifted(-0.05, noise), ("b", "sgd"): [math.nan] * 6,
    })  # fmt: skip
    wtl = wins_ties_losses(versus_baseline(conf, FINAL, "adamw", 0.95, 999))
    wtl = wtl.set_index("optimizer")
    assert wtl.loc["muon", ["win", "tie", "loss", "na"]].tolist() == [2, 1, 0, 0]
    assert wtl.loc["sgd", ["win", "tie", "loss", "na"]].tolist() == [0, 0, 2, 0]
    assert wtl.loc["muon", "outcomes"] == "a: win; b: tie; c: win"
    assert list(wtl.index) == ["muon", "sgd"]  # most net wins first


def test_rank_figure_draws_the_rank_table(tmp_path: Path) -> None:
    conf = confirm_frame({
        ("a", "adamw"): ADAMW, ("a", "lion"): shifted(0.01), ("a", "muon"): shifted(-0.01),
        ("b", "adamw"): ADAMW, ("b", "lion"): shifted(-0.01), ("b", "muon"): shifted(-0.02),
    })  # fmt: skip
    fig, table = plot_ranks(tuned_scores(conf, FINAL), ["a", "b"])
    ax = fig.axes[0]
    labels = ax.get_yticklabels()
    bars = {t.get_text(): p.get_width() for t, p in zip(labels, ax.patches, strict=True)}
    assert bars == table.set_index("optimizer")["mean_rank"].to_dict()
    assert bars == {"lion": 1.5, "adamw": 1.5, "muon": 3.0}
    assert "rank" in ax.get_xlabel() and ax.get_ylabel() == "optimizer"
    conf.to_parquet(tmp_path / "confirm.parquet")  # as the figures stage reads it
    _, read = plot_field_ranks(tmp_path / "confirm.parquet", FINAL, ["a", "b"], ["lion", "muon"])
    assert read.set_index("optimizer")["rank_a"].to_dict() == {"lion": 1.0, "muon": 2.0}
    fig, empty = plot_field_ranks(None, FINAL, ["a"], ["lion", "muon"])
    assert empty.empty and "n/a" in fig.axes[0].texts[0].get_text()


def test_field_outputs_only_beyond_the_papers_pair() -> None:
    assert not is_field(["lion", "adamw"]) and not is_field(["lion"])
    assert is_field(["lion", "adamw", "muon"]) and is_field(["sgd"])
    names = {Path(p).stem for p, _ in table_outputs("t", ["lion", "adamw"])}
    assert not names & set(FIELD_TABLES)
    assert set(FIELD_TABLES) <= {Path(p).stem for p, _ in table_outputs("t", ["lion", "sgd"])}
    assert "ranks" in [s for s, _, _ in figure_stems(["a"], ["lion", "adamw", "sgd"])]
    assert "ranks" not in [s for s, _, _ in figure_stems(["a"], ["lion", "adamw"])]
    rules = Path(__file__).resolve().parents[1] / "workflow" / "rules"
    outputs = table_outputs("t", ["sgd"]) + figure_outputs(["a"], "f", ["sgd"])
    for kw in [kw for _, kw in outputs if kw]:  # every report caption exists
        assert (rules / kw["caption"]).is_file(), kw["caption"]


@pytest.mark.parametrize("optimizers", [("lion", "adamw", "sgd"), ("lion", "adamw")])
def test_tables_stage_writes_the_field_tables_it_promises(tmp_path: Path, optimizers) -> None:
    datasets = ("titanic", "spambase")
    sweep = tmp_path / "sweep.parquet"
    to_parquet(make_sweep(datasets=datasets, optimizers=optimizers), sweep)
    means = {"lion": 0.02, "adamw": 0.0, "sgd": -0.05}
    conf = confirm_frame({(d, o): shifted(means[o]) for d in datasets for o in optimizers})
    conf.to_parquet(tmp_path / "confirm.parquet")
    outdir = tmp_path / "tables"
    argv = ["tables", "--sweep", str(sweep), "--confirm", str(tmp_path / "confirm.parquet")]
    argv += ["--outdir", str(outdir), "--settings", '{"bootstrap_resamples": 999}']
    assert main(argv) == 0
    promised = {Path(p).name for p, _ in table_outputs(str(outdir), list(optimizers))}
    assert {p.name for p in outdir.iterdir()} == promised  # rules and writer agree
    if len(optimizers) == 2:
        return
    ranks = pd.read_csv(outdir / "field_ranks.csv").set_index("optimizer")
    assert ranks["rank_titanic"].to_dict() == {"lion": 1.0, "adamw": 2.0, "sgd": 3.0}
    assert ranks["mean_rank"].to_dict() == {"lion": 1.0, "adamw": 2.0, "sgd": 3.0}
    wtl = pd.read_csv(outdir / "field_wtl.csv").set_index("optimizer")
    assert wtl.loc["lion", "win"] == 2 and wtl.loc["sgd", "loss"] == 2
    text = (outdir / "field_vs_baseline.md").read_text()
    assert "paired by seed" in text and "adamw" in text
    assert "mean\\_rank" in (outdir / "field_ranks.tex").read_text()  # escaped for LaTeX


def test_field_tables_without_a_confirmation_are_empty() -> None:
    tables = field_tables(None, FINAL, CFG, ["a"])
    assert set(tables) == set(FIELD_TABLES) and all(t.empty for t in tables.values())
