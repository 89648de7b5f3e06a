"""Grid edges: whether a selected configuration lies on the boundary of its grid.

A best point at the lowest or highest value of an axis the grid varies says the optimum
may lie outside the grid; the tables flag it (``at_grid_edge``) and the claims quote it.
Which point is "best" is the selection's (``lionsweep.results.selection``), so the flag follows
the metric's direction like everything selected.

A sampled axis (lionsweep.sweep.sampling) has no lowest or highest value of its own: its
sampled points rarely hit the range's ends. There the flag asks whether the best point
lies within ``results.sampled_edge_fraction`` of the range (measured in the axis's
scale: log for a log range) from ``low`` or ``high``. The ranges travel with the
configuration table as ``configs.attrs["sampled_ranges"]`` (see with_sampled_ranges),
so every table that flags edges reads the same ones.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from lionsweep.results.selection import GROUP, HPARAMS, SAMPLED_RANGES

EDGE_FRACTION = "sampled_edge_fraction"  # results key; SAMPLED_RANGES is the attrs key too


def with_sampled_ranges(configs: pd.DataFrame, cfg: dict[str, Any]) -> pd.DataFrame:
    """``configs`` carrying the settings' sampled ranges and edge fraction (attrs)."""
    configs.attrs[SAMPLED_RANGES] = cfg.get(SAMPLED_RANGES) or {}
    configs.attrs[EDGE_FRACTION] = float(cfg.get(EDGE_FRACTION, 0.05))
    return configs


def near_ends(low: float, high: float, scale: str, fraction: float) -> tuple[float, float]:
    """The values ``fraction`` of the range inside ``low`` and ``high`` (in ``scale``):
    a sampled best at or beyond them counts as at the range's edge."""
    if scale == "log":
        span = math.log(high) - math.log(low)
        return math.exp(math.log(low) + fraction * span), math.exp(math.log(high) - fraction * span)
    return low + fraction * (high - low), high - fraction * (high - low)


def grid_extent(configs: pd.DataFrame) -> dict[tuple[str, str], dict[str, tuple[float, float]]]:
    """Per (dataset, optimizer): the (lower, upper) edge of every hyperparameter the grid
    varies: its lowest and highest value, or for a sampled axis the values
    ``sampled_edge_fraction`` inside its range's ends (``configs.attrs``).

    Failed points count (they are part of the grid the user asked for); the default
    row does not (it lies on or off the grid by the user's choice, not the grid's).
    """
    ranges, fraction = configs.attrs.get(SAMPLED_RANGES, {}), configs.attrs.get(EDGE_FRACTION)
    grid = configs[~configs["is_default"]]
    out: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}
    for key, g in grid.groupby(GROUP, sort=True):
        out[key] = {
            h: (float(g[h].min()), float(g[h].max())) for h in HPARAMS if g[h].nunique() > 1
        }
        for h, (low, high, scale) in ranges.get(key[0], {}).get(key[1], {}).items():
            out[key][h] = near_ends(float(low), float(high), scale, float(fraction))
    return out


def edge_label(row: Any, extent: dict[tuple[str, str], dict[str, tuple[float, float]]]) -> Any:
    """``"lr=max, weight_decay=min"`` for a selected configuration on the grid's boundary,
    "no" when it is interior on every varied axis, NaN when nothing was selected."""
    if pd.isna(row.get("lr", math.nan)):
        return math.nan
    ends = []
    for axis, (low, high) in extent.get((row["dataset"], row["optimizer"]), {}).items():
        value = row[axis]
        if value <= low or math.isclose(value, low, rel_tol=1e-9, abs_tol=1e-15):
            ends.append(f"{axis}=min")
        elif value >= high or math.isclose(value, high, rel_tol=1e-9, abs_tol=1e-15):
            ends.append(f"{axis}=max")
    return ", ".join(ends) or "no"


def mark_grid_edges(table: pd.DataFrame, configs: pd.DataFrame) -> pd.DataFrame:
    """``table`` (one selected configuration per row) with an ``at_grid_edge`` column.

    A best configuration at the end of an axis the grid varies says the optimum may
    lie outside the grid; axes with one value have no edge to speak of.
    """
    extent = grid_extent(configs)
    edges = [edge_label(r, extent) for _, r in table.iterrows()]
    return table.assign(at_grid_edge=pd.Series(edges, index=table.index, dtype=object))
