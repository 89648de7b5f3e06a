"""`lionsweep figures`: the accuracy landscape, its sensitivity and the learning curves.

All figures read the honest protocol's metrics (each dataset's primary validation
metric, mean over seeds, see selection.py): they describe the landscape a
practitioner tunes on, not the test set. Each ``plot_*`` function returns the figure
*and the numbers it draws*, so the tests check the plotted data, not only that a
file exists. Accuracy is shown in percent, R^2 as is (axis labels say which);
bands are the min-max range over seeds. Optimizers and their axes come from the data.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lionsweep.atomic import write_atomic
from lionsweep.results.field import plot_field_ranks
from lionsweep.results.files import FIGURE_FORMATS, figure_stems
from lionsweep.results.heatmap import (
    MAX_TICK_LABELS,
    NO_GRID,
    SHORT,
    axis_label,
    color,
    grid_axes,
    grid_scale,
    grid_ticks,
    plot_heatmaps,
    set_scale,
)
from lionsweep.results.overview import (
    DPI,
    decay_data,
    importance_data,
    plot_decay,
    plot_importance,
    plot_sensitivity,
)
from lionsweep.results.reads import group_rows, sufficient, table_rows
from lionsweep.results.scoring import Metrics, failed, metric_of, score, with_primary
from lionsweep.results.selection import (
    FALLBACK_METRIC,
    GROUP,
    HPARAMS,
    add_sweep_arguments,
    config_table,
    parse_settings,
    restrict,
    select_honest,
    sensitivity,
)
from lionsweep.results.stats import metric_info
from lionsweep.results.writers import datasets_table
from lionsweep.sweep.summary import group_configs, load_columns, summary_groups, with_curves
from lionsweep.train.tasks import PRIMARY_METRIC

MARKED_VALUES = 60  # a marginal curve over more axis values is drawn without markers
LOSS_LABELS = {"acc": "validation log-loss (nats)", "r2": "validation MSE (standardized target)"}


def marginal_data(
    frame: pd.DataFrame,
    metrics: Metrics,
    dataset: str,
    optimizer: str,
    axes: list[str] | None = None,
) -> pd.DataFrame:
    """Per axis value: best (the lowest for a loss) and median val primary metric (accuracy
    in %) over the other axes, per seed, then mean / min / max over seeds. Failed runs are
    left out of that seed. ``axes``: the grid's (``grid_axes``), when ``frame`` holds
    only their columns (``results.reads.group_rows``)."""
    g = frame[
        (frame["dataset"] == dataset) & (frame["optimizer"] == optimizer) & ~frame["is_default"]
    ]
    axes = grid_axes(g) if axes is None else axes
    info = metric_of(g, dataset)
    ok = ~failed(g, metrics).to_numpy()  # a copy of the axes only: 10^6 rows at 100x
    g = g.loc[ok, [*axes, "seed"]].assign(_acc=info.scale * score(g, metrics, "val")[ok])
    rows = []
    for axis in axes:
        per = g.groupby([axis, "seed"])["_acc"].agg(best=info.best, median="median")
        for stat in ("best", "median"):
            s = per[stat].groupby(level=0)
            lo, hi = s.min(), s.max()  # the mean of equal values can round below them
            out = pd.DataFrame({"mean": s.mean().clip(lo, hi), "lo": lo, "hi": hi})
            rows.append(out.reset_index(names="value").assign(axis=axis, stat=stat))
    columns = ["axis", "stat", "value", "mean", "lo", "hi"]
    return pd.concat(rows, ignore_index=True)[columns] if rows else pd.DataFrame(columns=columns)


def plot_marginals(
    frame: pd.DataFrame,
    data: dict[str, pd.DataFrame] | None,
    metrics: Metrics,
    dataset: str,
    optimizers: list[str],
    ticks: int = MAX_TICK_LABELS,
) -> tuple[Figure, dict[str, pd.DataFrame]]:
    """One row per optimizer, one panel per axis, in the grid's own scale (ticks at grid
    values); a panel without a working grid point says so instead of an empty frame.
    ``data``: each optimizer's ``marginal_data`` (None: from ``frame``'s rows), when
    ``frame`` is the configurations (their axes and values are the rows')."""
    if data is None:
        data = {o: marginal_data(frame, metrics, dataset, o) for o in optimizers}
    here = frame[frame["dataset"] == dataset]
    info = metric_of(here, dataset)
    panels = {o: grid_axes(here[(here["optimizer"] == o) & ~here["is_default"]]) for o in data}
    ncols = max([len(p) for p in panels.values()] + [1])
    fig, axes = plt.subplots(
        len(optimizers), ncols, figsize=(4.4 * ncols, 3.6 * len(optimizers)), squeeze=False
    )
    for row, (opt, d) in zip(axes, data.items(), strict=True):
        grid = here[(here["optimizer"] == opt) & ~here["is_default"]]
        c = color(opt, optimizers)
        for ax in row[len(panels[opt]) :]:
            ax.set_axis_off()
        if not panels[opt]:
            row[0].set_axis_on()
            row[0].text(0.5, 0.5, f"{dataset}, {opt}: {NO_GRID}", ha="center",
                        transform=row[0].transAxes)  # fmt: skip
        for ax, axis in zip(row, panels[opt], strict=False):
            ax.set_title(f"{dataset}, {opt}")
            ax.set_ylabel(info.axis())
            if d.empty:
                ax.text(0.5, 0.5, NO_GRID, ha="center", va="center", transform=ax.transAxes)
                ax.set_xlabel(axis_label(axis, "linear"))
                continue
            scale = grid_scale(grid[axis].unique())
            for stat, style in (("best", "-"), ("median", "--")):
                s = d[(d["axis"] == axis) & (d["stat"] == stat)]
                dots = "o" if len(s) <= MARKED_VALUES else None  # a fine grid: a line
                ax.plot(s["value"], s["mean"], style, marker=dots, ms=3, color=c,
                        label=f"{stat} over the other axes")  # fmt: skip
                if len(s) == 1:  # one grid value: a band has no width, so a capped bar
                    yerr = [s["mean"] - s["lo"], s["hi"] - s["mean"]]
                    ax.errorbar(s["value"], s["mean"], yerr=yerr, capsize=4, alpha=0.5,
                                color=c, ls="none")  # fmt: skip
                ax.fill_between(s["value"], s["lo"], s["hi"], alpha=0.2, color=c)
            set_scale(ax, "x", scale, grid[axis].unique())
            grid_ticks(ax, "x", np.sort(grid[axis].unique()), ticks)
            ax.set_xlabel(axis_label(axis, scale))
        if not d.empty and panels[opt]:
            row[0].legend(fontsize=8, title="band: min-max over seeds", title_fontsize=8)
    fig.tight_layout()
    return fig, data


def curve_data(
    frame: pd.DataFrame, dataset: str, optimizer: str, config_id: int, col: str, scale: float = 1.0
) -> dict:
    """A configuration's stored curve over seeds: mean, min, max per epoch.

    Curves are NaN from a diverged seed's ``diverged_epoch`` on; those seeds drop out there.
    ``scale``: the display factor (100 for an accuracy curve, in %).
    """
    rows = frame[
        (frame["dataset"] == dataset)
        & (frame["optimizer"] == optimizer)
        & (frame["config_id"] == config_id)
    ]
    stack = np.vstack([np.asarray(c, dtype=np.float64) for c in rows[col]])
    with warnings.catch_warnings():  # an epoch where every seed diverged is NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        return {
            "epoch": np.arange(1, stack.shape[1] + 1),
            "mean": scale * np.nanmean(stack, axis=0),
            "lo": scale * np.nanmin(stack, axis=0),
            "hi": scale * np.nanmax(stack, axis=0),
        }


def plot_curves(
    frame: pd.DataFrame, chosen: pd.DataFrame, dataset: str, optimizers: list[str]
) -> tuple[Figure, dict[tuple[str, str, str], dict]]:
    """Default vs validation-selected configuration: the primary metric's curve and the loss's.

    Training stores its task's metric curve (accuracy, R^2); a configured primary metric
    without one (datasets.<name>.primary_metric) shows that stored curve instead."""
    info = metric_of(frame, dataset)
    if f"curve_val_{info.name}" not in frame.columns:
        tasks = frame.loc[frame["dataset"] == dataset].get("task")
        task = "binary" if tasks is None else tasks.iloc[0]  # sweeps before tasks: binary
        info = metric_info(PRIMARY_METRIC[task])
    fig, axes = plt.subplots(2, len(optimizers), figsize=(5.5 * len(optimizers), 7), squeeze=False)
    data = {}
    for j, opt in enumerate(optimizers):
        rows = frame[(frame["dataset"] == dataset) & (frame["optimizer"] == opt)]
        picks = {"default": int(rows.loc[rows["is_default"], "config_id"].iloc[0])}
        names = {"default": f"default ({NO_GRID} to select)"}
        selected = chosen[(chosen["dataset"] == dataset) & (chosen["optimizer"] == opt)]
        if not selected.empty:  # none when every grid point failed: the default alone
            pick = selected.iloc[0]
            picks["selected"] = int(pick["config_id"])
            names["default"] = "default"
            shown = grid_axes(rows[~rows["is_default"]])
            names["selected"] = "selected: " + ", ".join(
                f"{SHORT.get(h, h)} {pick[h]:.3g}" for h in shown
            )
        curves = (
            (f"curve_val_{info.name}", info.axis(), info.scale),
            ("curve_val_loss", LOSS_LABELS.get(info.name, "validation loss"), 1.0),
        )
        for i, (col, label, scale) in enumerate(curves):
            ax = axes[i, j]
            for which, cid in picks.items():
                d = curve_data(frame, dataset, opt, cid, col, scale)
                data[(opt, which, col)] = d
                style = "--" if which == "default" else "-"
                ax.plot(d["epoch"], d["mean"], style, color=color(opt, optimizers),
                        label=names[which])  # fmt: skip
                ax.fill_between(d["epoch"], d["lo"], d["hi"], alpha=0.2,
                                color=color(opt, optimizers))  # fmt: skip
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(label)
            ax.set_title(f"{dataset}, {opt}")
            ax.legend(fontsize=8, title="band: min-max over seeds", title_fontsize=8)
    fig.tight_layout()
    return fig, data


def rows_notes(datasets: pd.DataFrame) -> dict[str, str]:
    """Per dataset, the rows its figures rest on (from --meta), e.g. for a suptitle."""
    return {
        r.dataset: f"{r.dataset}: {r.rows_raw - r.rows_dropped} of {r.rows_raw} rows "
        f"({r.rows_dropped} dropped while preparing: missing values)"
        for r in datasets.itertuples()
    }


def save(fig: Figure, outdir: Path, stem: str) -> list[Path]:
    """Write ``stem``.png and .pdf atomically (fixed metadata: stable bytes across runs)."""
    paths = []
    metadata = {
        "png": {"Software": None},
        "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
    }
    for ext in FIGURE_FORMATS:
        meta = metadata[ext]
        path = outdir / f"{stem}.{ext}"
        write_atomic(
            path,
            lambda tmp, ext=ext, meta=meta: fig.savefig(tmp, format=ext, dpi=DPI, metadata=meta),
        )
        paths.append(path)
    plt.close(fig)
    return paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_sweep_arguments(parser)
    parser.add_argument("--confirm", type=Path, help="confirm.parquet (the field's rank figure)")


@dataclass
class Inputs:
    """What the figures draw from. From the rows (a configured primary metric: the
    summary holds each task's own) everything is the sweep's; from the summary (issue
    19), ``configs`` is each grid's compact rows (``results.reads.sufficient``) beside
    the all-dataset figures' data computed a grid at a time (``overview``), a dataset's
    configurations are read when its figures are drawn, and the marginals from one
    (dataset, optimizer)'s rows at a time."""

    frame: pd.DataFrame  # the rows drawn: defaults and chosen configurations
    chosen: pd.DataFrame
    configs: pd.DataFrame
    of_dataset: Callable[[str], pd.DataFrame]  # a dataset's configurations, whole
    marginals: Callable[[str, list[str]], dict[str, pd.DataFrame] | None]
    marginal_source: Callable[[str], pd.DataFrame]  # plot_marginals' frame
    overview: dict[str, Any] = field(default_factory=dict)


def from_rows(args: argparse.Namespace, cfg: dict[str, Any], metrics: Metrics) -> Inputs:
    chosen_metrics = cfg["primary_metrics"]
    frame = load_columns(args.sweep, extra=chosen_metrics.values())
    frame = with_primary(restrict(frame, args.datasets, args.optimizers), chosen_metrics)
    configs = config_table(frame, metrics)
    chosen = select_honest(configs)
    return Inputs(frame, chosen, configs, lambda _: configs, lambda *_: None, lambda _: frame)


def from_summary(args: argparse.Namespace, cfg: dict[str, Any], metrics: Metrics) -> Inputs:
    groups = summary_groups(args.summary, args.datasets, args.optimizers)
    chosen, compact, overview = [], [], {"sensitivity": [], "importance": [], "decay": {}}
    for d, o in groups:
        configs = group_configs(args.summary, metrics, d, o)
        chosen.append(select_honest(configs))
        compact.append(sufficient(configs, 1))
        overview["sensitivity"].append(sensitivity(configs, float(cfg["sensitivity_points"])))
        overview["importance"].append(importance_data(configs))
        overview["decay"][(d, o)] = decay_data(configs, d, o)
    overview["sensitivity"] = pd.concat(overview["sensitivity"], ignore_index=True)
    overview["importance"] = pd.concat(overview["importance"], ignore_index=True)
    picks = pd.concat(chosen, ignore_index=True)

    def of_dataset(dataset: str) -> pd.DataFrame:  # the columns the heatmaps read
        slim = [*GROUP, "config_id", "is_default", "metric", "failed", "val_mean", *HPARAMS]
        parts = [
            group_configs(args.summary, metrics, d, o)[slim] for d, o in groups if d == dataset
        ]
        return pd.concat(parts, ignore_index=True)

    def marginals(dataset: str, optimizers: list[str]) -> dict[str, pd.DataFrame]:
        configs, data = axis_values(dataset), {}
        for o in optimizers:
            here = configs[(configs["optimizer"] == o) & ~configs["is_default"]]
            axes = grid_axes(here)
            metric = groups.get((dataset, o), FALLBACK_METRIC)  # no such grid: no rows
            rows = group_rows(args.sweep, dataset, o, axes, metric)
            data[o] = marginal_data(rows, metrics, dataset, o, axes)
        return data

    rows = table_rows(args.sweep, picks, paper=False)
    compact = pd.concat(compact, ignore_index=True)

    def axis_values(dataset: str) -> pd.DataFrame:  # what plot_marginals reads of them
        configs = of_dataset(dataset)
        keys = [["optimizer", "is_default", h] for h in HPARAMS]
        return pd.concat([configs.drop_duplicates(k) for k in keys], ignore_index=True)

    return Inputs(rows, picks, compact, of_dataset, marginals, axis_values, overview)


def run(args: argparse.Namespace) -> None:
    cfg = parse_settings(args.settings)
    metrics = Metrics(cfg["honest_metrics"])
    summary = args.summary is not None and not cfg["primary_metrics"]
    inp = (from_summary if summary else from_rows)(args, cfg, metrics)
    configs, chosen, over = inp.configs, inp.chosen, inp.overview
    datasets = args.datasets or sorted(configs["dataset"].unique())
    optimizers = args.optimizers or sorted(configs["optimizer"].unique())
    frame = with_curves(inp.frame, args.sweep, chosen)
    points, ticks = float(cfg["sensitivity_points"]), int(cfg["tick_labels"])
    width = int(cfg["figure_width_px"])
    draw = {
        "heatmap": lambda d: plot_heatmaps(inp.of_dataset(d), chosen, d, optimizers, ticks),
        "marginal": lambda d: plot_marginals(
            inp.marginal_source(d), inp.marginals(d, optimizers), metrics, d, optimizers, ticks
        ),
        "curves": lambda d: plot_curves(frame, chosen, d, optimizers),
        "sensitivity": lambda _: plot_sensitivity(
            configs, points, datasets, optimizers, width, over.get("sensitivity")
        ),
        "importance": lambda _: plot_importance(
            configs, datasets, optimizers, width, over.get("importance")
        ),
        "effective_decay": lambda _: plot_decay(
            configs, datasets, optimizers, width, over.get("decay")
        ),
        "ranks": lambda _: plot_field_ranks(args.confirm, metrics, datasets, optimizers),
    }
    notes = rows_notes(datasets_table(args.meta, datasets))
    stems = figure_stems(datasets, optimizers)
    for stem, kind, dataset in stems:  # drawn and closed one at a time (large grids)
        fig = draw[kind](dataset)[0]
        if dataset in notes:
            fig.suptitle(notes[dataset], fontsize=9)
            fig.tight_layout()
        save(fig, args.outdir, stem)
    print(f"{args.outdir}: {len(stems)} figures as {', '.join(FIGURE_FORMATS)}")
