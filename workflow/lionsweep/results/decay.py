"""The `decay_product` table: how much decoupled weight decay the selected models use.

Lion and AdamW both decay as ``p *= 1 - lr * wd`` per step, so the product lr x wd
(the per-step shrink) is what the two optimizers' decays can be compared by, not wd
alone: the Lion authors pair a 3-10x smaller lr with a 3-10x larger wd. Per
(dataset, optimizer) the table gives the validation-selected configuration's product
and asks whether decay matters at all: the best mean validation metric with decay
(wd > 0) against the best without (wd = 0), over the rest of the grid: how much better
the first is (``MetricInfo.improvement``: positive means decay helps, for a loss too).
The figure `effective_decay` shows every grid point; this is its summary.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from lionsweep.results.scoring import by_metric
from lionsweep.results.selection import GROUP, metric_info, rank_grid

COLUMNS = [*GROUP, "metric", "config_id", "lr", "weight_decay", "lr_x_wd", "epochs"]
COLUMNS += ["val_{m}_mean", "test_{m}_mean", "decayed_lr_x_wd", "decayed_val_{m}_mean"]
COLUMNS += ["no_decay_val_{m}_mean", "decay_points"]


def _best(ranked: pd.DataFrame) -> dict[str, Any]:
    """The first row of ``ranked`` (best first) as a dict; NaNs when it is empty."""
    if ranked.empty:
        return {"lr": math.nan, "weight_decay": math.nan, "val_mean": math.nan}
    return ranked.iloc[0].to_dict()


def decay_table(configs: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, optimizer) with a working grid point: the selected configuration's
    lr x wd, the best decayed point's lr x wd, and how much better the best with decay is
    than the best without, in points of the primary metric (0.01 of it; NaN when the grid
    has no point on one side). Selection is `rank_grid`'s, as in every other table."""
    ranked = rank_grid(configs)
    rows = []
    for (dataset, optimizer), g in ranked.groupby(GROUP, sort=True):
        pick = g.iloc[0]
        info = metric_info(pick["metric"])
        decayed = _best(g[g["weight_decay"] > 0])
        plain = _best(g[g["weight_decay"] == 0])
        rows.append(
            {
                "dataset": dataset,
                "optimizer": optimizer,
                "metric": pick["metric"],
                "config_id": int(pick["config_id"]),
                "lr": pick["lr"],
                "weight_decay": pick["weight_decay"],
                "lr_x_wd": pick["lr"] * pick["weight_decay"],
                "epochs": pick.get("epochs", math.nan),
                "val_{m}_mean": pick["val_mean"],
                "test_{m}_mean": pick["test_mean"],
                "decayed_lr_x_wd": decayed["lr"] * decayed["weight_decay"],
                "decayed_val_{m}_mean": decayed["val_mean"],
                "no_decay_val_{m}_mean": plain["val_mean"],
                "decay_points": 100.0 * info.improvement(decayed["val_mean"], plain["val_mean"]),
            }
        )
    table = by_metric(pd.DataFrame(rows, columns=COLUMNS))
    table["config_id"] = table["config_id"].astype("Int64")
    table["epochs"] = table["epochs"].astype("Int64")
    return table
