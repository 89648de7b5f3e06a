"""The tables of a sweep of any size (issue 19): from the summary's compact
configurations and the rows they pair, read a grid and a batch at a time, every table
is the one the whole sweep gives, to the last bit."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from synthetic_sweep import DEGENERATE, diverge, make_sweep, to_parquet

import lionsweep.results.reads as reads
from lionsweep.results.overview import decay_data, importance_data
from lionsweep.results.scoring import Metrics
from lionsweep.results.selection import check_sweep, config_table, grid_counts, sensitivity
from lionsweep.results.tables import run_tables
from lionsweep.sweep.summary import summarize, summary_groups, summary_table

TASKS = {"titanic": "binary", "wine": "multiclass", "diabetes": "regression"}


def _field() -> pd.DataFrame:
    frame = make_sweep(datasets=tuple(TASKS), optimizers=("lion", "adamw", "sgd"), task=TASKS)
    diverge(frame, (frame["config_id"] % 4 == 1) & (frame["seed"] == 1))
    return frame


CASES_BIG = "three tasks, diverged seeds"
CASES = {CASES_BIG: _field, **DEGENERATE}


def write(frame: pd.DataFrame, tmp_path: Path) -> tuple[Path, Path]:
    """sweep.parquet and summary.parquet in row groups of a few rows (as ranges are)."""
    sweep, summary = tmp_path / "sweep.parquet", tmp_path / "summary.parquet"
    to_parquet(check_sweep(frame), sweep)
    pq.write_table(summary_table(summarize(frame)), summary, row_group_size=7)
    return sweep, summary


@pytest.mark.parametrize("kind", ["final", "best_epoch"])
@pytest.mark.parametrize("case", CASES)
def test_tables_from_the_summary_are_the_whole_sweep_s(
    case: str, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of 29 rows (so a seed's test-selected best is found across batches),
    the top 2 configurations kept per grid: every table equal to the whole sweep's."""
    monkeypatch.setattr(reads, "BATCH_ROWS", 29)
    frame = CASES[case]()
    sweep, summary = write(frame, tmp_path)
    cfg = {"top_k": 2, "honest_metrics": kind, "bootstrap_resamples": 200}
    configs = reads.compact_configs(summary, Metrics(kind), summary_groups(summary), 2)
    rows = reads.table_rows(sweep, configs)
    assert len(rows) <= len(frame) and (len(rows) < len(frame) or case != CASES_BIG)
    got = run_tables(rows, cfg, configs=configs)
    expected = run_tables(check_sweep(frame), cfg)
    assert got.keys() == expected.keys()
    for name, table in expected.items():
        pd.testing.assert_frame_equal(got[name], table, check_exact=True, obj=name)


def test_compact_configs_keep_what_the_tables_read(tmp_path: Path) -> None:
    """Per grid: the default, the top k, the best decayed and undecayed point and each
    axis's extremes; the grid's size and failures whole in attrs."""
    frame = _field()
    _, summary = write(frame, tmp_path)
    full = config_table(check_sweep(frame), Metrics("final"))
    compact = reads.compact_configs(summary, Metrics("final"), summary_groups(summary), 1)
    assert len(compact) < len(full)
    assert grid_counts(compact) == grid_counts(full)
    for (d, o), g in full.groupby(["dataset", "optimizer"]):
        kept = compact[(compact.dataset == d) & (compact.optimizer == o)]
        grid, mine = g[~g.is_default], kept[~kept.is_default]
        for h in ("lr", "beta1", "weight_decay", "momentum"):
            same = (grid[h].min(), grid[h].max()), (mine[h].min(), mine[h].max())
            np.testing.assert_equal(*same)
        assert kept.is_default.sum() == 1


def test_marginals_from_one_grid_s_rows_are_the_whole_sweep_s(tmp_path: Path) -> None:
    """The marginal figure's numbers from a (dataset, optimizer)'s rows read alone, with
    only its axes' columns, are those of the whole sweep."""
    from lionsweep.results.figures import marginal_data
    from lionsweep.results.heatmap import grid_axes

    frame = _field()
    sweep, _ = write(frame, tmp_path)
    whole = check_sweep(frame)
    configs = config_table(whole, Metrics("final"))
    for (d, o), g in configs.groupby(["dataset", "optimizer"]):
        axes = grid_axes(g[~g.is_default])
        rows = reads.group_rows(sweep, d, o, axes, g["metric"].iloc[0])
        assert set(rows.dataset) == {d} and set(rows.optimizer) == {o}
        got = marginal_data(rows, Metrics("final"), d, o, axes)
        pd.testing.assert_frame_equal(got, marginal_data(whole, Metrics("final"), d, o))


def test_figure_inputs_from_the_summary_are_the_rows(tmp_path: Path) -> None:
    """What each figure draws, read a grid at a time from the summary, equals what the
    whole sweep's rows give: the picks, the per-grid overview data, each dataset's heatmap
    and marginal numbers, the drawn rows."""
    import argparse

    import lionsweep.results.figures as figures
    from lionsweep.results.heatmap import heatmap_data
    from lionsweep.results.selection import settings

    frame = _field()
    sweep, summary = write(frame, tmp_path)
    args = argparse.Namespace(sweep=sweep, summary=summary, datasets=None, optimizers=None)
    cfg, metrics = settings({}), Metrics("final")
    rows, mine = figures.from_rows(args, cfg, metrics), figures.from_summary(args, cfg, metrics)
    # named copies of each metric come per grid: the same columns, in another order
    pd.testing.assert_frame_equal(mine.chosen, rows.chosen, check_exact=True, check_like=True)
    keys = ["dataset", "optimizer", "seed", "config_id"]
    drawn = rows.frame.merge(rows.chosen[keys[:2] + keys[3:]])
    drawn = pd.concat([drawn, rows.frame[rows.frame.is_default]]).drop_duplicates(keys)
    assert sorted(map(tuple, mine.frame[keys].to_numpy().tolist())) == sorted(
        map(tuple, drawn[keys].to_numpy().tolist())
    )
    full = rows.configs
    over = mine.overview
    pd.testing.assert_frame_equal(over["sensitivity"], sensitivity(full, 1.0), check_like=True)
    pd.testing.assert_frame_equal(over["importance"], importance_data(full))
    picks = rows.chosen.set_index(["dataset", "optimizer"])
    for (d, o), data in over["decay"].items():
        np.testing.assert_equal(data, decay_data(full, d, o))
        pick = picks.loc[(d, o)] if (d, o) in picks.index else None
        np.testing.assert_equal(
            heatmap_data(mine.of_dataset(d), d, o, pick), heatmap_data(full, d, o, pick)
        )
    for d in TASKS:
        opts = ["lion", "adamw", "sgd"]
        got = mine.marginals(d, opts)
        for o in opts:
            want = figures.marginal_data(rows.frame, metrics, d, o)
            pd.testing.assert_frame_equal(got[o], want)


BAD = {  # what a careless user passes as --summary / --sweep: one line naming the file
    "not Parquet": ("garbage", "summary", "not a readable summary table"),
    "truncated": ("truncated", "summary", "not a readable summary table"),
    "missing": ("missing", "summary", "not a readable summary table"),
    "the sweep as the summary": ("sweep", "summary", "missing columns .*not a summary table"),
    "the summary as the sweep": ("summary", "sweep", "missing columns"),
    "a sweep that is not Parquet": ("garbage", "sweep", "not a readable sweep table"),
}


@pytest.mark.parametrize("stage", ["tables", "figures", "confirm"])
@pytest.mark.parametrize("case", BAD)
def test_bad_summary_or_sweep_is_one_line(tmp_path: Path, capsys, stage: str, case: str) -> None:
    from lionsweep.cli import main

    sweep, summary = write(make_sweep(datasets=("toy",)), tmp_path)
    garbage, cut = tmp_path / "garbage.parquet", tmp_path / "cut.parquet"
    garbage.write_text("not parquet")
    cut.write_bytes(summary.read_bytes()[:300])
    files = {"sweep": sweep, "summary": summary, "missing": tmp_path / "none.parquet"}
    files |= {"garbage": garbage, "truncated": cut}
    given, role, message = BAD[case]
    paths = {"sweep": str(sweep), "summary": str(summary), role: str(files[given])}
    argv = [stage, "--sweep", paths["sweep"], "--summary", paths["summary"]]
    if stage == "confirm":
        argv += ["--data", str(tmp_path), "--seeds", "9", "--settings", "{}"]
        argv += ["--output", str(tmp_path / "c.parquet")]
    else:
        argv += ["--outdir", str(tmp_path / "out")]
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err
    assert not (tmp_path / "out").exists() and not (tmp_path / "c.parquet").exists()
