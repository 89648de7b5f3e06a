"""Result tables: every number recomputed independently from the sweep frame."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_sweep import DEGENERATE, diverge, make_sweep, to_parquet

from lionsweep.cli import main
from lionsweep.results.files import TABLE_FORMATS, TABLES
from lionsweep.results.selection import check_sweep
from lionsweep.results.tables import run_tables
from lionsweep.results.writers import display, markdown

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
        assert r["test_acc_hi"] == pytest.approx(min(1.0, test.mean() + half), rel=1e-6)
        assert r["test_acc_lo"] == pytest.approx(max(0.0, test.mean() - half), rel=1e-6)
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
    assert markdown(display(out["lion_vs_adamw"])).startswith("| dataset   | comparison")


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
    md = (outdir / "honest_table.md").read_text().split("\n\n")[0].splitlines()
    assert re.match(r"\| dataset +\| optimizer +\|", md[0]) and set(md[1]) <= set("|-:")
    assert len({line.count("|") for line in md}) == 1 and len(md) == 2 + len(direct["honest_table"])
    assert "\\begin{tabular}" in (outdir / "claims_check.tex").read_text()
    assert "<table" in (outdir / "best_configs.html").read_text()


def test_cli_names_a_missing_dataset(tmp_path: Path, sweep, capsys) -> None:
    path = tmp_path / "sweep.parquet"
    to_parquet(sweep, path)
    code = main(["tables", "--sweep", str(path), "--outdir", str(tmp_path), "--datasets", "nope"])
    assert code == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.slow
def test_rules_build_tables_figures_and_report_from_the_sweep_alone(
    tmp_path: Path, mirror: Path
) -> None:
    """`snakemake tables figures` from results/test/sweep.parquet and the prepared datasets'
    meta.json (row counts for the captions), without shards: no grid training (only the
    confirmation's few models, on the synthetic sweep's selections), a report."""
    import pyarrow.parquet as pq

    from conftest import copy_workflow, snakemake
    from lionsweep.sweep.summary import summarize, summary_table

    work = copy_workflow(tmp_path / "wf")
    args = ("--configfile", "config/test.yaml")
    snakemake(work, "data", "--cores", "1", *args, mirror=mirror)
    frame = make_sweep(datasets=("titanic", "spambase", "mushroom"), seeds=(0, 1))
    (work / "results" / "test").mkdir(parents=True, exist_ok=True)  # study.json is there
    to_parquet(frame, work / "results" / "test" / "sweep.parquet")
    pq.write_table(summary_table(summarize(frame)), work / "results" / "test" / "summary.parquet")
    dry = snakemake(work, "tables", "figures", "-n", *args)
    block = dry.stdout.split("Job stats:")[1].split("Reasons:")[0]
    jobs = set(re.findall(r"^(\w+)\s+\d+$", block, flags=re.M)) - {"total"}
    assert jobs == {"confirm", "tables", "figures"}, block  # confirm: trains 2 x 6 x 3 models
    snakemake(work, "tables", "figures", "--cores", "1", *args)
    assert (work / "results" / "test" / "tables" / "claims_check.md").is_file()
    assert (work / "results" / "test" / "figures" / "heatmap_mushroom.pdf").is_file()
    snakemake(work, "--report", "results/test/report.html", *args)
    html = (work / "results" / "test" / "report.html").read_text()
    assert "Two selection protocols" in html and "claims_check.html" in html


# ------------------------------------------------------------------ bounded intervals


def planted(grids: dict | None = None, datasets: tuple[str, ...] = ("titanic",)) -> pd.DataFrame:
    """A Lion-only sweep whose numbers the tests set by hand."""
    return make_sweep(datasets=datasets, optimizers=("lion",), grids=grids)


def test_accuracy_intervals_stay_inside_0_1_and_say_so(tmp_path: Path) -> None:
    """Issue 8 defect 8: test accuracies [1, 1, 0.5] have a raw t-interval up to 1.55."""
    frame = planted()
    grid, default = ~frame["is_default"], frame["is_default"]
    frame.loc[grid, "val_acc"] = 0.5
    frame.loc[frame["config_id"] == 4, "val_acc"] = 0.95  # the honest pick
    frame.loc[frame["config_id"] == 4, "test_acc"] = [1.0, 1.0, 0.5]  # seeds 0, 1, 2
    frame.loc[default, "test_acc"] = [0.0, 0.0, 1.0]  # gains 1, 1, -0.5: raw [-1.7, +2.7]
    honest = run_tables(check_sweep(frame), {})["honest_table"].iloc[0]
    assert honest["config_id"] == 4 and honest["test_acc_mean"] == pytest.approx(5 / 6)
    assert honest["test_acc_hi"] == 1.0 and 0 < honest["test_acc_lo"] < 5 / 6
    assert honest["default_test_acc_lo"] == 0.0 and honest["default_test_acc_hi"] <= 1.0
    assert (honest["gain_lo"], honest["gain_hi"]) == (-1.0, 1.0)
    assert -0.5 <= honest["gain_boot_lo"] <= honest["gain_boot_hi"] <= 1.0
    path = tmp_path / "sweep.parquet"
    to_parquet(frame, path)
    assert main(["tables", "--sweep", str(path), "--outdir", str(tmp_path)]) == 0
    md = (tmp_path / "honest_table.md").read_text()
    assert "clipped to the metric's range ([0, 1] for accuracies, [-1, 1] for the gain)" in md
    assert "clipped" in (tmp_path / "lion_vs_adamw.md").read_text()
    assert "clipped" in (tmp_path / "honest_table.tex").read_text()


def test_markdown_is_tabulate_with_escaped_pipes() -> None:
    frame = pd.DataFrame({"claim": ["a | b"], "p_ttest": [0.5], "lr": [1e-3]})
    text = markdown(display(frame), "A caption.")
    expected = (
        display(frame).assign(claim=["a \\| b"]).to_markdown(index=False, disable_numparse=True)
    )
    assert text == expected + "\n\nTable: A caption.\n"
    assert "| 0.500 " in text and "| 0.001 " in text  # display strings, not re-parsed numbers


# ------------------------------------------------------------------ grid edges


EDGE_GRID = {"lion": {"lr": [1e-4, 1e-3, 1e-2], "beta1": [0.8, 0.9, 0.95], "weight_decay": [0.0]}}


def _plant_best(frame: pd.DataFrame, lr: float, beta1: float) -> pd.DataFrame:
    frame.loc[~frame["is_default"], ["val_acc", "test_acc"]] = 0.6
    best = (frame["lr"] == lr) & (frame["beta1"] == beta1) & ~frame["is_default"]
    frame.loc[best, ["val_acc", "test_acc"]] = 0.9
    return check_sweep(frame)


@pytest.mark.parametrize(
    ("lr", "beta1", "edge"),
    [(1e-3, 0.9, "no"), (1e-2, 0.9, "lr=max"), (1e-4, 0.8, "lr=min, beta1=min")],
)
def test_selected_configuration_at_the_grid_edge_is_flagged(lr, beta1, edge) -> None:
    frame = _plant_best(planted(EDGE_GRID), lr, beta1)
    out = run_tables(frame, {})
    # weight_decay has one value: no edge to speak of, never flagged.
    assert out["honest_table"]["at_grid_edge"].tolist() == [edge]
    assert out["best_configs"].iloc[0]["at_grid_edge"] == edge
    assert out["paper_table"]["at_grid_edge"].tolist() == [edge]
    assert set(out["paper_table_seeds"]["at_grid_edge"]) == {edge}
    notes = out["claims_check"].set_index(["claim", "protocol"])["note"]
    titanic = notes[notes.index.get_level_values(0).str.startswith("Titanic: tuning")]
    if edge == "no":
        assert (titanic == "").all()
    else:
        expected = f"best at grid edge: the grid may be too narrow (titanic: {edge})"
        assert (titanic == expected).all() and len(titanic) == 3
    # The other claims read datasets that were not run: no note.
    assert (notes[notes.index.get_level_values(0).str.startswith("Spambase")] == "").all()


def test_edges_use_each_grid_own_extent() -> None:
    """An optimizer's edges come from its own grid, the default row is not part of it."""
    adamw = {"lr": [1e-3, 1e-2, 1e-1], "beta1": [0.9], "weight_decay": [0.0]}
    grids = {**EDGE_GRID, "adamw": adamw}
    frame = make_sweep(datasets=("toy",), grids=grids)
    frame.loc[~frame["is_default"], "val_acc"] = 0.6
    frame.loc[frame["lr"] == 1e-2, "val_acc"] = 0.9  # Lion's max, AdamW's middle
    frame.loc[frame["is_default"], "val_acc"] = 0.99  # never a candidate
    honest = run_tables(check_sweep(frame), {})["honest_table"].set_index("optimizer")
    assert honest.loc["adamw", "at_grid_edge"] == "no"
    assert honest.loc["lion", "at_grid_edge"].startswith("lr=max")


# ------------------------------------------------------------------ degenerate sweeps


@pytest.mark.parametrize("case", list(DEGENERATE))
def test_every_table_is_written_for_degenerate_sweeps(case: str, tmp_path: Path) -> None:
    frame = check_sweep(DEGENERATE[case]())
    path = tmp_path / "sweep.parquet"
    to_parquet(frame, path)
    assert main(["tables", "--sweep", str(path), "--outdir", str(tmp_path)]) == 0
    out = run_tables(frame, {})
    for name in TABLES:
        md = (tmp_path / f"{name}.md").read_text()
        csv = pd.read_csv(tmp_path / f"{name}.csv")
        assert len(csv) == len(out[name])
        table, caption = md.split("\n\nTable: ")
        assert len(table.splitlines()) == 2 + len(csv)
        if csv.empty:
            assert "n/a: " in caption, (name, caption)
    honest = out["honest_table"]
    pairs = frame.groupby(["dataset", "optimizer"]).ngroups
    assert len(honest) == pairs  # one row per (dataset, optimizer), n/a or not
    assert np.isfinite(honest["default_test_acc_mean"]).all()
    lost = honest[honest["note"] != ""]
    assert lost["config_id"].isna().all() and lost["test_acc_mean"].isna().all()
    if case in ("lion all diverged", "default only"):
        expect = {"lion"} if case == "lion all diverged" else {"lion", "adamw"}
        assert set(lost["optimizer"]) == expect
        assert lost["n_failed"].tolist() == lost["n_grid"].tolist()
        vs = out["lion_vs_adamw"].set_index(["dataset", "comparison"])
        assert vs.xs("tuned", level=1)["diff_mean"].isna().all()
        assert np.isfinite(vs.xs("defaults", level=1)["diff_mean"]).all()  # still compared
        claims = out["claims_check"]
        honest_rows = claims[claims["protocol"].str.startswith("honest")]
        assert (honest_rows["verdict"] == "n/a").all()
    else:
        assert lost.empty
    if case == "default only":
        for name in ("paper_table", "honest_table"):
            text = (tmp_path / f"{name}.md").read_text()
            assert "n/a rows (spambase" in text and "no working grid point" in text
    if case == "lion all diverged":
        text = (tmp_path / "honest_table.md").read_text()
        assert "n/a rows (spambase/lion, titanic/lion, toy/lion)" in text
    if case == "adamw only":
        assert out["paper_table"].empty
        assert "n/a: the sweep has no lion rows" in (tmp_path / "paper_table.md").read_text()
    if case == "one value per axis":  # no axis varies: no edge
        assert set(out["best_configs"]["at_grid_edge"]) == {"no"}
    if case == "all-zero decay":
        assert not out["honest_table"]["at_grid_edge"].str.contains("weight_decay").any()
    if case == "one seed":
        assert out["honest_table"]["test_acc_lo"].isna().all()


# ------------------------------------------------------------------ --meta


def write_meta(path: Path, dataset: str, raw: int, dropped: int) -> Path:
    kept = raw - dropped
    rows = {"train": kept // 2, "val": kept // 4, "test": kept - kept // 2 - kept // 4}
    meta = {"dataset": dataset, "rows_raw": raw, "rows_dropped": dropped, "rows": rows}
    meta["positives"] = {k: v // 3 for k, v in rows.items()}
    meta["features"] = ["a", "b"]
    path.mkdir(parents=True, exist_ok=True)
    (path / "meta.json").write_text(json.dumps(meta))
    return path / "meta.json"


def test_meta_gives_a_datasets_table_and_dropped_rows_in_captions(tmp_path: Path, sweep) -> None:
    path = tmp_path / "sweep.parquet"
    to_parquet(sweep, path)
    metas = [
        write_meta(tmp_path / "data" / "titanic", "titanic", 891, 179),
        write_meta(tmp_path / "data" / "toy", "toy", 100, 0),
        write_meta(tmp_path / "data" / "other", "other", 10, 1),  # not reported: left out
    ]
    argv = ["tables", "--sweep", str(path), "--outdir", str(tmp_path / "t")]
    argv += ["--datasets", "toy", "titanic", "--meta", *map(str, metas)]
    assert main(argv) == 0
    table = pd.read_csv(tmp_path / "t" / "datasets.csv")
    assert table["dataset"].tolist() == ["toy", "titanic"]
    titanic = table.set_index("dataset").loc["titanic"]
    assert (titanic["rows_raw"], titanic["rows_dropped"]) == (891, 179)
    assert titanic["rows_train"] + titanic["rows_val"] + titanic["rows_test"] == 712
    assert titanic["positives_test"] == (712 - 356 - 178) // 3
    note = "Rows dropped while preparing the data (missing values): "
    note += "toy 0 of 100, titanic 179 of 891."
    for name in ("honest_table", "paper_table"):
        assert note in (tmp_path / "t" / f"{name}.md").read_text().split("\n\nTable: ")[1]
    assert "Rows dropped" not in (tmp_path / "t" / "best_configs.md").read_text()
    # Without --meta: the same numbers, no dropped-rows line, the datasets table n/a.
    assert main(argv[: argv.index("--meta")]) == 0
    assert "Rows dropped" not in (tmp_path / "t" / "honest_table.md").read_text()
    assert "n/a: no --meta" in (tmp_path / "t" / "datasets.md").read_text()
    assert pd.read_csv(tmp_path / "t" / "datasets.csv").empty


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a readable meta.json"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"dataset": "toy", "rows_raw": 5}', "lacks ['rows_dropped', 'rows', 'positives']"),
        (
            '{"dataset": "toy", "rows_raw": "5", "rows_dropped": 0, "rows": {}, "positives": {}}',
            "rows_raw must be a whole number, got '5'",
        ),
        (
            '{"dataset": "toy", "rows_raw": 5, "rows_dropped": 0, "rows": {"train": 3, "val": 1},'
            ' "positives": {"train": 1, "val": 0, "test": 0}}',
            "rows_test must be a whole number, got None",
        ),
        (
            '{"dataset": "toy", "rows_raw": 5, "rows_dropped": -1, "rows": {"train": 3, "val": 1,'
            ' "test": 1}, "positives": {"train": 1, "val": 0, "test": 0}}',
            "rows_dropped must not be negative",
        ),
    ],
)
def test_bad_meta_is_one_line_naming_the_file(tmp_path: Path, sweep, capsys, content, message):
    path = tmp_path / "sweep.parquet"
    to_parquet(sweep, path)
    meta = tmp_path / "meta.json"
    meta.write_text(content)
    outdir = tmp_path / "t"
    argv = ["tables", "--sweep", str(path), "--outdir", str(outdir), "--meta", str(meta)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"lionsweep tables: error: {meta}: ")
    assert message in err
    assert not outdir.exists() or not any(outdir.iterdir())  # nothing half-written


def test_two_meta_files_for_one_dataset_are_an_error(tmp_path: Path, sweep, capsys) -> None:
    path = tmp_path / "sweep.parquet"
    to_parquet(sweep, path)
    a = write_meta(tmp_path / "a", "toy", 10, 0)
    b = write_meta(tmp_path / "b", "toy", 10, 1)
    argv = ["tables", "--sweep", str(path), "--outdir", str(tmp_path / "t")]
    assert main([*argv, "--meta", str(a), str(b)]) == 2
    assert "several meta.json files for dataset 'toy'" in capsys.readouterr().err
    missing = tmp_path / "nope" / "meta.json"
    assert main([*argv, "--meta", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{bad", "--settings is not valid JSON"),
        ("[1]", "--settings must be a JSON object"),
        ('{"topk": 3}', "--settings: unknown results key(s) ['topk']"),
        ('{"tick_labels": 0}', "results.tick_labels must be a whole number >= 2, got 0"),
    ],
)
@pytest.mark.parametrize("stage", ["tables", "figures"])
def test_bad_settings_are_one_line(tmp_path: Path, sweep, capsys, stage, text, message) -> None:
    path = tmp_path / "sweep.parquet"
    to_parquet(sweep, path)
    argv = [stage, "--sweep", str(path), "--outdir", str(tmp_path / "out"), "--settings", text]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lionsweep {stage}: error: ") and err.count("\n") == 1
    assert message in err and not (tmp_path / "out").exists()


# ----------------------------------------------------------------- tasks and optimizers (issue 9)

TASKS = {"wine": "multiclass", "diabetes": "regression", "titanic": "binary"}
PRIMARY_COL = {"multiclass": "acc", "regression": "r2", "binary": "acc"}  # independent of heads
OPTS4 = ("lion", "adamw", "sgd", "adam")


def tasks_sweep() -> pd.DataFrame:
    """Three tasks, four optimizers; Lion's default on diabetes is planted very seed-dependent
    (R^2 -1.5, 0.2, 0.2) so that honest intervals leave [0, 1] and [-1, 1]."""
    frame = make_sweep(datasets=tuple(TASKS), optimizers=OPTS4, task=TASKS)
    lion_default = (
        (frame["dataset"] == "diabetes") & (frame["optimizer"] == "lion") & frame["is_default"]
    )
    frame.loc[lion_default, "test_r2"] = [-1.5, 0.2, 0.2]
    diverge(frame, (frame["optimizer"] == "sgd") & (frame["config_id"] == 0) & (frame["seed"] == 2))
    return check_sweep(frame)


@pytest.fixture(scope="module")
def tsweep() -> pd.DataFrame:
    return tasks_sweep()


@pytest.fixture(scope="module")
def ttables(tsweep: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return run_tables(tsweep, {}, list(TASKS), None, list(OPTS4))


def _picks(frame: pd.DataFrame, dataset: str, opt: str) -> tuple[int, int]:
    """(default config_id, validation-selected config_id), recomputed from the raw rows."""
    metric = PRIMARY_COL[TASKS[dataset]]
    g = rows(frame, dataset, opt)
    grid = g[~g["is_default"]]
    ok = ~grid.groupby("config_id")["diverged"].any()
    means = grid.groupby("config_id")[f"val_{metric}"].mean()[ok]
    loss = "rmse" if metric == "r2" else "logloss"
    ties = grid.groupby("config_id")[f"val_{loss}"].mean()[ok]
    best = means[means == means.max()].index
    pick = int(ties[best].idxmin()) if len(best) > 1 else int(best[0])
    return int(g.loc[g["is_default"], "config_id"].iloc[0]), pick


def test_selection_maximises_each_dataset_primary_metric(tsweep, ttables) -> None:
    honest = ttables["honest_table"].set_index(["dataset", "optimizer"])
    assert len(honest) == len(TASKS) * len(OPTS4)
    for (dataset, opt), r in honest.iterrows():
        metric = PRIMARY_COL[TASKS[dataset]]
        other = "acc" if metric == "r2" else "r2"
        _, pick = _picks(tsweep, dataset, opt)
        assert r["metric"] == metric and r["config_id"] == pick
        test = rows(tsweep, dataset, opt).query("config_id == @pick")["test_" + metric]
        assert r[f"test_{metric}_mean"] == pytest.approx(test.mean())
        assert math.isnan(r[f"test_{other}_mean"])  # the other task's column is n/a here
    seeds = ttables["paper_table_seeds"].set_index(["dataset", "seed"])
    lion = rows(tsweep, "diabetes", "lion")
    best = lion[~lion["is_default"]].groupby("seed")["test_r2"].max()  # test-selected, on R^2
    for seed, value in best.items():
        assert seeds.loc[("diabetes", seed), "best_test_r2"] == value
    # SGD's selection reports momentum; beta1 does not exist for it.
    sgd = honest.loc[("wine", "sgd")]
    assert sgd["momentum"] in (0.0, 0.9) and math.isnan(sgd["beta1"])


def test_regression_intervals_are_not_clipped_to_0_1(tsweep, ttables) -> None:
    r = ttables["honest_table"].set_index(["dataset", "optimizer"]).loc[("diabetes", "lion")]
    default = np.array([-1.5, 0.2, 0.2])
    half = T975_DF2 * default.std(ddof=1) / math.sqrt(3)
    assert r["default_test_r2_lo"] == pytest.approx(default.mean() - half, rel=1e-6)
    assert r["default_test_r2_lo"] < -1  # an R^2 has no lower bound
    assert r["default_test_r2_hi"] == pytest.approx(min(1.0, default.mean() + half), rel=1e-6)
    lion = rows(tsweep, "diabetes", "lion")
    tuned = lion[lion["config_id"] == _picks(tsweep, "diabetes", "lion")[1]]["test_r2"].to_numpy()
    gain = tuned - default
    half = T975_DF2 * gain.std(ddof=1) / math.sqrt(3)
    assert r["gain_hi"] == pytest.approx(gain.mean() + half, rel=1e-6) and r["gain_hi"] > 1


def test_comparison_covers_every_optimizer_against_the_baseline(tsweep, ttables) -> None:
    from scipy import stats as sps

    table = ttables["comparison"]
    keys = set(map(tuple, table[["dataset", "optimizer", "comparison"]].to_numpy().tolist()))
    others = [o for o in OPTS4 if o != "adamw"]
    assert keys == {(d, o, c) for d in TASKS for o in others for c in ("defaults", "tuned")}
    assert len(table) == len(keys) and (table["baseline"] == "adamw").all()
    for r in table.itertuples():
        metric = PRIMARY_COL[TASKS[r.dataset]]
        ids = {
            o: _picks(tsweep, r.dataset, o)[r.comparison == "tuned"] for o in (r.optimizer, "adamw")
        }
        a, b = (
            rows(tsweep, r.dataset, o)
            .query("config_id == @cid")
            .set_index("seed")["test_" + metric]
            for o, cid in ids.items()
        )
        d = (a - b).to_numpy()
        half = sps.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
        assert r.diff_mean == pytest.approx(d.mean())
        bounds = (-1.0, 1.0) if metric == "acc" else (-math.inf, math.inf)
        assert r.diff_lo == pytest.approx(max(bounds[0], d.mean() - half), rel=1e-6)
        assert r.diff_hi == pytest.approx(min(bounds[1], d.mean() + half), rel=1e-6)
        assert getattr(r, f"test_{metric}_mean") == pytest.approx(a.mean())
        assert getattr(r, f"baseline_test_{metric}_mean") == pytest.approx(b.mean())
        if d.std() > 0:
            assert r.p_ttest == pytest.approx(sps.ttest_rel(a, b).pvalue)
    # The paper's pair is still its own table, and equals the comparison's Lion rows.
    pair = ttables["lion_vs_adamw"].set_index(["dataset", "comparison"])
    lion = table[table["optimizer"] == "lion"].set_index(["dataset", "comparison"])
    np.testing.assert_allclose(pair["diff_mean"], lion.loc[pair.index, "diff_mean"])


def test_a_baseline_outside_the_study_gives_n_a_rows_that_say_so(tsweep) -> None:
    out = run_tables(tsweep, {"baseline": "rmsprop"}, list(TASKS), None, list(OPTS4))
    table = out["comparison"]
    assert len(table) == len(TASKS) * len(OPTS4) * 2 and table["diff_mean"].isna().all()
    assert (
        table["note"]
        .str.contains("'rmsprop' (results.baseline) is not in the study", regex=False)
        .all()
    )
    sgd = run_tables(tsweep, {"baseline": "sgd"}, list(TASKS), None, list(OPTS4))["comparison"]
    assert set(sgd["optimizer"]) == {"lion", "adamw", "adam"} and sgd["diff_mean"].notna().any()


def test_task_tables_name_their_metric_in_columns_and_captions(tmp_path: Path, tsweep) -> None:
    path = tmp_path / "sweep.parquet"
    to_parquet(tsweep, path)
    args = ["tables", "--sweep", str(path), "--outdir", str(tmp_path)]
    assert main([*args, "--datasets", "diabetes", "--optimizers", *OPTS4]) == 0
    honest = pd.read_csv(tmp_path / "honest_table.csv")
    assert {"test_r2_mean", "default_test_r2_lo", "val_r2_mean"} <= set(honest.columns)
    assert not any("_acc" in c for c in honest.columns)  # a regression-only study
    md = (tmp_path / "honest_table.md").read_text()
    assert "Metric: R^2 (r2)." in md and "R^2 at most 1, its gain not clipped" in md
    assert "test R^2 (r2)" in (tmp_path / "comparison.md").read_text()
    best = pd.read_csv(tmp_path / "best_configs.csv")
    assert "val_r2_mean" in best.columns and "momentum" in best.columns
    assert main([*args, "--optimizers", *OPTS4]) == 0  # all three tasks in one table
    md = (tmp_path / "honest_table.md").read_text()
    assert "R^2 (r2: diabetes), accuracy (acc: titanic, wine)" in md  # sorted datasets


@pytest.mark.parametrize(
    ("value", "seeds", "message"),
    [
        ("mcc", (0, 1, 2), "unknown primary metric 'mcc'"),
        (None, (0, 1, 2), "column primary_metric is empty in rows of dataset 'diabetes'"),
        ("acc", (1,), "dataset 'diabetes' has several primary metrics"),
    ],
)
def test_a_bad_primary_metric_is_one_line(tmp_path, tsweep, capsys, value, seeds, message) -> None:
    frame = tsweep.copy()
    at = (frame["dataset"] == "diabetes") & frame["seed"].isin(seeds)
    frame.loc[at, "primary_metric"] = value
    path = tmp_path / "sweep.parquet"
    to_parquet(frame, path)
    assert main(["tables", "--sweep", str(path), "--outdir", str(tmp_path)]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err and str(path) in err
    assert not list(tmp_path.glob("*.csv"))  # nothing half-written


def test_meta_of_multiclass_and_regression_datasets_has_no_positives(tmp_path: Path) -> None:
    """Prepare writes class_counts (multiclass) or target_mean (regression), not positives."""
    from lionsweep.results.writers import datasets_table

    paths = []
    for name, extra in (("wine", {"class_counts": {}}), ("diabetes", {"target_mean": 152.1})):
        path = write_meta(tmp_path / name, name, 178, 0)
        meta = json.loads(path.read_text())
        del meta["positives"]
        path.write_text(json.dumps(meta | extra))
        paths.append(path)
    paths.append(write_meta(tmp_path / "titanic", "titanic", 891, 179))
    table = datasets_table(paths, None).set_index("dataset")
    assert table.loc[["wine", "diabetes"], "positives_test"].isna().all()
    assert table.loc["titanic", "positives_test"] == (712 - 356 - 178) // 3
    assert table.loc["diabetes", "rows_raw"] == 178 and str(table["rows_raw"].dtype) == "Int64"
    assert display(table.reset_index()).set_index("dataset").loc["wine", "positives_val"] == "n/a"


def test_best_epoch_metrics_select_on_best_val_r2(tsweep) -> None:
    honest = run_tables(tsweep, {"honest_metrics": "best_epoch"}, list(TASKS))["honest_table"]
    r = honest.set_index(["dataset", "optimizer"]).loc[("diabetes", "adam")]
    g = rows(tsweep, "diabetes", "adam")
    means = g[~g["is_default"]].groupby("config_id")["best_val_r2"].mean()
    assert r["config_id"] == means.idxmax() and r["val_r2_mean"] == means.max()
    test = g[g["config_id"] == means.idxmax()]["best_test_r2"]
    assert r["test_r2_mean"] == pytest.approx(test.mean())


def test_display_formats_every_grid_column_as_a_hyperparameter():
    """Every registry hyperparameter and training axis prints to 3 significant digits
    (SGD's momentum and nesterov, the epochs axis were printed as 0.9000, 1.0000, 20.0000)."""
    frame = pd.DataFrame(
        {"momentum": [0.9], "best_nesterov": [1.0], "epochs": [20.0], "lr": [0.00123456]}
    )
    shown = display(frame).iloc[0].to_dict()
    assert shown == {"momentum": "0.9", "best_nesterov": "1", "epochs": "20", "lr": "0.00123"}
