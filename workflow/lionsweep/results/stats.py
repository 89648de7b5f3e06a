"""Seed statistics through scipy.stats: t intervals, paired comparisons, grid importance.

Accuracies live in [0, 1] and differences of accuracies in [-1, 1], but a
t-interval over 2-5 seeds is wide enough to leave that range (e.g. [-0.27, 1.51]).
Intervals of a bounded metric are therefore **clipped** to its range (the t-interval
intersected with the range; the mean is never moved), and ``Interval.clipped`` says
when that happened. The paired percentile bootstrap beside the t-interval stays in
range by construction (a mean of resampled values lies within the values).

**Diverged seeds** (the one policy every statistic over seeds follows): a seed whose
value is not finite (the model diverged, its metric is NaN) is *left out and counted*,
never read as a number. ``complete_seeds`` keeps the seeds where every quantity of a
table row exists, so all of that row's numbers (means, intervals, p-values) rest on
the same seeds; ``n_seeds`` is how many, and ``diverged_note`` is the note the tables
write beside them. ``mean_ci``, ``paired``, ``signflip_p`` and ``bootstrap_ci`` drop
non-finite values the same way themselves, so no NaN can turn into a number (a
sign-flip p-value of 0 from ``[0.01, nan]``, issue 16).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from lionsweep.errors import LionSweepError

# Ranges of the quantities the tables put intervals on.
ACC_RANGE = (0.0, 1.0)  # an accuracy
DIFF_RANGE = (-1.0, 1.0)  # a difference of two accuracies
PRIMARY = "primary_metric"  # the sweep's column naming each row's primary metric
FALLBACK_METRIC = "acc"  # sweeps written before tasks: binary accuracy


@dataclass(frozen=True)
class MetricInfo:
    """How a primary metric is bounded, shown, tie-broken and ordered."""

    name: str
    label: str  # words for axes and captions
    scale: float  # display factor: accuracy in %, R^2 as is
    unit: str
    low: float  # the metric's range
    high: float
    tiebreak: str  # lower-is-better metric of the same head that breaks ties
    higher: bool = True  # higher is better (False: a loss or an error, e.g. logloss, rmse)

    @property
    def bounds(self) -> tuple[float, float]:
        return self.low, self.high

    @property
    def diff_bounds(self) -> tuple[float, float]:
        """Range of a difference of two values (a gain, a comparison)."""
        return self.low - self.high, self.high - self.low

    def axis(self, what: str = "validation") -> str:
        """ "validation accuracy (%)", "validation R^2", "validation log-loss (lower is
        better)": an axis label with units, and the direction where it is not the usual."""
        notes = [n for n in (self.unit, "" if self.higher else "lower is better") if n]
        return f"{what} {self.label}" + (f" ({', '.join(notes)})" if notes else "")

    # The metric's direction. `higher` is its one definition; everything that picks a
    # best, signs a gain or orders a grid goes through these (or selection.orientation).
    @property
    def sign(self) -> float:
        """+1 where higher is better, -1 for a loss: ``sign * value`` is a score to maximise."""
        return 1.0 if self.higher else -1.0

    @property
    def best(self) -> str:
        """The aggregation that picks the best value: "max", or "min" for a loss."""
        return "max" if self.higher else "min"

    def improvement(self, new: Any, old: Any) -> Any:
        """How much better ``new`` is than ``old``: ``new - old``, or ``old - new`` for a
        loss. Every gain and difference the results report follows this convention, so a
        positive value always means "better" (tuned over default, first over second)."""
        return self.sign * (new - old) + 0.0  # + 0.0: no "-0" for equal losses

    def ordered(self, new: Any, old: Any) -> tuple[Any, Any]:
        """(a, b) with ``a - b`` the improvement of ``new`` over ``old``: the order to pass
        a paired statistic (``paired(a, b)``) so that its difference follows the convention."""
        return (new, old) if self.higher else (old, new)


# Points (sensitivity, claims) are 0.01 of the metric: accuracy points, or 0.01 R^2.
# `datasets.<name>.primary_metric` may name any metric of its task (lionsweep.train.metrics).
METRIC_INFO = {
    "acc": MetricInfo("acc", "accuracy", 100.0, "%", 0.0, 1.0, "logloss"),
    "r2": MetricInfo("r2", "R^2", 1.0, "", -math.inf, 1.0, "rmse"),
    "balanced_acc": MetricInfo("balanced_acc", "balanced accuracy", 100.0, "%", 0, 1, "logloss"),
    "f1": MetricInfo("f1", "F1", 1.0, "", 0.0, 1.0, "logloss"),
    "f1_macro": MetricInfo("f1_macro", "macro F1", 1.0, "", 0.0, 1.0, "logloss"),
    "auc": MetricInfo("auc", "ROC AUC", 1.0, "", 0.0, 1.0, "logloss"),
    "auc_ovr": MetricInfo("auc_ovr", "ROC AUC (one vs rest)", 1.0, "", 0.0, 1.0, "logloss"),
    "logloss": MetricInfo("logloss", "log-loss", 1.0, "", 0.0, math.inf, "logloss", False),
    "rmse": MetricInfo("rmse", "RMSE", 1.0, "", 0.0, math.inf, "rmse", False),
    "mae": MetricInfo("mae", "MAE", 1.0, "", 0.0, math.inf, "rmse", False),
}


def metric_info(name: str) -> MetricInfo:
    """The results' knowledge of primary metric ``name``; unknown is a readable error."""
    if name not in METRIC_INFO:
        raise LionSweepError(
            f"sweep column {PRIMARY}: unknown primary metric {name!r} "
            f"(the results know {sorted(METRIC_INFO)})"
        )
    return METRIC_INFO[name]


# Above this many seeds the sign-flip test samples sign patterns instead of
# enumerating all 2^n of them (fixed generator seed: the p-value is reproducible).
EXACT_SIGNFLIP_MAX_N = 16
SIGNFLIP_SAMPLES = 20000
BOOTSTRAP_SAMPLES = 9999
RNG_SEED = 0  # sign-flip sampling and bootstrap resampling: same input => same numbers


def finite(values: Sequence[float] | np.ndarray) -> tuple[np.ndarray, int]:
    """The finite values of ``values`` and how many were not (diverged seeds)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    keep = np.isfinite(x)
    return x[keep], int((~keep).sum())


def complete_seeds(*series: pd.Series) -> tuple[list[pd.Series], int]:
    """``series`` (indexed by seed) cut to the seeds where all are finite, and how many
    seeds were left out: the seeds a row's numbers share (a seed missing from one
    series counts as diverged there)."""
    frame = pd.concat([s.astype(np.float64) for s in series], axis=1, ignore_index=True)
    keep = np.isfinite(frame.to_numpy()).all(axis=1)
    kept = frame[keep].sort_index()
    return [kept[i] for i in range(len(series))], int((~keep).sum())


def diverged_note(dropped: int, total: int) -> str:
    """The tables' note for seeds left out ("" when none was)."""
    return f"diverged in {dropped} of {total} seeds (left out)" if dropped else ""


def t_quantile(p: float, df: float) -> float:
    """Student-t quantile (scipy.stats.t.ppf), kept as a name the tables and tests share."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    return float(sps.t.ppf(p, df))


@dataclass(frozen=True)
class Interval:
    """Mean over seeds with a t-interval; lo/hi are NaN when n < 2 (no spread to speak of).

    ``clipped`` is True when the raw t-interval left the metric's range and was cut to it.
    """

    mean: float
    sd: float
    n: int
    lo: float
    hi: float
    clipped: bool = False
    dropped: int = 0  # non-finite values left out (diverged seeds)


def mean_ci(
    values: Sequence[float] | np.ndarray,
    level: float = 0.95,
    bounds: tuple[float, float] | None = None,
) -> Interval:
    """Mean, sample sd and the two-sided t-interval of the mean, clipped to ``bounds``;
    non-finite values are left out and counted in ``dropped``."""
    x, dropped = finite(values)
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, 0, math.nan, math.nan, dropped=dropped)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, n, math.nan, math.nan, dropped=dropped)
    sd = float(x.std(ddof=1))
    half = t_quantile(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    lo, hi = mean - half, mean + half
    if bounds is None:
        return Interval(mean, sd, n, lo, hi, dropped=dropped)
    clipped = lo < bounds[0] or hi > bounds[1]
    return Interval(mean, sd, n, max(lo, bounds[0]), min(hi, bounds[1]), clipped, dropped)


@dataclass(frozen=True)
class Paired:
    """a - b paired by seed: mean difference, its t-interval, a bootstrap interval, p-values."""

    diff: Interval
    p_ttest: float
    p_signflip: float
    boot_lo: float = math.nan
    boot_hi: float = math.nan


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def signflip_p(d: np.ndarray) -> float:
    """Two-sided sign-flip permutation p-value of mean(d) = 0 (scipy.stats.permutation_test).

    It makes no normality assumption, which matters with 2-5 seeds; exact (all 2^n
    sign patterns) up to EXACT_SIGNFLIP_MAX_N seeds, so its smallest attainable value
    is 2 / 2^n: it can never look significant with 3 seeds. Non-finite differences
    (diverged seeds) are left out; NaN when fewer than 2 remain.
    """
    d, _ = finite(d)
    if d.size < 2:
        return math.nan
    exact = d.size <= EXACT_SIGNFLIP_MAX_N
    result = sps.permutation_test(
        (d,),
        _mean,
        permutation_type="samples",  # one sample: the signs are permuted
        vectorized=True,
        n_resamples=math.inf if exact else SIGNFLIP_SAMPLES,
        alternative="two-sided",
        rng=np.random.default_rng(RNG_SEED),
    )
    return float(result.pvalue)


def bootstrap_ci(
    d: np.ndarray, level: float = 0.95, resamples: int = BOOTSTRAP_SAMPLES
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(d) (seeded), non-finite values left out;
    NaN when n < 2 or d is constant."""
    d, _ = finite(d)
    if d.size < 2 or np.ptp(d) == 0:
        return math.nan, math.nan
    result = sps.bootstrap(
        (d,),
        _mean,
        vectorized=True,
        n_resamples=resamples,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(RNG_SEED),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired(
    a: Sequence[float],
    b: Sequence[float],
    level: float = 0.95,
    bounds: tuple[float, float] | None = DIFF_RANGE,
    resamples: int = BOOTSTRAP_SAMPLES,
) -> Paired:
    """Compare two per-seed series (same seed order); p-values are NaN when n < 2.

    ``bounds`` is the range of a - b (default: a difference of two accuracies). A seed
    where either is not finite is left out of everything (``diff.dropped`` counts it).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    both = np.isfinite(a) & np.isfinite(b)
    a, b = a[both], b[both]
    d = a - b
    ci = replace(mean_ci(d, level, bounds), dropped=int((~both).sum()))
    if ci.n < 2:
        return Paired(ci, math.nan, math.nan)  # (signflip_p and bootstrap_ci: NaN too)
    if ci.sd <= 1e-12 * max(1.0, abs(ci.mean)):  # float noise of equal k/n differences
        # Identical differences: t is 0/0 or infinite (scipy says p = 0). Claiming p = 0
        # from two equal discrete accuracies would be absurd: only no difference gets a value.
        p_t = 1.0 if ci.mean == 0.0 else math.nan
    else:
        p_t = float(sps.ttest_rel(a, b).pvalue)
    return Paired(ci, p_t, signflip_p(d), *bootstrap_ci(d, level, resamples))


def importance(
    grid: pd.DataFrame, value: str, axes: Sequence[str], higher: bool = True
) -> dict[str, float]:
    """Functional-ANOVA main effects of ``axes`` on ``value`` over a full factorial grid.

    On a full grid with equal weights the decomposition is exact: the main effect
    of an axis is the variance of its marginal means, and the main effects plus
    all interactions add up to the total variance. Returns each axis's share of
    the total variance and the rest as ``interactions``. Axes with one value get 0.
    Failed (NaN) configurations are scored as the worst finite value on the grid
    ("as bad as the worst working one": the lowest, or the highest when ``higher`` is
    False, i.e. ``value`` is a loss; ``MetricInfo.higher``), and ``filled`` says how many
    there were. The shares themselves do not depend on the direction.
    """
    if grid.empty:
        raise LionSweepError("importance: empty grid")
    axes = list(axes)
    sizes = [grid[a].nunique(dropna=False) for a in axes]
    if grid.duplicated(axes).any() or math.prod(sizes) != len(grid):
        raise LionSweepError(
            f"importance needs a full factorial grid over {axes}: "
            f"{len(grid)} rows for axis sizes {sizes}"
        )
    y = grid[value].to_numpy(np.float64)
    finite = np.isfinite(y)
    if not finite.any():
        raise LionSweepError("importance: every configuration failed")
    y = np.where(finite, y, y[finite].min() if higher else y[finite].max())
    frame = grid[axes].assign(_y=y)
    total = float(np.var(y))
    out: dict[str, float] = {}
    for a in axes:
        marginal = frame.groupby(a)["_y"].mean()
        out[a] = float(np.var(marginal.to_numpy())) / total if total > 0 else math.nan
    out["interactions"] = 1.0 - sum(out[a] for a in axes) if total > 0 else math.nan
    out["filled"] = float((~finite).sum())
    return out
