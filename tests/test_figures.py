"""Figures: the plotted numbers against recomputation, axes, and valid PNG/PDF files."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from synthetic_sweep import DEGENERATE, diverge, make_sweep, to_parquet

from conftest import copy_workflow, snakemake
from lionsweep.cli import main
from lionsweep.results.figures import plot_curves, plot_heatmaps, plot_marginals, save
from lionsweep.results.files import figure_outputs, figure_stems, table_outputs
from lionsweep.results.heatmap import edges, grid_scale
from lionsweep.results.overview import decay_data, plot_decay, plot_importance, plot_sensitivity
from lionsweep.results.scoring import Metrics
from lionsweep.results.selection import check_sweep, config_table, select_honest

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
    chosen = select_honest(configs)
    fig, data = plot_heatmaps(configs, chosen, "titanic", OPTS)
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
    # The selected configuration is starred in its cell; no per-cell beta1 labels.
    pick = chosen.set_index(["dataset", "optimizer"]).loc[("titanic", "lion")]
    (star,) = [line for line in ax.lines if line.get_marker() == "*"]
    assert star.get_xdata()[0] == pick["lr"] and star.get_ydata()[0] == pick["weight_decay"]
    assert f"beta1 {pick['beta1']:.3g}" in ax.get_title() and not ax.texts


def test_marginals_best_and_median_per_seed(sweep) -> None:
    fig, data = plot_marginals(sweep, None, FINAL, "toy", OPTS)
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
    from lionsweep.results.figures import curve_data

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


def _dry_run_jobs(text: str) -> dict[str, dict[str, list[str]]]:
    """{rule: {"input": [...], "output": [...]}} from a dry run's job listing."""
    jobs: dict[str, dict[str, list[str]]] = {}
    rule = None
    for line in text.splitlines():
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
            jobs.setdefault(rule, {})
        elif rule and line.strip().startswith(("input:", "output:")):
            key, _, files = line.strip().partition(": ")
            jobs[rule][key.rstrip(":")] = files.split(", ")
    return jobs


def test_the_rules_outputs_are_the_writers_lists(tmp_path: Path, mirror: Path) -> None:
    """What Snakemake plans for the tables and figures jobs is exactly lionsweep.results.files'
    lists (the names the writers write), each report caption an existing file."""
    workdir = copy_workflow(tmp_path / "wf")
    args = ("-n", "tables", "figures", "--configfile", "config/test.yaml")
    jobs = _dry_run_jobs(snakemake(workdir, *args, mirror=mirror).stdout)
    datasets = [f.split("/")[2] for f in jobs["figures"]["input"] if f.endswith("meta.json")]
    assert datasets, jobs["figures"]
    tables = [path for path, _ in table_outputs("results/test/tables")]
    figures = [path for path, _ in figure_outputs(datasets, "results/test/figures")]
    assert sorted(jobs["tables"]["output"]) == sorted(tables)
    assert sorted(jobs["figures"]["output"]) == sorted(figures)
    reported = [kw for _, kw in table_outputs() + figure_outputs(datasets) if kw]
    for kw in reported:
        caption = ROOT / "workflow" / "rules" / kw["caption"]
        assert caption.is_file(), caption


# ------------------------------------------------------------------ readable heatmaps


def test_grid_scale_follows_the_grid_spacing() -> None:
    assert grid_scale(np.geomspace(5e-5, 1e-2, 20)) == "log"
    assert grid_scale(np.linspace(1e-3, 1e-2, 10)) == "linear"  # a linearly spaced lr
    assert grid_scale(np.linspace(0, 0.1, 20)) == "linear"  # zero: never log
    assert grid_scale([1e-4, 1e-2]) == "log" and grid_scale([0.8, 0.9]) == "linear"
    assert grid_scale([1e-3]) == "linear"
    assert grid_scale([0, 1e-3, 1e-2, 0.1, 1, 10]) == "symlog"  # 0 and log-spaced
    assert grid_scale([0, 0.1, 1]) == "linear"  # one decade: linear reads fine


def test_a_weight_decay_of_0_and_decades_gets_evenly_sized_cells() -> None:
    """The extended study's decay [0, 1e-3, ..., 10]: on a linear axis five of six rows
    would be squeezed under 1 % of the height; symlog gives each row about one decade."""
    wds = [0.0, 1e-3, 1e-2, 0.1, 1.0, 10.0]
    grids = {"lion": {"lr": [1e-4, 1e-3, 1e-2], "beta1": [0.9], "weight_decay": wds}}
    frame = make_sweep(datasets=("titanic",), optimizers=("lion",), seeds=(0,), grids=grids)
    configs = config_table(check_sweep(frame), FINAL)
    fig, _ = plot_heatmaps(configs, select_honest(configs), "titanic", ["lion"])
    ax = fig.axes[0]
    assert ax.get_yscale() == "symlog"
    np.testing.assert_allclose(ax.get_yticks(), wds)
    rows = np.diff(ax.transData.transform([(1e-3, y) for y in edges(np.array(wds), "symlog")]),
                   axis=0)[:, 1]  # fmt: skip
    assert rows.min() > 0.8 * rows.max()  # every row about as tall as the others
    assert ax.get_ylabel() == "weight decay (log scale, and 0)"
    plt.close(fig)


def test_a_20_by_20_heatmap_is_readable() -> None:
    """Issue 11: no 400 beta1 labels; grid-value ticks thinned; beta1 as its own panel."""
    lrs, wds = np.geomspace(5e-5, 1e-2, 20), np.linspace(0, 0.1, 20)
    grids = {"lion": {"lr": list(lrs), "beta1": [0.8, 0.9, 0.95], "weight_decay": list(wds)}}
    frame = check_sweep(
        make_sweep(datasets=("titanic",), optimizers=("lion",), seeds=(0,), grids=grids)
    )
    configs = config_table(frame, FINAL)
    fig, data = plot_heatmaps(configs, select_honest(configs), "titanic", ["lion"])
    main_ax, side = fig.axes[0], fig.axes[1]
    assert main_ax.get_xscale() == "log" and main_ax.get_yscale() == "linear"
    for ax in (main_ax, side):
        assert not ax.texts  # was: one beta1 label per cell
        for ticks, grid in ((ax.get_xticks(), lrs), (ax.get_yticks(), wds)):
            assert 2 <= len(ticks) <= 6  # readable, not 20
            assert all(np.isclose(t, grid).any() for t in ticks)  # at grid values
        assert not ax.xaxis.get_minorticklocs().size
    assert main_ax.get_xticklabels()[0].get_text() == "5e-05"
    # The beta1 panel draws the argmax beta1 of each cell, one colour per grid value.
    mesh = side.collections[0]
    np.testing.assert_array_equal(
        np.ma.filled(mesh.get_array(), np.nan).reshape(20, 20), data["lion"]["beta1"]
    )
    assert mesh.norm.boundaries.size == 4  # three beta1 values, three colours
    beta_bar = [a for a in fig.axes if a.get_ylabel() == "beta1 of the best cell"]
    assert len(beta_bar) == 1 and list(beta_bar[0].get_yticks()) == [0.8, 0.9, 0.95]


# ------------------------------------------------------------------ degenerate sweeps


def _draw_all(frame: pd.DataFrame) -> dict[str, Figure]:
    from lionsweep.results.figures import plot_heatmaps as heatmaps

    datasets = sorted(frame["dataset"].unique())
    opts = sorted(frame["optimizer"].unique())
    configs = config_table(frame, FINAL)
    chosen = select_honest(configs)
    d = datasets[0]
    return {
        "heatmap": heatmaps(configs, chosen, d, opts)[0],
        "marginal": plot_marginals(frame, None, FINAL, d, opts)[0],
        "curves": plot_curves(frame, chosen, d, opts)[0],
        "sensitivity": plot_sensitivity(configs, 1.0, datasets, opts)[0],
        "importance": plot_importance(configs, datasets, opts)[0],
        "effective_decay": plot_decay(configs, datasets, opts)[0],
    }


def _texts(fig: Figure) -> str:
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


@pytest.mark.parametrize("case", list(DEGENERATE))
def test_every_figure_copes_with_degenerate_sweeps(case: str, tmp_path: Path) -> None:
    frame = check_sweep(DEGENERATE[case]())
    figs = _draw_all(frame)
    opts = sorted(frame["optimizer"].unique())
    datasets = sorted(frame["dataset"].unique())
    heat = figs["heatmap"]
    panels = [a for a in heat.axes if a.get_label() != "<colorbar>"]
    # One row per optimizer: accuracy, and beside it the best beta1 where another axis
    # than lr and weight decay varies (no side panel when none does).
    side = case not in ("one value per axis", "default only")
    assert len(panels) == (1 + side) * len(opts)
    assert len(figs["curves"].axes) == 2 * len(opts)
    assert len(figs["effective_decay"].axes) == len(datasets)
    decay = figs["effective_decay"].axes[0]
    if case in ("all-zero decay", "default only"):
        assert decay.get_xscale() == "linear" and "no grid point with weight decay > 0" in _texts(
            figs["effective_decay"]
        )
    else:
        assert decay.get_xscale() == "log"
    if case in ("default only", "lion all diverged"):
        lost = "lion" if case == "lion all diverged" else "adamw"
        assert f"{lost}: no working grid point" in _texts(heat)
        assert "no working grid point" in _texts(figs["marginal"])
        assert "n/a: " in _texts(figs["importance"])
        curve_labels = [
            t.get_text() for a in figs["curves"].axes for t in a.get_legend().get_texts()
        ]
        assert any(label.startswith("default (no working grid point") for label in curve_labels)
    if case == "one value per axis":
        for ax in panels:
            assert len(ax.get_xticks()) == 1 and ax.get_xscale() == "linear"
        assert "no variance over the grid" in _texts(figs["importance"])
    if case == "default only":
        bars = figs["sensitivity"].axes[0]
        assert {t.get_text() for t in bars.texts} == {"n/a"}
    if case == "one seed":  # the band over seeds collapses onto the line
        configs = config_table(frame, FINAL)
        _, data = plot_curves(frame, select_honest(configs), datasets[0], opts)
        for d in data.values():
            np.testing.assert_array_equal(d["lo"], d["hi"])
            np.testing.assert_allclose(d["mean"], d["lo"])
    if case == "all-zero decay":
        for ax in panels:
            assert list(ax.get_yticks()) == [0.0] and ax.get_yscale() == "linear"
    for name, fig in figs.items():
        save(fig, tmp_path, name)
        assert (tmp_path / f"{name}.png").read_bytes().startswith(b"\x89PNG")


def test_meta_puts_the_rows_behind_each_dataset_figure_in_its_title(
    tmp_path: Path, sweep, monkeypatch, capsys
) -> None:
    import json

    import lionsweep.results.figures as figures

    path = tmp_path / "sweep.parquet"
    to_parquet(sweep, path)
    meta = tmp_path / "meta.json"
    rows = {"train": 456, "val": 113, "test": 143}
    meta.write_text(
        json.dumps(
            {
                "dataset": "toy",
                "rows_raw": 891,
                "rows_dropped": 179,
                "rows": rows,
                "positives": {k: v // 3 for k, v in rows.items()},
            }
        )
    )
    titles: dict[str, str] = {}

    def record(fig: Figure, outdir: Path, stem: str) -> list[Path]:
        titles[stem] = fig._suptitle.get_text() if fig._suptitle else ""
        plt.close(fig)
        return []

    monkeypatch.setattr(figures, "save", record)
    argv = ["figures", "--sweep", str(path), "--outdir", str(tmp_path / "f"), "--datasets", "toy"]
    assert main([*argv, "--meta", str(meta)]) == 0
    expected = "toy: 712 of 891 rows (179 dropped while preparing: missing values)"
    assert {titles[f"{k}_toy"] for k in ("heatmap", "marginal", "curves")} == {expected}
    assert titles["sensitivity"] == ""  # figures over every dataset keep their own title
    assert main(argv) == 0 and titles["heatmap_toy"] == ""  # without --meta: as before
    meta.write_text('{"dataset": "toy"}')
    assert main([*argv, "--meta", str(meta)]) == 2
    assert f"{meta}: meta.json lacks" in capsys.readouterr().err


# ------------------------------------------------------- tasks and optimizers (issue 9)

SGD_GRID = {"lr": [1e-3, 1e-2, 1e-1], "momentum": [0.0, 0.5, 0.9], "nesterov": [0.0, 1.0],
            "weight_decay": [0.0, 1e-3]}  # fmt: skip


def sgd_regression_sweep() -> pd.DataFrame:
    """Lion and SGD on a regression dataset; SGD's R^2 planted to rise with momentum."""
    from synthetic_sweep import GRIDS

    frame = make_sweep(datasets=("diabetes",), optimizers=("lion", "sgd"), task="regression",
                       grids={**GRIDS, "sgd": SGD_GRID})  # fmt: skip
    sgd = frame["optimizer"] == "sgd"
    for col in ("val_r2", "best_val_r2"):
        frame.loc[sgd, col] += 0.3 * frame.loc[sgd, "momentum"]
    return check_sweep(frame)


def test_sgd_heatmap_is_best_over_its_own_axes_in_r2(tmp_path: Path) -> None:
    frame = sgd_regression_sweep()
    configs = config_table(frame, FINAL)
    fig, data = plot_heatmaps(configs, select_honest(configs), "diabetes", ["lion", "sgd"])
    d = data["sgd"]
    means = (
        grid_of(frame, "diabetes", "sgd")
        .groupby(["weight_decay", "lr", "momentum", "nesterov"])["val_r2"]
        .mean()
    )
    cells = means.groupby(level=[0, 1])
    np.testing.assert_allclose(d["acc"], cells.max().unstack("lr").to_numpy())  # R^2, not x100
    assert d["side"] == "momentum"  # the larger main effect of momentum and nesterov
    best_momentum = cells.idxmax().map(lambda k: k[2]).unstack("lr")
    np.testing.assert_allclose(d["momentum"], best_momentum.to_numpy())
    assert data["lion"]["side"] == "beta1"
    heat = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    assert len(heat) == 4 and "best over momentum, nesterov" in heat[2].get_title()
    assert heat[2].get_xlabel() == "learning rate (log scale)"
    bars = {a.get_ylabel() for a in fig.axes if a.get_label() == "<colorbar>"}
    assert {"mean validation R^2", "momentum of the best cell", "beta1 of the best cell"} <= bars
    save(fig, tmp_path, "heatmap_diabetes")


def test_sgd_marginals_and_curves_name_r2_and_momentum(tmp_path: Path) -> None:
    frame = sgd_regression_sweep()
    fig, data = plot_marginals(frame, None, FINAL, "diabetes", ["lion", "sgd"])
    sgd = [a for a in fig.axes[4:] if a.axison]  # the second row: SGD's panels
    assert [a.get_xlabel() for a in sgd] == [
        "learning rate (log scale)", "weight decay", "momentum", "nesterov"
    ]  # fmt: skip
    assert {a.get_ylabel() for a in sgd} == {"validation R^2"}
    assert [a.get_xlabel() for a in fig.axes[:3]] == [
        "learning rate (log scale)", "beta1", "weight decay"
    ]  # fmt: skip
    g = grid_of(frame, "diabetes", "sgd")
    best = g.groupby(["momentum", "seed"])["val_r2"].max().groupby(level=0).mean()
    d = data["sgd"]
    got = d[(d["axis"] == "momentum") & (d["stat"] == "best")].set_index("value")["mean"]
    np.testing.assert_allclose(got.to_numpy(), best.to_numpy())  # R^2 as is, not x100
    save(fig, tmp_path, "marginal_diabetes")
    configs = config_table(frame, FINAL)
    fig, _ = plot_curves(frame, select_honest(configs), "diabetes", ["lion", "sgd"])
    labels = [a.get_ylabel() for a in fig.axes]
    assert labels[:2] == ["validation R^2"] * 2
    assert "validation MSE (standardized target)" in labels
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert any("momentum" in t and "beta1" not in t for t in legend)
    fig, _ = plot_sensitivity(configs, 1.0, ["diabetes"], ["lion", "sgd"])
    assert "R^2" in fig.axes[0].get_title()


def test_four_optimizers_and_three_tasks_through_the_cli(tmp_path: Path) -> None:
    from test_tables import OPTS4, TASKS, tasks_sweep

    path = tmp_path / "sweep.parquet"
    to_parquet(tasks_sweep(), path)
    out = tmp_path / "figures"
    args = ["figures", "--sweep", str(path), "--outdir", str(out), "--datasets", *TASKS]
    assert main([*args, "--optimizers", *OPTS4]) == 0
    for stem, _, _ in figure_stems(list(TASKS)):
        assert (out / f"{stem}.png").read_bytes().startswith(b"\x89PNG")


def test_importance_and_sensitivity_cover_four_optimizers() -> None:
    from test_tables import OPTS4, tasks_sweep

    from lionsweep.results.overview import importance_data

    configs = config_table(tasks_sweep(), FINAL)
    data = importance_data(configs)
    parts = data.groupby("optimizer")["part"].apply(set)
    assert parts["sgd"] == {"lr", "weight_decay", "momentum", "interactions"}
    assert parts["lion"] == {"lr", "beta1", "weight_decay", "interactions"}
    assert parts["adam"] == {"lr", "beta1", "weight_decay", "interactions"}  # beta1: one value
    sums = data.groupby(["dataset", "optimizer"])["share"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0)
    _, sens = plot_sensitivity(configs, 1.0, ["wine", "diabetes"], list(OPTS4))
    assert set(sens["optimizer"]) == set(OPTS4)
    reg = sens[sens["dataset"] == "diabetes"].set_index("optimizer")
    grid = configs[(configs["dataset"] == "diabetes") & ~configs["is_default"]]
    for opt, g in grid.groupby("optimizer"):  # within 0.01 R^2 of the best
        near = (g["val_r2_mean"] >= g["val_r2_mean"].max() - 0.01 - 1e-12).sum()
        assert (
            reg.loc[opt, "n_within"] == near
            and reg.loc[opt, "best_val_r2"] == g["val_r2_mean"].max()
        )


def test_marginal_means_lie_within_their_seed_range(tmp_path: Path) -> None:
    """Seeds that agree (a one-value axis, a saturated metric): the mean of three equal
    floats can round below their minimum (0.7), which made the capped error bar of a
    one-value axis negative and the figures job fail (the field study's SGD momentum)."""
    frame = sgd_regression_sweep()
    frame["val_r2"] = 0.7
    fig, data = plot_marginals(frame, None, FINAL, "diabetes", ["lion", "sgd"])
    for d in data.values():
        assert ((d["mean"] >= d["lo"]) & (d["mean"] <= d["hi"])).all()
    save(fig, tmp_path, "marginal_diabetes")
