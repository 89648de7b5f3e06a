"""How many confirmation seeds decide the claims: the seeds-vs-interval-width trade-off.

From a confirmation run with many seeds (``lionsweep confirm --seeds ...``), for each
seed count n: draw subsets of n seeds (without replacement, seeded), compute each
claim's statistic on them as ``claims_check`` does for the confirmed protocol (Lion's
per-seed gains, ``lionsweep.results.confirmed.gains``; the claim's t-interval clipped to its
range) and report the mean interval width and the share of subsets whose interval
decides the claim (*holds* or *does not hold*, not *inconclusive*).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lionsweep.errors import LionSweepError
from lionsweep.results.claims import CLAIMS, OPTIMIZER, claim_metric
from lionsweep.results.confirmed import gains
from lionsweep.results.scoring import FINAL, Metrics
from lionsweep.results.stats import RNG_SEED, mean_ci


def seeds_tradeoff(
    confirm: pd.DataFrame,
    counts: Sequence[int],
    draws: int = 1000,
    level: float = 0.95,
    metrics: Metrics = FINAL,
) -> pd.DataFrame:
    """One row per (claim, n): mean t-interval width (points) and decided share."""
    per_seed = gains(confirm, OPTIMIZER, metrics)
    seeds = np.array(sorted(confirm["seed"].unique()))
    too_many = [n for n in counts if n > len(seeds) or n < 2]
    if too_many:
        raise LionSweepError(f"seed counts {too_many} not in 2..{len(seeds)} (the run's seeds)")
    rng = np.random.default_rng(RNG_SEED)
    subsets = {n: [rng.choice(seeds, n, replace=False) for _ in range(draws)] for n in counts}
    subsets |= {n: [seeds] for n in counts if n == len(seeds)}  # all of them: one subset
    rows = []
    for claim in CLAIMS:
        series = claim.value(per_seed)
        if series is None:
            continue
        bounds = claim.bounds(claim_metric(confirm, claim))
        for n, picks in subsets.items():
            cis = [mean_ci(series.reindex(p).dropna(), level, bounds) for p in picks]
            verdicts = [claim.ci_verdict(c.lo, c.hi) for c in cis]
            rows.append(
                {
                    "claim": claim.text,
                    "n_seeds": n,
                    "subsets": len(picks),
                    "mean_points": float(np.mean([c.mean for c in cis])),
                    "width_points": float(np.mean([c.hi - c.lo for c in cis])),
                    "decided": float(np.mean([v != "inconclusive" for v in verdicts])),
                    "verdict_all_seeds": claim.ci_verdict(*_full(series, level, bounds)),
                }
            )
    return pd.DataFrame(rows)


def _full(series: pd.Series, level: float, bounds: tuple[float, float]) -> tuple[float, float]:
    ci = mean_ci(series.dropna(), level, bounds)
    return ci.lo, ci.hi
