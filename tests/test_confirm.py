"""The confirmation stage: the default and the honest choice retrained on fresh seeds.

Unit tests on synthetic sweeps and a tiny prepared dataset (the real engine), and the
test study's real run through Snakemake: a tuned configuration given a sweep seed
reproduces the sweep's row bit for bit, so the stage trains exactly what the sweep did.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats as sps
from synthetic_sweep import diverge, make_sweep, to_parquet

from lionsweep.cli import main
from lionsweep.config import confirm_seeds, validate
from lionsweep.confirm.retrain import check_seeds, confirm, plan, plan_summary
from lionsweep.errors import LionSweepError
from lionsweep.results.claims import CONFIRMED
from lionsweep.results.confirmed import confirmed_table, gains, load_confirm
from lionsweep.results.scoring import FINAL
from lionsweep.results.selection import NO_GRID_POINT, check_sweep, config_table, select_honest
from lionsweep.results.tables import run_tables
from lionsweep.results.tradeoff import seeds_tradeoff
from lionsweep.sweep.summary import summarize, summary_groups, summary_table

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
SETTINGS = {"hidden": 8, "dropout": 0.2, "epochs": 2, "batch_size": 16, "dtype": "float32"}
KEYS = ["dataset", "optimizer", "seed", "config_id"]
VOLATILE = {"wall_time_s", "device", "shard", "role", "note", "lionsweep_version"}


# ------------------------------------------------------------------ config


def test_confirm_seeds_follow_first_seed_and_default(config: dict) -> None:
    cfg = copy.deepcopy(config)
    validate(cfg, SCHEMA)
    assert confirm_seeds(cfg) == list(range(1000, 1000 + cfg["confirm"]["seeds"]))
    del cfg["confirm"]
    validate(cfg, SCHEMA)  # the schema's defaults fill the section in
    assert confirm_seeds(cfg)[0] == 1000 and len(confirm_seeds(cfg)) >= 10


@pytest.mark.parametrize(
    ("confirm", "culprit"),
    [
        ({"seeds": 5, "first_seed": 0}, "confirm.first_seed"),  # overlaps sweep seeds 0..2
        ({"seeds": 1}, "confirm.seeds"),  # no interval from one seed
        ({"seeds": "ten"}, "confirm.seeds"),
        ({"seeds": 4, "first_seed": -1}, "confirm.first_seed"),
        ({"seeds": 4, "start": 9}, "confirm"),  # unknown key
    ],
)
def test_bad_confirm_section_is_one_line_naming_the_key(config: dict, confirm, culprit) -> None:
    cfg = copy.deepcopy(config)
    cfg["confirm"] = confirm
    with pytest.raises(LionSweepError) as err:
        validate(cfg, SCHEMA)
    message = str(err.value)
    assert "\n" not in message and message.startswith(culprit), message


def test_overlap_message_names_the_shared_seeds(config: dict) -> None:
    cfg = copy.deepcopy(config)
    cfg["confirm"] = {"seeds": 3, "first_seed": 2}
    with pytest.raises(LionSweepError, match=r"overlap sweep.seeds at \[2\].*first_seed: 3"):
        validate(cfg, SCHEMA)


def test_cli_refuses_sweep_seeds_unless_asked() -> None:
    frame = make_sweep(seeds=(0, 1, 2))
    with pytest.raises(LionSweepError, match=r"confirm seeds \[1\] are sweep seeds"):
        check_seeds(frame["seed"].unique().tolist(), [1, 7])
    check_seeds(frame["seed"].unique().tolist(), [7, 8])


# ------------------------------------------------------------------ picking


def test_plan_picks_the_default_and_the_honest_choice() -> None:
    frame = make_sweep()
    picks = plan(frame, FINAL)
    chosen = select_honest(config_table(check_sweep(frame), FINAL))
    chosen = chosen.set_index(["dataset", "optimizer"])
    assert len(picks) == 2 * len(chosen)
    for row in picks.itertuples():
        sweep_rows = frame[(frame.dataset == row.dataset) & (frame.optimizer == row.optimizer)]
        if row.role == "default":
            assert row.config_id == sweep_rows.loc[sweep_rows.is_default, "config_id"].iloc[0]
        else:
            assert row.config_id == chosen.loc[(row.dataset, row.optimizer), "config_id"]
        same = sweep_rows[sweep_rows.config_id == row.config_id].iloc[0]
        assert (row.lr, row.beta1, row.weight_decay) == (same.lr, same.beta1, same.weight_decay)


def test_plan_records_a_failed_selection() -> None:
    frame = make_sweep()
    diverge(frame, (frame.optimizer == "lion") & (frame.dataset == "toy") & ~frame.is_default)
    picks = plan(frame, FINAL).set_index(["dataset", "optimizer", "role"])
    lost = picks.loc[("toy", "lion", "tuned")]
    assert pd.isna(lost.config_id) and lost.note == NO_GRID_POINT
    assert picks.loc[("toy", "lion", "default"), "note"] == ""


@pytest.mark.parametrize("degenerate", [False, True])
def test_plan_from_the_summary_is_the_plan_from_rows(
    tmp_path: Path, degenerate: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 19: confirm selects from summary.parquet one (dataset, optimizer) at a time
    (the rows of a 100x sweep held 5 GB); the picks are those of the sweep's rows, a pair
    without a working grid point included, and no read holds another pair's rows."""
    import lionsweep.sweep.summary as summary_module

    frame = make_sweep(datasets=("toy", "wide"), optimizers=("lion", "adamw", "sgd"))
    if degenerate:
        diverge(frame, (frame.optimizer == "lion") & (frame.dataset == "toy") & ~frame.is_default)
    summary = tmp_path / "summary.parquet"
    # row groups of a few configurations, as the summary's ranges are written
    pq.write_table(summary_table(summarize(frame)), summary, row_group_size=7)
    read: list[set[tuple[str, str]]] = []
    real = summary_module.configs
    monkeypatch.setattr(
        summary_module,
        "configs",
        lambda s, m: read.append(set(zip(s.dataset, s.optimizer, strict=True))) or real(s, m),
    )
    groups = summary_groups(summary)
    pairs = frame.groupby(["dataset", "optimizer"]).size().index.tolist()
    assert list(groups) == pairs
    assert set(groups.values()) == {"acc"}
    picks, largest = plan_summary(summary, FINAL, list(groups))
    assert largest == frame.groupby(["dataset", "optimizer"])["config_id"].nunique().max()
    pd.testing.assert_frame_equal(picks, plan(frame, FINAL), check_exact=True)
    assert [len(r) for r in read] == [1] * len(groups)


# ------------------------------------------------------------------ training (real engine)


def prepared_folder(path: Path, dataset: str = "toy", n: int = 48) -> Path:
    """A tiny prepared dataset as `lionsweep prepare` writes it (splits + meta.json)."""
    rng = np.random.default_rng(3)
    path.mkdir(parents=True)
    for split in ("train", "val", "test"):
        x = rng.normal(size=(n, 3)).astype(np.float32)
        y = (x[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(np.int8)
        table = {f"f{i}": x[:, i] for i in range(3)} | {"target": y}
        pq.write_table(pa.table(table), path / f"{split}.parquet")
    (path / "meta.json").write_text(json.dumps({"dataset": dataset, "task": "binary"}))
    return path


def test_confirm_trains_every_seed_and_keeps_a_failed_selection_as_na(tmp_path: Path) -> None:
    frame = make_sweep(datasets=("toy",), seeds=(0, 1))
    diverge(frame, (frame.optimizer == "lion") & ~frame.is_default)
    table = confirm(frame, {"toy": prepared_folder(tmp_path / "toy")}, [5, 6, 7], SETTINGS, FINAL)
    out = table.to_pandas()
    assert len(out) == 2 * 2 * 3  # optimizers x roles x seeds
    lion = out[(out.optimizer == "lion") & (out.role == "tuned")]
    assert lion.config_id.isna().all() and (lion.note == NO_GRID_POINT).all()
    assert lion.test_acc.isna().all()
    trained = out[out.config_id.notna()]
    assert trained.test_acc.between(0, 1).all() and sorted(trained.seed.unique()) == [5, 6, 7]
    assert "shard" not in out.columns and set(out.role) == {"default", "tuned"}
    again = confirm(frame, {"toy": tmp_path / "toy"}, [5, 6, 7], SETTINGS, FINAL)
    pd.testing.assert_frame_equal(
        again.to_pandas().drop(columns=["wall_time_s"]), out.drop(columns=["wall_time_s"])
    )  # same config + seeds => identical numbers


def test_confirm_cli_error_is_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "sweep.parquet"
    to_parquet(make_sweep(datasets=("toy",)), path)
    argv = ["confirm", "--sweep", str(path), "--data", str(tmp_path / "nothing")]
    argv += ["--seeds", "0 9", "--settings", json.dumps(SETTINGS), "--output", str(tmp_path / "c")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lionsweep confirm: error: confirm seeds [0] are sweep seeds")
    assert main([*argv[:-4], "--seeds", "9", *argv[-4:-2], "--output", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lionsweep confirm: error:") and "nothing/meta.json" in err
    assert "\n" not in err and not (tmp_path / "c").exists()
    other = prepared_folder(tmp_path / "other", dataset="other")
    base = ["confirm", "--sweep", str(path), "--seeds", "9", "--settings", json.dumps(SETTINGS)]
    base += ["--output", str(tmp_path / "c")]
    assert main([*base, "--data", str(other)]) == 2
    err = capsys.readouterr().err
    assert (
        err == "lionsweep confirm: error: --data: no prepared data folder for dataset(s) ['toy']\n"
    )
    assert main([*base, "--data", str(other), "--results", '{"top": 3}']) == 2
    err = capsys.readouterr().err
    assert err == "lionsweep confirm: error: --results: unknown results key(s) ['top']\n"
    assert not (tmp_path / "c").exists()


# ------------------------------------------------------------------ tables and claims


def fake_confirm(gain: dict[str, float], n: int = 12, spread: float = 0.02) -> pd.DataFrame:
    """confirm.parquet's reading columns: lion and adamw on three datasets, n seeds."""
    rng = np.random.default_rng(11)
    rows = []
    for dataset, optimizer in itertools.product(gain, ("lion", "adamw")):
        for seed in range(100, 100 + n):
            base = 0.70 + rng.normal(0, spread)
            for role, acc in (("default", base), ("tuned", base + gain[dataset])):
                acc = float(np.clip(acc + rng.normal(0, spread), 0, 1))
                rows.append({"dataset": dataset, "optimizer": optimizer, "seed": seed,
                             "role": role, "config_id": 1 if role == "tuned" else 0,
                             "primary_metric": "acc", "note": "", "test_acc": acc,
                             "lr": 1e-3, "beta1": 0.9, "weight_decay": 0.0})  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["config_id"] = frame["config_id"].astype("Int64")
    return frame


def test_confirmed_table_against_scipy() -> None:
    conf = fake_confirm({"titanic": 0.12, "spambase": 0.02, "mushroom": 0.0})
    table = confirmed_table(conf, FINAL, 0.95).set_index(["dataset", "optimizer"])
    rows = conf[(conf.dataset == "titanic") & (conf.optimizer == "lion")]
    tuned = rows[rows.role == "tuned"].set_index("seed").test_acc
    base = rows[rows.role == "default"].set_index("seed").test_acc
    d = (tuned - base).to_numpy()
    row = table.loc[("titanic", "lion")]
    lo, hi = sps.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=sps.sem(d))
    assert row.gain_mean == pytest.approx(d.mean(), abs=1e-12)
    assert (row.gain_lo, row.gain_hi) == pytest.approx((lo, hi), abs=1e-12)
    assert row.gain_width_points == pytest.approx(100 * (hi - lo), abs=1e-9)
    assert row.p_ttest == pytest.approx(sps.ttest_rel(tuned, base).pvalue, abs=1e-12)
    # exact sign-flip p-value, enumerated here independently: all 2^12 sign patterns
    flips = np.array(list(itertools.product((1, -1), repeat=len(d))))
    means = np.abs((flips * d).mean(axis=1))
    assert row.p_signflip == pytest.approx(np.mean(means >= abs(d.mean()) - 1e-12), abs=1e-12)
    assert row.gain_boot_lo < row.gain_mean < row.gain_boot_hi
    assert row.default_test_acc_lo >= 0 and row.test_acc_hi <= 1  # clipped to [0, 1]
    assert row.n_seeds == 12 and row.first_seed == 100


def test_confirmed_table_reports_a_failed_selection_and_diverged_seeds() -> None:
    conf = fake_confirm({"titanic": 0.1, "spambase": 0.0, "mushroom": 0.0}, n=4)
    lost = (conf.dataset == "spambase") & (conf.optimizer == "lion") & (conf.role == "tuned")
    conf.loc[lost, ["config_id", "test_acc", "note"]] = [pd.NA, np.nan, NO_GRID_POINT]
    diverged = (conf.dataset == "titanic") & (conf.role == "tuned") & (conf.seed == 101)
    conf.loc[diverged, "test_acc"] = np.nan
    table = confirmed_table(conf, FINAL, 0.95).set_index(["dataset", "optimizer"])
    assert table.loc[("spambase", "lion"), "note"] == NO_GRID_POINT
    assert math.isnan(table.loc[("spambase", "lion"), "gain_mean"])
    assert not math.isnan(table.loc[("spambase", "lion"), "default_test_acc_mean"])
    # one policy (lionsweep.results.stats): the diverged seed is left out of every number of the row
    titanic = table.loc[("titanic", "lion")]
    assert titanic["note"] == "diverged in 1 of 4 seeds (left out)"
    assert titanic["n_seeds"] == 3
    kept = conf[(conf.dataset == "titanic") & (conf.optimizer == "lion") & (conf.seed != 101)]
    base = kept[kept.role == "default"].test_acc
    assert titanic["default_test_acc_mean"] == pytest.approx(base.mean(), abs=1e-12)
    assert not math.isnan(titanic["p_signflip"]) and titanic["p_signflip"] > 0


def claims_with(conf: pd.DataFrame) -> pd.DataFrame:
    frame = check_sweep(make_sweep(datasets=("titanic", "spambase", "mushroom")))
    return run_tables(frame, {}, confirm=conf)["claims_check"]


def test_claims_gain_the_confirmed_protocol_and_say_when_still_uncertain() -> None:
    # Titanic's gain 11 points, noisy: "about 15 (10 to 20)" stays open at 6 seeds
    conf = fake_confirm({"titanic": 0.11, "spambase": 0.0, "mushroom": 0.0}, n=6, spread=0.03)
    claims = claims_with(conf)
    confirmed = claims[claims.protocol == f"{CONFIRMED} on 6 fresh seeds"].set_index("claim")
    assert len(confirmed) == 4
    titanic = confirmed.loc["Titanic: tuning gains about 15 points (read as 15 +- 5)"]
    expected = 100 * gains(conf, "lion", FINAL)["titanic"]
    assert titanic.value_points == pytest.approx(expected.mean(), abs=1e-9)
    assert titanic.ci_verdict == "inconclusive"
    width = titanic.ci_hi_points - titanic.ci_lo_points
    note = f"genuinely uncertain at 6 seeds: interval width {width:.1f} points"
    bound = 10 if titanic.ci_lo_points <= 10 else 20
    assert f"{note}, which holds the claim's bound {bound}" in titanic.note
    most = confirmed.loc["Tuning matters most on the small dataset (Titanic)"]
    assert most.ci_verdict == "holds" and "uncertain" not in most.note
    # the sweep-seed protocols are unchanged by the confirmation
    without = run_tables(check_sweep(make_sweep(datasets=("titanic", "spambase", "mushroom"))), {})
    old = claims[~claims.protocol.str.startswith(CONFIRMED)].reset_index(drop=True)
    pd.testing.assert_frame_equal(old, without["claims_check"])
    assert without["confirmed"].empty


def test_tables_cli_reads_confirm_parquet(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep.parquet"
    to_parquet(make_sweep(datasets=("titanic", "spambase", "mushroom")), sweep)
    conf = tmp_path / "confirm.parquet"
    fake_confirm({"titanic": 0.11, "spambase": 0.0, "mushroom": 0.0}).to_parquet(conf)
    outdir = tmp_path / "tables"
    argv = ["tables", "--sweep", str(sweep), "--confirm", str(conf), "--outdir", str(outdir)]
    assert main(argv) == 0
    shown = pd.read_csv(outdir / "confirmed.csv")
    assert len(shown) == 6 and shown.n_seeds.eq(12).all()
    text = (outdir / "confirmed.md").read_text()
    assert "fresh seeds the sweep did not use" in text and "clipped" in text
    bad = tmp_path / "bad.parquet"
    fake_confirm({"titanic": 0.1}).drop(columns=["role"]).to_parquet(bad)
    with pytest.raises(LionSweepError, match=r"bad.parquet: missing columns \['role'\]"):
        load_confirm(bad, FINAL)


def test_tables_cli_bad_confirm_files_are_one_line(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep.parquet"
    to_parquet(make_sweep(datasets=("titanic", "spambase", "mushroom")), sweep)
    only = tmp_path / "only_titanic.parquet"
    fake_confirm({"titanic": 0.1}).to_parquet(only)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"PAR1 not really")
    twice = tmp_path / "twice.parquet"
    conf = fake_confirm({"titanic": 0.1, "spambase": 0.0, "mushroom": 0.0})
    pd.concat([conf, conf.iloc[:1]]).to_parquet(twice)
    role = tmp_path / "role.parquet"
    conf.assign(role="best").to_parquet(role)
    expected = {
        only: f"{only} has no rows for dataset ['mushroom', 'spambase']",
        garbage: f"{garbage}: not a readable confirmation table",
        twice: f"{twice}: duplicate (dataset, optimizer, seed, role) rows",
        role: f"{role}: column role holds ['best']; expected default or tuned",
    }
    for path, message in expected.items():
        outdir = tmp_path / path.stem
        argv = ["tables", "--sweep", str(sweep), "--confirm", str(path), "--outdir", str(outdir)]
        argv += ["--datasets", "titanic", "spambase", "mushroom"]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"lionsweep tables: error: {message}") and err.count("\n") == 1
        assert not outdir.exists()  # nothing half-written


# ------------------------------------------------------------------ trade-off


def test_seeds_tradeoff_widths_shrink_and_the_full_set_matches_claims() -> None:
    conf = fake_confirm({"titanic": 0.11, "spambase": 0.0, "mushroom": 0.0}, n=12)
    table = seeds_tradeoff(conf, [3, 6, 12], draws=200)
    titanic = table[table.claim.str.startswith("Titanic: tuning")].set_index("n_seeds")
    assert titanic.width_points.is_monotonic_decreasing
    assert titanic.loc[12, "subsets"] == 1 and titanic.decided.between(0, 1).all()
    claims = claims_with(conf)
    full = claims[claims.protocol == f"{CONFIRMED} on 12 fresh seeds"].set_index("claim")
    row = full.loc["Titanic: tuning gains about 15 points (read as 15 +- 5)"]
    assert titanic.loc[12, "width_points"] == pytest.approx(row.ci_hi_points - row.ci_lo_points)
    assert titanic.loc[12, "verdict_all_seeds"] == row.ci_verdict
    with pytest.raises(LionSweepError, match=r"seed counts \[40\]"):
        seeds_tradeoff(conf, [40])


# ------------------------------------------------------------------ the real run


@pytest.mark.slow
def test_workflow_confirms_on_fresh_seeds_and_reproduces_the_sweep(finished: Path) -> None:
    results = finished / "results" / "test"
    conf = pd.read_parquet(results / "confirm.parquet")
    sweep = pd.read_parquet(results / "sweep.parquet")
    assert set(conf.seed).isdisjoint(sweep.seed) and sorted(set(conf.seed)) == [1000, 1001, 1002]
    assert len(conf) == 3 * 2 * 2 * 3  # datasets x optimizers x roles x seeds
    honest = pd.read_csv(results / "tables" / "honest_table.csv").set_index(
        ["dataset", "optimizer"]
    )
    tuned = conf[conf.role == "tuned"].groupby(["dataset", "optimizer"]).config_id.first()
    for key, cid in tuned.items():
        assert cid == honest.loc[key, "config_id"]
    table = pd.read_csv(results / "tables" / "confirmed.csv")
    assert len(table) == 6 and table.n_seeds.eq(3).all()
    claims = pd.read_csv(results / "tables" / "claims_check.csv")
    assert (claims.protocol == f"{CONFIRMED} on 3 fresh seeds").sum() == 4
    assert (finished / "logs" / "test" / "confirm.log").read_text().startswith("confirm ")

    # given the sweep's seeds, the stage trains exactly what the sweep trained
    data = sorted(str(p.parent) for p in (finished / "results" / "data").glob("*/*/meta.json"))
    cfg = json.loads(subprocess.check_output(
        [sys.executable, "-c", "import yaml, json; from snakemake.utils import update_config; "
         "c = yaml.safe_load(open('config/config.yaml')); "
         "update_config(c, yaml.safe_load(open('config/test.yaml'))); "
         "t = {k: v for k, v in c['training'].items() "
         "if k not in ('threads', 'memory_budget_mb', 'runtime_min')}; "
         "print(json.dumps({**c['model'], **t}))"], cwd=finished, text=True))  # fmt: skip
    out = finished / "consistency.parquet"
    argv = ["confirm", "--sweep", str(results / "sweep.parquet"), "--data", *data]
    argv += ["--seeds", "0 1", "--settings", json.dumps(cfg), "--threads", "1"]
    assert main([*argv, "--allow-sweep-seeds", "--output", str(out)]) == 0
    again = pd.read_parquet(out)
    merged = again.merge(sweep, on=KEYS, suffixes=("", "_sweep"))
    assert len(merged) == len(again) == 2 * 6 * 2
    for col in sorted(set(again.columns) - set(KEYS) - VOLATILE):
        a, b = merged[col], merged[f"{col}_sweep"]
        if col.startswith("curve_"):
            assert all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b, strict=True))
        else:
            assert ((a == b) | (a.isna() & b.isna())).all(), col  # bit-identical


@pytest.mark.slow
@pytest.mark.parametrize(
    "override",
    [
        {"confirm": {"seeds": 4}},
        {"confirm": {"first_seed": 50}},
        {"results": {"honest_metrics": "best_epoch"}},
    ],
    ids=["seeds", "first_seed", "honest_metrics"],
)
def test_confirm_settings_rerun_the_confirmation_alone(finished: Path, mirror, override) -> None:
    """What the confirmation reads reruns it (and the tables), never the grid sweep."""
    from conftest import snakemake

    (finished / "config" / "override.yaml").write_text(json.dumps(override))
    args = ("-n", "--configfile", "config/test.yaml", "config/override.yaml")
    plan = snakemake(finished, *args, mirror=mirror).stdout
    assert "rule confirm:" in plan and "rule tables:" in plan
    assert "rule train_shard:" not in plan and "rule aggregate:" not in plan


def test_confirm_reads_only_the_columns_selection_needs(tmp_path: Path, monkeypatch) -> None:
    """At 6 M rows every metric column of the sweep cost confirm gigabytes (issue 19):
    it reads the keys, hyperparameters and the primary metric's columns, not the rest."""
    import pyarrow.parquet as pq

    path = tmp_path / "sweep.parquet"
    to_parquet(make_sweep(datasets=("toy",)), path)
    read: list[str] = []
    real = pq.read_table

    def recording(source, columns=None, **kw):
        read.extend(columns if columns is not None else pq.read_schema(source).names)
        return real(source, columns=columns, **kw)

    monkeypatch.setattr(pq, "read_table", recording)
    argv = ["confirm", "--sweep", str(path), "--data", str(tmp_path / "nothing"), "--seeds", "9"]
    assert main([*argv, "--settings", json.dumps(SETTINGS), "--output", str(tmp_path / "c")]) == 2
    assert {"config_id", "val_acc", "best_val_acc"} <= set(read)  # it did read the sweep
    assert not {"test_f1", "val_auc", "wall_time_s", "curve_val_acc"} & set(read)
