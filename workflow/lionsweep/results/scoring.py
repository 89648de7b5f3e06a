"""How each row is scored: by which metric, from which column, in which direction.

Every dataset is scored by one primary metric (the sweep's ``primary_metric`` column:
its task's, or ``datasets.<name>.primary_metric`` through ``with_primary``). ``Metrics``
names the column a protocol reads (final-epoch or best-epoch), ``score`` reads it
whatever the task, ``orientation`` turns it into a score to maximise (the metric's
direction is ``stats.MetricInfo.higher``, its one definition), and ``by_metric`` /
``metric_of`` name it in tables and captions. Split from ``selection`` (which selects
on these scores) so that module stays about the protocols.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lionsweep.errors import LionSweepError
from lionsweep.results.stats import FALLBACK_METRIC, PRIMARY, MetricInfo, metric_info


def curve_names(metrics: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The stored validation curves the figures read for these primary metrics."""
    return ("curve_val_loss", *(f"curve_val_{m}" for m in metrics))


@dataclass(frozen=True)
class Metrics:
    """Which columns a protocol reads: final-epoch ``{split}_{m}`` or ``best_{split}_{m}``."""

    kind: str = "final"

    def col(self, split: str, metric: str = "acc") -> str:
        prefix = "best_" if self.kind == "best_epoch" else ""
        return f"{prefix}{split}_{metric}"


FINAL = Metrics("final")


def with_primary(frame: pd.DataFrame, chosen: dict[str, str]) -> pd.DataFrame:
    """The sweep with each dataset's configured primary metric (``{dataset: metric}``,
    from datasets.<name>.primary_metric) in place of its task's; a metric the dataset's
    rows do not have is one line naming both."""
    frame = frame.copy()
    for dataset, metric in chosen.items():
        rows = frame["dataset"] == dataset
        needed = [f"{p}{s}_{m}" for p in ("", "best_") for s in ("val", "test")
                  for m in (metric, metric_info(metric).tiebreak)]  # fmt: skip
        # values are looked for in the rows that trained: a dataset whose every run diverged
        # has none to show, yet the metric is its task's (its tables are n/a, not an error)
        live = rows & ~frame["diverged"].astype(bool) if "diverged" in frame.columns else rows
        missing = [
            c
            for c in needed
            if c not in frame.columns or (live.any() and frame.loc[live, c].isna().all())
        ]
        if rows.any() and missing:
            raise LionSweepError(
                f"datasets.{dataset}.primary_metric: the sweep has no {metric!r} for it "
                f"(no values in {missing[0]}): is it a metric of its task?"
            )
        frame.loc[rows, PRIMARY] = metric
    return frame


def orientation(metric: pd.Series) -> np.ndarray:
    """+1 where the row's metric is higher-is-better, -1 where lower is (a loss): a
    value times it is a score to maximise."""
    return np.array([metric_info(m).sign for m in metric], dtype=np.float64)


def score(frame: pd.DataFrame, metrics: Metrics, split: str, tiebreak: bool = False) -> pd.Series:
    """Each row's primary metric on ``split`` (or its tie-break metric), whatever its task."""
    out = pd.Series(np.nan, index=frame.index, dtype=np.float64)
    for m, rows in frame.groupby(PRIMARY).groups.items():
        name = metric_info(m).tiebreak if tiebreak else m
        out.loc[rows] = frame.loc[rows, metrics.col(split, name)].astype(np.float64)
    return out


def failed(frame: pd.DataFrame, metrics: Metrics) -> pd.Series:
    """Rows that cannot be scored: diverged, or a NaN validation/test metric."""
    return (
        frame["diverged"]
        | score(frame, metrics, "val").isna()
        | score(frame, metrics, "test").isna()
        | score(frame, metrics, "val", tiebreak=True).isna()
    )


def by_metric(table: pd.DataFrame) -> pd.DataFrame:
    """Columns written with ``{m}`` become one column per primary metric in ``metric``.

    A table of one task gets e.g. ``test_acc_mean`` alone; a table mixing tasks gets
    ``test_acc_mean`` and ``test_r2_mean``, each NaN in the other task's rows.
    """
    present = list(dict.fromkeys(table["metric"])) if len(table) else [FALLBACK_METRIC]
    out: dict[str, pd.Series] = {}
    for col in table.columns:
        if "{m}" not in col:
            out[col] = table[col]
            continue
        for m in present:
            out[col.replace("{m}", m)] = table[col].where(table["metric"] == m)
    return pd.DataFrame(out, index=table.index)


def metric_of(table: pd.DataFrame, dataset: str) -> MetricInfo:
    """The primary metric of ``dataset`` in a sweep or config table (accuracy when absent)."""
    col = "metric" if "metric" in table.columns else PRIMARY
    m = table.loc[table["dataset"] == dataset, col]
    return metric_info(m.iloc[0] if len(m) else FALLBACK_METRIC)
