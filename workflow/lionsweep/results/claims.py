"""The paper's conclusions as checkable statements, under its protocol and the honest one.

Each claim is a per-seed statistic in *points* of the dataset's primary metric
(0.01 of accuracy; 0.01 of R^2 were a claimed dataset a regression) and a region it
must fall in. A gain is how much better tuned is than default
(``MetricInfo.improvement``: default minus tuned for a lower-is-better metric such as
log-loss), so "gains 15 points" and "the largest gain" read the same whatever the
metric's direction. The point verdict reads the estimate (one seed, or the seed mean);
the CI verdict reads the whole t-interval of the seed mean: "holds" only if the
interval lies inside the region, "does not hold" only if it lies outside, else
"inconclusive". Intervals are clipped to the statistic's range (a gain in points lies
in [-100, 100], a difference of two gains in [-200, 200]). When a selected
configuration the claim reads lies on the edge of its grid, ``note`` says so: the grid
may be too narrow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from lionsweep.results.scoring import Metrics
from lionsweep.results.selection import PRIMARY, MetricInfo, defaults, metric_info, per_seed
from lionsweep.results.stats import Interval, complete_seeds, diverged_note, mean_ci

EDGE_NOTE = "best at grid edge: the grid may be too narrow"

SMALL, LARGER = "titanic", ("spambase", "mushroom")
OPTIMIZER = "lion"  # the paper's claims are about Lion
# The protocol that decides: the honest choice retrained on fresh seeds (lionsweep.confirm.retrain).
CONFIRMED = "honest, confirmed"


@dataclass(frozen=True)
class Claim:
    text: str
    # The gains it reads: one dataset, or the small one first and the others after
    # (compared with those of the others that were run).
    datasets: tuple[str, ...]
    statistic: str
    low: float  # region, in points; inclusive
    high: float

    def value(self, gains: dict[str, pd.Series]) -> pd.Series | None:
        """Per-seed statistic in points, or None when a dataset is missing."""
        if len(self.datasets) == 1:
            d = self.datasets[0]
            return 100.0 * gains[d] if d in gains else None
        present = [d for d in self.datasets[1:] if d in gains]
        if self.datasets[0] not in gains or not present:
            return None
        small = gains[self.datasets[0]]
        # a seed where any gain is missing (diverged) stays NaN: left out, not skipped over
        others = pd.concat([gains[d] for d in present], axis=1).max(axis=1, skipna=False)
        return 100.0 * (small - others)

    def bounds(self, info: MetricInfo) -> tuple[float, float]:
        """Range of the statistic in points: one gain, or a difference of two gains."""
        low, high = info.diff_bounds
        k = 100.0 * (1 if len(self.datasets) == 1 else 2)
        return k * low, k * high

    def region(self) -> str:
        # Words, not <= / >: they read the same in Markdown, HTML and LaTeX.
        if math.isinf(self.low):
            return f"at most {self.high:g}"
        if math.isinf(self.high):
            return "above 0" if 0 < self.low < 1e-6 else f"at least {self.low:g}"
        return f"{self.low:g} to {self.high:g}"

    def verdict(self, v: float) -> str:
        if math.isnan(v):
            return "n/a"
        return "holds" if self.low <= v <= self.high else "does not hold"

    def ci_verdict(self, lo: float, hi: float) -> str:
        if math.isnan(lo) or math.isnan(hi):
            return "n/a"
        if self.low <= lo and hi <= self.high:
            return "holds"
        if hi < self.low or lo > self.high:
            return "does not hold"
        return "inconclusive"


CLAIMS = (
    *(
        Claim(
            f"{d.capitalize()}: defaults within 0.5 points of the best grid point",
            (d,),
            "best - default (points)",
            -math.inf,
            0.5,
        )
        for d in LARGER
    ),
    Claim(
        "Titanic: tuning gains about 15 points (read as 15 +- 5)",
        (SMALL,),
        "best - default (points)",
        10.0,
        20.0,
    ),
    Claim(
        "Tuning matters most on the small dataset (Titanic)",
        (SMALL, *LARGER),
        "Titanic gain - largest other gain (points)",
        1e-9,
        math.inf,
    ),
)


def honest_gains(
    frame: pd.DataFrame, honest: pd.DataFrame, metrics: Metrics
) -> dict[str, pd.Series]:
    """Lion's per-seed test gain of the validation-selected point over the default, signed
    by ``MetricInfo.improvement`` (empty for a dataset without a working grid point: n/a,
    not "not run")."""
    lion_picks = honest[honest["optimizer"] == OPTIMIZER].set_index("dataset")["config_id"]
    base = defaults(frame[frame["optimizer"] == OPTIMIZER]).set_index("dataset")
    out = {}
    for dataset, cid in lion_picks.items():
        if pd.isna(cid):
            out[dataset] = pd.Series(dtype=float)
            continue
        default_id = int(base.loc[[dataset], "config_id"].iloc[0])
        info = metric_info(str(base.loc[[dataset], PRIMARY].iloc[0]))
        test = metrics.col("test", info.name)
        tuned = per_seed(frame, dataset, OPTIMIZER, int(cid), test)
        out[dataset] = info.improvement(
            tuned, per_seed(frame, dataset, OPTIMIZER, default_id, test)
        )
    return out


def statistic_words(claim: Claim, info: MetricInfo) -> str:
    """The claim's statistic as its rows name it: "best - default" reads "default - best"
    for a lower-is-better metric, which is what the (improvement-signed) value is."""
    return (
        claim.statistic
        if info.higher
        else claim.statistic.replace("best - default", "default - best")
    )


def claim_metric(frame: pd.DataFrame, claim: Claim) -> MetricInfo:
    """The primary metric of the claim's datasets: accuracy for the paper's; R^2 only
    if every claimed dataset that ran is a regression (mixed: the widest, R^2's)."""
    ran = frame.loc[frame["dataset"].isin(claim.datasets), PRIMARY].unique()
    names = sorted(ran) or ["acc"]
    return metric_info("r2" if "r2" in names else names[0])


def edge_note(edges: pd.DataFrame, datasets: tuple[str, ...]) -> str:
    """The grid-edge note for the selections ``edges`` (dataset, at_grid_edge) of ``datasets``."""
    here = edges[edges["dataset"].isin(datasets) & ~edges["at_grid_edge"].isin(["no"])]
    here = here.dropna(subset=["at_grid_edge"]).drop_duplicates(["dataset", "at_grid_edge"])
    if here.empty:
        return ""
    where = "; ".join(f"{r.dataset}: {r.at_grid_edge}" for r in here.itertuples())
    return f"{EDGE_NOTE} ({where})"


def _variants(
    name: str,
    series: pd.Series | None,
    picks: pd.DataFrame,
    claim: Claim,
    level_info: tuple[float, MetricInfo],
) -> tuple[list[tuple[str, float, Interval | None, pd.DataFrame]], str]:
    """(label, estimate, interval, selections read) for one claim under one protocol,
    and the note on seeds left out (diverged: lionsweep.results.stats' policy)."""
    if series is None:
        return [(f"{name}: {', '.join(claim.datasets)} not all run", math.nan, None, picks[:0])], ""
    (series,), lost = complete_seeds(series)
    note = diverged_note(lost, len(series) + lost)
    if series.empty:
        return [(f"{name}: no working grid point", math.nan, None, picks[:0])], note
    out = []
    if name == CONFIRMED:
        label = f"{CONFIRMED} on {len(series)} fresh seeds"
    elif name == "paper":
        first = series.index[0]
        seed0 = picks[picks["seed"] == first]
        out.append((f"paper: test-selected, seed {first}", series.iloc[0], None, seed0))
        label = f"paper: test-selected, mean of {len(series)} seeds"
    else:
        label = f"{name}: val-selected, mean of {len(series)} seeds"
    level, info = level_info
    out.append((label, series.mean(), mean_ci(series, level, claim.bounds(info)), picks))
    return out, note


def uncertain_note(claim: Claim, lo: float, hi: float, n: int) -> str:
    """Why a confirmed claim is still open: its interval at the seeds measured, and the
    claim's bound inside it (an effect close to the bound needs many more seeds)."""
    if claim.ci_verdict(lo, hi) != "inconclusive":
        return ""
    inside = [b for b in (claim.low, claim.high) if math.isfinite(b) and lo <= b <= hi]
    where = f", which holds the claim's bound {inside[0]:g}" if inside else ""
    return f"genuinely uncertain at {n} seeds: interval width {hi - lo:.1f} points{where}"


def claims_check(
    paper_seeds: pd.DataFrame,
    frame: pd.DataFrame,
    honest: pd.DataFrame,
    metrics: Metrics,
    level: float,
    confirmed: dict[str, pd.Series] | None = None,
) -> pd.DataFrame:
    """One row per (claim, protocol) with the statistic, its interval, verdicts and a note.

    ``confirmed``: Lion's per-seed gains on the confirmation's fresh seeds
    (``lionsweep.results.confirmed.gains``); its rows' ``ci_verdict`` decides each claim.
    """
    paper = {d: g.set_index("seed")["gain"] for d, g in paper_seeds.groupby("dataset")}
    epoch = "final-epoch" if metrics.kind == "final" else "best-epoch"
    honest_name = f"honest ({epoch} metrics)"
    lion_picks = honest[honest["optimizer"] == OPTIMIZER]
    protocols = {
        "paper": (paper, paper_seeds),
        honest_name: (honest_gains(frame, honest, metrics), lion_picks),
    }
    if confirmed is not None:
        protocols[CONFIRMED] = (confirmed, lion_picks)
    rows = []
    for claim in CLAIMS:
        info = claim_metric(frame, claim)
        for name, (gains, picks) in protocols.items():
            series = claim.value(gains)
            variants, lost = _variants(name, series, picks, claim, (level, info))
            for label, value, ci, read in variants:
                lo = ci.lo if ci is not None else math.nan
                hi = ci.hi if ci is not None else math.nan
                decided = claim.ci_verdict(lo, hi)
                notes = [edge_note(read, claim.datasets), lost]
                if name == CONFIRMED and ci is not None:
                    notes.append(uncertain_note(claim, lo, hi, ci.n))
                rows.append(
                    {
                        "claim": claim.text,
                        "metric": info.name,
                        "protocol": label,
                        "statistic": statistic_words(claim, info),
                        "value_points": value,
                        "ci_lo_points": lo,
                        "ci_hi_points": hi,
                        "holds_if": claim.region(),
                        "verdict": claim.verdict(value),
                        "ci_verdict": decided,
                        "note": "; ".join(n for n in notes if n),
                    }
                )
    return pd.DataFrame(rows)
