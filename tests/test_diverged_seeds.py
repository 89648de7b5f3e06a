"""Issue 16 item 2: one policy for diverged seeds in every statistic over seeds.

A seed whose value is not finite is left out of every number of its row and counted
in ``note`` ("diverged in k of N seeds (left out)"); it never becomes a number (the
old sign-flip test turned ``[0.01, nan]`` into p = 0). Unit tests on a planted sweep,
then the same through Snakemake on a real run where SGD's default diverges in one seed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from synthetic_sweep import diverge, make_sweep

from lionsweep.results.selection import check_sweep
from lionsweep.results.stats import complete_seeds, mean_ci, paired, signflip_p
from lionsweep.results.tables import run_tables

NOTE = "diverged in {k} of {n} seeds (left out)"


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        ([np.nan, np.nan], math.nan),
        ([0.01, np.nan], math.nan),  # one finite difference: no test at all
        ([0.01, 0.02, np.nan], 0.5),  # = the exact p of [0.01, 0.02]: 2 of 4 sign patterns
        ([0.01, np.inf, 0.02], 0.5),
        ([], math.nan),
    ],
)
def test_signflip_p_never_reads_a_diverged_seed_as_evidence(d, expected) -> None:
    p = signflip_p(np.array(d, dtype=float))
    assert (math.isnan(p) and math.isnan(expected)) or p == pytest.approx(expected)


def test_paired_and_mean_ci_leave_out_and_count_diverged_seeds() -> None:
    a = [0.80, 0.82, np.nan, 0.85]
    b = [0.70, 0.71, 0.72, np.nan]
    got = paired(a, b)
    ref = paired([0.80, 0.82], [0.70, 0.71])
    assert got.diff.dropped == 2 and got.diff.mean == ref.diff.mean
    assert (got.p_ttest, got.p_signflip) == (ref.p_ttest, ref.p_signflip)
    assert (got.boot_lo, got.boot_hi) == (ref.boot_lo, ref.boot_hi)
    assert got.diff.n == 2 and got.p_signflip == pytest.approx(0.5)
    ci = mean_ci([0.5, np.nan, 0.7])
    assert (ci.n, ci.dropped, ci.mean) == (2, 1, pytest.approx(0.6))
    everything = paired([np.nan, np.nan], [0.1, 0.2])
    assert everything.diff.n == 0 and everything.diff.dropped == 2
    assert math.isnan(everything.p_signflip) and math.isnan(everything.diff.mean)


def test_complete_seeds_counts_a_seed_missing_from_one_series() -> None:
    a = pd.Series([1.0, 2.0, 3.0], index=[0, 1, 2])
    b = pd.Series([1.0, np.nan], index=[0, 1])
    (ka, kb), lost = complete_seeds(a, b)
    assert list(ka.index) == [0] and list(kb.index) == [0] and lost == 2


@pytest.fixture(scope="module")
def diverged() -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Four seeds; Lion's default on titanic diverged in seed 2."""
    frame = make_sweep(datasets=("titanic", "spambase", "mushroom"), seeds=(0, 1, 2, 3))
    lion_default = (frame.optimizer == "lion") & frame.is_default & (frame.dataset == "titanic")
    diverge(frame, lion_default & (frame.seed == 2))
    frame = check_sweep(frame)
    return frame, run_tables(frame, {"baseline": "adamw"})


def _kept_diff(frame: pd.DataFrame, pick: dict[str, int]) -> pd.Series:
    rows = frame[frame.dataset == "titanic"]
    series = {
        o: rows[(rows.optimizer == o) & (rows.config_id == c)].set_index("seed").test_acc
        for o, c in pick.items()
    }
    return (series["lion"] - series["adamw"]).drop(2)


def test_every_table_leaves_the_diverged_seed_out_and_says_so(diverged) -> None:
    frame, out = diverged
    note = NOTE.format(k=1, n=4)
    defaults = frame[frame.is_default & (frame.dataset == "titanic")]
    pick = dict(zip(defaults.optimizer, defaults.config_id, strict=False))
    d = _kept_diff(frame, pick)
    for name in ("lion_vs_adamw", "comparison"):
        table = out[name]
        row = table[(table.dataset == "titanic") & (table.comparison == "defaults")]
        row = row[row.get("optimizer", pd.Series("lion", index=row.index)) == "lion"].iloc[0]
        assert row["note"] == note and row["n_seeds"] == 3, name
        assert row["diff_mean"] == pytest.approx(d.mean(), abs=1e-12), name
        assert row["p_signflip"] == pytest.approx(signflip_p(d.to_numpy()), abs=1e-12), name
        assert row["p_signflip"] >= 2 / 8, name  # 3 seeds: never below 2 / 2^3
    honest = out["honest_table"].set_index(["dataset", "optimizer"]).loc[("titanic", "lion")]
    assert honest["note"] == note and honest["n_seeds"] == 3
    assert not math.isnan(honest["gain_mean"]) and not math.isnan(honest["default_test_acc_mean"])
    paper = out["paper_table"].set_index("dataset").loc["titanic"]
    assert paper["note"] == note and paper["n_seeds"] == 3 and not math.isnan(paper["gain_sd"])
    claims = out["claims_check"]
    titanic = claims[claims.claim.str.startswith("Titanic: tuning") & (claims.protocol != "")]
    assert titanic["note"].str.contains(note, regex=False).all()
    assert titanic["value_points"].notna().all()
    # the other datasets lost nothing and say nothing
    for name in ("honest_table", "lion_vs_adamw", "paper_table"):
        assert (out[name].loc[out[name].dataset != "titanic", "note"].fillna("") == "").all()


def test_captions_list_no_n_a_row_for_a_diverged_seed(diverged) -> None:
    from lionsweep.results.tables import caption

    _, out = diverged
    for name in ("honest_table", "lion_vs_adamw", "comparison"):
        text = caption(name, out[name], {"ci_level": 0.95, "bootstrap_resamples": 999,
                                         "baseline": "adamw"}, out["datasets"])  # fmt: skip
        assert "n/a rows" not in text, name


def test_all_seeds_diverged_gives_n_a_and_a_note_not_a_number() -> None:
    frame = make_sweep(datasets=("titanic",), seeds=(0, 1, 2))
    diverge(frame, (frame.optimizer == "lion") & frame.is_default)
    out = run_tables(check_sweep(frame), {})
    row = out["lion_vs_adamw"].set_index("comparison").loc["defaults"]
    assert row["note"] == NOTE.format(k=3, n=3) and row["n_seeds"] == 0
    assert math.isnan(row["p_signflip"]) and math.isnan(row["p_ttest"])
    assert math.isnan(row["diff_mean"])


# ---------------------------------------------------------------- through Snakemake

DIVERGING = {
    # SGD on Titanic (the test study's 3 epochs) diverges in some seeds and not in others
    # near lr 330: measured over seeds 0-7 with torch 2.13 on CPU, lr 300 diverged in 2,
    # 320 in 3, 350 in 5, 380 in 6 and 450 in all 8 (the split's duplicate groups moved the
    # edge: lr 500 diverged in all). Which seeds depends on the exact arithmetic, so the
    # test reads them from the sweep and needs only some of each.
    "study": {"name": "diverging", "datasets": ["titanic"], "optimizers": ["lion", "sgd"]},
    "training": {"threads": 1, "memory_budget_mb": 512},
    "sweep": {"seeds": list(range(8)), "shard_seconds": None, "shard_size": 50},
    "confirm": {"seeds": 2},
    "results": {"baseline": "lion"},
    "optimizers": {
        "lion": {
            "grid": [{"param": "lr", "values": [1e-3, 1e-2]}],
            "grid_overrides": {"titanic": None},
        },
        "sgd": {"defaults": {"lr": 330.0}, "grid": [{"param": "lr", "values": [1e-2, 1e-1]}]},
    },
}


@pytest.mark.slow
def test_a_seed_diverged_in_a_real_run_is_left_out_and_counted(
    tmp_path: Path, mirror: Path
) -> None:
    from conftest import copy_workflow, snakemake

    work = copy_workflow(tmp_path / "wf")
    (work / "config" / "diverging.yaml").write_text(yaml.safe_dump(DIVERGING))
    args = ("--configfile", "config/test.yaml", "config/diverging.yaml")
    snakemake(work, "--cores", "2", *args, mirror=mirror)
    results = work / "results" / "diverging"
    sweep = pd.read_parquet(results / "sweep.parquet")
    sgd = sweep[(sweep.optimizer == "sgd") & sweep.is_default].set_index("seed")
    lion = sweep[(sweep.optimizer == "lion") & sweep.is_default].set_index("seed")
    k, n = int(sgd.diverged.sum()), len(sgd)
    assert 0 < k < n - 1, f"SGD's default diverged in {k} of {n} seeds: pick another lr"
    d = (sgd.test_acc - lion.test_acc)[~sgd.diverged]
    comparison = pd.read_csv(results / "tables" / "comparison.csv")
    row = comparison.set_index("comparison").loc["defaults"]
    assert row["note"] == NOTE.format(k=k, n=n) and row["n_seeds"] == n - k
    assert row["diff_mean"] == pytest.approx(d.mean(), abs=1e-9)
    assert row["p_signflip"] == pytest.approx(signflip_p(d.to_numpy()), abs=1e-12)
    assert row["p_signflip"] >= 2 / 2 ** (n - k)  # never 0: the smallest exact p-value
    md = (results / "tables" / "comparison.md").read_text()
    assert NOTE.format(k=k, n=n) in md
