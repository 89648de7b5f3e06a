"""Result tables: every number recomputed independently from the sweep frame."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_sweep import diverge, make_sweep, to_parquet

from lionsweep.cli import main
from lionsweep.outputs import TABLE_FORMATS, TABLES
from lionsweep.selection import check_sweep
from lionsweep.tables import display, markdown, run_tables

PAPER = {"titanic": {"default": 0.67832, "best": 0.83217}}
T975_DF2 = 4.302653  # t(0.975, df=2): three seeds


@pytest.fixture(scope="module")
def sweep() -> pd.DataFrame:
    frame = make_sweep()
    # One failed grid point, to show it changes nothing but the counts.
    diverge(frame, (frame["config_id"] == 3) & (frame["seed"] == 1))
    return check_sweep(frame)


@pytest.fixture(scope="module")
def tables(sweep: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return run_tables(sweep, {"paper_table": PAPER}, ["titanic", "spambase", "toy"])


def rows(frame: pd.DataFrame, dataset: str, optimizer: str) -> pd.DataFrame:
    return frame[(frame["dataset"] == dataset) & (frame["optimizer"] == optimizer)]


def test_paper_table_is_test_selected_max_per_seed(sweep, tables) -> None:
    paper = tables["paper_table"].set_index("dataset")
    seeds = tables["paper_table_seeds"].set_index(["dataset", "seed"])
    assert list(paper.index) == ["titanic", "spambase", "toy"]  # the configured order
    for dataset in paper.index:
        lion = rows(sweep, dataset, "lion")
        grid = lion[~lion["is_default"] & ~lion["diverged"]]
        best = grid.groupby("seed")["test_acc"].max()
        default = lion[lion["is_default"]].set_index("seed")["test_acc"]
        for seed in best.index:
            assert seeds.loc[(dataset, seed), "best_test_acc"] == best[seed]
            assert seeds.loc[(dataset, seed), "gain"] == pytest.approx(best[seed] - default[seed])
        assert paper.loc[dataset, "seed"] == 0
        assert paper.loc[dataset, "best_test_acc"] == best[0]
        assert paper.loc[dataset, "default_test_acc"] == default[0]
        assert paper.loc[dataset, "best_mean"] == pytest.approx(best.mean())
        assert paper.loc[dataset, "best_sd"] == pytest.approx(best.std(ddof=1))
        assert paper.loc[dataset, "gain_mean"] == pytest.approx((best - default).mean())
    assert paper.loc["titanic", "paper_best"] == 0.83217
    assert paper.loc["titanic", "paper_gain"] == pytest.approx(0.15385)
    assert math.isnan(paper.loc["toy", "paper_default"])  # a dataset the paper did not use
    assert display(tables["paper_table"]).set_index("dataset").loc["toy", "paper_best"] == "n/a"


def test_honest_table_selection_interval_and_paired_gain(sweep, tables) -> None:
    honest = tables["honest_table"].set_index(["dataset", "optimizer"])
    for (dataset, opt), r in honest.iterrows():
        g = rows(sweep, dataset, opt)
        grid = g[~g["is_default"]]
        ok = ~grid.groupby("config_id")["diverged"].any()
        means = grid.groupby("config_id")["val_acc"].mean()[ok]
        assert r["val_acc_mean"] == means.max()
        assert means[r["config_id"]] == means.max()
        test = grid[grid["config_id"] == r["config_id"]].sort_values("seed")["test_acc"].to_numpy()
        half = T975_DF2 * test.std(ddof=1) / math.sqrt(3)
        assert r["test_acc_mean"] == pytest.approx(test.mean())
        assert r["test_acc_hi"] == pytest.approx(test.mean() + half, rel=1e-6)
        assert r["test_acc_lo"] == pytest.approx(test.mean() - half, rel=1e-6)
        default = g[g["is_default"]].sort_values("seed")["test_acc"].to_numpy()
        d = test - default  # paired by seed
        assert r["gain_mean"] == pytest.approx(d.mean())
        assert r["gain_hi"] - r["gain_mean"] == pytest.approx(
            T975_DF2 * d.std(ddof=1) / math.sqrt(3), rel=1e-6
        )
        assert r["n_failed"] == 1 and r["n_grid"] == 18  # config 3 diverged in seed 1


def test_lion_vs_adamw_is_paired_by_seed(sweep, tables) -> None:
    table = tables["lion_vs_adamw"].set_index(["dataset", "comparison"])
    honest = tables["honest_table"].set_index(["dataset", "optimizer"])
    for dataset in ("titanic", "spambase", "toy"):
        lion = rows(sweep, dataset, "lion")
        adamw = rows(sweep, dataset, "adamw")
        d = (
            lion[lion["is_default"]].set_index("seed")["test_acc"]
            - adamw[adamw["is_default"]].set_index("seed")["test_acc"]
        )
        assert table.loc[(dataset, "defaults"), "diff_mean"] == pytest.approx(d.mean())
        pick = {o: honest.loc[(dataset, o), "config_id"] for o in ("lion", "adamw")}
        t = (
            lion[lion["config_id"] == pick["lion"]].set_index("seed")["test_acc"]
            - adamw[adamw["config_id"] == pick["adamw"]].set_index("seed")["test_acc"]
        )
        r = table.loc[(dataset, "tuned")]
        assert r["diff_mean"] == pytest.approx(t.mean())
        half = T975_DF2 * t.std(ddof=1) / math.sqrt(3)  # the sd of the per-seed differences
        assert r["diff_hi"] == pytest.approx(t.mean() + half, rel=1e-6)
        assert 0 <= r["p_ttest"] <= 1 and r["p_signflip"] >= 2 / 8
        assert r["n_seeds"] == 3


def test_one_seed_reports_n_a_without_crashing() -> None:
    frame = check_sweep(make_sweep(seeds=(4,)))
    out = run_tables(frame, {})
    vs = out["lion_vs_adamw"]
    assert vs["p_ttest"].isna().all() and vs["diff_lo"].isna().all()
    assert out["honest_table"]["gain_lo"].isna().all()
    assert (display(vs)["p_signflip"] == "n/a").all()
    assert (out["claims_check"]["ci_verdict"] == "n/a").all()
    assert (out["paper_table"]["seed"] == 4).all()


def test_lion_only_sweep_has_an_empty_comparison() -> None:
    out = run_tables(check_sweep(make_sweep(optimizers=("lion",))), {})
    assert out["lion_vs_adamw"].empty and "diff_mean" in out["lion_vs_adamw"].columns
    assert "| dataset |" in markdown(display(out["lion_vs_adamw"]))


def test_best_configs_top_k_in_selection_order(sweep, tables) -> None:
    best = tables["best_configs"]
    honest = tables["honest_table"].set_index(["dataset", "optimizer"])
    for (dataset, opt), g in best.groupby(["dataset", "optimizer"]):
        assert list(g["rank"]) == list(range(1, 11))
        assert g["val_acc_mean"].is_monotonic_decreasing
        assert g.iloc[0]["config_id"] == honest.loc[(dataset, opt), "config_id"]
        grid = rows(sweep, dataset, opt)
        for r in g.itertuples():
            test = grid[grid["config_id"] == r.config_id]["test_acc"]
            assert r.test_acc_mean == pytest.approx(test.mean())
            assert r.test_acc_sd == pytest.approx(test.std(ddof=1))
        assert 3 not in set(g["config_id"])  # the diverged one


def test_claims_check_numbers_and_verdicts(sweep, tables) -> None:
    claims = tables["claims_check"]
    paper = tables["paper_table_seeds"].set_index(["dataset", "seed"])
    first = claims[claims["protocol"] == "paper: test-selected, seed 0"]
    titanic = first[first["claim"].str.startswith("Titanic: tuning gains")].iloc[0]
    assert titanic["value_points"] == pytest.approx(100 * paper.loc[("titanic", 0), "gain"])
    assert titanic["verdict"] == (
        "holds" if 10 <= titanic["value_points"] <= 20 else "does not hold"
    )
    # Mushroom was not run: its claims are n/a, never a verdict.
    mushroom = claims[claims["claim"].str.startswith("Mushroom")]
    assert (mushroom["verdict"] == "n/a").all()
    # Small data: Titanic gain minus the largest other gain (here only Spambase), per seed.
    small = claims[claims["claim"].str.startswith("Tuning matters most")]
    mean_row = small[small["protocol"].str.startswith("paper: test-selected, mean")].iloc[0]
    expected = 100 * (paper.xs("titanic")["gain"] - paper.xs("spambase")["gain"]).mean()
    assert mean_row["value_points"] == pytest.approx(expected)
    for r in claims.itertuples():
        if not math.isnan(r.ci_lo_points):
            inside = r.ci_lo_points <= r.value_points <= r.ci_hi_points
            assert inside


def test_writers_and_cli(tmp_path: Path, sweep) -> None:
    path = tmp_path / "sweep.parquet"
    to_parquet(sweep, path)
    outdir = tmp_path / "tables"
    code = main(
        ["tables", "--sweep", str(path), "--outdir", str(outdir), "--datasets", "toy", "titanic"]
    )
    assert code == 0
    for name in TABLES:
        for ext in TABLE_FORMATS:
            assert (outdir / f"{name}.{ext}").stat().st_size > 0
    csv = pd.read_csv(outdir / "paper_table.csv")
    assert list(csv["dataset"]) == ["toy", "titanic"]
    direct = run_tables(sweep[sweep["dataset"].isin(["toy", "titanic"])], {}, ["toy", "titanic"])
    np.testing.assert_allclose(csv["best_test_acc"], direct["paper_table"]["best_test_acc"])
    md = (outdir / "honest_table.md").read_text().splitlines()
    assert md[0].startswith("| dataset | optimizer |") and set(md[1]) <= set("|- ")
    assert len({line.count("|") for line in md}) == 1
    assert "\\begin{tabular}" in (outdir / "claims_check.tex").read_text()
    assert "<table" in (outdir / "best_configs.html").read_text()


def test_cli_names_a_missing_dataset(tmp_path: Path, sweep, capsys) -> None:
    path = tmp_path / "sweep.parquet"
    to_parquet(sweep, path)
    code = main(["tables", "--sweep", str(path), "--outdir", str(tmp_path), "--datasets", "nope"])
    assert code == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.slow
def test_rules_build_tables_figures_and_report_from_the_sweep_alone(tmp_path: Path) -> None:
    """`snakemake tables figures` from a bare results/test/sweep.parquet: no training, a report."""
    from conftest import copy_workflow, snakemake

    work = copy_workflow(tmp_path / "wf")
    frame = make_sweep(datasets=("titanic", "spambase", "mushroom"), seeds=(0, 1))
    (work / "results" / "test").mkdir(parents=True)
    to_parquet(frame, work / "results" / "test" / "sweep.parquet")
    args = ("--configfile", "config/test.yaml")
    dry = snakemake(work, "tables", "figures", "-n", *args)
    block = dry.stdout.split("Job stats:")[1].split("Reasons:")[0]
    jobs = set(re.findall(r"^(\w+)\s+\d+$", block, flags=re.M)) - {"total"}
    assert jobs == {"tables", "figures"}, block
    snakemake(work, "tables", "figures", "--cores", "1", *args)
    assert (work / "results" / "test" / "tables" / "claims_check.md").is_file()
    assert (work / "results" / "test" / "figures" / "heatmap_mushroom.pdf").is_file()
    snakemake(work, "--report", "results/test/report.html", *args)
    html = (work / "results" / "test" / "report.html").read_text()
    assert "Two selection protocols" in html and "claims_check.html" in html
