"""Paired comparisons of optimizers: the paper's pair and every optimizer vs a baseline.

Both read each dataset's primary test metric for the configurations the honest
table selected (or the defaults), paired by seed: the mean difference (signed so that
positive means the first is better: first minus second, or second minus first for a
lower-is-better metric such as log-loss, ``MetricInfo.improvement``), its
t-interval clipped to the range of a difference of that metric, a paired percentile
bootstrap interval, and paired t-test and sign-flip p-values (stats.paired), on the
seeds where both exist (a diverged seed is left out and counted in ``note``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from lionsweep.results.scoring import Metrics, by_metric
from lionsweep.results.selection import NO_GRID_POINT, defaults, metric_info, per_seed
from lionsweep.results.stats import (
    BOOTSTRAP_SAMPLES,
    MetricInfo,
    complete_seeds,
    diverged_note,
    paired,
)

COMPARED = ("lion", "adamw")  # the paper's pair (lion_vs_adamw): the first against the second
STATS_COLUMNS = ["diff_mean", "diff_lo", "diff_hi", "diff_boot_lo", "diff_boot_hi"]
STATS_COLUMNS += ["p_ttest", "p_signflip", "n_seeds", "note"]


def _compare(
    frame: pd.DataFrame,
    dataset: str,
    ids: dict[str, int | None],
    info: MetricInfo,
    intervals: tuple[Metrics, float, int],
) -> dict[str, Any]:
    """How much better the first of the two configurations ``ids`` is than the second (in
    that order; None: n/a), paired by seed: means of each, the difference's intervals and
    p-values. The difference is ``first - second``, or ``second - first`` for a loss."""
    (first, a_id), (second, b_id) = ids.items()
    if a_id is None or b_id is None:
        return {"n_seeds": 0, "note": NO_GRID_POINT}
    metrics, level, resamples = intervals
    test = metrics.col("test", info.name)
    a, b = (per_seed(frame, dataset, o, c, test) for o, c in ((first, a_id), (second, b_id)))
    total = len(a.index.union(b.index))
    (a, b), lost = complete_seeds(a, b)  # the seeds where both exist, for every number
    result = paired(*info.ordered(a, b), level, info.diff_bounds, resamples)
    return {
        "first_mean": a.mean(),
        "second_mean": b.mean(),
        "diff_mean": result.diff.mean,
        "diff_lo": result.diff.lo,
        "diff_hi": result.diff.hi,
        "diff_boot_lo": result.boot_lo,
        "diff_boot_hi": result.boot_hi,
        "p_ttest": result.p_ttest,
        "p_signflip": result.p_signflip,
        "n_seeds": len(a),
        "note": diverged_note(lost, total),
    }


def _pair_rows(
    frame: pd.DataFrame,
    honest: pd.DataFrame,
    dataset: str,
    pair: tuple[str, str],
    intervals: tuple[Metrics, float, int],
) -> list[dict[str, Any]]:
    """Defaults vs defaults and tuned vs tuned of ``pair`` (first against second) on ``dataset``."""
    here = honest[honest["dataset"] == dataset].set_index("optimizer")
    info = metric_info(here["metric"].iloc[0])
    base = defaults(frame[frame["dataset"] == dataset]).groupby("optimizer")["config_id"].first()
    picks = here["config_id"]
    plans = {
        "defaults": {o: int(base[o]) for o in pair},
        "tuned": {o: None if pd.isna(picks[o]) else int(picks[o]) for o in pair},
    }
    return [
        {"dataset": dataset, "metric": info.name, "comparison": comparison}
        | _compare(frame, dataset, ids, info, intervals)
        for comparison, ids in plans.items()
    ]


def lion_vs_adamw(
    frame: pd.DataFrame,
    honest: pd.DataFrame,
    metrics: Metrics,
    level: float,
    resamples: int = BOOTSTRAP_SAMPLES,
) -> pd.DataFrame:
    """The paper's pair: Lion against AdamW (how much better Lion is: Lion minus AdamW,
    AdamW minus Lion for a loss), defaults vs defaults and tuned vs tuned, paired by seed.
    Every dataset that ran both gets both rows; "tuned" is n/a (with the reason in
    ``note``) where one of the two has no working grid point.
    """
    first, second = COMPARED
    named = {"first_mean": f"{first}_test_{{m}}_mean", "second_mean": f"{second}_test_{{m}}_mean"}
    columns = ["dataset", "comparison", "metric", *named.values(), *STATS_COLUMNS]
    rows = []
    for dataset in honest["dataset"].unique():
        if set(COMPARED) <= set(honest.loc[honest["dataset"] == dataset, "optimizer"]):
            rows += _pair_rows(frame, honest, dataset, COMPARED, (metrics, level, resamples))
    table = pd.DataFrame(rows).rename(columns=named).reindex(columns=columns)
    return by_metric(table)


def comparison(
    frame: pd.DataFrame,
    honest: pd.DataFrame,
    baseline: str,
    optimizers: list[str],
    intervals: tuple[Metrics, float, int],
) -> pd.DataFrame:
    """Each optimizer against ``baseline`` (results.baseline; how much better it is, signed
    as in ``_compare``), defaults and tuned, paired by seed: one row per (dataset,
    optimizer other than the baseline, defaults|tuned).

    Where the baseline did not run (on that dataset, or at all) the rows are n/a and
    ``note`` says so, rather than the table silently losing them.
    """
    named = {"first_mean": "test_{m}_mean", "second_mean": "baseline_test_{m}_mean"}
    columns = ["dataset", "metric", "optimizer", "baseline", "comparison", *named.values()]
    columns += STATS_COLUMNS
    ran = set(honest["optimizer"])
    rows = []
    for dataset in honest["dataset"].unique():
        here = list(honest.loc[honest["dataset"] == dataset, "optimizer"])
        metric = honest.loc[honest["dataset"] == dataset, "metric"].iloc[0]
        for opt in [o for o in optimizers if o in here and o != baseline]:
            if baseline in here:
                pair = _pair_rows(frame, honest, dataset, (opt, baseline), intervals)
            else:
                why = "is not in the study" if baseline not in ran else f"did not run on {dataset}"
                note = f"n/a: the baseline {baseline!r} (results.baseline) {why}"
                pair = [{"dataset": dataset, "metric": metric, "comparison": c,
                         "n_seeds": 0, "note": note} for c in ("defaults", "tuned")]  # fmt: skip
            rows += [r | {"optimizer": opt, "baseline": baseline} for r in pair]
    table = pd.DataFrame(rows).rename(columns=named).reindex(columns=columns)
    table["n_seeds"] = table["n_seeds"].astype("Int64")
    return by_metric(table)
