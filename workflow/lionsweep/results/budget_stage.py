"""`lionsweep budget`: the budget curve's table and figure from the sweeps that
``results.budget_curve`` names (lionsweep.results.budget has the numbers and the rules).

Each entry of ``results.budget_curve`` is ``{study, kind, label}``: the sweep of study
``study`` (``results/<study>/sweep.parquet``; the workflow passes the paths in the order
written) read as ``kind`` (subsets of a grid, samples in order, or one halving sweep),
drawn as the line ``label``. Several studies, because one study's optimizer has one grid:
the paper's grid, its Sobol and random samples and its halving are four sweeps.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from lionsweep.errors import LionSweepError
from lionsweep.results.budget import KINDS, STOPPED, budget_table, metric_label
from lionsweep.results.files import BUDGET
from lionsweep.results.scoring import Metrics, with_primary
from lionsweep.results.selection import metric_info, parse_settings, restrict
from lionsweep.results.writers import write_table
from lionsweep.sweep.summary import load_columns

CAPTION = (
    "The budget curve: test {metric} of the configuration selected on validation (mean "
    "over seeds) among N candidates. subsets: expectation over all N-subsets of the grid "
    "(exact, by order statistics); samples: the first N sampled points; halving: one "
    "successive-halving sweep over its whole grid, selecting among the configurations every "
    "seed carried to the full budget. compute_epochs: model-epochs per seed. lo/hi: central "
    "{level} range over the draw of the candidates and the seeds; subset_lo/hi: over the "
    "draw alone (seed means). p_selected: chance that some candidate trained without "
    "diverging. default_test: the default configuration's mean over seeds. p_grid_best: "
    "chance that the selection is the whole grid's (the study's "
    "honest choice). config_id: the selection where it is certain (samples, halving, the "
    "whole grid)."
)


def entries(cfg: dict[str, Any]) -> list[dict[str, str]]:
    """``results.budget_curve``, checked: one line naming a bad entry."""
    out = []
    for i, e in enumerate(cfg.get("budget_curve") or []):
        where = f"results.budget_curve[{i}]"
        if not isinstance(e, dict) or not isinstance(e.get("study"), str):
            raise LionSweepError(f"{where} must be {{study: NAME, kind: ..., label: ...}}")
        if e.get("kind") not in KINDS:
            raise LionSweepError(
                f"{where}.kind must be one of {list(KINDS)}, got {e.get('kind')!r}"
            )
        out.append(
            {
                "study": e["study"],
                "kind": e["kind"],
                "label": str(e.get("label") or f"{e['kind']} ({e['study']})"),
            }
        )
    return out


def read_sweep(path: Path, chosen: dict[str, str]) -> pd.DataFrame:
    """The sweep's selection columns, plus ``epochs`` and ``stopped_epoch`` when present."""
    frame = with_primary(load_columns(path, extra=chosen.values()), chosen)
    names = pq.read_schema(path).names
    if STOPPED in names:
        keys = ["dataset", "optimizer", "seed", "config_id"]
        extra = pq.read_table(path, columns=[*keys, STOPPED]).to_pandas()
        frame = frame.merge(extra, on=keys, how="left", validate="one_to_one")
    return frame


def curve(
    sweeps: list[Path],
    cfg: dict[str, Any],
    datasets: list[str] | None,
    optimizers: list[str] | None,
) -> pd.DataFrame:
    """The budget table of every configured entry, in the order written."""
    wanted = entries(cfg)
    if len(wanted) != len(sweeps):
        raise LionSweepError(
            f"--sweeps: {len(sweeps)} path(s) for {len(wanted)} results.budget_curve entries"
        )
    metrics, level = Metrics(cfg["honest_metrics"]), float(cfg["ci_level"])
    parts = []
    for e, path in zip(wanted, sweeps, strict=True):
        frame = restrict(read_sweep(path, cfg["primary_metrics"]), datasets, None, str(path))
        if optimizers:
            frame = frame[frame["optimizer"].isin(optimizers)]
        parts.append(budget_table(frame, e["kind"], e["label"], metrics, level))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if datasets and len(table):
        rank = {d: i for i, d in enumerate(datasets)}
        table = table.iloc[np.argsort(table["dataset"].map(rank), kind="stable")]
    return table.reset_index(drop=True)


def plot(table: pd.DataFrame, datasets: list[str]) -> Any:
    """One panel per dataset: expected test metric against compute (log2), a colour per
    method and a line style per optimizer, with its band; a halving sweep is a marker with
    its interval. The top axis reads compute as N candidates trained in full."""
    import matplotlib.pyplot as plt

    n = max(len(datasets), 1)
    fig, axes = plt.subplots(1, n, figsize=(4.4 * n, 4.2), squeeze=False)
    colours = {m: f"C{i}" for i, m in enumerate(dict.fromkeys(table["method"]))}
    names = list(dict.fromkeys(table["optimizer"]))
    styles = {o: ("-", "--", ":", "-.")[i % 4] for i, o in enumerate(names)}
    for ax, dataset in zip(axes[0], datasets, strict=False):
        here = table[table["dataset"] == dataset]
        metric = here["metric"].iloc[0] if len(here) else "acc"
        defaults = here.groupby("optimizer", sort=False)[f"default_test_{metric}_mean"].first()
        for optimizer, value in defaults.dropna().items():  # the untuned reference
            ax.axhline(
                value * metric_info(metric).scale,
                color="0.4",
                lw=1,
                linestyle=styles.get(optimizer, "-"),
                label=f"default, {optimizer}",
            )
        for (method, optimizer), g in here.groupby(["method", "optimizer"], sort=False):
            _draw(
                ax,
                g.sort_values("compute_epochs"),
                metric,
                colours[method],
                styles.get(optimizer, "-"),
                f"{method}, {optimizer}",
            )
        ax.set_xscale("log", base=2)
        ax.set_xlabel("compute (model-epochs per seed, log2)")
        ax.set_ylabel(metric_label(here))
        ax.set_title(dataset, fontsize=10)
        ax.grid(alpha=0.3)
        full = here[here["kind"] != "halving"]
        per = (full["compute_epochs"] / full["n_candidates"]).round(9).unique()
        if len(per) == 1:  # every candidate trains the same epochs: compute is N of them
            top = ax.secondary_xaxis(
                "top", functions=(lambda x, e=per[0]: x / e, lambda x, e=per[0]: x * e)
            )
            top.set_xlabel(f"N candidates trained in full ({per[0]:g} epochs each)", fontsize=8)
            ns = sorted(full["n_candidates"].unique())
            ns = ns[:: max(1, len(ns) // 7)]  # at most ~7 labels: powers of two, the grid
            ns = [v for i, v in enumerate(ns) if i == 0 or v >= 1.5 * ns[i - 1]]  # no overlap
            top.set_xticks(ns, [f"{v:g}" for v in ns], fontsize=7)
            top.minorticks_off()
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8)
    title = "Budget curve: test metric of the validation-selected configuration among N "
    title += "candidates (band: central interval over candidate draws and seeds; grey: the default)"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.06 + 0.035 * (len(labels) // 5), 1, 1))
    return fig


def _draw(ax: Any, g: pd.DataFrame, metric: str, colour: str, style: str, label: str) -> None:
    """One method's line (or halving's marker) and band, in the metric's display units."""
    scale = metric_info(metric).scale
    x = g["compute_epochs"].to_numpy(dtype=float)
    y, lo, hi = (
        g[f"test_{metric}_{k}"].to_numpy(dtype=float) * scale for k in ("mean", "lo", "hi")
    )
    if (g["kind"] == "halving").all():
        ax.errorbar(
            x, y, yerr=[y - lo, hi - y], fmt="D", ms=6, capsize=3, color=colour, label=label
        )
        return
    ax.plot(x, y, linestyle=style, marker="o", ms=3, color=colour, label=label)
    ax.fill_between(x, lo, hi, color=colour, alpha=0.1, linewidth=0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sweeps",
        nargs="*",
        type=Path,
        default=[],
        help="the sweeps of results.budget_curve's studies, in its order",
    )
    parser.add_argument("--table-dir", required=True, type=Path)
    parser.add_argument("--figure-dir", required=True, type=Path)
    parser.add_argument("--settings", default="{}", help="the `results:` config section as JSON")
    parser.add_argument("--datasets", nargs="*", help="datasets to report, in this order")
    parser.add_argument("--optimizers", nargs="*", help="optimizers to report")


def run(args: argparse.Namespace) -> None:
    from lionsweep.results.figures import save  # matplotlib only here

    cfg = parse_settings(args.settings)
    table = curve(args.sweeps, cfg, args.datasets, args.optimizers)
    if table.empty:
        raise LionSweepError("results.budget_curve: no entries, or no rows in their sweeps")
    words = ", ".join(dict.fromkeys(metric_info(m).label for m in table["metric"]))
    text = CAPTION.format(metric=words, level=f"{100 * float(cfg['ci_level']):g}%")
    write_table(table, BUDGET, args.table_dir, text)
    datasets = args.datasets or list(dict.fromkeys(table["dataset"]))
    save(plot(table, datasets), args.figure_dir, BUDGET)
    print(f"{args.table_dir}/{BUDGET}: {len(table)} rows; {args.figure_dir}/{BUDGET}.png/.pdf")
