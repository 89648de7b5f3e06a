"""The all-dataset figures (sensitivity, importance, effective decay), wrapped to stay readable.

A study may hold 100 datasets: one panel (or bar group) per dataset in a single row made
images tens of thousands of pixels wide. Here the panels wrap into a grid no wider than
``results.figure_width_px`` that grows in height only, so each figure stays one file with
the name ``outputs.py`` gives it whatever the study's size; a 3-dataset study keeps its
single-row layout. Each ``plot_*`` returns the figure and the numbers it draws.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from lionsweep.errors import LionSweepError
from lionsweep.results.heatmap import color, grid_axes
from lionsweep.results.scoring import metric_of
from lionsweep.results.selection import DEFAULTS, sensitivity
from lionsweep.results.stats import importance

DPI = 150  # figures.save writes every PNG at this resolution
WIDTH_PX = int(DEFAULTS["figure_width_px"])
DECAY_PANEL = (5.0, 4.0)  # inches per dataset panel
SENSITIVITY_GROUP, SENSITIVITY_MARGIN, SENSITIVITY_ROW = 1.6, 1.8, 4.0  # inches
IMPORTANCE_WIDTH, IMPORTANCE_BAR, IMPORTANCE_PAD = 9.0, 0.5, 1.4  # inches
IMPORTANCE_BARS = 40  # bars per importance panel before a new panel starts


def columns(panel_in: float, width_px: int, n: int) -> int:
    """How many panels of ``panel_in`` inches fit side by side in ``width_px`` (>= 1, <= n)."""
    return max(1, min(n, int(width_px / DPI // panel_in)))


def grid(n: int, cols: int) -> tuple[int, int]:
    """(rows, cols) of a grid holding ``n`` panels at most ``cols`` wide."""
    return max(1, math.ceil(n / cols)), cols


def chunks(items: list, size: int) -> list[list]:
    """``items`` in consecutive pieces of at most ``size`` (one empty piece for none)."""
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def plot_sensitivity(
    configs: pd.DataFrame,
    points: float,
    datasets: list[str],
    optimizers: list[str],
    width_px: int = WIDTH_PX,
    data: pd.DataFrame | None = None,
) -> tuple[Figure, pd.DataFrame]:
    """Share of each grid within ``points`` of its best; one row of bar groups per as many
    datasets as fit ``width_px`` (every row on the same x scale, so bars keep their width).
    ``data``: ``sensitivity``'s rows, computed a grid at a time where ``configs`` holds
    only some of each grid's points (``results.reads``)."""
    data = sensitivity(configs, points) if data is None else data
    per_row = max(1, int((width_px / DPI - SENSITIVITY_MARGIN) // SENSITIVITY_GROUP))
    rows = chunks(list(datasets), per_row)
    width = SENSITIVITY_MARGIN + SENSITIVITY_GROUP * len(rows[0])  # the first row is the longest
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(width, SENSITIVITY_ROW * len(rows)), squeeze=False
    )
    for ax, row in zip(axes[:, 0], rows, strict=True):
        _sensitivity_row(ax, data, row, optimizers)
        ax.set_ylabel(f"grid within {points:g} point(s) of the best (%)")
        if len(rows) > 1:
            ax.set_xlim(-0.5, per_row - 0.5)
    names = ", ".join(dict.fromkeys(metric_of(configs, d).label for d in datasets))
    axes[0, 0].set_title(
        f"How forgiving is the grid? (mean validation {names or 'accuracy'}; "
        "a point = 0.01 of the metric)",
        fontsize=9,
    )
    axes[0, 0].legend(loc="upper right", ncols=len(optimizers), fontsize=8)
    fig.tight_layout()
    return fig, data


def _sensitivity_row(ax: Axes, data: pd.DataFrame, datasets: list[str], opts: list[str]) -> None:
    """One row of bar groups: per dataset, one bar per optimizer labelled within/grid."""
    width = 0.8 / len(opts)
    for k, opt in enumerate(opts):
        d = data[data["optimizer"] == opt].set_index("dataset").reindex(datasets)
        x = np.arange(len(datasets)) + (k - (len(opts) - 1) / 2) * width
        bars = ax.bar(x, 100 * d["share_within"].fillna(0), width, label=opt,
                      color=color(opt, opts))  # fmt: skip
        counts = [  # n/a: no grid point for that pair (a grid of the default alone)
            f"{w:.0f}/{n:.0f}" if n > 0 else "n/a"
            for w, n in zip(d["n_within"], d["n_grid"].fillna(0), strict=True)
        ]
        ax.bar_label(bars, counts, fontsize=7, padding=2)
    ax.set_ylim(0, 115)
    ax.set_xticks(np.arange(len(datasets)), datasets)
    ax.set_xlabel("dataset")


def importance_data(configs: pd.DataFrame) -> pd.DataFrame:
    """Main-effect shares (functional ANOVA, stats.importance) of the mean validation
    primary metric per (dataset, optimizer), over the axes its grid has (``grid_axes``)."""
    grid_rows = configs[~configs["is_default"]]
    rows = []
    for (dataset, opt), g in grid_rows.groupby(["dataset", "optimizer"], sort=False):
        try:
            shares = importance(g, "val_mean", grid_axes(g), metric_of(g, dataset).higher)
        except LionSweepError:  # every point failed: nothing to decompose, drawn as n/a
            continue
        for part, share in shares.items():
            if part != "filled":
                rows.append({"dataset": dataset, "optimizer": opt, "part": part, "share": share,
                             "n_failed_filled": int(shares["filled"])})  # fmt: skip
    return pd.DataFrame(rows)


def plot_importance(
    configs: pd.DataFrame,
    datasets: list[str],
    optimizers: list[str],
    width_px: int = WIDTH_PX,
    data: pd.DataFrame | None = None,
) -> tuple[Figure, pd.DataFrame]:
    """Stacked main-effect shares; a pair without a grid, with every point failed or
    with no variance over its grid (all points equal) is labelled n/a, with the reason.
    Past ``IMPORTANCE_BARS`` pairs the bars continue in further panels (a dataset's
    optimizers stay together), side by side as far as ``width_px`` allows, then below.
    ``data``: ``importance_data``'s rows, as in ``plot_sensitivity``."""
    data = importance_data(configs) if data is None else data
    per_panel = max(1, IMPORTANCE_BARS // max(1, len(optimizers))) * max(1, len(optimizers))
    panels = chunks([(d, o) for d in datasets for o in optimizers], per_panel)
    parts = list(dict.fromkeys(data["part"])) if not data.empty else []
    n_rows, n_cols = grid(len(panels), columns(IMPORTANCE_WIDTH, width_px, len(panels)))
    height = IMPORTANCE_PAD + IMPORTANCE_BAR * len(panels[0])
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(IMPORTANCE_WIDTH * n_cols, height * n_rows), squeeze=False
    )
    for ax in axes.flat[len(panels) :]:
        ax.set_axis_off()
    names = ", ".join(dict.fromkeys(metric_of(configs, d).label for d in datasets))
    for ax, pairs in zip(axes.flat, panels, strict=False):
        _importance_panel(ax, configs, data, pairs, parts)
        ax.set_xlabel(f"share of the variance of mean validation {names} over the grid (%)")
    axes[0, 0].set_title("Hyperparameter importance (functional ANOVA main effects)")
    if parts:
        axes[0, -1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig, data


def _importance_panel(
    ax: Axes, configs: pd.DataFrame, data: pd.DataFrame, pairs: list, parts: list[str]
) -> None:
    """One panel of stacked bars, one per (dataset, optimizer) pair, top to bottom."""
    left = np.zeros(len(pairs))
    for part, shade in zip(parts, plt.get_cmap("Set2").colors, strict=False):
        share = data[data["part"] == part].set_index(["dataset", "optimizer"])["share"]
        values = 100 * share.reindex(pairs).fillna(0).to_numpy()
        ax.barh(np.arange(len(pairs)), values, left=left, label=part, color=shade)
        left += np.clip(values, 0, None)
    for y, pair in enumerate(pairs):
        if left[y] == 0:
            ax.text(1, y, f"n/a: {_importance_gap(configs, *pair)}", va="center", fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_yticks(np.arange(len(pairs)), [f"{d}, {o}" for d, o in pairs])
    ax.invert_yaxis()


def _importance_gap(configs: pd.DataFrame, dataset: str, optimizer: str) -> str:
    """Why a pair has no importance bar."""
    g = configs[(configs["dataset"] == dataset) & (configs["optimizer"] == optimizer)]
    g = g[~g["is_default"]]
    if g.empty:
        return "no grid points"
    if g["failed"].all():
        return "every grid point failed"
    return "no variance over the grid (one value per axis, or equal accuracies)"


def decay_data(configs: pd.DataFrame, dataset: str, optimizer: str) -> dict[str, Any]:
    """Mean val primary metric (accuracy in %) against the per-step decay lr * wd (wd > 0),
    and the best at wd = 0 (the lowest for a loss)."""
    g = configs[(configs["dataset"] == dataset) & (configs["optimizer"] == optimizer)]
    g = g[~g["is_default"] & ~g["failed"]]
    info = metric_of(configs, dataset)
    pos = g[g["weight_decay"] > 0]
    zero = g.loc[g["weight_decay"] == 0, "val_mean"]
    return {
        "x": (pos["lr"] * pos["weight_decay"]).to_numpy(),
        "y": info.scale * pos["val_mean"].to_numpy(),
        "best_wd0": info.scale * zero.agg(info.best) if len(zero) else math.nan,
    }


def plot_decay(
    configs: pd.DataFrame,
    datasets: list[str],
    optimizers: list[str],
    width_px: int = WIDTH_PX,
    given: dict[tuple[str, str], dict[str, Any]] | None = None,
) -> tuple[Figure, dict]:
    """One panel per dataset, as many per row as fit ``width_px``. ``given``: each pair's
    ``decay_data``, as in ``plot_sensitivity``."""
    given = given or {}
    n_rows, n_cols = grid(len(datasets), columns(DECAY_PANEL[0], width_px, len(datasets)))
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(DECAY_PANEL[0] * n_cols, DECAY_PANEL[1] * n_rows), squeeze=False
    )
    for ax in axes.flat[len(datasets) :]:
        ax.set_axis_off()
    data, legends = {}, []
    for ax, dataset in zip(axes.flat, datasets, strict=False):
        for opt in optimizers:
            d = given.get((dataset, opt)) or decay_data(configs, dataset, opt)
            data[(dataset, opt)] = d
            c = color(opt, optimizers)
            ax.scatter(d["x"], d["y"], s=8, alpha=0.5, color=c, label=opt)
            if math.isfinite(d["best_wd0"]):
                ax.axhline(d["best_wd0"], ls=":", color=c, label=f"{opt}, best at wd = 0")
        if any(data[(dataset, o)]["x"].size for o in optimizers):
            ax.set_xscale("log")
            ax.set_xlabel("lr x weight decay (per-step shrink factor, log scale)")
        else:  # all-zero decay (or no working point): lr x wd has nothing to put on a log axis
            ax.text(0.5, 0.5, "no grid point with weight decay > 0", ha="center",
                    va="center", transform=ax.transAxes)  # fmt: skip
            ax.set_xlabel("lr x weight decay (per-step shrink factor)")
        ax.set_ylabel("mean " + metric_of(configs, dataset).axis())
        ax.set_title(dataset)
        if ax.get_legend_handles_labels()[0] and (n_rows == 1 or not legends):
            legends.append(ax.legend(fontsize=8))  # wrapped: once (same colours throughout)
    if n_rows == 1:
        fig.tight_layout()
    else:  # tight_layout measures every tick of every panel: minutes at 100 panels
        fixed_layout(fig, n_rows, n_cols)
        for ax in axes.flat:
            ax.xaxis.set_minor_locator(NullLocator())  # a decade's 8 minor ticks: half the drawing
    return fig, data


def fixed_layout(fig: Figure, n_rows: int, n_cols: int) -> None:
    """Margins and gaps in inches for a grid of alike panels (tick labels, axis labels, a
    title each): what tight_layout finds for one row, without measuring every panel."""
    width, height = fig.get_size_inches()
    left, right, bottom, top, gap_w, gap_h = 0.85, 0.15, 0.6, 0.35, 1.0, 0.95
    ax_w = (width - left - right - (n_cols - 1) * gap_w) / n_cols
    ax_h = (height - bottom - top - (n_rows - 1) * gap_h) / n_rows
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=gap_w / ax_w,
        hspace=gap_h / ax_h,
    )
