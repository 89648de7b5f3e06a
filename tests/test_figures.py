"""Figures: the plotted numbers against recomputation, axes, and valid PNG/PDF files."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from synthetic_sweep import diverge, make_sweep, to_parquet

from lionsweep.cli import main
from lionsweep.figures import (
    decay_data,
    plot_curves,
    plot_decay,
    plot_heatmaps,
    plot_importance,
    plot_marginals,
    plot_sensitivity,
)
from lionsweep.outputs import figure_outputs, table_outputs
from lionsweep.selection import Metrics, check_sweep, config_table, select_honest

ROOT = Path(__file__).resolve().parents[1]
FINAL = Metrics("final")
OPTS = ["lion", "adamw"]


@pytest.fixture(scope="module")
def sweep() -> pd.DataFrame:
    frame = make_sweep(datasets=("titanic", "toy"))
    # Seed 2 of one Lion point diverges at epoch 3; one AdamW point diverges everywhere.
    diverge(
        frame, (frame["config_id"] == 7) & (frame["seed"] == 2) & (frame["optimizer"] == "lion"), 3
    )
    diverge(frame, (frame["config_id"] == 0) & (frame["optimizer"] == "adamw"), 1)
    return check_sweep(frame)


@pytest.fixture(scope="module")
def configs(sweep: pd.DataFrame) -> pd.DataFrame:
    return config_table(sweep, FINAL)


@pytest.fixture(autouse=True)
def _close() -> None:
    yield
    plt.close("all")


def grid_of(sweep: pd.DataFrame, dataset: str, opt: str) -> pd.DataFrame:
    g = sweep[(sweep["dataset"] == dataset) & (sweep["optimizer"] == opt) & ~sweep["is_default"]]
    return g


def test_heatmap_is_best_over_beta1_of_seed_means(sweep, configs) -> None:
    fig, data = plot_heatmaps(configs, "titanic", OPTS)
    for opt in OPTS:
        g = grid_of(sweep, "titanic", opt)
        bad = g.groupby("config_id")["diverged"].transform("any")
        means = g[~bad].groupby(["weight_decay", "lr", "beta1"])["val_acc"].mean() * 100
        best = means.groupby(level=[0, 1]).max().unstack("lr")
        np.testing.assert_allclose(data[opt]["acc"], best.to_numpy())
        argmax = means.groupby(level=[0, 1]).idxmax().map(lambda k: k[2]).unstack("lr")
        np.testing.assert_allclose(data[opt]["beta1"], argmax.to_numpy())
        np.testing.assert_allclose(data[opt]["lr"], best.columns.to_numpy())
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if p.get_edgecolor()[:3] == (1.0, 0.0, 0.0)]
    assert len(boxes) == 1  # the default's cell (lr 1e-4, wd 0: the lowest of both axes)
    assert boxes[0].get_x() < 1e-4 < boxes[0].get_x() + boxes[0].get_width()
    assert boxes[0].get_y() < 0 < boxes[0].get_y() + boxes[0].get_height()
    assert ax.get_xscale() == "log"
    assert "learning rate" in ax.get_xlabel() and "weight decay" in ax.get_ylabel()
    colorbars = [a for a in fig.axes if "accuracy (%)" in a.get_ylabel()]
    assert len(colorbars) == 2  # one per optimizer, with units


def test_marginals_best_and_median_per_seed(sweep) -> None:
    fig, data = plot_marginals(sweep, FINAL, "toy", OPTS)
    g = grid_of(sweep, "toy", "lion")
    g = g[~g["diverged"]]
    per = g.groupby(["lr", "seed"])["val_acc"].agg(["max", "median"]) * 100
    d = data["lion"]
    best = d[(d["axis"] == "lr") & (d["stat"] == "best")].set_index("value")
    np.testing.assert_allclose(best["mean"], per["max"].groupby(level=0).mean())
    np.testing.assert_allclose(best["lo"], per["max"].groupby(level=0).min())
    median = d[(d["axis"] == "lr") & (d["stat"] == "median")].set_index("value")
    np.testing.assert_allclose(median["hi"], per["median"].groupby(level=0).max())
    assert fig.axes[0].get_xscale() == "log" and fig.axes[1].get_xscale() == "linear"
    assert all(a.get_ylabel() == "validation accuracy (%)" for a in fig.axes)


def test_curves_mean_over_seeds_and_divergence(sweep, configs) -> None:
    chosen = select_honest(configs)
    fig, data = plot_curves(sweep, chosen, "titanic", OPTS)
    lion = sweep[(sweep["dataset"] == "titanic") & (sweep["optimizer"] == "lion")]
    default = lion[lion["is_default"]].sort_values("seed")
    stack = np.vstack(default["curve_val_acc"].to_list()).astype(float)
    np.testing.assert_allclose(
        data[("lion", "default", "curve_val_acc")]["mean"], 100 * stack.mean(0)
    )
    pick = chosen.set_index(["dataset", "optimizer"]).loc[("titanic", "lion"), "config_id"]
    assert pick != 7  # config 7 diverged in one seed
    # The diverged seed leaves the band from its divergence epoch on.
    from lionsweep.figures import curve_data

    d7 = curve_data(sweep, "titanic", "lion", 7, "curve_val_loss")
    rows = lion[lion["config_id"] == 7].sort_values("seed")
    stack = np.vstack(rows["curve_val_loss"].to_list()).astype(float)
    np.testing.assert_allclose(d7["mean"][2:], stack[:2, 2:].mean(0))
    np.testing.assert_allclose(d7["mean"][:2], stack[:, :2].mean(0))
    loss_axes = [a for a in fig.axes if a.get_ylabel() == "validation log-loss (nats)"]
    assert len(loss_axes) == 2 and all(a.get_xlabel() == "epoch" for a in fig.axes)


def test_sensitivity_bars(configs) -> None:
    fig, data = plot_sensitivity(configs, 1.0, ["titanic", "toy"], OPTS)
    heights = sorted(round(p.get_height(), 9) for p in fig.axes[0].patches)
    assert heights == sorted(round(100 * s, 9) for s in data["share_within"])
    adamw = data.set_index(["dataset", "optimizer"]).loc[("toy", "adamw")]
    assert adamw["n_failed"] == 1 and adamw["n_grid"] == 18
    assert "(%)" in fig.axes[0].get_ylabel()


def test_importance_shares_add_up(configs) -> None:
    fig, data = plot_importance(configs, ["titanic", "toy"], OPTS)
    totals = data.groupby(["dataset", "optimizer"])["share"].sum()
    np.testing.assert_allclose(totals, 1.0)
    lion = data[(data["dataset"] == "toy") & (data["optimizer"] == "lion")].set_index("part")
    grid = configs[(configs["dataset"] == "toy") & (configs["optimizer"] == "lion")]
    grid = grid[~grid["is_default"]]
    y = grid["val_acc_mean"].fillna(grid["val_acc_mean"].min())  # failed = worst working
    assert grid["failed"].sum() == 1
    expected = np.var(grid.assign(y=y).groupby("lr")["y"].mean()) / np.var(y)
    assert lion.loc["lr", "share"] == pytest.approx(expected)
    assert "(%)" in fig.axes[0].get_xlabel()


def test_effective_decay_axis(configs) -> None:
    fig, _ = plot_decay(configs, ["titanic", "toy"], OPTS)
    d = decay_data(configs, "toy", "lion")
    grid = configs[(configs["dataset"] == "toy") & (configs["optimizer"] == "lion")]
    grid = grid[~grid["is_default"] & ~grid["failed"] & (grid["weight_decay"] > 0)]
    np.testing.assert_allclose(np.sort(d["x"]), np.sort(grid["lr"] * grid["weight_decay"]))
    assert (d["x"] > 0).all()
    ax = fig.axes[1]
    assert ax.get_xscale() == "log" and "lr x weight decay" in ax.get_xlabel()
    assert "accuracy (%)" in ax.get_ylabel()


def test_cli_writes_valid_png_and_pdf_matching_the_rule(tmp_path: Path, sweep) -> None:
    path = tmp_path / "sweep.parquet"
    to_parquet(sweep, path)
    outdir = tmp_path / "figures"
    argv = ["figures", "--sweep", str(path), "--outdir", str(outdir)]
    assert main([*argv, "--datasets", "toy", "--optimizers", *OPTS]) == 0
    expected = {Path(p).name for p, _ in figure_outputs(["toy"], str(outdir))}
    assert {p.name for p in outdir.iterdir()} == expected
    for name in expected:
        head = (outdir / name).read_bytes()[:8]
        assert head.startswith(b"\x89PNG\r\n\x1a\n" if name.endswith(".png") else b"%PDF-")
        assert (outdir / name).stat().st_size > 1000


def test_rules_use_the_shared_output_lists() -> None:
    """results.smk builds its outputs from lionsweep.outputs, the writers' own names."""
    text = (ROOT / "workflow" / "rules" / "results.smk").read_text()
    # (in the study's folder: results/{study.name}/tables, .../figures)
    assert 'table_outputs(f"{RESULTS}/tables")' in text
    assert 'figure_outputs(DATASETS, f"{RESULTS}/figures")' in text
    reported = [kw for _, kw in table_outputs() + figure_outputs(["titanic"]) if kw]
    for kw in reported:
        caption = ROOT / "workflow" / "rules" / kw["caption"]
        assert caption.is_file(), caption
