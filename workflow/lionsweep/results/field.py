"""The field's tables and figure (issue 20): where each optimizer ranks, how much better
than the baseline (AdamW) it is, and its wins, ties and losses against it.

Why the confirmation and not the sweep: the sweep's seeds chose each configuration, so
their test numbers carry that choice's seed luck, and an optimizer with more lucky grid
points would rank higher for it. Every number here is the validation-selected ("tuned")
configuration retrained on the fresh confirmation seeds (confirm.parquet), and every
comparison is paired by seed (same split, same initial weights and batches per seed).

Rules, decided here once (tests/test_field_tables.py pins them):
- Rank per dataset by the mean confirmed test metric, best = 1, in the metric's own
  direction (``MetricInfo.sign``); equal means share the average of their ranks.
- An optimizer that ran on a dataset but has no finite number there (no working grid
  point, or every confirmation seed diverged) ranks last (tied with any other such).
- An optimizer absent from a dataset has no rank there; its mean rank is over the
  datasets it ran on (``n_datasets`` says how many).
- Win / loss against the baseline: the paired t-interval of the improvement excludes 0
  (above: win, below: loss); otherwise a tie. No interval (fewer than 2 seeds both
  finite) is n/a, except an optimizer with no finite number where the baseline has one:
  a loss (it failed to train where the baseline did).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lionsweep.results.confirmed import load_confirm, per_role
from lionsweep.results.scoring import Metrics, by_metric
from lionsweep.results.selection import GROUP, PRIMARY, metric_info, restrict
from lionsweep.results.stats import BOOTSTRAP_SAMPLES, complete_seeds, diverged_note, finite, paired

NO_NUMBER = "no finite confirmed test metric (no working grid point, or every seed diverged)"
OUTCOMES = ("win", "tie", "loss", "n/a")


def with_confirm(confirm: pd.DataFrame | None) -> pd.DataFrame:
    """``confirm``, or an empty confirmation (no run: every field output says n/a)."""
    if confirm is None or confirm.empty:
        return pd.DataFrame(columns=[*GROUP, "seed", "role", PRIMARY, "test_acc"])
    return confirm


def tuned_scores(confirm: pd.DataFrame, metrics: Metrics) -> pd.DataFrame:
    """Per (dataset, optimizer) of the confirmation: the tuned configuration's mean test
    metric over the finite fresh seeds, how many, and the rank on its dataset."""
    rows = []
    for (dataset, optimizer), here in confirm.groupby(GROUP, sort=False):
        metric = str(here[PRIMARY].dropna().iloc[0]) if here[PRIMARY].notna().any() else "acc"
        test = per_role(confirm, dataset, optimizer, "tuned", metrics.col("test", metric))
        x, dropped = finite(test)
        note = NO_NUMBER if x.size == 0 else diverged_note(dropped, len(test))
        mean = float(x.mean()) if x.size else math.nan
        rows.append({"dataset": dataset, "optimizer": optimizer, "metric": metric,
                     "test_mean": mean, "n_seeds": int(x.size), "note": note})  # fmt: skip
    scores = pd.DataFrame(rows, columns=[*GROUP, "metric", "test_mean", "n_seeds", "note"])
    sign = scores["metric"].map(lambda m: metric_info(m).sign)
    oriented = (scores["test_mean"] * sign).astype(float)  # higher is better for every metric
    ranks = oriented.groupby(scores["dataset"]).rank(
        ascending=False, method="average", na_option="bottom"
    )
    return scores.assign(rank=ranks.astype(float))


def rank_table(scores: pd.DataFrame, datasets: list[str]) -> pd.DataFrame:
    """One row per optimizer: its rank on each dataset (``rank_<dataset>``, NaN where it
    did not run), the mean over the datasets it ran on, best mean rank first."""
    if scores.empty:
        return pd.DataFrame(columns=["optimizer", "mean_rank", "n_datasets", "note"])
    wide = scores.pivot(index="optimizer", columns="dataset", values="rank")
    wide = wide.reindex(columns=[d for d in datasets if d in wide.columns])
    out = wide.add_prefix("rank_")
    out.columns.name = None
    out["mean_rank"] = wide.mean(axis=1)
    out["n_datasets"] = wide.notna().sum(axis=1).astype(int)
    out["n_optimizers"] = len(wide)
    notes: dict[str, list[str]] = {}
    for r in scores[scores["note"] != ""].itertuples():
        notes.setdefault(str(r.optimizer), []).append(f"{r.dataset}: {r.note}")
    out["note"] = ["; ".join(notes.get(str(o), [])) for o in out.index]
    out = out.reset_index().sort_values(["mean_rank", "optimizer"], kind="stable")
    return out.reset_index(drop=True)


def _outcome(lo: float, hi: float, opt_ok: bool, base_ok: bool) -> str:
    if not base_ok:
        return "n/a"
    if not opt_ok:
        return "loss"
    if math.isnan(lo) or math.isnan(hi):
        return "n/a"
    return "win" if lo > 0 else "loss" if hi < 0 else "tie"


def _versus(
    confirm: pd.DataFrame, dataset: str, pair: tuple[str, str], metric: str, stats: tuple
) -> dict[str, Any]:
    """``pair[0]``'s improvement over ``pair[1]`` (tuned vs tuned), paired by fresh seed."""
    metrics, level, resamples = stats
    info, col = metric_info(metric), metrics.col("test", metric)
    a, b = (per_role(confirm, dataset, o, "tuned", col) for o in pair)
    ok = [finite(s)[0].size > 0 for s in (a, b)]
    total = len(a.index.union(b.index))
    (a, b), lost = complete_seeds(a, b)
    result = paired(*info.ordered(a, b), level, info.diff_bounds, resamples)
    row = {"test_{m}_mean": a.mean() if len(a) else math.nan}
    row |= {"baseline_test_{m}_mean": b.mean() if len(b) else math.nan}
    row |= {"diff_mean": result.diff.mean, "diff_lo": result.diff.lo, "diff_hi": result.diff.hi}
    row |= {"diff_boot_lo": result.boot_lo, "diff_boot_hi": result.boot_hi}
    row |= {"p_ttest": result.p_ttest, "p_signflip": result.p_signflip, "n_seeds": len(a)}
    row["outcome"] = _outcome(result.diff.lo, result.diff.hi, *ok)
    notes = [f"{o}: {NO_NUMBER}" for o, good in zip(pair, ok, strict=True) if not good]
    row["note"] = "; ".join(notes) or diverged_note(lost, total)
    return row


VS_COLUMNS = ["dataset", "metric", "optimizer", "baseline", "test_{m}_mean"]
VS_COLUMNS += ["baseline_test_{m}_mean", "diff_mean", "diff_lo", "diff_hi", "diff_boot_lo"]
VS_COLUMNS += ["diff_boot_hi", "p_ttest", "p_signflip", "n_seeds", "outcome", "note"]


def versus_baseline(
    confirm: pd.DataFrame,
    metrics: Metrics,
    baseline: str,
    level: float,
    resamples: int = BOOTSTRAP_SAMPLES,
) -> pd.DataFrame:
    """Each optimizer's improvement over ``baseline`` (tuned vs tuned, on the fresh seeds,
    positive = better in the metric's direction), its intervals and the outcome."""
    rows = []
    scores = tuned_scores(confirm, metrics)
    for dataset, here in scores.groupby("dataset", sort=False):
        metric, ran = str(here["metric"].iloc[0]), set(here["optimizer"])
        for optimizer in [o for o in here["optimizer"] if o != baseline]:
            row = {"dataset": dataset, "metric": metric, "optimizer": optimizer}
            row["baseline"] = baseline
            if baseline in ran:
                stats = (metrics, level, resamples)
                row |= _versus(confirm, dataset, (optimizer, baseline), metric, stats)
            else:
                row |= {"n_seeds": 0, "outcome": "n/a"}
                row["note"] = f"n/a: the baseline {baseline!r} did not run on {dataset}"
            rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=VS_COLUMNS)
    table["n_seeds"] = table["n_seeds"].astype("Int64")
    return by_metric(table)


def wins_ties_losses(versus: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer: how many datasets it wins, ties, loses against the baseline (and
    where the comparison is n/a), with each dataset's outcome in ``outcomes``."""
    columns = ["optimizer", "baseline", *(o.replace("/", "") for o in OUTCOMES), "outcomes"]
    rows = []
    for optimizer, here in versus.groupby("optimizer", sort=False):
        counts = {o.replace("/", ""): int((here["outcome"] == o).sum()) for o in OUTCOMES}
        text = "; ".join(f"{r.dataset}: {r.outcome}" for r in here.itertuples())
        row = {"optimizer": optimizer, "baseline": here["baseline"].iloc[0]}
        rows.append(row | counts | {"outcomes": text})
    table = pd.DataFrame(rows, columns=columns)
    if table.empty:
        return table
    order = table["win"] - table["loss"]
    return table.assign(_k=-order).sort_values(["_k", "optimizer"]).drop(columns="_k")


def field_tables(
    confirm: pd.DataFrame | None,
    metrics: Metrics,
    cfg: dict[str, Any],
    datasets: list[str],
) -> dict[str, pd.DataFrame]:
    """The three field tables (empty without a confirmation: their captions say n/a)."""
    confirm = with_confirm(confirm)
    level, resamples = float(cfg["ci_level"]), int(cfg["bootstrap_resamples"])
    versus = versus_baseline(confirm, metrics, str(cfg["baseline"]), level, resamples)
    return {
        "field_ranks": rank_table(tuned_scores(confirm, metrics), datasets),
        "field_vs_baseline": versus,
        "field_wtl": wins_ties_losses(versus),
    }


CAPTIONS = {
    "field_ranks": "Each optimizer's rank on each dataset (1 = best) by the mean test {metric} "
    "of its validation-selected configuration retrained on the confirmation's fresh seeds "
    "(confirm.seeds), and the mean rank over the datasets it ran on (n_datasets). Equal "
    "means share the average rank; an optimizer without a finite number on a dataset (no "
    "working grid point, or every seed diverged) ranks last there (note).",
    "field_vs_baseline": "Each optimizer's validation-selected configuration against the "
    "baseline's (results.baseline: {baseline}), test {metric} on the confirmation's fresh "
    "seeds, paired by seed: diff = how much better the optimizer is. outcome: win (the "
    "interval lies above 0), loss (below 0, or the optimizer has no finite number where "
    "the baseline has one), tie (it contains 0), n/a (no interval).",
    "field_wtl": "Wins, ties and losses of each optimizer against the baseline "
    "(results.baseline: {baseline}) over the datasets, decided by the {level} paired "
    "t-interval of the confirmed improvement (field_vs_baseline: excludes 0 = win or "
    "loss, else tie); outcomes lists each dataset's.",
}
NOT_AVAILABLE = {
    name: "n/a: no confirmation run (the field tables read confirm.parquet)." for name in CAPTIONS
}


def plot_ranks(scores: pd.DataFrame, datasets: list[str]) -> tuple[Any, pd.DataFrame]:
    """Optimizers (best mean rank on top) against rank: one marker per dataset, a bar
    for the mean. Returns the figure and the table it draws (``rank_table``)."""
    import matplotlib.pyplot as plt  # the tables stage imports this module too
    from matplotlib.ticker import MaxNLocator

    table = rank_table(scores, datasets)
    n = max(len(table), 1)
    fig, ax = plt.subplots(figsize=(7.5, 1.6 + 0.36 * n))
    y = np.arange(len(table))[::-1]  # best on top
    ax.barh(y, table["mean_rank"], color="0.85", edgecolor="0.5", label="mean rank")
    for yi, mean in zip(y, table["mean_rank"], strict=True):
        ax.text(0.1, yi, f"{mean:.2f}", va="center", fontsize=8)
    markers, ranked = "osD^v<>ph", [c for c in table.columns if c.startswith("rank_")]
    for i, d in enumerate(ranked):  # each dataset on its own line within the bar
        dy = 0.5 * (i - (len(ranked) - 1) / 2) / max(len(ranked), 1)
        ax.scatter(table[d], y + dy, marker=markers[i % len(markers)], zorder=3,
                   label=d.removeprefix("rank_"))  # fmt: skip
    ax.set_yticks(y, table["optimizer"])
    ax.set_xlim(0, n + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    metric = ", ".join(dict.fromkeys(metric_info(m).label for m in scores["metric"]))
    ax.set_xlabel(f"rank among {n} optimizers (1 = best; confirmed test {metric or 'metric'})")
    ax.set_ylabel("optimizer")
    ax.set_title("Mean rank over datasets (bar) and rank per dataset (markers)", fontsize=10)
    if len(table):
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.text(0.5, 0.5, "n/a: no confirmation run", ha="center", transform=ax.transAxes)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig, table


def plot_field_ranks(
    path: Path | None, metrics: Metrics, datasets: list[str], optimizers: list[str]
) -> tuple[Any, pd.DataFrame]:
    """The figures stage's rank figure, from confirm.parquet (n/a without one)."""
    confirm = None
    if path is not None:
        confirm = restrict(load_confirm(path, metrics), datasets, optimizers, str(path))
    return plot_ranks(tuned_scores(with_confirm(confirm), metrics), datasets)
