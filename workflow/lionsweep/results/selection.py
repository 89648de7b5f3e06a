"""Reading the sweep table and the two selection protocols the results are built on.

- **paper** (reproduction): for each seed separately, the grid point with the
  highest *test* primary metric after the last epoch, i.e. a single run selected on
  the data it is reported on. Optimistic by construction; kept to compare with the paper.
- **honest**: the grid point with the highest *validation* primary metric averaged
  over seeds, reported by its test value (mean and t-interval over seeds). Whether
  it reads final-epoch or best-epoch metrics is ``results.honest_metrics``.

Each dataset is scored by its primary metric (the sweep's ``primary_metric`` column:
``acc`` for classification, ``r2`` for regression, ``acc`` for sweeps written before
tasks existed, or ``datasets.<name>.primary_metric``); "highest" means "best": the
lowest for a loss (log-loss, RMSE, MAE). How rows are scored is ``lionsweep.results.scoring``.

In both, the candidates are the grid points only (the default is its own row
and is reported separately, as the paper did), and a configuration that diverged
in any seed has failed: it counts in the grid's size but is never selected.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from lionsweep.errors import LionSweepError
from lionsweep.optim.hparams import FROZEN_HPARAMS, grid_columns
from lionsweep.results.scoring import (
    FINAL,
    Metrics,
    by_metric,
    curve_names,
    failed,
    orientation,
    score,
)
from lionsweep.results.stats import (  # noqa: F401  (re-exported: the results modules read them here)
    BOOTSTRAP_SAMPLES,
    FALLBACK_METRIC,
    METRIC_INFO,
    PRIMARY,
    MetricInfo,
    metric_info,
)

AXES = ("lr", "beta1", "weight_decay")  # the paper's three hyperparameters
HPARAMS = grid_columns()  # every optimizer's, then epochs; NaN where an optimizer lacks one
GROUP = ["dataset", "optimizer"]
NO_GRID_POINT = "no working grid point (every configuration diverged, or no grid)"
REQUIRED = ("dataset", "optimizer", "seed", "config_id", "is_default", *FROZEN_HPARAMS, "diverged")


# Defaults of the `results:` config section (workflow/schemas/config.schema.yaml).
DEFAULTS: dict[str, Any] = {
    "honest_metrics": "final",
    "ci_level": 0.95,
    "sensitivity_points": 1.0,
    "top_k": 10,
    "bootstrap_resamples": BOOTSTRAP_SAMPLES,
    "tick_labels": 6,
    "figure_width_px": 3840,
    "baseline": "adamw",
    "paper_table": {},
    "sampled_edge_fraction": 0.05,
    "budget_curve": [],  # sweeps the budget curve reads (lionsweep.results.budget_stage)
}
# Not a `results:` key: {dataset: metric} of datasets.<name>.primary_metric, which the
# workflow adds to the settings it passes (with_primary applies it).
CHOSEN_METRICS = "primary_metrics"
# Not a `results:` key either: {dataset: {optimizer: {param: [low, high, scale]}}} of the
# sampled axes (lionsweep.sweep.grid.sampled_ranges), which the workflow adds when a grid has any.
SAMPLED_RANGES = "sampled_ranges"
GRID_COUNTS = "grid_counts"  # configs.attrs key: (points, failed) per (dataset, optimizer)


INTEGER_MINIMA = {"top_k": 1, "bootstrap_resamples": 100, "tick_labels": 2, "figure_width_px": 800}


def parse_settings(text: str, flag: str = "--settings") -> dict[str, Any]:
    """``flag`` (the `results:` section as JSON), checked: one readable line on error."""
    try:
        results = json.loads(text)
    except json.JSONDecodeError as err:
        raise LionSweepError(f"{flag} is not valid JSON ({err})") from None
    if not isinstance(results, dict):
        raise LionSweepError(f"{flag} must be a JSON object (the results: section), got {text!r}")
    unknown = sorted(set(results) - {*DEFAULTS, CHOSEN_METRICS, SAMPLED_RANGES})
    if unknown:
        raise LionSweepError(f"{flag}: unknown results key(s) {unknown}")
    return settings(results)


def _check_sampled(merged: dict[str, Any]) -> None:
    """The sampled-axes settings the edge flags read (lionsweep.results.edges)."""
    fraction, ranges = merged["sampled_edge_fraction"], merged[SAMPLED_RANGES]
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        fraction = float("nan")
    if not 0 < fraction < 0.5:
        raise LionSweepError(
            "results.sampled_edge_fraction must lie strictly between 0 and 0.5, got "
            f"{merged['sampled_edge_fraction']!r}"
        )
    if not isinstance(ranges, dict):
        raise LionSweepError(f"results.{SAMPLED_RANGES} must be a mapping, got {ranges!r}")


def settings(results: dict[str, Any] | None) -> dict[str, Any]:
    """The `results:` section with defaults filled in (so the CLI works without a config)."""
    merged = {**DEFAULTS, CHOSEN_METRICS: {}, SAMPLED_RANGES: {}, **(results or {})}
    if merged["honest_metrics"] not in ("final", "best_epoch"):
        raise LionSweepError(
            f"results.honest_metrics must be 'final' or 'best_epoch', "
            f"got {merged['honest_metrics']!r}"
        )
    for key, low in INTEGER_MINIMA.items():  # the schema's checks, for --settings by hand
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise LionSweepError(f"results.{key} must be a whole number >= {low}, got {value!r}")
    if not isinstance(merged["baseline"], str) or not merged["baseline"]:
        raise LionSweepError(
            f"results.baseline must be an optimizer name, got {merged['baseline']!r}"
        )
    chosen = merged[CHOSEN_METRICS]
    if not isinstance(chosen, dict) or not all(isinstance(v, str) for v in chosen.values()):
        raise LionSweepError(
            f"results.primary_metrics must map datasets to metrics, got {chosen!r}"
        )
    _check_sampled(merged)
    level = merged["ci_level"]
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
        raise LionSweepError(f"results.ci_level must lie strictly between 0 and 1, got {level!r}")
    return merged


def read_checked(
    path: str | Path, required: tuple[str, ...], kind: str, hint: str, curves: bool = True
) -> pd.DataFrame:
    """Read a results Parquet file (a sweep or a confirmation table) whose ``required``
    columns are checked first: one line naming the file, never a pyarrow traceback."""
    try:
        schema = pq.read_schema(path)
    except (OSError, ValueError) as err:
        raise LionSweepError(f"{path}: not a readable {kind} table ({err})") from None
    missing = [c for c in required if c not in schema.names]
    if missing:
        raise LionSweepError(f"{path}: missing columns {missing} ({hint})")
    columns = [c for c in schema.names if curves or not c.startswith("curve_")]
    return pq.read_table(path, columns=columns).to_pandas()


def load_sweep(path: str | Path, curves: bool = True) -> pd.DataFrame:
    """Read results/sweep.parquet and check the columns the results need are there."""
    frame = read_checked(path, REQUIRED, "sweep", "see docs/schema.md", curves)
    try:
        return check_sweep(frame, curves=curves)
    except LionSweepError as err:
        raise LionSweepError(f"{path}: {err}") from None


def _check_columns(frame: pd.DataFrame, curves: bool) -> None:
    """Each primary metric present needs its val/test columns (final and best epoch)."""
    needed = list(REQUIRED)
    for m in dict.fromkeys(frame[PRIMARY]):
        info = metric_info(m)
        needed += [f"{p}{s}_{k}" for p in ("", "best_") for s in ("val", "test")
                   for k in (m, info.tiebreak)]  # fmt: skip
    if curves:
        needed += curve_names(list(dict.fromkeys(frame[PRIMARY])))
    missing = list(dict.fromkeys(c for c in needed if c not in frame.columns))
    if missing:
        raise LionSweepError(f"missing columns {missing} (see docs/schema.md)")


def check_sweep(frame: pd.DataFrame, curves: bool = False, whole: bool = True) -> pd.DataFrame:
    """Validate invariants the statistics rely on; returns the frame sorted by key.

    A sweep without ``primary_metric`` (written before tasks) is binary accuracy, and a
    hyperparameter column an older sweep lacks is NaN (no optimizer of it had it). Not
    ``whole``: part of a sweep (a configuration range, a batch of rows), whose seeds need
    not cover the same configurations nor hold the default (``aggregate`` checked that
    of the whole grids).
    """
    if frame.empty:
        raise LionSweepError("the sweep table is empty")
    frame = frame.copy()
    if PRIMARY not in frame.columns:
        frame[PRIMARY] = FALLBACK_METRIC
    empty = frame.loc[frame[PRIMARY].isna(), "dataset"].unique()
    if len(empty):  # a task-era sweep must name it: guessing accuracy would hide an R^2
        raise LionSweepError(f"column {PRIMARY} is empty in rows of dataset {empty[0]!r}")
    frame[PRIMARY] = frame[PRIMARY].astype(str)
    for h in HPARAMS:
        if h not in frame.columns:
            frame[h] = np.nan
    _check_columns(frame, curves)
    mixed = frame.groupby("dataset")[PRIMARY].nunique()
    if (mixed > 1).any():
        raise LionSweepError(
            f"column {PRIMARY}: dataset {mixed[mixed > 1].index[0]!r} has several primary metrics"
        )
    keys = ["dataset", "optimizer", "seed", "config_id"]
    if frame.duplicated(keys).any():
        raise LionSweepError("duplicate (dataset, optimizer, seed, config_id) rows")
    counts = frame.groupby(GROUP)["seed"].nunique()
    sizes = frame.groupby([*GROUP, "seed"]).size().groupby(level=[0, 1]).nunique()
    if whole and (sizes > 1).any():
        bad = sizes[sizes > 1].index.tolist()
        raise LionSweepError(f"seeds cover different numbers of configurations in {bad}")
    defaults = frame[frame["is_default"]].groupby([*GROUP, "seed"]).size()
    if whole and (len(defaults) != int(counts.sum()) or (defaults != 1).any()):
        raise LionSweepError("each (dataset, optimizer, seed) needs exactly one is_default row")
    frame["diverged"] = frame["diverged"].astype(bool)
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def config_table(frame: pd.DataFrame, metrics: Metrics) -> pd.DataFrame:
    """One row per (dataset, optimizer, config_id): hyperparameters and seed means/sds.

    Generic ``val_mean``/``val_loss_mean``/``test_mean`` read each dataset's primary
    (and tie-break) metric; the same numbers are also named, e.g. ``val_acc_mean``.
    A configuration that failed in any seed gets NaN means (``failed`` = True), so
    sorting by the mean can never promote it.
    """
    f = frame.assign(
        _failed=failed(frame, metrics),
        _val=score(frame, metrics, "val"),
        _val_loss=score(frame, metrics, "val", tiebreak=True),
        _test=score(frame, metrics, "test"),
    )
    keys = [*GROUP, "config_id"]
    # each configuration's rows one block, seeds in order: its statistics then depend on
    # nothing else (pandas' grouped mean does: its rounding follows the table's layout),
    # so the summary, built a configuration range at a time, has the same bits
    f = f.sort_values([*keys, "seed"], kind="stable")
    g = f.groupby(keys, sort=True)
    out = g[["is_default", *HPARAMS]].first()
    out["metric"] = g[PRIMARY].first()
    out["n_seeds"] = g.size()
    out["n_failed_seeds"] = g["_failed"].sum().astype(np.int64)
    out["failed"] = out["n_failed_seeds"] > 0
    sizes = out["n_seeds"].to_numpy()
    for name, col in (("val", "_val"), ("val_loss", "_val_loss"), ("test", "_test")):
        out[f"{name}_mean"], out[f"{name}_sd"] = block_stats(f[col].to_numpy(), sizes)
    stats = [c for c in out.columns if c.endswith(("_mean", "_sd"))]
    out.loc[out["failed"], stats] = np.nan
    return with_named_copies(out).reset_index()


def block_stats(values: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd (ddof 1; NaN for one value) of consecutive blocks of ``sizes`` values,
    each summed in order (two passes): the same bits wherever the block sits."""
    if not len(sizes):
        return np.empty(0), np.empty(0)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    values = values.astype(np.float64)
    mean = np.add.reduceat(values, starts) / sizes
    dev = values - np.repeat(mean, sizes)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(np.add.reduceat(dev * dev, starts) / (sizes - 1))
    return mean, np.where(sizes > 1, sd, np.nan)


def with_named_copies(out: pd.DataFrame) -> pd.DataFrame:
    """``out`` with each row's generic statistics (``val_mean``...) copied under its
    metric's own names (``val_acc_mean``...), which the tables and figures read."""
    for m in out["metric"].unique():
        here = out["metric"] == m
        loss = metric_info(m).tiebreak
        for generic, named in (("val", f"val_{m}"), ("val_loss", f"val_{loss}"),
                               ("test", f"test_{m}")):  # fmt: skip
            for stat in ("mean", "sd"):
                out.loc[here, f"{named}_{stat}"] = out.loc[here, f"{generic}_{stat}"]
    return out


def grid_counts(configs: pd.DataFrame) -> dict[tuple[str, str], tuple[int, int]]:
    """Each (dataset, optimizer)'s grid points and failed points: ``configs.attrs``'
    where the table holds only some of them (``results.reads.compact_configs``)."""
    if GRID_COUNTS in configs.attrs:
        return configs.attrs[GRID_COUNTS]
    grid = configs[~configs["is_default"]]
    failed = grid.groupby(GROUP)["failed"].agg(["size", "sum"])
    out = {k: (int(n), int(f)) for k, (n, f) in zip(failed.index, failed.to_numpy(), strict=True)}
    return {k: out.get(k, (0, 0)) for k in configs.groupby(GROUP).size().index}


def rank_grid(configs: pd.DataFrame) -> pd.DataFrame:
    """Working grid points of each (dataset, optimizer), best first.

    Order: highest mean validation primary metric, then lowest mean validation
    tie-break loss (log-loss for accuracy, the finer-grained signal when accuracies
    tie on small validation sets; RMSE for R^2), then lowest config_id, so the
    choice never depends on row order.
    """
    grid = configs[~configs["is_default"] & ~configs["failed"]]
    grid = grid.assign(_key=grid["val_mean"] * orientation(grid["metric"]))
    ranked = grid.sort_values(
        [*GROUP, "_key", "val_loss_mean", "config_id"],
        ascending=[True, True, False, True, True],
        kind="stable",
    )
    ranked = ranked.assign(rank=ranked.groupby(GROUP).cumcount() + 1).drop(columns="_key")
    return ranked.reset_index(drop=True)


def select_honest(configs: pd.DataFrame) -> pd.DataFrame:
    """The honest choice per (dataset, optimizer): rank 1 of ``rank_grid``.

    A (dataset, optimizer) whose grid has no working point (every configuration
    diverged, or a grid of the default alone) has no row here: ``unselectable``
    lists them, and the tables report them as n/a instead of stopping.
    """
    ranked = rank_grid(configs)
    return ranked[ranked["rank"] == 1].reset_index(drop=True)


def unselectable(configs: pd.DataFrame) -> list[tuple[str, str]]:
    """(dataset, optimizer) pairs without a working grid point, in sorted order."""
    chosen = set(map(tuple, select_honest(configs)[GROUP].to_numpy().tolist()))
    everything = configs.groupby(GROUP).size().index
    return [k for k in everything if k not in chosen]


def select_paper(frame: pd.DataFrame) -> pd.DataFrame:
    """The paper's choice per (dataset, optimizer, seed): max final *test* primary metric
    (in ``test_score``). Ties go to the lowest config_id (what a first-maximum loop
    over the grid returns).
    """
    frame = frame.assign(test_score=score(frame, FINAL, "test"))
    frame["_key"] = frame["test_score"] * orientation(frame[PRIMARY])
    grid = frame[~frame["is_default"] & ~failed(frame, FINAL)]
    ordered = grid.sort_values(
        [*GROUP, "seed", "_key", "config_id"],
        ascending=[True, True, True, False, True],
        kind="stable",
    )
    chosen = ordered.groupby([*GROUP, "seed"], sort=True).head(1).drop(columns="_key")
    return chosen.reset_index(drop=True)


def defaults(frame: pd.DataFrame) -> pd.DataFrame:
    """The default configuration's rows, one per (dataset, optimizer, seed)."""
    return frame[frame["is_default"]].sort_values([*GROUP, "seed"]).reset_index(drop=True)


def per_seed(
    frame: pd.DataFrame, dataset: str, optimizer: str, config_id: int, col: str
) -> pd.Series:
    """One configuration's metric indexed by seed (seed order = pairing order)."""
    rows = frame[
        (frame["dataset"] == dataset)
        & (frame["optimizer"] == optimizer)
        & (frame["config_id"] == config_id)
    ]
    return rows.set_index("seed")[col].sort_index()


def sensitivity(configs: pd.DataFrame, points: float = 1.0) -> pd.DataFrame:
    """Share of the grid within ``points`` points of the best (mean val primary metric).

    A point is 0.01 of the metric: an accuracy point, or 0.01 of R^2. The denominator
    is the whole grid, failed configurations included: a grid where half the points
    diverge is *less* forgiving, not equally forgiving. ``best_val_{m}`` names the metric
    (the lowest value for a loss).
    """
    grid = configs[~configs["is_default"]]
    rows = []
    columns = [*GROUP, "metric", "n_grid", "n_failed", "best_val_{m}", "n_within", "share_within"]
    for (dataset, optimizer), g in grid.groupby(GROUP, sort=True):
        key = g["val_mean"] * orientation(g["metric"])  # a loss: its negative
        best = key.max() * orientation(g["metric"])[0]
        near = int((key >= key.max() - points / 100.0 - 1e-12).sum())
        rows.append(
            {
                "dataset": dataset,
                "optimizer": optimizer,
                "metric": g["metric"].iloc[0],
                "n_grid": len(g),
                "n_failed": int(g["failed"].sum()),
                "best_val_{m}": best,
                "n_within": near,
                "share_within": near / len(g),
            }
        )
    return by_metric(pd.DataFrame(rows, columns=columns))  # no rows: a default-only grid


def restrict(
    frame: pd.DataFrame,
    datasets: list[str] | None,
    optimizers: list[str] | None,
    what: str = "the sweep table",
) -> pd.DataFrame:
    """Keep the configured study; a configured dataset or optimizer missing is an error
    (``what`` names the table in the message)."""
    for col, wanted in (("dataset", datasets), ("optimizer", optimizers)):
        if wanted:
            missing = sorted(set(wanted) - set(frame[col].unique()))
            if missing:
                raise LionSweepError(f"{what} has no rows for {col} {missing}")
            frame = frame[frame[col].isin(wanted)]
    return frame.reset_index(drop=True)


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """The command line shared by `lionsweep tables` and `lionsweep figures`."""
    parser.add_argument("--sweep", required=True, type=Path, help="results/sweep.parquet")
    parser.add_argument(
        "--summary", type=Path, help="results/<study>/summary.parquet (per configuration)"
    )
    parser.add_argument("--outdir", required=True, type=Path)
    parser.add_argument("--settings", default="{}", help="the `results:` config section as JSON")
    parser.add_argument("--datasets", nargs="*", help="datasets to report, in this order")
    parser.add_argument("--optimizers", nargs="*", help="optimizers to report, in this order")
    parser.add_argument(
        "--meta",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="prepared datasets' meta.json (rows raw/dropped per dataset, for the captions)",
    )
