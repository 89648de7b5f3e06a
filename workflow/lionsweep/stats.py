"""Seed statistics without scipy: t intervals, paired comparisons, grid importance.

Why scipy-free: the run-time environment pins only what the workflow imports, and
the few quantities needed here (Student-t quantiles, an exact sign-flip test, a
functional ANOVA on a full factorial grid) are short and testable on their own.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lionsweep.errors import LionSweepError

# Above this many seeds the sign-flip test samples sign patterns instead of
# enumerating all 2^n of them (fixed generator seed: the p-value is reproducible).
EXACT_SIGNFLIP_MAX_N = 16
SIGNFLIP_SAMPLES = 20000


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Inverse of ``t_cdf`` by bisection (monotone, so exact to ~1e-12)."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Interval:
    """Mean over seeds with a t-interval; lo/hi are NaN when n < 2 (no spread to speak of)."""

    mean: float
    sd: float
    n: int
    lo: float
    hi: float


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> Interval:
    """Mean, sample sd and the two-sided t-interval of the mean (NaNs are an error upstream)."""
    x = np.asarray(values, dtype=np.float64)
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, 0, math.nan, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, n, math.nan, math.nan)
    sd = float(x.std(ddof=1))
    half = t_quantile(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    return Interval(mean, sd, n, mean - half, mean + half)


@dataclass(frozen=True)
class Paired:
    """a - b paired by seed: mean difference, its t-interval and two p-values."""

    diff: Interval
    p_ttest: float
    p_signflip: float


def signflip_p(d: np.ndarray) -> float:
    """Two-sided sign-flip permutation p-value of mean(d) = 0 (exact for small n).

    It makes no normality assumption, which matters with 2-5 seeds; its smallest
    attainable value is 2 / 2^n, so it can never look significant with 3 seeds.
    """
    n = d.size
    observed = abs(d.mean())
    if n <= EXACT_SIGNFLIP_MAX_N:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    else:
        rng = np.random.default_rng(0)
        signs = rng.choice((1.0, -1.0), size=(SIGNFLIP_SAMPLES, n))
        signs[0] = 1.0
    means = np.abs(signs @ d) / n
    return float(np.mean(means >= observed - 1e-12))


def paired(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Paired:
    """Compare two per-seed series (same seed order); p-values are NaN when n < 2."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    ci = mean_ci(d, level)
    if ci.n < 2:
        return Paired(ci, math.nan, math.nan)
    if ci.sd <= 1e-12 * max(1.0, abs(ci.mean)):  # float noise of equal k/n differences
        # Identical differences: t is 0/0 or infinite. Claiming p = 0 from two equal
        # discrete accuracies would be absurd, so only the no-difference case gets a value.
        p_t = 1.0 if ci.mean == 0.0 else math.nan
    else:
        t = ci.mean / (ci.sd / math.sqrt(ci.n))
        p_t = 2.0 * (1.0 - t_cdf(abs(t), ci.n - 1))
    return Paired(ci, p_t, signflip_p(d))


def importance(grid: pd.DataFrame, value: str, axes: Sequence[str]) -> dict[str, float]:
    """Functional-ANOVA main effects of ``axes`` on ``value`` over a full factorial grid.

    On a full grid with equal weights the decomposition is exact: the main effect
    of an axis is the variance of its marginal means, and the main effects plus
    all interactions add up to the total variance. Returns each axis's share of
    the total variance and the rest as ``interactions``. Axes with one value get 0.
    Failed (NaN) configurations are scored as the worst finite value on the grid
    ("as bad as the worst working one"), and ``filled`` says how many there were.
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
    y = np.where(finite, y, y[finite].min())
    frame = grid[axes].assign(_y=y)
    total = float(np.var(y))
    out: dict[str, float] = {}
    for a in axes:
        marginal = frame.groupby(a)["_y"].mean()
        out[a] = float(np.var(marginal.to_numpy())) / total if total > 0 else math.nan
    out["interactions"] = 1.0 - sum(out[a] for a in axes) if total > 0 else math.nan
    out["filled"] = float((~finite).sum())
    return out
