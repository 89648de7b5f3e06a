"""The heatmap (lr x weight decay, best over the other axes) and the grid-axis helpers.

Every optimizer has lr and weight decay; each cell is the best mean validation
primary metric (accuracy in %, R^2 as is) over whatever else the grid varies
(Lion's beta1, SGD's momentum, ...). A 20 x 20 grid cannot carry a label in each
of its 400 cells, so the heatmap marks only the selected configuration (a star) and
shows, as its own colour-coded panel beside it, the best value per cell of the
*side axis*: of the other varied axes, the one with the largest main effect (the
variance of its marginal means; the first in registry order on ties). Without
another varied axis there is no side panel. Axes use the grid's own
spacing (log for a log-spaced learning rate) and put ticks at grid values,
thinned to a readable number of labels.

A grid with sampled axes (lionsweep.sweep.sampling) has N points, not an N x N lattice of
cells: the panels then draw each point as a dot (coloured like a cell) on the axis's
scale with ordinary ticks, since cells around irregular values would be slivers.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, ListedColormap, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.scale import SymmetricalLogTransform
from matplotlib.ticker import NullLocator

from lionsweep.results.scoring import metric_of
from lionsweep.results.selection import AXES, DEFAULTS, HPARAMS

# Tick labels per axis (results.tick_labels): a 20-value axis shows every 4th value.
MAX_TICK_LABELS = int(DEFAULTS["tick_labels"])
SLANT_CHARS = 30  # x tick labels longer than this in all are drawn slanted
NO_GRID = "no working grid point"
NAMES = {"lr": "learning rate", "beta1": "beta1", "weight_decay": "weight decay"}
SHORT = {"weight_decay": "wd"}  # title abbreviations
PLANE = ("lr", "weight_decay")  # the heatmap's axes: every optimizer has them


COLORS = {"lion": "tab:orange", "adamw": "tab:blue"}  # the paper's pair, as it has always been


def color(opt: str, optimizers: list[str]) -> Any:
    """The pair's colours as ever; any other optimizer the next unused tab10 colour, by
    its place in the study's list (so a colour means one optimizer in every figure)."""
    if opt in COLORS:
        return COLORS[opt]
    used = {to_rgb(c) for c in COLORS.values()}
    free = [c for c in plt.get_cmap("tab10").colors if to_rgb(c) not in used]
    others = [o for o in optimizers if o not in COLORS]
    return free[others.index(opt) % len(free)] if opt in others else "gray"


def grid_axes(grid: pd.DataFrame) -> list[str]:
    """The axes a grid is drawn over: the paper's three where the optimizer has them (not
    NaN; SGD has no beta1), then every other hyperparameter the grid varies."""
    return [
        h for h in HPARAMS
        if (h in AXES and grid[h].notna().any()) or grid[h].nunique() > 1
    ]  # fmt: skip


def grid_scale(values: np.ndarray) -> str:
    """ "log" for positive values spaced evenly in log (or spanning a decade with 2
    values), "symlog" for 0 plus log-spaced values over two decades or more (a weight
    decay of [0, 1e-3, ..., 10]: on a linear axis all but the largest would collapse
    onto 0), else "linear": a grid axis is drawn the way it was built."""
    v = np.unique(np.asarray(values, dtype=float))
    zero_and_decades = v.size >= 3 and v[0] == 0 and (v[1:] > 0).all() and v[-1] / v[1] >= 100
    if zero_and_decades and grid_scale(v[1:]) == "log":
        return "symlog"
    if v.size < 2 or (v <= 0).any():
        return "linear"
    if v.size == 2:
        return "log" if v[1] / v[0] >= 10 else "linear"
    lin, log = np.diff(v), np.diff(np.log(v))
    spread = lambda d: float(np.ptp(d) / np.abs(d).mean())  # noqa: E731
    return "log" if spread(log) < spread(lin) else "linear"


def axis_label(axis: str, scale: str) -> str:
    words = {"log": " (log scale)", "symlog": " (log scale, and 0)"}
    return NAMES.get(axis, axis) + words.get(scale, "")


def _symlog(values: np.ndarray) -> SymmetricalLogTransform:
    """The symlog transform of a 0-and-log-spaced axis: linear up to its smallest
    positive value, so 0 sits one step below it, as evenly as the log-spaced rest."""
    v = np.asarray(values, dtype=float)
    return SymmetricalLogTransform(10, float(v[v > 0].min()), 1.0)


def set_scale(ax: Axes, which: str, scale: str, values: np.ndarray) -> None:
    """``ax.set_xscale``/``set_yscale`` for a ``grid_scale`` (symlog with its threshold)."""
    setter = ax.set_xscale if which == "x" else ax.set_yscale
    if scale == "symlog":
        t = _symlog(values)
        setter("symlog", linthresh=t.linthresh, linscale=t.linscale)
    else:
        setter(scale)


def edges(values: np.ndarray, scale: str) -> np.ndarray:
    """Cell edges around sorted grid values (midpoints in the axis's scale: geometric on a
    log axis, in the symlog transform's space on a symlog one)."""
    if scale == "symlog":
        t = _symlog(values)
        mid = edges(t.transform(np.asarray(values, dtype=float)), "linear")
        return t.inverted().transform(mid)
    log = scale == "log"
    v = np.log10(values) if log else values.astype(float)
    if v.size == 1:
        half = 0.5 if log else max(abs(v[0]) * 0.5, 0.005)
        e = np.array([v[0] - half, v[0] + half])
    else:
        mid = (v[1:] + v[:-1]) / 2
        e = np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])
    return 10**e if log else e


def thinned(values: np.ndarray, most: int = MAX_TICK_LABELS) -> np.ndarray:
    """Every k-th grid value (first included) so that at most ``most`` remain."""
    step = max(1, math.ceil(len(values) / most))
    return np.asarray(values)[::step]


def grid_ticks(ax: Axes, which: str, values: np.ndarray, most: int = MAX_TICK_LABELS) -> None:
    """Ticks at (thinned) grid values, labelled with 3 significant digits; no minor ticks.
    Long x labels (a fine lr grid's 3.17e-05, 0.000101, ...) are slanted so that
    neighbours cannot run into each other."""
    ticks = thinned(values, most)
    labels = [f"{t:.3g}" for t in ticks]
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_ticks(ticks, labels)
    axis.set_minor_locator(NullLocator())
    if which == "x" and sum(map(len, labels)) > SLANT_CHARS:
        plt.setp(axis.get_ticklabels(), rotation=30, ha="right", rotation_mode="anchor")


def side_axis(grid: pd.DataFrame) -> str | None:
    """Of the varied axes besides lr and weight decay, the one with the largest main
    effect on ``val_mean`` (first in registry order on ties); None when none varies."""
    others = [h for h in HPARAMS if h not in PLANE and grid[h].nunique() > 1]
    ok = grid[np.isfinite(grid["val_mean"].to_numpy(dtype=float))]
    effect = {h: float(np.var(ok.groupby(h)["val_mean"].mean())) if len(ok) else 0.0
              for h in others}  # fmt: skip
    return max(others, key=lambda h: effect[h]) if others else None


def heatmap_data(
    configs: pd.DataFrame, dataset: str, optimizer: str, pick: pd.Series | None
) -> dict[str, Any]:
    """[weight decay x lr] best (lowest for a loss) mean val primary metric (accuracy in
    %) over the other axes (``acc``, named so for every metric), the side axis's value
    achieving it (under the side axis's own name), and the selected configuration
    (``pick``; NaN if none)."""
    both = configs[(configs["dataset"] == dataset) & (configs["optimizer"] == optimizer)]
    g = both[~both["is_default"]]
    default = both[both["is_default"]].iloc[0]
    side = side_axis(g)
    others = [h for h in HPARAMS if h not in PLANE and g[h].nunique() > 1]
    lrs, wds = np.sort(g["lr"].unique()), np.sort(g["weight_decay"].unique())
    acc = np.full((wds.size, lrs.size), np.nan)
    present = np.zeros((wds.size, lrs.size), dtype=bool)
    best = np.full((wds.size, lrs.size), np.nan)
    order = [side, *(h for h in others if h != side)] if side else []
    info = metric_of(configs, dataset)
    ordered = g.sort_values(order, kind="stable") if order else g
    for (wd, lr), cell in ordered.groupby(["weight_decay", "lr"]):
        vals = cell["val_mean"].to_numpy()
        i, j = np.searchsorted(wds, wd), np.searchsorted(lrs, lr)
        present[i, j] = True
        if np.isfinite(vals).any():
            k = int(np.nanargmax(info.sign * vals))  # the best; lowest side value on ties
            acc[i, j] = info.scale * vals[k]
            best[i, j] = cell[side].to_numpy()[k] if side else np.nan
    shown = [*PLANE, *others]
    chosen = [math.nan] * len(shown) if pick is None else [pick[k] for k in shown]
    out: dict[str, Any] = {
        "lr": lrs,
        "weight_decay": wds,
        "acc": acc,
        "side": side,
        "shown": shown,
        "default": np.array([default["lr"], default["weight_decay"]]),
        "selected": np.array(chosen, dtype=float),
        "scale": np.array([grid_scale(lrs), grid_scale(wds)]),
        "present": present,
        # sampled axes: N (lr, wd) points, far fewer than the N x N cells of their values
        "scattered": 2 * int(present.sum()) < present.size,
    }
    if out["scattered"]:
        out["scale"] = np.array([point_scale(lrs), point_scale(wds)])
    if side:
        out[side], out["side_values"] = best, np.sort(g[side].unique())
    return out


def point_scale(values: np.ndarray) -> str:
    """The scale of sampled values: log when positive over two decades or more."""
    v = np.asarray(values, dtype=float)
    return "log" if v.size and (v > 0).all() and v.max() >= 100 * v.min() else "linear"


def _scatter(ax: Axes, d: dict[str, Any], values: np.ndarray, **kw):
    """Sampled points as dots coloured by ``values`` (failed ones grey crosses)."""
    i, j = np.nonzero(d["present"])
    ok = np.isfinite(values[i, j])
    dots = ax.scatter(d["lr"][j[ok]], d["weight_decay"][i[ok]], c=values[i, j][ok], s=28,
                      edgecolors="black", linewidths=0.3, **kw)  # fmt: skip
    ax.scatter(d["lr"][j[~ok]], d["weight_decay"][i[~ok]], marker="x", color="0.6", s=20)
    set_scale(ax, "x", d["scale"][0], d["lr"])
    set_scale(ax, "y", d["scale"][1], d["weight_decay"])
    ax.set_xlabel(axis_label("lr", d["scale"][0]))
    ax.set_ylabel(axis_label("weight_decay", d["scale"][1]))
    return dots


def _outline_default(ax: Axes, d: dict[str, np.ndarray]) -> None:
    """Outline, in red, the cell holding the default's (lr, wd), if it lies on the grid
    (among sampled points: a red square at the default's place)."""
    if d.get("scattered"):
        ax.plot(*d["default"], marker="s", ms=12, mfc="none", mec="red", mew=2, ls="none")
        return
    xe = edges(d["lr"], d["scale"][0])
    ye = edges(d["weight_decay"], d["scale"][1])
    j, i = np.searchsorted(xe, d["default"][0]) - 1, np.searchsorted(ye, d["default"][1]) - 1
    if 0 <= j < d["lr"].size and 0 <= i < d["weight_decay"].size:
        box = Rectangle((xe[j], ye[i]), xe[j + 1] - xe[j], ye[i + 1] - ye[i])
        box.set(fill=False, edgecolor="red", linewidth=2)
        ax.add_patch(box)


def _mesh(ax: Axes, d: dict[str, np.ndarray], values: np.ndarray, most: int, **kw):
    """Draw one [wd x lr] panel in the grid's own scales, ticks at grid values."""
    if d.get("scattered"):
        return _scatter(ax, d, values, **kw)
    xs, ys = d["scale"]
    mesh = ax.pcolormesh(
        edges(d["lr"], xs), edges(d["weight_decay"], ys), np.ma.masked_invalid(values), **kw
    )
    set_scale(ax, "x", xs, d["lr"])
    set_scale(ax, "y", ys, d["weight_decay"])
    grid_ticks(ax, "x", d["lr"], most)
    grid_ticks(ax, "y", d["weight_decay"])
    ax.set_facecolor("0.85")  # failed cells (every beta1 diverged) show grey
    ax.set_xlabel(axis_label("lr", d["scale"][0]))
    ax.set_ylabel(axis_label("weight_decay", d["scale"][1]))
    return mesh


def _side_panel(fig: Figure, ax: Axes, d: dict[str, Any], title: str, ticks: int) -> None:
    """The side axis's best value per cell, one colour per value of the grid."""
    values = d["side_values"]
    one = np.array([values[0] - 1, values[0] + 1])
    bounds = edges(values, "linear") if values.size > 1 else one
    cmap = ListedColormap(plt.get_cmap("cividis")(np.linspace(0, 1, max(values.size, 2))))
    mesh = _mesh(ax, d, d[d["side"]], ticks, cmap=cmap, norm=BoundaryNorm(bounds, cmap.N))
    ax.set_title(title, fontsize=9)
    bar = fig.colorbar(mesh, ax=ax, label=f"{d['side']} of the best cell")
    bar.set_ticks(thinned(values), labels=[f"{v:.3g}" for v in thinned(values)])
    bar.minorticks_off()


def plot_heatmaps(
    configs: pd.DataFrame,
    chosen: pd.DataFrame,
    dataset: str,
    optimizers: list[str],
    ticks: int = MAX_TICK_LABELS,
) -> tuple[Figure, dict[str, dict[str, np.ndarray]]]:
    """Per optimizer (one row each): the metric best over the other axes with the selected
    point starred and the default outlined, and beside it the side axis's best value."""
    picks = chosen.set_index(["dataset", "optimizer"])
    data = {
        o: heatmap_data(
            configs, dataset, o, picks.loc[(dataset, o)] if (dataset, o) in picks.index else None
        )
        for o in optimizers
    }
    finite = np.concatenate([d["acc"][np.isfinite(d["acc"])] for d in data.values()])
    vmin, vmax = (finite.min(), finite.max()) if finite.size else (0, 100)
    sides = any(d["side"] for d in data.values())
    fig, axes = plt.subplots(
        len(optimizers), 1 + sides, figsize=(6.5 + 3.5 * sides, 4 * len(optimizers)),
        squeeze=False, gridspec_kw={"width_ratios": [1.6, 1][: 1 + sides]},
    )  # fmt: skip
    info = metric_of(configs, dataset)
    label = info.axis("mean validation")
    cmap = "viridis" if info.higher else "viridis_r"  # bright is better, for a loss too
    for row, (opt, d) in zip(axes, data.items(), strict=True):
        ax = row[0]
        if d["lr"].size == 0 or not np.isfinite(d["acc"]).any():
            for a in row:
                a.set_axis_off()
                a.text(0.5, 0.5, f"{dataset}, {opt}: {NO_GRID}", ha="center", transform=a.transAxes)
            continue
        mesh = _mesh(ax, d, d["acc"], ticks, vmin=vmin, vmax=vmax, cmap=cmap)
        _outline_default(ax, d)
        over = [h for h in d["shown"] if h not in PLANE]
        title = f"{dataset}, {opt}: " + (f"best over {', '.join(over)}; " if over else "")
        title += "red box: default"
        if np.isfinite(d["selected"]).all():
            ax.plot(*d["selected"][:2], marker="*", ms=16, color="white", mec="black", ls="none")
            where = ", ".join(
                f"{SHORT.get(h, h)} {v:.3g}" for h, v in zip(d["shown"], d["selected"], strict=True)
            )
            title += f"\nstar: selected ({where})"
        ax.set_title(title, fontsize=9)
        fig.colorbar(mesh, ax=ax, label=label)
        if d["side"]:
            _side_panel(fig, row[1], d, f"{opt}: {d['side']} of the best cell", max(2, ticks // 2))
        elif sides:
            row[1].set_axis_off()
    fig.tight_layout()
    return fig, data
