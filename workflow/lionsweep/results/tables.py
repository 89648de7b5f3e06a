"""`lionsweep tables`: the paper's table side by side with ours, and the honest tables.

Each table is built as numbers (a DataFrame: here, or in paper.py, comparisons.py,
decay.py, confirmed.py, claims.py; grid edges in edges.py); writers.py turns it into
CSV, Markdown, LaTeX and HTML with its caption, written here. See selection.py for the
two protocols and stats.py for the intervals (clipped to the metric's range).
Degenerate sweeps (one seed, one optimizer, a grid of the default alone, every point
diverged) still give every table, with n/a where a number does not exist and why in
the caption.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import pandas as pd

from lionsweep.results.claims import claims_check
from lionsweep.results.comparisons import COMPARED, comparison, lion_vs_adamw
from lionsweep.results.confirmed import check_primary, confirmed_table, gains, load_confirm
from lionsweep.results.decay import decay_table
from lionsweep.results.edges import mark_grid_edges, with_sampled_ranges
from lionsweep.results.field import CAPTIONS as FIELD_CAPTIONS
from lionsweep.results.field import NOT_AVAILABLE as FIELD_NOT_AVAILABLE
from lionsweep.results.field import field_tables
from lionsweep.results.files import is_field, table_names
from lionsweep.results.paper import PAPER_OPTIMIZER, PICKED, paper_tables
from lionsweep.results.reads import compact_configs, table_rows
from lionsweep.results.scoring import Metrics, by_metric, metric_of, with_primary
from lionsweep.results.selection import (
    GROUP,
    HPARAMS,
    NO_GRID_POINT,
    add_sweep_arguments,
    config_table,
    grid_counts,
    metric_info,
    parse_settings,
    per_seed,
    rank_grid,
    restrict,
    select_honest,
    settings,
)
from lionsweep.results.stats import (
    BOOTSTRAP_SAMPLES,
    EXACT_SIGNFLIP_MAX_N,
    SIGNFLIP_SAMPLES,
    complete_seeds,
    diverged_note,
    mean_ci,
    paired,
)
from lionsweep.results.writers import datasets_table, dropped_note, write_table
from lionsweep.sweep.summary import load_columns, summary_groups


def shown_hparams(configs: pd.DataFrame) -> list[str]:
    """The paper's three, then any other hyperparameter some grid varies (SGD's momentum)."""
    grid = configs[~configs["is_default"]].groupby(GROUP)
    varied = [h for h in HPARAMS if h not in PICKED and (grid[h].nunique() > 1).any()]
    return [*PICKED, *varied]


def _default_id(configs: pd.DataFrame, dataset: str, optimizer: str) -> int:
    rows = configs[(configs["dataset"] == dataset) & (configs["optimizer"] == optimizer)]
    return int(rows.loc[rows["is_default"], "config_id"].iloc[0])


def honest_table(
    frame: pd.DataFrame,
    configs: pd.DataFrame,
    metrics: Metrics,
    level: float,
    resamples: int = BOOTSTRAP_SAMPLES,
) -> pd.DataFrame:
    """Selected on validation (mean over seeds), reported on test with t-intervals.

    The gain's interval pairs tuned and default by seed (same split, same seed),
    which removes the seed-to-seed shift both share; a paired percentile bootstrap
    interval sits beside it. A (dataset, optimizer) without a working grid point
    keeps its default's numbers and n/a for the rest, with the reason in ``note``.
    """
    chosen = mark_grid_edges(select_honest(configs), configs).set_index(GROUP)
    counts = grid_counts(configs)
    shown = shown_hparams(configs)
    rows = []
    for dataset, optimizer in configs.groupby(GROUP).size().index:
        info = metric_of(configs, dataset)
        test = metrics.col("test", info.name)
        base = per_seed(frame, dataset, optimizer, _default_id(configs, dataset, optimizer), test)
        b = mean_ci(base, level, info.bounds)
        row: dict[str, Any] = {"dataset": dataset, "optimizer": optimizer, "metric": info.name}
        row |= {"metrics": metrics.kind, "config_id": pd.NA}
        row |= {k: math.nan for k in (*shown, "at_grid_edge", "val_{m}_mean")}
        row |= {f"test_{{m}}_{k}": math.nan for k in ("mean", "lo", "hi")}
        row |= {"default_test_{m}_mean": b.mean, "default_test_{m}_lo": b.lo}
        row |= {"default_test_{m}_hi": b.hi}
        row |= {f"gain_{k}": math.nan for k in ("mean", "lo", "hi", "boot_lo", "boot_hi")}
        n_grid, n_failed = counts[(dataset, optimizer)]
        row |= {"n_seeds": b.n, "n_grid": n_grid, "n_failed": n_failed}
        row["note"] = "; ".join(filter(None, (NO_GRID_POINT, diverged_note(b.dropped, len(base)))))
        if (dataset, optimizer) in chosen.index:
            r = chosen.loc[(dataset, optimizer)]
            tuned = per_seed(frame, dataset, optimizer, int(r["config_id"]), test)
            (tuned, kept), lost = complete_seeds(tuned, base)  # one set of seeds per row
            b, t = mean_ci(kept, level, info.bounds), mean_ci(tuned, level, info.bounds)
            gain = paired(*info.ordered(tuned, kept), level, info.diff_bounds, resamples)
            row |= {"default_test_{m}_mean": b.mean, "default_test_{m}_lo": b.lo}
            row |= {"default_test_{m}_hi": b.hi}
            row |= {k: r[k] for k in (*shown, "at_grid_edge")}
            row |= {"config_id": int(r["config_id"]), "val_{m}_mean": r["val_mean"]}
            row |= {"test_{m}_mean": t.mean, "test_{m}_lo": t.lo, "test_{m}_hi": t.hi}
            row |= {"gain_mean": gain.diff.mean, "gain_lo": gain.diff.lo}
            row |= {"gain_hi": gain.diff.hi, "gain_boot_lo": gain.boot_lo}
            row |= {"gain_boot_hi": gain.boot_hi, "n_seeds": t.n}
            row["note"] = diverged_note(lost, len(base))
        rows.append(row)
    table = by_metric(pd.DataFrame(rows))
    table["config_id"] = table["config_id"].astype("Int64")
    return table


def best_configs(configs: pd.DataFrame, k: int) -> pd.DataFrame:
    """Top ``k`` working grid points per (dataset, optimizer), in selection order."""
    ranked = rank_grid(configs)
    top = mark_grid_edges(ranked[ranked["rank"] <= k], configs)
    top = top.rename(columns={f"{s}_{t}": f"{s}_{{m}}_{t}" for s in ("val", "test")
                              for t in ("mean", "sd")})  # fmt: skip
    cols = [*GROUP, "metric", "rank", "config_id", *shown_hparams(configs), "at_grid_edge"]
    cols += ["val_{m}_mean", "val_{m}_sd", "test_{m}_mean", "test_{m}_sd", "n_seeds"]
    return by_metric(top[cols].reset_index(drop=True))


def run_tables(
    frame: pd.DataFrame,
    cfg: dict[str, Any],
    datasets: list[str] | None = None,
    meta: list[Path] | None = None,
    optimizers: list[str] | None = None,
    confirm: pd.DataFrame | None = None,
    configs: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """All tables as DataFrames (numbers, not strings): the testable core of `run`.

    ``confirm``: confirm.parquet's rows (``lionsweep.results.confirmed.load_confirm``); without
    it the `confirmed` table is n/a and the claims have no confirmed protocol. ``configs``:
    the configurations (``results.reads``: of a sweep too large for ``frame`` to hold it
    whole); by default ``frame``'s."""
    cfg = settings(cfg)
    metrics, level = Metrics(cfg["honest_metrics"]), float(cfg["ci_level"])
    resamples = int(cfg["bootstrap_resamples"])
    order = datasets or sorted(frame["dataset"].unique())
    configs = config_table(frame, metrics) if configs is None else configs
    configs = with_sampled_ranges(configs, cfg)
    paper, paper_seeds = paper_tables(frame, configs, cfg["paper_table"])
    honest = honest_table(frame, configs, metrics, level, resamples)
    out = {
        "datasets": datasets_table(meta, order),
        "paper_table": paper,
        "paper_table_seeds": paper_seeds,
        "honest_table": honest,
        "lion_vs_adamw": lion_vs_adamw(frame, honest, metrics, level, resamples),
        "comparison": comparison(
            frame,
            honest,
            cfg["baseline"],
            optimizers or sorted(frame["optimizer"].unique()),
            (metrics, level, resamples),
        ),
        "best_configs": best_configs(configs, int(cfg["top_k"])),
        "decay_product": decay_table(configs),
        "confirmed": confirmed_table(confirm, metrics, level, resamples),
    }
    fresh = None if confirm is None else gains(confirm, PAPER_OPTIMIZER, metrics)
    out["claims_check"] = claims_check(paper_seeds, frame, honest, metrics, level, fresh)
    if is_field(optimizers or list(frame["optimizer"].unique())):
        out |= field_tables(confirm, metrics, cfg, order)
    rank = {d: i for i, d in enumerate(order)}
    for name, table in out.items():
        if "dataset" in table.columns and not table.empty:
            key = table["dataset"].map(rank)
            out[name] = table.assign(_k=key).sort_values("_k", kind="stable").drop(columns="_k")
            out[name] = out[name].reset_index(drop=True)
    return out


CAPTIONS = {
    "datasets": "Prepared datasets: raw rows, rows dropped (missing values), rows and "
    "positives per split (binary datasets; n/a for multiclass and regression ones).",
    "paper_table": "The paper's table (Lion), best of grid selected on the test split as the "
    "paper did; the first seed stands in for its single run. Metric: {metric}.",
    "paper_table_seeds": "The paper's protocol seed by seed (Lion): default, test-selected "
    "best, gain. Metric: {metric}.",
    "honest_table": "Selected on validation (mean over seeds), reported on test. Metric: {metric}.",
    "lion_vs_adamw": "Lion minus AdamW, test {metric}, paired by seed.",
    "comparison": "Each optimizer minus the baseline (results.baseline: {baseline}), test "
    "{metric}, defaults vs defaults and tuned vs tuned, paired by seed.",
    "best_configs": "Top grid points by mean validation {metric} over seeds.",
    "decay_product": "Decoupled weight decay of the validation-selected configurations: "
    "lr_x_wd is the per-step shrink (p *= 1 - lr * wd, in Lion and AdamW alike). decayed_: "
    "the best grid point with weight decay > 0; no_decay_: the best with weight decay 0; "
    "decay_points: the first minus the second, mean validation {metric} over seeds, in "
    "points (0.01 of the metric).",
    "claims_check": "The paper's conclusions tested under each protocol, in points of "
    "{metric} (a point is 0.01 of the metric). The rows 'honest, confirmed on N fresh "
    "seeds' decide: the validation-selected configuration and the default retrained on "
    "seeds the sweep did not use (confirm.seeds), so the estimate carries no selection luck.",
    "confirmed": "The default and the validation-selected ('honest') configuration of each "
    "(dataset, optimizer), retrained on fresh seeds the sweep did not use (confirm.seeds, "
    "from first_seed), test {metric}; gain = tuned minus default, paired by seed; "
    "p_signflip: sign-flip permutation test of the paired gain (exact up to "
    f"{EXACT_SIGNFLIP_MAX_N} seeds, {SIGNFLIP_SAMPLES:,} seeded sign patterns above), "
    "p_ttest: paired t-test.",
    **FIELD_CAPTIONS,
}
NOT_AVAILABLE = {
    **FIELD_NOT_AVAILABLE,
    "datasets": "n/a: no --meta files given (the prepared datasets' meta.json).",
    "paper_table": f"n/a: the sweep has no {PAPER_OPTIMIZER} rows.",
    "paper_table_seeds": f"n/a: the sweep has no {PAPER_OPTIMIZER} rows.",
    "lion_vs_adamw": f"n/a: no dataset ran both {' and '.join(COMPARED)}.",
    "comparison": "n/a: no optimizer besides the baseline ran.",
    "best_configs": f"n/a: {NO_GRID_POINT}.",
    "decay_product": f"n/a: {NO_GRID_POINT}.",
    "confirmed": "n/a: no confirmation run (lionsweep tables --confirm confirm.parquet).",
}
# How each table's intervals are made; "clipped" is the answer to "why does it end at 1?".
CLIPPED = "{level} t-intervals over seeds, clipped to the metric's range"
BOOT = "`_boot_` columns: paired percentile bootstrap ({n} resamples, in range by construction)."
# The ranges intervals are clipped to, per primary metric, as the captions say them.
RANGES = {
    ("acc", "gain"): "[0, 1] for accuracies, [-1, 1] for the gain",
    ("acc", "diff"): "[-1, 1] for a difference of accuracies",
    ("r2", "gain"): "R^2 at most 1, its gain not clipped",
    ("r2", "diff"): "a difference of R^2 not clipped",
}


def range_words(metric: str, kind: str) -> str:
    """``RANGES``' words, or words from the metric's own range (datasets.<name>.primary_metric)."""
    if (metric, kind) in RANGES:
        return RANGES[(metric, kind)]
    info = metric_info(metric)
    low, high = info.diff_bounds
    diff = f"[{low:g}, {high:g}]" if math.isfinite(high) else "not clipped"
    if kind == "diff":
        return f"{diff} for a difference of {info.label}"
    return f"[{info.low:g}, {info.high:g}] for {info.label}, {diff} for the gain"


INTERVALS = {
    "honest_table": f"Intervals: {CLIPPED} ({{gain}}). {BOOT}",
    "confirmed": f"Intervals: {CLIPPED} ({{gain}}). {BOOT}",
    "lion_vs_adamw": f"Intervals: {CLIPPED} ({{diff}}). {BOOT}",
    "comparison": f"Intervals: {CLIPPED} ({{diff}}). {BOOT}",
    "field_vs_baseline": f"Intervals: {CLIPPED} ({{diff}}). {BOOT}",
    "claims_check": f"Intervals: {CLIPPED} ([-100, 100] points for an accuracy gain, "
    "[-200, 200] for a difference of two gains; unbounded for R^2).",
}
WITH_INTERVALS = tuple(INTERVALS)
# The signed quantity of each table, as it reads for a lower-is-better metric (log-loss,
# RMSE, MAE): every gain and difference is an improvement (MetricInfo.improvement), so
# positive always means better; the captions say so where such a metric is present.
SIGNED = {
    "paper_table": "gain = default minus best",
    "paper_table_seeds": "gain = default minus best",
    "honest_table": "gain = default minus tuned",
    "confirmed": "gain = default minus tuned",
    "lion_vs_adamw": "diff = AdamW minus Lion",
    "comparison": "diff = baseline minus optimizer",
    "field_vs_baseline": "diff = baseline minus optimizer",
    "decay_product": "decay_points = best without decay minus best with",
    "claims_check": "a gain = default minus tuned",
}
WITH_EDGES = ("paper_table", "paper_table_seeds", "honest_table", "best_configs")
WITH_DROPPED = ("paper_table", "honest_table")
# How each table shows a row without a selection (every grid point failed, or no grid).
LOST = {
    "honest_table": lambda t: t["config_id"].isna(),
    "confirmed": lambda t: t["note"].str.startswith(NO_GRID_POINT),
    "lion_vs_adamw": lambda t: t["note"].str.startswith(("n/a", NO_GRID_POINT)),
    "comparison": lambda t: t["note"].str.startswith(("n/a", NO_GRID_POINT)),
    "paper_table": lambda t: t.filter(like="best_test_").isna().all(axis=1),
    "paper_table_seeds": lambda t: t.filter(like="best_test_").isna().all(axis=1),
}


def metric_words(table: pd.DataFrame) -> str:
    """ "accuracy (acc)", or per dataset when a table mixes tasks: "accuracy (acc: titanic),
    R^2 (r2: diabetes)"; accuracy for a table without a metric column. A table without a
    dataset column (claims_check: its ``metric`` column says which row) lists the names."""
    if "metric" not in table.columns or table.empty:
        return "accuracy (acc)"
    names = list(dict.fromkeys(table["metric"]))
    if len(names) == 1 or "dataset" not in table.columns:
        return ", ".join(f"{metric_info(m).label} ({m})" for m in names)
    parts = []
    for m in names:
        ds = ", ".join(dict.fromkeys(table.loc[table["metric"] == m, "dataset"]))
        parts.append(f"{metric_info(m).label} ({m}: {ds})")
    return ", ".join(parts)


def direction_words(table: pd.DataFrame) -> str:
    """ "For log-loss (logloss)," naming the table's lower-is-better metrics ("" if none)."""
    names = list(dict.fromkeys(table["metric"])) if "metric" in table.columns else []
    losses = [f"{metric_info(m).label} ({m})" for m in names if not metric_info(m).higher]
    return f"For {' and '.join(losses)}," if losses else ""


def _lost_rows(name: str, table: pd.DataFrame) -> list[str]:
    """ "dataset" or "dataset/optimizer" of the rows ``name`` shows as n/a, in table order."""
    if name not in LOST or table.empty:
        return []
    rows = table[LOST[name](table)]
    keys = [c for c in GROUP if c in rows.columns]
    return list(dict.fromkeys("/".join(map(str, k)) for k in rows[keys].itertuples(index=False)))


def caption(name: str, table: pd.DataFrame, cfg: dict[str, Any], datasets: pd.DataFrame) -> str:
    """The one-paragraph caption written with the table (Markdown, LaTeX, HTML)."""
    level, resamples = float(cfg["ci_level"]), int(cfg["bootstrap_resamples"])
    words = {"metric": metric_words(table), "baseline": cfg["baseline"]}
    parts = [CAPTIONS[name].format(**words, level=f"{100 * level:g}%")]
    if table.empty:
        parts.append(NOT_AVAILABLE.get(name, "n/a: nothing to report."))
    if name in WITH_INTERVALS:
        present = list(dict.fromkeys(table["metric"])) if "metric" in table else []
        ranges = {
            k: "; ".join(range_words(m, k) for m in present or ["acc"]) for k in ("gain", "diff")
        }
        level_words = f"{100 * level:g}%"  # 0.975: 97.5%, not a rounded 98%
        parts.append(INTERVALS[name].format(level=level_words, n=resamples, **ranges))
    if name in WITH_EDGES:
        parts.append(
            "at_grid_edge: the selected point lies at the lowest (min) or highest (max) value "
            "of a hyperparameter the grid varies: the grid may be too narrow."
        )
        if cfg.get("sampled_ranges"):
            parts.append(
                "On a sampled axis (low/high) it lies within "
                f"{100 * cfg['sampled_edge_fraction']:g}% of the range (in the axis's scale) "
                "of low (min) or high (max)."
            )
    losses = direction_words(table)
    if name in SIGNED and losses:
        parts.append(
            f"{losses} lower is better, so there {SIGNED[name]}: a positive value always "
            "means better."
        )
    lost = _lost_rows(name, table)
    if lost:
        parts.append(f"n/a rows ({', '.join(lost)}): {NO_GRID_POINT}.")
    if name in WITH_DROPPED:
        parts.append(dropped_note(datasets))
    return " ".join(p for p in parts if p)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_sweep_arguments(parser)
    parser.add_argument("--confirm", type=Path, help="results/<study>/confirm.parquet")


def read(args: argparse.Namespace, cfg: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The rows and configurations the tables read (issue 19): from the summary, a grid
    at a time, and the rows they pair (``results.reads``); with a configured primary
    metric (the summary holds each task's own), the rows selection reads, whole."""
    if args.summary is None or cfg["primary_metrics"]:
        extra = cfg["primary_metrics"].values()
        frame = restrict(load_columns(args.sweep, extra=extra), args.datasets, args.optimizers)
        return with_primary(frame, cfg["primary_metrics"]), None
    full = settings(cfg)
    pairs = summary_groups(args.summary, args.datasets, args.optimizers)
    configs = compact_configs(args.summary, Metrics(full["honest_metrics"]), pairs, full["top_k"])
    rows = restrict(table_rows(args.sweep, configs), args.datasets, args.optimizers)
    return rows, configs


def run(args: argparse.Namespace) -> None:
    cfg = parse_settings(args.settings)
    frame, configs = read(args, cfg)
    confirm = None
    if args.confirm is not None:
        metrics = Metrics(settings(cfg)["honest_metrics"])
        confirm = load_confirm(args.confirm, metrics)
        confirm = restrict(confirm, args.datasets, args.optimizers, str(args.confirm))
        check_primary(confirm, frame, args.confirm)
    tables = run_tables(frame, cfg, args.datasets, args.meta, args.optimizers, confirm, configs)
    for name in table_names(args.optimizers or list(frame["optimizer"].unique())):
        text = caption(name, tables[name], settings(cfg), tables["datasets"])
        write_table(tables[name], name, args.outdir, text)
        print(f"{args.outdir}/{name}: {len(tables[name])} rows")
