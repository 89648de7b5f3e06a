"""`lionsweep tables`: the paper's table side by side with ours, and the honest tables.

Every table is written as CSV (full precision, for reuse), Markdown (README,
reviews), LaTeX (papers) and HTML (the Snakemake report shows HTML inline).
The CSV keeps numbers; the other three show them rounded, "n/a" for missing.
See selection.py for the two protocols and stats.py for the intervals.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lionsweep.claims import claims_check
from lionsweep.io import write_atomic
from lionsweep.outputs import TABLE_FORMATS, TABLES
from lionsweep.selection import (
    GROUP,
    Metrics,
    add_sweep_arguments,
    config_table,
    defaults,
    load_sweep,
    per_seed,
    rank_grid,
    restrict,
    select_honest,
    select_paper,
    settings,
)
from lionsweep.stats import mean_ci, paired

HP_COLUMNS = ("lr", "beta1", "beta2", "weight_decay", "eps")

# ----------------------------------------------------------------------------- writers


def display(frame: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Strings for humans: hyperparameters to 3 significant digits, p-values to 3
    decimals, the rest to ``digits`` decimals; missing values as "n/a"."""

    def fmt(col: str) -> Callable[[Any], str]:
        if col.removeprefix("best_") in HP_COLUMNS:
            spec = "{:.3g}"
        elif col.startswith("p_"):
            spec = "{:.3f}"
        elif col.endswith("_points"):
            spec = "{:+.2f}"
        else:
            spec = f"{{:.{digits}f}}"

        def one(v: Any) -> str:
            if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
                return "n/a"
            if isinstance(v, bool | np.bool_):
                return "yes" if v else "no"
            if isinstance(v, float | np.floating):
                return spec.format(float(v))
            return str(v)

        return one

    return pd.DataFrame({c: [fmt(c)(v) for v in frame[c]] for c in frame.columns}, dtype=object)


def markdown(frame: pd.DataFrame) -> str:
    """A GitHub pipe table (no tabulate dependency; cells are display strings)."""

    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in frame.columns) + " |"]
    lines.append("| " + " | ".join("---" for _ in frame.columns) + " |")
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines) + "\n"


def write_table(frame: pd.DataFrame, name: str, outdir: Path) -> list[Path]:
    """Write ``name`` in every format, atomically; returns the paths."""
    shown = display(frame)
    texts = {
        "csv": frame.to_csv(index=False, float_format="%.10g", na_rep="NaN"),
        "md": markdown(shown),
        "tex": shown.to_latex(index=False, escape=True, column_format="l" * len(frame.columns)),
        "html": "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>"
        + name
        + "</title><style>table{border-collapse:collapse;font:13px sans-serif}"
        "td,th{border:1px solid #bbb;padding:3px 6px;text-align:right}</style></head><body>\n"
        + shown.to_html(index=False, escape=True, border=0)
        + "\n</body></html>\n",
    }
    paths = []
    for ext in TABLE_FORMATS:
        text = texts[ext]
        path = outdir / f"{name}.{ext}"
        write_atomic(path, lambda tmp, text=text: tmp.write_text(text))
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------- tables


def paper_tables(
    frame: pd.DataFrame, published: dict[str, dict[str, float]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 1 of the paper, reproduced with its own protocol (Lion only).

    Per seed: the default's final test accuracy and the grid's *test-selected*
    maximum. The first seed stands in for the paper's single run; mean and sd
    over all seeds are beside it. Published numbers come from ``results.paper_table``.
    """
    lion = frame[frame["optimizer"] == "lion"]
    best = select_paper(lion).set_index(["dataset", "seed"])
    base = defaults(lion).set_index(["dataset", "seed"])
    seeds = pd.DataFrame(
        {
            "default_test_acc": base["test_acc"],
            "best_test_acc": best["test_acc"],
            "best_config_id": best["config_id"],
            "best_lr": best["lr"],
            "best_beta1": best["beta1"],
            "best_weight_decay": best["weight_decay"],
        }
    )
    seeds["gain"] = seeds["best_test_acc"] - seeds["default_test_acc"]
    seeds = seeds.reset_index()
    rows = []
    for dataset, g in seeds.groupby("dataset", sort=False):
        first = g.sort_values("seed").iloc[0]
        paper = published.get(dataset, {})
        pd_, pb = paper.get("default", math.nan), paper.get("best", math.nan)
        rows.append(
            {
                "dataset": dataset,
                "selected_on": "test (as the paper)",
                "seed": int(first["seed"]),
                "default_test_acc": first["default_test_acc"],
                "paper_default": pd_,
                "best_test_acc": first["best_test_acc"],
                "paper_best": pb,
                "gain": first["gain"],
                "paper_gain": pb - pd_,
                "best_lr": first["best_lr"],
                "best_beta1": first["best_beta1"],
                "best_weight_decay": first["best_weight_decay"],
                "n_seeds": len(g),
                "default_mean": g["default_test_acc"].mean(),
                "default_sd": g["default_test_acc"].std(ddof=1),
                "best_mean": g["best_test_acc"].mean(),
                "best_sd": g["best_test_acc"].std(ddof=1),
                "gain_mean": g["gain"].mean(),
                "gain_sd": g["gain"].std(ddof=1),
            }
        )
    keep = ["dataset", "seed", "default_test_acc", "best_test_acc", "gain", "best_config_id"]
    return pd.DataFrame(rows), seeds[[*keep, "best_lr", "best_beta1", "best_weight_decay"]]


def honest_table(
    frame: pd.DataFrame, configs: pd.DataFrame, metrics: Metrics, level: float
) -> pd.DataFrame:
    """Selected on validation (mean over seeds), reported on test with t-intervals.

    The gain's interval pairs tuned and default by seed (same split, same seed),
    which removes the seed-to-seed shift both share.
    """
    test = metrics.col("test")
    chosen = select_honest(configs)
    n_grid = configs[~configs["is_default"]].groupby(GROUP).size()
    n_failed = configs[~configs["is_default"]].groupby(GROUP)["failed"].sum()
    rows = []
    for r in chosen.itertuples(index=False):
        default_id = int(
            configs.loc[
                (configs["dataset"] == r.dataset)
                & (configs["optimizer"] == r.optimizer)
                & configs["is_default"],
                "config_id",
            ].iloc[0]
        )
        tuned = per_seed(frame, r.dataset, r.optimizer, int(r.config_id), test)
        base = per_seed(frame, r.dataset, r.optimizer, default_id, test)
        t, b, gain = (
            mean_ci(tuned, level),
            mean_ci(base.dropna(), level),
            paired(tuned, base, level),
        )
        rows.append(
            {
                "dataset": r.dataset,
                "optimizer": r.optimizer,
                "metrics": metrics.kind,
                "config_id": int(r.config_id),
                "lr": r.lr,
                "beta1": r.beta1,
                "weight_decay": r.weight_decay,
                "val_acc_mean": r.val_acc_mean,
                "test_acc_mean": t.mean,
                "test_acc_lo": t.lo,
                "test_acc_hi": t.hi,
                "default_test_acc_mean": b.mean,
                "default_test_acc_lo": b.lo,
                "default_test_acc_hi": b.hi,
                "gain_mean": gain.diff.mean,
                "gain_lo": gain.diff.lo,
                "gain_hi": gain.diff.hi,
                "n_seeds": t.n,
                "n_grid": int(n_grid[(r.dataset, r.optimizer)]),
                "n_failed": int(n_failed[(r.dataset, r.optimizer)]),
            }
        )
    return pd.DataFrame(rows)


def lion_vs_adamw(
    frame: pd.DataFrame, honest: pd.DataFrame, metrics: Metrics, level: float
) -> pd.DataFrame:
    """Lion minus AdamW, defaults vs defaults and tuned vs tuned, paired by seed."""
    test = metrics.col("test")
    columns = ["dataset", "comparison", "lion_test_acc_mean", "adamw_test_acc_mean"]
    columns += ["diff_mean", "diff_lo", "diff_hi", "p_ttest", "p_signflip", "n_seeds"]
    rows = []
    base = defaults(frame)
    for dataset in honest["dataset"].unique():
        picks = honest[honest["dataset"] == dataset].set_index("optimizer")["config_id"]
        if not {"lion", "adamw"} <= set(picks.index):
            continue
        for comparison in ("defaults", "tuned"):
            series = {}
            for opt in ("lion", "adamw"):
                if comparison == "defaults":
                    cid = int(
                        base.loc[
                            (base["dataset"] == dataset) & (base["optimizer"] == opt), "config_id"
                        ].iloc[0]
                    )
                else:
                    cid = int(picks[opt])
                series[opt] = per_seed(frame, dataset, opt, cid, test)
            common = series["lion"].index.intersection(series["adamw"].index)
            a, b = series["lion"][common], series["adamw"][common]
            result = paired(a, b, level)
            rows.append(
                {
                    "dataset": dataset,
                    "comparison": comparison,
                    "lion_test_acc_mean": a.mean(),
                    "adamw_test_acc_mean": b.mean(),
                    "diff_mean": result.diff.mean,
                    "diff_lo": result.diff.lo,
                    "diff_hi": result.diff.hi,
                    "p_ttest": result.p_ttest,
                    "p_signflip": result.p_signflip,
                    "n_seeds": len(common),
                }
            )
    return pd.DataFrame(rows, columns=columns)


def best_configs(configs: pd.DataFrame, k: int) -> pd.DataFrame:
    """Top ``k`` working grid points per (dataset, optimizer), in selection order."""
    ranked = rank_grid(configs)
    top = ranked[ranked["rank"] <= k]
    cols = [*GROUP, "rank", "config_id", "lr", "beta1", "weight_decay"]
    cols += ["val_acc_mean", "val_acc_sd", "test_acc_mean", "test_acc_sd", "n_seeds"]
    return top[cols].reset_index(drop=True)


def run_tables(
    frame: pd.DataFrame, cfg: dict[str, Any], datasets: list[str] | None = None
) -> dict[str, pd.DataFrame]:
    """All tables as DataFrames (numbers, not strings): the testable core of `run`."""
    cfg = settings(cfg)
    metrics, level = Metrics(cfg["honest_metrics"]), float(cfg["ci_level"])
    order = datasets or sorted(frame["dataset"].unique())
    configs = config_table(frame, metrics)
    paper, paper_seeds = paper_tables(frame, cfg["paper_table"])
    honest = honest_table(frame, configs, metrics, level)
    out = {
        "paper_table": paper,
        "paper_table_seeds": paper_seeds,
        "honest_table": honest,
        "lion_vs_adamw": lion_vs_adamw(frame, honest, metrics, level),
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


add_arguments = add_sweep_arguments


def run(args: argparse.Namespace) -> None:
    frame = restrict(load_sweep(args.sweep, curves=False), args.datasets, args.optimizers)
    tables = run_tables(frame, json.loads(args.settings), args.datasets)
    for name in TABLES:
        write_table(tables[name], name, args.outdir)
        print(f"{args.outdir}/{name}.{{{','.join(TABLE_FORMATS)}}}: {len(tables[name])} rows")
