"""`lionsweep tables`: the paper's table side by side with ours, and the honest tables.

Each table is built here as numbers (a DataFrame); writers.py turns it into CSV,
Markdown, LaTeX and HTML with its caption. See selection.py for the two protocols
and stats.py for the intervals (clipped to the metric's range). Degenerate sweeps
(one seed, one optimizer, a grid of the default alone, every point diverged)
still give every table, with n/a where a number does not exist and why in the caption.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import pandas as pd

from lionsweep.claims import claims_check
from lionsweep.outputs import TABLES
from lionsweep.selection import (
    GROUP,
    Metrics,
    add_sweep_arguments,
    config_table,
    defaults,
    load_sweep,
    mark_grid_edges,
    parse_settings,
    per_seed,
    rank_grid,
    restrict,
    select_honest,
    select_paper,
    settings,
)
from lionsweep.stats import ACC_RANGE, BOOTSTRAP_SAMPLES, mean_ci, paired
from lionsweep.writers import datasets_table, dropped_note, write_table

PAPER_OPTIMIZER = "lion"  # the paper's table is about Lion alone
COMPARED = ("lion", "adamw")  # lion_vs_adamw: the first minus the second
NO_GRID_POINT = "no working grid point (every configuration diverged, or no grid)"
SEED_COLUMNS = ["dataset", "seed", "default_test_acc", "best_test_acc", "gain", "best_config_id"]
PICKED = ("lr", "beta1", "weight_decay")  # the selected point's hyperparameters shown
SEED_COLUMNS += [*(f"best_{c}" for c in PICKED), "at_grid_edge"]


def paper_tables(
    frame: pd.DataFrame, configs: pd.DataFrame, published: dict[str, dict[str, float]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 1 of the paper, reproduced with its own protocol (Lion only).

    Per seed: the default's final test accuracy and the grid's *test-selected*
    maximum. The first seed stands in for the paper's single run; mean and sd
    over all seeds are beside it. Published numbers come from ``results.paper_table``.
    """
    lion = frame[frame["optimizer"] == PAPER_OPTIMIZER]
    best = mark_grid_edges(select_paper(lion), configs).set_index(["dataset", "seed"])
    base = defaults(lion).set_index(["dataset", "seed"])
    seeds = pd.DataFrame(
        {
            "default_test_acc": base["test_acc"],
            **{f"best_{c}": best[c] for c in ("test_acc", "config_id", *PICKED)},
            "at_grid_edge": best["at_grid_edge"],
        },
        index=base.index,
    )
    seeds["gain"] = seeds["best_test_acc"] - seeds["default_test_acc"]
    seeds = seeds.reset_index().reindex(columns=SEED_COLUMNS)
    seeds["best_config_id"] = seeds["best_config_id"].astype("Int64")  # NA: nothing selected
    rows = []
    for dataset, g in seeds.groupby("dataset", sort=False):
        first = g.sort_values("seed").iloc[0]
        paper = published.get(dataset, {})
        pd_, pb = paper.get("default", math.nan), paper.get("best", math.nan)
        row = {"dataset": dataset, "selected_on": "test (as the paper)", "seed": int(first["seed"])}
        row |= {"default_test_acc": first["default_test_acc"], "paper_default": pd_}
        row |= {"best_test_acc": first["best_test_acc"], "paper_best": pb}
        row |= {"gain": first["gain"], "paper_gain": pb - pd_}
        row |= {f"best_{c}": first[f"best_{c}"] for c in PICKED}
        row |= {"at_grid_edge": first["at_grid_edge"], "n_seeds": len(g)}
        for name, col in (("default", "default_test_acc"), ("best", "best_test_acc")):
            row |= {f"{name}_mean": g[col].mean(), f"{name}_sd": g[col].std(ddof=1)}
        row |= {"gain_mean": g["gain"].mean(), "gain_sd": g["gain"].std(ddof=1)}
        rows.append(row)
    columns = ["dataset", "selected_on", "seed", "default_test_acc", "paper_default"]
    columns += ["best_test_acc", "paper_best", "gain", "paper_gain", "best_lr", "best_beta1"]
    columns += ["best_weight_decay", "at_grid_edge", "n_seeds", "default_mean", "default_sd"]
    columns += ["best_mean", "best_sd", "gain_mean", "gain_sd"]
    return pd.DataFrame(rows, columns=columns), seeds


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
    test = metrics.col("test")
    chosen = mark_grid_edges(select_honest(configs), configs).set_index(GROUP)
    grid = configs[~configs["is_default"]]
    rows = []
    for dataset, optimizer in configs.groupby(GROUP).size().index:
        base = per_seed(frame, dataset, optimizer, _default_id(configs, dataset, optimizer), test)
        b = mean_ci(base.dropna(), level, ACC_RANGE)
        g = grid[(grid["dataset"] == dataset) & (grid["optimizer"] == optimizer)]
        row: dict[str, Any] = {"dataset": dataset, "optimizer": optimizer}
        row |= {"metrics": metrics.kind, "config_id": pd.NA, "lr": math.nan}
        row |= {"beta1": math.nan, "weight_decay": math.nan, "at_grid_edge": math.nan}
        row |= {"val_acc_mean": math.nan}
        row |= {f"test_acc_{k}": math.nan for k in ("mean", "lo", "hi")}
        row |= {"default_test_acc_mean": b.mean, "default_test_acc_lo": b.lo}
        row |= {"default_test_acc_hi": b.hi}
        row |= {f"gain_{k}": math.nan for k in ("mean", "lo", "hi", "boot_lo", "boot_hi")}
        row |= {"n_seeds": b.n, "n_grid": len(g), "n_failed": int(g["failed"].sum())}
        row["note"] = NO_GRID_POINT
        if (dataset, optimizer) in chosen.index:
            r = chosen.loc[(dataset, optimizer)]
            tuned = per_seed(frame, dataset, optimizer, int(r["config_id"]), test)
            t, gain = (
                mean_ci(tuned, level, ACC_RANGE),
                paired(tuned, base, level, resamples=resamples),
            )
            row |= {k: r[k] for k in ("lr", "beta1", "weight_decay", "at_grid_edge")}
            row |= {"config_id": int(r["config_id"]), "val_acc_mean": r["val_acc_mean"]}
            row |= {"test_acc_mean": t.mean, "test_acc_lo": t.lo, "test_acc_hi": t.hi}
            row |= {"gain_mean": gain.diff.mean, "gain_lo": gain.diff.lo}
            row |= {"gain_hi": gain.diff.hi, "gain_boot_lo": gain.boot_lo}
            row |= {"gain_boot_hi": gain.boot_hi, "n_seeds": t.n, "note": ""}
        rows.append(row)
    table = pd.DataFrame(rows)
    table["config_id"] = table["config_id"].astype("Int64")
    return table


def _compare(
    frame: pd.DataFrame,
    dataset: str,
    ids: dict[str, int | None],
    test: str,
    intervals: tuple[float, int],
) -> dict[str, Any]:
    """One paired comparison of the two optimizers' configurations ``ids`` (None: n/a)."""
    first, second = COMPARED
    if any(cid is None for cid in ids.values()):
        return {"n_seeds": 0, "note": NO_GRID_POINT}
    series = {opt: per_seed(frame, dataset, opt, cid, test) for opt, cid in ids.items()}
    common = series[first].index.intersection(series[second].index)
    a, b = series[first][common], series[second][common]
    result = paired(a, b, intervals[0], resamples=intervals[1])
    return {
        f"{first}_test_acc_mean": a.mean(),
        f"{second}_test_acc_mean": b.mean(),
        "diff_mean": result.diff.mean,
        "diff_lo": result.diff.lo,
        "diff_hi": result.diff.hi,
        "diff_boot_lo": result.boot_lo,
        "diff_boot_hi": result.boot_hi,
        "p_ttest": result.p_ttest,
        "p_signflip": result.p_signflip,
        "n_seeds": len(common),
        "note": "",
    }


def lion_vs_adamw(
    frame: pd.DataFrame,
    honest: pd.DataFrame,
    metrics: Metrics,
    level: float,
    resamples: int = BOOTSTRAP_SAMPLES,
) -> pd.DataFrame:
    """Lion minus AdamW, defaults vs defaults and tuned vs tuned, paired by seed.

    Every dataset that ran both gets both rows; "tuned" is n/a (with the reason in
    ``note``) where one of the two has no working grid point.
    """
    first, second = COMPARED
    columns = ["dataset", "comparison", f"{first}_test_acc_mean", f"{second}_test_acc_mean"]
    columns += ["diff_mean", "diff_lo", "diff_hi", "diff_boot_lo", "diff_boot_hi"]
    columns += ["p_ttest", "p_signflip", "n_seeds", "note"]
    test = metrics.col("test")
    base = defaults(frame)
    rows = []
    for dataset in honest["dataset"].unique():
        picks = honest[honest["dataset"] == dataset].set_index("optimizer")["config_id"]
        if not set(COMPARED) <= set(picks.index):
            continue
        here = base[base["dataset"] == dataset].groupby("optimizer")["config_id"].first()
        plans = {
            "defaults": {o: int(here[o]) for o in COMPARED},
            "tuned": {o: None if pd.isna(picks[o]) else int(picks[o]) for o in COMPARED},
        }
        for comparison, ids in plans.items():
            result = _compare(frame, dataset, ids, test, (level, resamples))
            rows.append({"dataset": dataset, "comparison": comparison, **result})
    return pd.DataFrame(rows, columns=columns)


def best_configs(configs: pd.DataFrame, k: int) -> pd.DataFrame:
    """Top ``k`` working grid points per (dataset, optimizer), in selection order."""
    ranked = rank_grid(configs)
    top = mark_grid_edges(ranked[ranked["rank"] <= k], configs)
    cols = [*GROUP, "rank", "config_id", "lr", "beta1", "weight_decay", "at_grid_edge"]
    cols += ["val_acc_mean", "val_acc_sd", "test_acc_mean", "test_acc_sd", "n_seeds"]
    return top[cols].reset_index(drop=True)


def run_tables(
    frame: pd.DataFrame,
    cfg: dict[str, Any],
    datasets: list[str] | None = None,
    meta: list[Path] | None = None,
) -> dict[str, pd.DataFrame]:
    """All tables as DataFrames (numbers, not strings): the testable core of `run`."""
    cfg = settings(cfg)
    metrics, level = Metrics(cfg["honest_metrics"]), float(cfg["ci_level"])
    resamples = int(cfg["bootstrap_resamples"])
    order = datasets or sorted(frame["dataset"].unique())
    configs = config_table(frame, metrics)
    paper, paper_seeds = paper_tables(frame, configs, cfg["paper_table"])
    honest = honest_table(frame, configs, metrics, level, resamples)
    out = {
        "datasets": datasets_table(meta, order),
        "paper_table": paper,
        "paper_table_seeds": paper_seeds,
        "honest_table": honest,
        "lion_vs_adamw": lion_vs_adamw(frame, honest, metrics, level, resamples),
        "best_configs": best_configs(configs, int(cfg["top_k"])),
    }
    out["claims_check"] = claims_check(paper_seeds, frame, honest, metrics, level)
    rank = {d: i for i, d in enumerate(order)}
    for name, table in out.items():
        if "dataset" in table.columns and not table.empty:
            key = table["dataset"].map(rank)
            out[name] = table.assign(_k=key).sort_values("_k", kind="stable").drop(columns="_k")
            out[name] = out[name].reset_index(drop=True)
    return out


CAPTIONS = {
    "datasets": "Prepared datasets: raw rows, rows dropped (missing values), rows and "
    "positives per split.",
    "paper_table": "The paper's table (Lion), best of grid selected on the test split as the "
    "paper did; the first seed stands in for its single run.",
    "paper_table_seeds": "The paper's protocol seed by seed (Lion): default, test-selected "
    "best, gain.",
    "honest_table": "Selected on validation (mean over seeds), reported on test.",
    "lion_vs_adamw": "Lion minus AdamW test accuracy, paired by seed.",
    "best_configs": "Top grid points by mean validation accuracy over seeds.",
    "claims_check": "The paper's conclusions tested under both protocols, in accuracy points.",
}
NOT_AVAILABLE = {
    "datasets": "n/a: no --meta files given (the prepared datasets' meta.json).",
    "paper_table": f"n/a: the sweep has no {PAPER_OPTIMIZER} rows.",
    "paper_table_seeds": f"n/a: the sweep has no {PAPER_OPTIMIZER} rows.",
    "lion_vs_adamw": f"n/a: no dataset ran both {' and '.join(COMPARED)}.",
    "best_configs": f"n/a: {NO_GRID_POINT}.",
}
# How each table's intervals are made; "clipped" is the answer to "why does it end at 1?".
CLIPPED = "{level:.0%} t-intervals over seeds, clipped to the metric's range"
BOOT = "`_boot_` columns: paired percentile bootstrap ({n} resamples, in range by construction)."
INTERVALS = {
    "honest_table": f"Intervals: {CLIPPED} ([0, 1] for accuracies, [-1, 1] for the gain). {BOOT}",
    "lion_vs_adamw": f"Intervals: {CLIPPED} ([-1, 1] for a difference of accuracies). {BOOT}",
    "claims_check": f"Intervals: {CLIPPED} ([-100, 100] points for a gain, [-200, 200] for a "
    "difference of two gains).",
}
WITH_INTERVALS = tuple(INTERVALS)
WITH_EDGES = ("paper_table", "paper_table_seeds", "honest_table", "best_configs")
WITH_DROPPED = ("paper_table", "honest_table")
# How each table shows a row without a selection (every grid point failed, or no grid).
LOST = {
    "honest_table": lambda t: t["note"] != "",
    "lion_vs_adamw": lambda t: t["note"] != "",
    "paper_table": lambda t: t["best_test_acc"].isna(),
    "paper_table_seeds": lambda t: t["best_test_acc"].isna(),
}


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
    parts = [CAPTIONS[name]]
    if table.empty:
        parts.append(NOT_AVAILABLE.get(name, "n/a: nothing to report."))
    if name in WITH_INTERVALS:
        parts.append(INTERVALS[name].format(level=level, n=resamples))
    if name in WITH_EDGES:
        parts.append(
            "at_grid_edge: the selected point lies at the lowest (min) or highest (max) value "
            "of a hyperparameter the grid varies: the grid may be too narrow."
        )
    lost = _lost_rows(name, table)
    if lost:
        parts.append(f"n/a rows ({', '.join(lost)}): {NO_GRID_POINT}.")
    if name in WITH_DROPPED:
        parts.append(dropped_note(datasets))
    return " ".join(p for p in parts if p)


add_arguments = add_sweep_arguments


def run(args: argparse.Namespace) -> None:
    frame = restrict(load_sweep(args.sweep, curves=False), args.datasets, args.optimizers)
    cfg = parse_settings(args.settings)
    tables = run_tables(frame, cfg, args.datasets, args.meta)
    for name in TABLES:
        text = caption(name, tables[name], settings(cfg), tables["datasets"])
        write_table(tables[name], name, args.outdir, text)
        print(f"{args.outdir}/{name}: {len(tables[name])} rows")
