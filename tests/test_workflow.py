"""End to end: the test configuration through real Snakemake runs on the real data.

Covers what only a whole run shows: every rule runs, the sweep table has the
documented schema and is readable by other engines, a run is reproducible
however it was sharded or interrupted, and config changes rerun only what
they must.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import copy_workflow, snakemake
from lionsweep.sweep.grid import grid_size, grid_spec, n_shards

pytestmark = pytest.mark.slow

TEST_CONFIG = ("--configfile", "config/test.yaml")
RESULTS = Path("results/test")  # the test study's outputs (study.name: test)
# Columns that legitimately differ between two runs of the same configuration.
VOLATILE = ["wall_time_s", "device"]
KEYS = ["dataset", "optimizer", "seed", "config_id"]


def merged_test_config(workdir: Path) -> dict:
    """config.yaml updated by test.yaml, as Snakemake merges them."""
    from snakemake.utils import update_config

    cfg = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    update_config(cfg, yaml.safe_load((workdir / "config" / "test.yaml").read_text()))
    return cfg


def expected(workdir: Path, what: str) -> int:
    """Rows of the sweep table, or shard files, that the test configuration makes."""
    cfg = merged_test_config(workdir)
    per_grid = {"rows": grid_size, "shards": lambda s: n_shards(s, cfg["sweep"]["shard_size"])}
    return sum(
        per_grid[what](grid_spec(cfg, d, o)) * len(cfg["sweep"]["seeds"])
        for d in cfg["study"]["datasets"]
        for o in cfg["study"]["optimizers"]
    )


def comparable(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path).drop(columns=VOLATILE)
    return frame.sort_values(KEYS).reset_index(drop=True)


def incomplete(workdir: Path) -> set[str]:
    """Outputs Snakemake had not registered as finished when it stopped (it keeps a
    base64-named marker per output in .snakemake/incomplete)."""
    markers = workdir / ".snakemake" / "incomplete"
    if not markers.is_dir():
        return set()
    return {base64.urlsafe_b64decode(m.name).decode() for m in markers.iterdir() if m.is_file()}


def digests(workdir: Path) -> dict[str, tuple[str, int]]:
    """(sha256, mtime) of every shard Snakemake knows as finished."""
    out = {}
    unfinished = incomplete(workdir)
    for path in sorted((workdir / RESULTS / "shards").rglob("*.parquet")):
        if str(path.relative_to(workdir)) in unfinished:
            continue
        out[str(path.relative_to(workdir))] = (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_mtime_ns,
        )
    return out


def test_every_dataset_prepared_as_the_paper(finished: Path) -> None:
    for name, rows in {"titanic": 143, "spambase": 921, "mushroom": 1625}.items():
        (meta_path,) = (finished / "results" / "data" / name).glob("*/meta.json")
        meta = json.loads(meta_path.read_text())
        assert meta["rows"]["test"] == rows
    (log,) = (finished / "logs" / "data" / "titanic").glob("*.log")
    assert log.read_text().startswith("titanic:")


def test_sweep_table_schema_and_engines(finished: Path) -> None:
    path = finished / RESULTS / "sweep.parquet"
    frame = pd.read_parquet(path)
    assert len(frame) == expected(finished, "rows")
    assert not frame.duplicated(KEYS).any()
    assert set(frame.dataset) == {"titanic", "spambase", "mushroom"}
    assert set(frame.optimizer) == {"lion", "adamw"}
    # one default configuration per (dataset, optimizer, seed)
    assert frame.groupby(["dataset", "optimizer", "seed"]).is_default.sum().eq(1).all()
    for column in [
        "lr",
        "beta1",
        "beta2",
        "weight_decay",
        "test_acc",
        "val_auc",
        "best_epoch",
        "curve_val_loss",
        "curve_val_acc",
        "diverged",
        "diverged_epoch",
        "device",
        "lionsweep_version",
        "engine_version",
        "wall_time_s",
        "shard",
    ]:
        assert column in frame.columns, column
    assert frame.curve_val_acc.map(len).eq(frame.epochs).all()
    # the task from the prepared data, named in the table (tables need no meta.json)
    assert set(frame.task) == {"binary"} and set(frame.primary_metric) == {"acc"}
    assert list(frame.columns[:3]) == ["dataset", "task", "primary_metric"]
    # every registry hyperparameter is a column; NaN where the optimizer has none
    assert frame[["momentum", "nesterov"]].isna().all().all()
    assert frame[frame.optimizer == "lion"].eps.isna().all()
    ok = frame[~frame.diverged]
    assert ok.test_acc.between(0, 1).all() and ok.test_acc.notna().all()
    # the Lion defaults really are the paper's
    lion_default = frame[(frame.optimizer == "lion") & frame.is_default].iloc[0]
    assert (lion_default.lr, lion_default.beta1, lion_default.beta2) == (1e-4, 0.9, 0.99)
    # readable by other engines without custom code
    import duckdb
    import polars as pl

    assert pl.read_parquet(path).height == len(frame)
    count, mean = duckdb.sql(
        f"select count(*), avg(test_acc) from '{path}' where not diverged"
    ).fetchall()[0]
    assert count == len(ok) and mean == pytest.approx(ok.test_acc.mean())
    assert pq.read_schema(path).field("curve_val_loss").type.value_type.bit_width == 32


def test_rerun_does_nothing(finished: Path, mirror: Path) -> None:
    proc = snakemake(finished, "-n", *TEST_CONFIG, mirror=mirror)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_sharding_does_not_change_numbers(finished: Path, tmp_path: Path) -> None:
    """A whole grid trained as one shard equals the same grid trained in shards."""
    from lionsweep.sweep.shards import ShardJob, train_shard

    cfg = yaml.safe_load((finished / "config" / "test.yaml").read_text())
    settings = {**cfg["model"], **cfg["training"]}
    out = tmp_path / "one.parquet"
    grid = finished / RESULTS / "grids/spambase/lion.parquet"
    (data,) = (finished / "results/data/spambase").glob("*/")
    whole = (0, pq.read_metadata(grid).num_rows)  # the whole grid as one shard
    job = ShardJob(grid, data, "spambase", "lion", 1, 0, whole, settings, out, threads=1)
    table = train_shard(job, progress=False)
    alone = table.to_pandas().drop(columns=[*VOLATILE, "shard"])
    sweep = comparable(finished / RESULTS / "sweep.parquet").drop(columns=["shard"])
    sharded = sweep[(sweep.dataset == "spambase") & (sweep.optimizer == "lion") & (sweep.seed == 1)]
    pd.testing.assert_frame_equal(
        alone.reset_index(drop=True), sharded.reset_index(drop=True), check_exact=True
    )


def _dry_run_shards(workdir: Path, mirror: Path, *configs: str) -> set[str]:
    args = ["-n", "--configfile", *configs]
    proc = snakemake(workdir, *args, mirror=mirror)
    return set(re.findall(r"output: (results/test/shards/\S+\.parquet)", proc.stdout))


def test_changes_rerun_only_what_they_must(finished: Path, mirror: Path) -> None:
    config = finished / "config"
    (config / "more_seeds.yaml").write_text(yaml.safe_dump({"sweep": {"seeds": [0, 1, 7]}}))
    planned = _dry_run_shards(finished, mirror, "config/test.yaml", "config/more_seeds.yaml")
    assert planned and all("/seed7/" in p for p in planned)

    (config / "titanic_grid.yaml").write_text(
        yaml.safe_dump(
            {
                "optimizers": {
                    "lion": {
                        "grid_overrides": {
                            "titanic": [
                                {"param": "lr", "values": [1e-4, 1e-3, 1e-2]},
                                {"param": "beta1", "values": [0.8, 0.9]},
                                {"param": "weight_decay", "values": [0.0, 0.05]},
                            ]
                        }
                    }
                }
            }
        )
    )
    planned = _dry_run_shards(finished, mirror, "config/test.yaml", "config/titanic_grid.yaml")
    assert planned and all(p.startswith("results/test/shards/titanic/lion/") for p in planned)

    (config / "no_titanic.yaml").write_text(
        yaml.safe_dump({"study": {"datasets": ["spambase", "mushroom"]}})
    )
    assert _dry_run_shards(finished, mirror, "config/test.yaml", "config/no_titanic.yaml") == set()


def _interrupt(workdir: Path, mirror: Path, sig: signal.Signals, after_shards: int) -> None:
    env = dict(os.environ, LIONSWEEP_DATA_MIRROR=str(mirror))
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env["PATH"]))
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "snakemake"), "--cores", "2", *TEST_CONFIG],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if (workdir / RESULTS / "shards").is_dir() and len(digests(workdir)) >= after_shards:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    os.killpg(proc.pid, sig)
    proc.wait(timeout=120)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_kill_and_resume(finished: Path, mirror: Path, tmp_path: Path, sig) -> None:
    workdir = copy_workflow(tmp_path / "wf")
    total = expected(workdir, "shards")
    _interrupt(workdir, mirror, sig, after_shards=4)
    before = digests(workdir)
    assert 4 <= len(before) < total
    assert not (workdir / RESULTS / "sweep.parquet").exists()
    # no readable partial shard: every shard file present is a complete Parquet file
    for rel in before:
        pq.read_table(workdir / rel)
    if sig == signal.SIGKILL:  # a killed Snakemake cannot remove its lock
        snakemake(workdir, "--unlock", *TEST_CONFIG, mirror=mirror)
    proc = snakemake(workdir, "--cores", "2", "--rerun-incomplete", *TEST_CONFIG, mirror=mirror)
    after = digests(workdir)
    for rel, stamp in before.items():
        assert after[rel] == stamp, f"{rel} was recomputed"
    assert len(after) == total
    ran = re.findall(r"rule train_shard:", proc.stdout + proc.stderr)
    assert len(ran) == total - len(before)  # only the missing shards were trained
    pd.testing.assert_frame_equal(
        comparable(workdir / RESULTS / "sweep.parquet"),
        comparable(finished / RESULTS / "sweep.parquet"),
        check_exact=True,
    )


def test_tables_and_figures_regenerate_from_shards_without_training(
    finished: Path, mirror: Path
) -> None:
    results = finished / RESULTS
    before = digests(finished)
    (results / "sweep.parquet").unlink()
    for sub in ("tables", "figures"):
        for path in (results / sub).iterdir():
            path.unlink()
    proc = snakemake(finished, "tables", "figures", "--cores", "2", *TEST_CONFIG, mirror=mirror)
    output = proc.stdout + proc.stderr
    assert "rule train_shard" not in output and "rule prepare" not in output
    assert re.search(r"rule aggregate", output)
    assert digests(finished) == before
    assert (results / "tables" / "paper_table.csv").is_file()
    assert (results / "figures" / "heatmap_titanic.png").is_file()


def test_a_results_option_retrains_nothing(finished: Path, mirror: Path) -> None:
    (finished / "config" / "top5.yaml").write_text(yaml.safe_dump({"results": {"top_k": 5}}))
    proc = snakemake(
        finished, "-n", "--configfile", "config/test.yaml", "config/top5.yaml", mirror=mirror
    )
    assert "rule train_shard" not in proc.stdout and "rule confirm" not in proc.stdout
    assert "rule tables" in proc.stdout


def test_budget_curve_by_configuration_alone(finished: Path, mirror: Path) -> None:
    """`results.budget_curve` naming the study's own sweep plans the `budget` rule, which
    writes the table and figure; its whole-grid rows are the honest table's choice."""
    (finished / "config" / "budget_self.yaml").write_text(
        yaml.safe_dump({"results": {"budget_curve": [{"study": "test", "kind": "subsets"}]}})
    )
    target = str(RESULTS / "tables" / "budget_curve.csv")
    configs = ("--configfile", "config/test.yaml", "config/budget_self.yaml")
    snakemake(finished, target, "--cores", "1", *configs, mirror=mirror)
    table = pd.read_csv(finished / target)
    honest = pd.read_csv(finished / RESULTS / "tables" / "honest_table.csv")
    full = table[table["n_candidates"] == table["n_grid"]].merge(
        honest, on=["dataset", "optimizer"]
    )
    assert len(full) == len(honest) and (full["config_id_x"] == full["config_id_y"]).all()
    assert full["test_acc_mean_x"].to_numpy() == pytest.approx(full["test_acc_mean_y"].to_numpy())
    assert (finished / RESULTS / "figures" / "budget_curve.png").stat().st_size > 10_000
    # another study's sweep that was never run: the run stops before any job, naming it
    for path in (finished / RESULTS).glob("*/budget_curve.*"):
        path.unlink()
    (finished / "config" / "budget_other.yaml").write_text(
        yaml.safe_dump({"results": {"budget_curve": [{"study": "nothere", "kind": "samples"}]}})
    )
    proc = snakemake(
        finished,
        "-n",
        "--configfile",
        "config/test.yaml",
        "config/budget_other.yaml",
        mirror=mirror,
        check=False,
    )
    assert proc.returncode != 0 and "results/nothere/sweep.parquet" in proc.stdout + proc.stderr
