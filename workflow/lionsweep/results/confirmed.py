"""The confirmation's numbers: reading confirm.parquet, the `confirmed` table, its gains.

confirm.parquet (``lionsweep.confirm.retrain``) holds the default and the validation-selected
configuration of each (dataset, optimizer) retrained on fresh seeds. Here they become
the `confirmed` table (test means with t-intervals clipped to the metric's range, the
gain paired by seed with its t-interval, a paired percentile bootstrap interval and a
sign-flip permutation p-value, all through ``lionsweep.results.stats``) and the per-seed gains
the claims are decided on (``lionsweep.results.claims``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from lionsweep.errors import LionSweepError
from lionsweep.results.scoring import Metrics, by_metric
from lionsweep.results.selection import GROUP, NO_GRID_POINT, PRIMARY, metric_info, read_checked
from lionsweep.results.stats import (
    BOOTSTRAP_SAMPLES,
    MetricInfo,
    complete_seeds,
    diverged_note,
    mean_ci,
    paired,
)

REQUIRED = ("dataset", "optimizer", "seed", "role", "config_id", PRIMARY, "note")
SHOWN = ("lr", "beta1", "weight_decay")  # the tuned point's hyperparameters shown


def load_confirm(path: str | Path, metrics: Metrics) -> pd.DataFrame:
    """Read confirm.parquet and check the columns the tables read: one line on error."""
    frame = read_checked(
        path, REQUIRED, "confirmation", "lionsweep confirm writes them", curves=False
    )
    if frame.empty:
        raise LionSweepError(f"{path}: the confirmation table is empty")
    needed = {metrics.col("test", m) for m in frame[PRIMARY].dropna().unique()}
    missing = sorted(needed - set(frame.columns))
    if missing:
        raise LionSweepError(f"{path}: missing columns {missing} (lionsweep confirm writes them)")
    bad = sorted(set(frame["role"]) - {"default", "tuned"})
    if bad:
        raise LionSweepError(f"{path}: column role holds {bad}; expected default or tuned")
    if frame.duplicated(["dataset", "optimizer", "seed", "role"]).any():
        raise LionSweepError(f"{path}: duplicate (dataset, optimizer, seed, role) rows")
    return frame


def check_primary(confirm: pd.DataFrame, frame: pd.DataFrame, path: str | Path) -> None:
    """The confirmation must score each dataset by the sweep's primary metric: one chosen
    (and signed) by another metric would decide the claims on the wrong numbers."""
    swept = frame.groupby("dataset")[PRIMARY].first()
    for dataset, metric in confirm.groupby("dataset")[PRIMARY].first().items():
        if dataset in swept.index and swept[dataset] != metric:
            raise LionSweepError(
                f"{path}: dataset {dataset!r} was confirmed on {metric!r} but is scored by "
                f"{swept[dataset]!r} (datasets.{dataset}.primary_metric): rerun lionsweep confirm"
            )


def per_role(confirm: pd.DataFrame, dataset: str, optimizer: str, role: str, col: str) -> pd.Series:
    """One role's test metric indexed by seed (the pairing order)."""
    rows = confirm[
        (confirm["dataset"] == dataset)
        & (confirm["optimizer"] == optimizer)
        & (confirm["role"] == role)
    ]
    return rows.set_index("seed")[col].astype(float).sort_index()


def _test_col(confirm: pd.DataFrame, dataset: str, metrics: Metrics) -> tuple[str, MetricInfo]:
    m = str(confirm.loc[confirm["dataset"] == dataset, PRIMARY].iloc[0])
    return metrics.col("test", m), metric_info(m)


def gains(confirm: pd.DataFrame, optimizer: str, metrics: Metrics) -> dict[str, pd.Series]:
    """``optimizer``'s per-seed test gain per dataset: how much better tuned is than
    default (``MetricInfo.improvement``: default minus tuned for a loss). Empty for a
    dataset without a selection; NaN in seeds where either diverged: the claims leave
    them out and count them, lionsweep.results.stats."""
    out = {}
    for dataset in confirm.loc[confirm["optimizer"] == optimizer, "dataset"].unique():
        col, info = _test_col(confirm, dataset, metrics)
        tuned = per_role(confirm, dataset, optimizer, "tuned", col)
        base = per_role(confirm, dataset, optimizer, "default", col)
        out[str(dataset)] = info.improvement(tuned, base)
    return out


def _row(
    confirm: pd.DataFrame, key: tuple[str, str], metrics: Metrics, level: float, resamples: int
) -> dict[str, Any]:
    dataset, optimizer = key
    col, info = _test_col(confirm, dataset, metrics)
    base = per_role(confirm, dataset, optimizer, "default", col)
    tuned = per_role(confirm, dataset, optimizer, "tuned", col)
    here = confirm[(confirm["dataset"] == dataset) & (confirm["optimizer"] == optimizer)]
    pick = here[here["role"] == "tuned"].iloc[0]
    b = mean_ci(base, level, info.bounds)
    row: dict[str, Any] = {"dataset": dataset, "optimizer": optimizer, "metric": info.name}
    row |= {"metrics": metrics.kind, "config_id": pick["config_id"]}
    row |= {h: pick.get(h, math.nan) for h in SHOWN}
    row |= {"n_seeds": b.n, "first_seed": int(base.index.min())}
    row |= {"default_test_{m}_mean": b.mean, "default_test_{m}_lo": b.lo}
    row |= {"default_test_{m}_hi": b.hi}
    row |= {f"test_{{m}}_{k}": math.nan for k in ("mean", "lo", "hi")}
    row |= {f"gain_{k}": math.nan for k in ("mean", "lo", "hi", "boot_lo", "boot_hi")}
    row |= {"gain_width_points": math.nan, "p_ttest": math.nan, "p_signflip": math.nan}
    if pd.isna(pick["config_id"]):
        notes = (pick["note"] or NO_GRID_POINT, diverged_note(b.dropped, len(base)))
        return row | {"note": "; ".join(filter(None, notes))}
    (tuned, kept), lost = complete_seeds(tuned, base)  # one set of seeds for the row
    b, t = mean_ci(kept, level, info.bounds), mean_ci(tuned, level, info.bounds)
    gain = paired(*info.ordered(tuned, kept), level, info.diff_bounds, resamples)
    row |= {"n_seeds": t.n, "default_test_{m}_mean": b.mean}
    row |= {"default_test_{m}_lo": b.lo, "default_test_{m}_hi": b.hi}
    row |= {"test_{m}_mean": t.mean, "test_{m}_lo": t.lo, "test_{m}_hi": t.hi}
    row |= {"gain_mean": gain.diff.mean, "gain_lo": gain.diff.lo, "gain_hi": gain.diff.hi}
    row |= {"gain_boot_lo": gain.boot_lo, "gain_boot_hi": gain.boot_hi}
    row |= {"gain_width_points": 100.0 * (gain.diff.hi - gain.diff.lo)}
    row |= {"p_ttest": gain.p_ttest, "p_signflip": gain.p_signflip}
    return row | {"note": diverged_note(lost, len(base))}


def confirmed_table(
    confirm: pd.DataFrame | None,
    metrics: Metrics,
    level: float,
    resamples: int = BOOTSTRAP_SAMPLES,
) -> pd.DataFrame:
    """One row per (dataset, optimizer): default and tuned on the fresh seeds, the gain.

    Empty (an n/a table, its caption says why) without a confirmation run.
    """
    if confirm is None or confirm.empty:
        return pd.DataFrame(columns=[*GROUP, "metric", "note"])
    keys = confirm.groupby(GROUP, sort=True).size().index
    table = by_metric(pd.DataFrame([_row(confirm, k, metrics, level, resamples) for k in keys]))
    table["config_id"] = table["config_id"].astype("Int64")
    return table
