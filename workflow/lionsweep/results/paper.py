"""The paper's table (Table 1) reproduced with the paper's own protocol, Lion alone.

Per seed the grid point with the best final *test* primary metric (``select_paper``:
selected on the data it is reported on, as the paper did) beside the default, and the
gain (how much better, ``MetricInfo.improvement``); the first seed stands in for the
paper's single run, with the mean and sd over seeds beside it and the published
numbers (``results.paper_table``) where they compare.
"""

from __future__ import annotations

import math

import pandas as pd

from lionsweep.results.edges import mark_grid_edges
from lionsweep.results.scoring import by_metric, orientation
from lionsweep.results.selection import defaults, select_paper
from lionsweep.results.stats import PRIMARY, complete_seeds, diverged_note, metric_info

PAPER_OPTIMIZER = "lion"  # the paper's table is about Lion alone
PAPER_METRIC = "acc"  # results.paper_table holds published accuracies
SEED_COLUMNS = ["dataset", "metric", "seed", "default_test_{m}", "best_test_{m}", "gain"]
PICKED = ("lr", "beta1", "weight_decay")  # the paper's selected point's hyperparameters shown
SEED_COLUMNS += ["best_config_id", *(f"best_{c}" for c in PICKED), "at_grid_edge"]


def paper_tables(
    frame: pd.DataFrame, configs: pd.DataFrame, published: dict[str, dict[str, float]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 1 of the paper, reproduced with its own protocol (Lion only).

    Per seed: the default's final test primary metric and the grid's *test-selected*
    best (the maximum; the minimum for a loss). The first seed stands in for the
    paper's single run; mean and sd over all seeds are beside it. Published numbers come
    from ``results.paper_table`` (accuracies: n/a for a dataset scored by another metric).
    """
    lion = frame[frame["optimizer"] == PAPER_OPTIMIZER]
    best = mark_grid_edges(select_paper(lion), configs).set_index(["dataset", "seed"])
    base = defaults(lion)
    base = base.assign(test_score=[r[f"test_{r[PRIMARY]}"] for _, r in base.iterrows()])
    base = base.set_index(["dataset", "seed"])
    seeds = pd.DataFrame(
        {
            "metric": base[PRIMARY],
            "default_test_{m}": base["test_score"],
            "best_test_{m}": best["test_score"],
            **{f"best_{c}": best[c] for c in ("config_id", *PICKED)},
            "at_grid_edge": best["at_grid_edge"],
        },
        index=base.index,
    )
    # gain: how much better the best is than the default (MetricInfo.improvement)
    seeds["gain"] = (
        orientation(seeds["metric"]) * (seeds["best_test_{m}"] - seeds["default_test_{m}"]) + 0.0
    )  # no "-0" for equal losses
    seeds = seeds.reset_index().reindex(columns=SEED_COLUMNS)
    seeds["best_config_id"] = seeds["best_config_id"].astype("Int64")  # NA: nothing selected
    rows = []
    for dataset, g in seeds.groupby("dataset", sort=False):
        first = g.sort_values("seed").iloc[0]
        info = metric_info(first["metric"])
        # published accuracies beside another metric's numbers would compare nothing: n/a
        paper = published.get(dataset, {}) if info.name == PAPER_METRIC else {}
        pd_, pb = paper.get("default", math.nan), paper.get("best", math.nan)
        row = {"dataset": dataset, "metric": first["metric"], "selected_on": "test (as the paper)"}
        row |= {"seed": int(first["seed"])}
        row |= {"default_test_{m}": first["default_test_{m}"], "paper_default": pd_}
        row |= {"best_test_{m}": first["best_test_{m}"], "paper_best": pb}
        row |= {"gain": first["gain"], "paper_gain": info.improvement(pb, pd_)}
        row |= {f"best_{c}": first[f"best_{c}"] for c in PICKED}
        by_seed = g.set_index("seed")
        (base, best), lost = complete_seeds(by_seed["default_test_{m}"], by_seed["best_test_{m}"])
        row |= {"at_grid_edge": first["at_grid_edge"], "n_seeds": len(base)}
        gain = info.improvement(best, base)
        for name, values in (("default", base), ("best", best), ("gain", gain)):
            row |= {f"{name}_mean": values.mean(), f"{name}_sd": values.std(ddof=1)}
        rows.append(row | {"note": diverged_note(lost, len(g))})
    columns = ["dataset", "metric", "selected_on", "seed", "default_test_{m}", "paper_default"]
    columns += ["best_test_{m}", "paper_best", "gain", "paper_gain", "best_lr", "best_beta1"]
    columns += ["best_weight_decay", "at_grid_edge", "n_seeds", "default_mean", "default_sd"]
    columns += ["best_mean", "best_sd", "gain_mean", "gain_sd", "note"]
    return by_metric(pd.DataFrame(rows, columns=columns)), by_metric(seeds)
