"""The budget curve (issue 21): the test metric of the validation-selected configuration
among N candidates, N = 1, 2, 4, ... up to the grid's size, for three ways of choosing
them. It tests the paper's reason for its Titanic gain ("more combinations"): if a few
random candidates already select as well as the whole grid, the count was not the cause.

Every method selects as the honest protocol does (``selection.rank_grid``: best mean
validation metric over seeds, in the metric's direction, ties by validation loss then
config_id; a configuration that failed in any seed counts as a candidate but is never
selected) and reports the selected configuration's test metric. Methods (``kind``):

- ``subsets``: N configurations drawn uniformly without replacement from an existing
  grid (no new training). The expectation over all N-subsets is exact, by order
  statistics: with the M grid points ranked best first (failed ones after every working
  one), the point of rank r is selected iff it is drawn and none of the r - 1 better ones
  is, which happens with probability C(M - r, N - 1) / C(M, N). A subset of failed points
  alone selects nothing (``p_selected`` is the chance that it does not happen); the
  expectation is conditional on a selection.
- ``samples``: a sweep whose sampled axes hold its candidates in sample order (config
  order): the first N are the candidates (the first 2^k scrambled Sobol points are
  balanced). One realisation per N, not an expectation.
- ``halving``: a successive-halving sweep over its whole grid (one point per sweep:
  N = the grid's size). Only configurations that every seed's halving carried to the
  full budget (``stopped_epoch`` = ``epochs``) can be selected: the others' metrics were
  read at an earlier epoch.

Compute is model-epochs per seed: the sum of the candidates' training epochs (their
``stopped_epoch`` under halving), so full training and halving compare at equal compute.

The interval (``lo``/``hi``) is the central ``ci_level`` range of the selected
configuration's test metric over the draw of the candidates (``subsets``) and the sweep's
seeds (each seed's own test value, seeds equally likely): the spread a user would see
drawing N candidates and training once. ``subset_lo``/``subset_hi`` is the spread of the
seed-mean over the draw alone. Quantiles are of the exact discrete distribution (the
smallest value whose cumulative probability reaches the level), no resampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import gammaln

from lionsweep.errors import LionSweepError
from lionsweep.results.scoring import Metrics, by_metric, score
from lionsweep.results.selection import GROUP, config_table, metric_info, rank_grid

KINDS = ("subsets", "samples", "halving")
STOPPED = "stopped_epoch"  # the halving sweep's column (docs/schema.md)
COLUMNS = [
    *GROUP,
    "method",
    "kind",
    "metric",
    "n_candidates",
    "compute_epochs",
    "test_{m}_mean",
    "test_{m}_lo",
    "test_{m}_hi",
    "subset_lo",
    "subset_hi",
    "p_selected",
    "p_grid_best",
    "config_id",
    "default_test_{m}_mean",
    "n_grid",
    "n_seeds",
]


@dataclass(frozen=True)
class Candidates:
    """One (dataset, optimizer) grid as the budget curve reads it."""

    ranked_ids: np.ndarray  # working config_ids, best first (selection.rank_grid)
    tests: np.ndarray  # [working, seeds] test metric per seed, rows in ranked order
    grid_ids: np.ndarray  # every grid config_id (failed ones too), in config order
    compute: dict[int, float]  # config_id -> model-epochs per seed
    metric: str


def sizes(m: int) -> list[int]:
    """1, 2, 4, ... below ``m``, then ``m`` itself (the whole grid)."""
    out = [2**k for k in range(max(m, 1).bit_length()) if 2**k < m]
    return [*out, m] if m >= 1 else []


def log_comb(n: np.ndarray | int, k: np.ndarray | int) -> np.ndarray:
    """log C(n, k) for arrays (-inf where k > n or k < 0): exact in ratio for n = 10^5."""
    n, k = np.asarray(n, dtype=np.float64), np.asarray(k, dtype=np.float64)
    ok = (k >= 0) & (k <= n)
    safe_k, safe_n = np.where(ok, k, 0.0), np.where(ok, n, 0.0)
    value = gammaln(safe_n + 1) - gammaln(safe_k + 1) - gammaln(safe_n - safe_k + 1)
    return np.where(ok, value, -np.inf)


def selection_probabilities(n_grid: int, n_working: int, n: int) -> np.ndarray:
    """P(the working point of rank r is selected), r = 1..n_working, for a uniform
    ``n``-subset of ``n_grid`` points (failed points rank below every working one)."""
    if not 1 <= n <= n_grid or not 0 <= n_working <= n_grid:
        raise LionSweepError(f"budget curve: need 1 <= N <= grid size, got N={n} of {n_grid}")
    r = np.arange(1, n_working + 1)
    return np.exp(log_comb(n_grid - r, n - 1) - log_comb(n_grid, n))


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value whose cumulative weight reaches ``q`` of the total (the inverse
    CDF of the discrete distribution; ``numpy.quantile``'s "inverted_cdf" for equal weights)."""
    keep = weights > 0
    if not keep.any():
        return math.nan
    order = np.argsort(values[keep], kind="stable")
    v, w = values[keep][order], weights[keep][order]
    cum = np.cumsum(w) / w.sum()
    return float(v[min(np.searchsorted(cum, q - 1e-12), len(v) - 1)])


def trained_epochs(frame: pd.DataFrame) -> pd.Series:
    """Each row's model-epochs: its ``stopped_epoch`` where halving stopped it (null:
    it trained its whole budget), else its ``epochs`` (lionsweep.sweep.halving)."""
    full = frame["epochs"].astype(np.float64)
    if STOPPED not in frame.columns:
        return full
    return frame[STOPPED].astype("Float64").fillna(full).astype(np.float64)


def candidates(frame: pd.DataFrame, configs: pd.DataFrame, metrics: Metrics) -> Candidates:
    """One (dataset, optimizer)'s sweep rows and config table as ``Candidates``."""
    ranked = rank_grid(configs)
    ids = ranked["config_id"].to_numpy(dtype=np.int64)
    rows = frame.assign(_test=score(frame, metrics, "test"))
    by_seed = rows.pivot(index="config_id", columns="seed", values="_test")
    grid = configs[~configs["is_default"]].sort_values("config_id")
    spent = trained_epochs(rows)
    compute = rows.assign(_spent=spent.astype(np.float64)).groupby("config_id")["_spent"].mean()
    return Candidates(
        ranked_ids=ids,
        tests=by_seed.loc[ids].to_numpy(dtype=np.float64).reshape(len(ids), by_seed.shape[1]),
        grid_ids=grid["config_id"].to_numpy(dtype=np.int64),
        compute={int(k): float(v) for k, v in compute.items()},
        metric=str(configs["metric"].iloc[0]),
    )


def _row(c: Candidates, probs: np.ndarray, level: float) -> dict[str, Any]:
    """Expectation and intervals of the selected test metric for selection ``probs``."""
    chosen = probs.sum()
    row: dict[str, Any] = {"p_selected": float(chosen), "n_seeds": int(c.tests.shape[1])}
    low, high = (1 - level) / 2, (1 + level) / 2
    if chosen <= 0:
        return row | {k: math.nan for k in ("mean", "lo", "hi", "subset_lo", "subset_hi")}
    means = c.tests.mean(axis=1)
    seeds = c.tests.shape[1]
    flat_w = np.repeat(probs / seeds, seeds)
    return row | {
        "mean": float(probs @ means / chosen),
        "lo": weighted_quantile(c.tests.ravel(), flat_w, low),
        "hi": weighted_quantile(c.tests.ravel(), flat_w, high),
        "subset_lo": weighted_quantile(means, probs, low),
        "subset_hi": weighted_quantile(means, probs, high),
        "p_grid_best": float(probs[0]),
        "config_id": int(c.ranked_ids[int(np.argmax(probs))]) if probs.max() > 1 - 1e-12 else None,
    }


def subset_curve(c: Candidates, level: float) -> list[dict[str, Any]]:
    """Exact expectation over uniform N-subsets of the grid, for every N of ``sizes``."""
    m = len(c.grid_ids)
    mean_cost = float(np.mean([c.compute[i] for i in c.grid_ids])) if m else math.nan
    rows = []
    for n in sizes(m):
        probs = selection_probabilities(m, len(c.ranked_ids), n)
        rows.append(_row(c, probs, level) | {"n_candidates": n, "compute_epochs": n * mean_cost})
    return rows


def prefix_curve(c: Candidates, level: float) -> list[dict[str, Any]]:
    """The first N configurations in config (= sample) order, for every N of ``sizes``."""
    rows = []
    for n in sizes(len(c.grid_ids)):
        first = set(c.grid_ids[:n].tolist())
        probs = np.zeros(len(c.ranked_ids))
        hit = [i for i, cid in enumerate(c.ranked_ids) if int(cid) in first]
        if hit:
            probs[hit[0]] = 1.0
        cost = float(sum(c.compute[int(i)] for i in c.grid_ids[:n]))
        rows.append(_row(c, probs, level) | {"n_candidates": n, "compute_epochs": cost})
    return rows


def halving_point(c: Candidates, frame: pd.DataFrame, level: float) -> list[dict[str, Any]]:
    """One point: the best configuration every seed carried to the full budget."""
    if STOPPED not in frame.columns:
        raise LionSweepError(f"budget curve: kind halving needs a sweep with {STOPPED!r}")
    full = trained_epochs(frame) >= frame["epochs"].astype(np.float64)
    seeds_done = frame[full].groupby("config_id")["seed"].nunique()
    finished = set(seeds_done[seeds_done == frame["seed"].nunique()].index)
    probs = np.zeros(len(c.ranked_ids))
    hit = [i for i, cid in enumerate(c.ranked_ids) if int(cid) in finished]
    if hit:
        probs[hit[0]] = 1.0
    cost = float(sum(c.compute[int(i)] for i in c.grid_ids))
    row = _row(c, probs, level) | {"n_candidates": len(c.grid_ids), "compute_epochs": cost}
    # its ranking mixes epochs (no grid's choice), and its default was halved too
    return [row | {"p_grid_best": math.nan}]


def budget_table(
    frame: pd.DataFrame, kind: str, method: str, metrics: Metrics, level: float
) -> pd.DataFrame:
    """The budget curve of one sweep, every (dataset, optimizer) in it, as numbers."""
    if kind not in KINDS:
        raise LionSweepError(f"results.budget_curve: kind must be one of {KINDS}, got {kind!r}")
    configs = config_table(frame, metrics)
    rows = []
    for (dataset, optimizer), here in frame.groupby(GROUP, sort=False):
        conf = configs[(configs["dataset"] == dataset) & (configs["optimizer"] == optimizer)]
        c = candidates(here, conf, metrics)
        default = conf.loc[conf["is_default"], "test_mean"]  # NaN where it failed
        base = float(default.iloc[0]) if len(default) and kind != "halving" else math.nan
        if kind == "subsets":
            points = subset_curve(c, level)
        elif kind == "samples":
            points = prefix_curve(c, level)
        else:
            points = halving_point(c, here, level)
        for p in points:
            rows.append(
                {
                    "dataset": dataset,
                    "optimizer": optimizer,
                    "method": method,
                    "kind": kind,
                    "metric": c.metric,
                    "n_grid": len(c.grid_ids),
                    "default_test_{m}_mean": base,
                    **p,
                }
            )
    table = pd.DataFrame(rows).rename(
        columns={"mean": "test_{m}_mean", "lo": "test_{m}_lo", "hi": "test_{m}_hi"}
    )
    table = table.reindex(columns=COLUMNS)
    table["config_id"] = table["config_id"].astype("Int64")
    return by_metric(table)


def metric_label(table: pd.DataFrame) -> str:
    """Words for the y axis: "expected test accuracy (%)" or several metrics' names."""
    names = list(dict.fromkeys(table["metric"])) if len(table) else ["acc"]
    if len(names) == 1:
        return "expected " + metric_info(names[0]).axis("test")
    return "expected test " + ", ".join(metric_info(m).label for m in names)
