"""Grid edges: whether a selected configuration lies on the boundary of its grid.

A best point at the lowest or highest value of an axis the grid varies says the optimum
may lie outside the grid; the tables flag it (``at_grid_edge``) and the claims quote it.
Which point is "best" is the selection's (``lionsweep.results.selection``), so the flag follows
the metric's direction like everything selected.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from lionsweep.results.selection import GROUP, HPARAMS


def grid_extent(configs: pd.DataFrame) -> dict[tuple[str, str], dict[str, tuple[float, float]]]:
    """Per (dataset, optimizer): (lowest, highest) of every hyperparameter the grid varies.

    Failed points count (they are part of the grid the user asked for); the default
    row does not (it lies on or off the grid by the user's choice, not the grid's).
    """
    grid = configs[~configs["is_default"]]
    out: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}
    for key, g in grid.groupby(GROUP, sort=True):
        out[key] = {
            h: (float(g[h].min()), float(g[h].max())) for h in HPARAMS if g[h].nunique() > 1
        }
    return out


def edge_label(row: Any, extent: dict[tuple[str, str], dict[str, tuple[float, float]]]) -> Any:
    """``"lr=max, weight_decay=min"`` for a selected configuration on the grid's boundary,
    "no" when it is interior on every varied axis, NaN when nothing was selected."""
    if pd.isna(row.get("lr", math.nan)):
        return math.nan
    ends = []
    for axis, (low, high) in extent.get((row["dataset"], row["optimizer"]), {}).items():
        value = row[axis]
        if math.isclose(value, low, rel_tol=1e-9, abs_tol=1e-15):
            ends.append(f"{axis}=min")
        elif math.isclose(value, high, rel_tol=1e-9, abs_tol=1e-15):
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
