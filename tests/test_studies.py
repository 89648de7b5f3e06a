"""Studies as a new user runs them: own data and own grids beside the test study, a
changed setting after a failed run, a damaged shard, and errors that reach the console.

Each test works on its own copy of the finished test study (tests/conftest.py), so the
order of tests does not matter. Every command given to Snakemake is one the README or
docs/own-study.md gives.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import copy_run, copy_workflow, snakemake, snapshot

pytestmark = pytest.mark.slow

TEST = ("--configfile", "config/test.yaml")
OWN = ("--configfile", "config/own.yaml")
NOTHING = "Nothing to be done"
VOLATILE = ["wall_time_s", "device"]
KEYS = ["dataset", "optimizer", "seed", "config_id"]


def people_csv(folder: Path, n: int = 240) -> Path:
    """A small CSV of a user's own: numeric and categorical features, a yes/no label."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "height": rng.normal(170, 10, n).round(1),
            "colour": rng.choice(["red", "green", "blue"], n),
            "weight": rng.normal(70, 8, n).round(1),
        }
    )
    frame["label"] = np.where(frame.height + 5 * (frame.colour == "red") > 172, "yes", "no")
    folder.mkdir(parents=True)
    path = folder / "my data.csv"  # a space in the name: every shell path must be quoted
    frame.to_csv(path, index=False)
    return path


def own_study(workdir: Path, csv: Path) -> None:
    """config/own.yaml: a study named `own` on the user's file and on Titanic prepared
    differently from the test study (another split seed), with a Lion grid of its own
    (a positive weight decay in it: the effective-decay figure has a log axis)."""
    own = {
        "study": {"name": "own", "datasets": ["people", "titanic"], "optimizers": ["lion"]},
        "data_mirror": str(csv.parent),
        "split": {"seed": 7},
        # other download settings: Titanic's raw file is still shared, never refetched
        "download": {"timeout_s": 5, "retries": 0},
        "datasets": {
            "people": {
                "file": csv.name,
                "sha256": hashlib.sha256(csv.read_bytes()).hexdigest(),
                "read": {"header": True},
                "target": "label",
                "positive": "yes",
                "features": None,
                "categorical": ["colour"],
                "dropna": True,
                "rows": 240,
            }
        },
        "model": {"hidden": 16},
        "training": {"epochs": 3, "threads": 1, "memory_budget_mb": 512},
        "sweep": {"seeds": [0], "shard_size": 100},
        "optimizers": {
            "lion": {
                "grid": [
                    {"param": "lr", "values": [1e-3, 1e-2]},
                    {"param": "weight_decay", "values": [0.0, 0.1]},
                ],
                "grid_overrides": {"titanic": None},  # drop the paper's Titanic grid
            }
        },
    }
    (workdir / "config" / "own.yaml").write_text(yaml.safe_dump(own))


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def regenerate(workdir: Path, study: str, config: tuple[str, ...], mirror: Path) -> None:
    """The commands docs/own-study.md gives for one study: tables and figures, then the report."""
    for sub in ("tables", "figures"):
        for path in (workdir / "results" / study / sub).iterdir():
            path.unlink()
    proc = snakemake(workdir, "tables", "figures", "--cores", "2", *config, mirror=mirror)
    assert "rule tables" in output(proc) and "rule figures" in output(proc)
    for rule in ("train_shard", "prepare", "aggregate", "fetch"):
        assert f"rule {rule}" not in output(proc)
    again = snakemake(workdir, "tables", "figures", "--cores", "2", *config, mirror=mirror)
    assert NOTHING in output(again)
    report = f"results/{study}/report.html"
    snakemake(workdir, "--report", report, *config, mirror=mirror)
    assert "Two selection protocols" in (workdir / report).read_text()
    assert NOTHING in output(snakemake(workdir, "-n", *config, mirror=mirror))


def test_own_study_beside_the_test_study(finished: Path, mirror: Path, tmp_path: Path) -> None:
    workdir = copy_run(finished, tmp_path / "wf")
    assert NOTHING in output(snakemake(workdir, "-n", *TEST, mirror=mirror))
    own_study(workdir, people_csv(tmp_path / "mine"))
    test_files = snapshot(workdir)

    proc = snakemake(workdir, "--cores", "2", *OWN, mirror=mirror)
    # onstart: one line per (dataset, optimizer), with where its grid came from
    for dataset in ("people", "titanic"):
        line = f"grid {dataset}/lion: 5 configurations (lr: 2, weight_decay: 2; + the default)"
        assert f"{line} from optimizers.lion.grid\n" in output(proc)
    # one fetch (the user's file): Titanic's raw file is shared, whatever the download settings
    assert len(re.findall(r"rule fetch:", output(proc))) == 1
    after = snapshot(workdir)
    assert {k: after[k] for k in test_files} == test_files  # nothing of the test study changed

    # the user's file, with a space in its name, went through every rule
    raw = (
        workdir
        / "results/raw/people"
        / hashlib.sha256((tmp_path / "mine/my data.csv").read_bytes()).hexdigest()[:16]
        / "my data.csv"
    )
    assert raw.read_bytes() == (tmp_path / "mine/my data.csv").read_bytes()
    (meta,) = (workdir / "results/data/people").glob("*/meta.json")
    meta = json.loads(meta.read_text())
    assert meta["features"] == ["height", "weight", "colour=blue", "colour=green", "colour=red"]
    assert meta["rows"]["test"] == 48
    # Titanic defined differently (split seed) is prepared beside the test study's copy
    titanic = sorted((workdir / "results/data/titanic").glob("*/meta.json"))
    assert len(titanic) == 2
    assert {json.loads(p.read_text())["split"]["seed"] for p in titanic} == {42, 7}
    # grids as written (Titanic's paper override dropped): two axes and the default
    grid = pd.read_parquet(workdir / "results/own/grids/titanic/lion.parquet")
    assert grid.lr.tolist() == [1e-3, 1e-3, 1e-2, 1e-2, 1e-4]
    assert grid.weight_decay.tolist() == [0.0, 0.1, 0.0, 0.1, 0.0]
    assert set(grid.beta1) == {0.9} and set(grid.beta2) == {0.99}
    sweep = pd.read_parquet(workdir / "results/own/sweep.parquet")
    assert sorted(set(sweep.dataset)) == ["people", "titanic"] and set(sweep.optimizer) == {"lion"}
    assert len(sweep) == 2 * 5
    assert (workdir / "logs/own/aggregate.log").is_file()
    assert NOTHING in output(snakemake(workdir, "-n", *OWN, mirror=mirror))

    for study, config in (("test", TEST), ("own", OWN)):
        other = [f"results/{study}", f"logs/{study}"]
        before = snapshot(workdir, *other)
        regenerate(workdir, study, config, mirror)
        assert snapshot(workdir, *other) == before, f"regenerating {study} touched another study"


def test_a_grid_is_what_the_user_wrote(tmp_path: Path) -> None:
    """One lr axis of 2 values: 2 grid points and the default, not the paper's other axes."""
    workdir = copy_workflow(tmp_path / "wf")
    user = {"optimizers": {"lion": {"grid": [{"param": "lr", "values": [1e-3, 1e-2]}]}}}
    (workdir / "mine.yaml").write_text(yaml.safe_dump(user))
    target = "results/paper/grids/spambase/lion.parquet"
    proc = snakemake(workdir, target, "--cores", "1", "--configfile", "mine.yaml")
    grid = pd.read_parquet(workdir / target)
    assert grid.lr.tolist() == [1e-3, 1e-2, 1e-4]
    assert grid.is_default.tolist() == [False, False, True]
    assert set(grid.beta1) == {0.9} and set(grid.beta2) == {0.99}
    assert set(grid.weight_decay) == {0.0} and grid.eps.isna().all()
    text = output(proc)
    assert (
        "grid spambase/lion: 3 configurations (lr: 2; + the default) from optimizers.lion.grid\n"
        in text
    )
    assert "grid titanic/lion: 8001 configurations" in text  # the paper's override still applies
    assert "from optimizers.lion.grid_overrides.titanic" in text


@pytest.mark.parametrize(
    "grid,needles",
    [
        (
            {"lr": [1e-3, 1e-2]},  # the shape before grids were lists
            ["optimizers.lion.grid is a mapping", "grid: [{param: lr, values: [0.001, 0.01]}]"],
        ),
        (
            [{"param": "lr", "values": [1e-3]}, {"param": "lr", "values": [1e-2]}],
            ["optimizers.lion.grid: param 'lr' appears twice"],
        ),
        ([{"param": "lr", "values": [1e-3, -1.0]}], ["-1.0", "grid"]),
    ],
    ids=["mapping", "duplicate", "negative-lr"],
)
def test_a_bad_grid_stops_before_any_job(tmp_path: Path, grid, needles: list[str]) -> None:
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "bad.yaml").write_text(yaml.safe_dump({"optimizers": {"lion": {"grid": grid}}}))
    proc = snakemake(workdir, "-n", "--configfile", "bad.yaml", check=False)
    assert proc.returncode != 0
    for needle in needles:
        assert needle in output(proc), output(proc)
    assert "Job stats" not in output(proc)


def test_a_changed_setting_never_leaves_stale_numbers(
    finished: Path, mirror: Path, tmp_path: Path
) -> None:
    """epochs 3 -> 4, every shard fails (and Snakemake deletes it): the same command again
    must retrain or fail, never exit 0 over the 3-epoch sweep and tables."""
    workdir = copy_run(finished, tmp_path / "wf")
    # another budget is another study under the same name: replacing it must be said
    changed = {"training": {"epochs": 4}, "study": {"replace": True}}
    (workdir / "config" / "epochs4.yaml").write_text(yaml.safe_dump(changed))
    args = ("--cores", "2", "--keep-going", *TEST, "config/epochs4.yaml")
    module = workdir / "workflow" / "lionsweep" / "sweep" / "shards.py"
    code = module.read_text()
    module.write_text(code + "\nraise RuntimeError('injected: training is broken')\n")
    first = snakemake(workdir, *args, mirror=mirror, check=False)
    assert first.returncode != 0 and "injected: training is broken" in output(first)
    assert not list((workdir / "results/test/shards").rglob("*.parquet"))  # all deleted
    again = snakemake(workdir, *args, mirror=mirror, check=False)
    assert again.returncode != 0 and NOTHING not in output(again)
    assert "rule train_shard" in output(again)
    module.write_text(code)  # training works again: the rerun retrains all and rebuilds
    plan = snakemake(workdir, "-n", *TEST, "config/epochs4.yaml", mirror=mirror)
    for rule in ("train_shard", "aggregate", "tables", "figures"):
        assert re.search(rf"^{rule}\s+\d+$", plan.stdout, flags=re.M), plan.stdout


def test_a_damaged_shard_says_how_to_recover(finished: Path, mirror: Path, tmp_path: Path) -> None:
    workdir = copy_run(finished, tmp_path / "wf")
    rel = "results/test/shards/spambase/lion/seed1/shard0001.parquet"
    data = (workdir / rel).read_bytes()
    (workdir / rel).write_bytes(data[: len(data) // 2])  # e.g. a full disk, a bad copy
    proc = snakemake(workdir, "--cores", "2", *TEST, mirror=mirror, check=False)
    assert proc.returncode != 0
    (line,) = {x for x in output(proc).splitlines() if x.startswith("lionsweep aggregate: error")}
    assert rel in line
    command = line.split("which retrains only those shards: ")[1]
    assert command == f"rm {rel} && snakemake --cores all --configfile config/test.yaml"
    env = dict(os.environ, LIONSWEEP_DATA_MIRROR=str(mirror))
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env["PATH"]))
    done = subprocess.run(
        ["bash", "-c", command], cwd=workdir, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(re.findall(r"rule train_shard:", done.stdout + done.stderr)) == 1
    recovered, original = (
        pd.read_parquet(w / "results/test/sweep.parquet").drop(columns=VOLATILE)
        for w in (workdir, finished)
    )
    pd.testing.assert_frame_equal(recovered, original, check_exact=True)


@pytest.mark.parametrize(
    "entry,error,log_dir",
    [
        (
            {"target": "Survivors"},
            "lionsweep prepare: error: titanic: target column 'Survivors' not found",
            "logs/data/titanic",
        ),
        (
            {"sha256": "0" * 64},
            "lionsweep fetch: error: sha256 mismatch for titanic.csv",
            "logs/raw/titanic/0000000000000000",
        ),
    ],
    ids=["prepare", "fetch"],
)
def test_a_stage_error_reaches_the_console(
    tmp_path: Path, mirror: Path, entry: dict, error: str, log_dir: str
) -> None:
    """No --profile: profiles/default prints the failed job's log, which holds the error
    line (prepare's stderr also goes straight to the console)."""
    workdir = copy_workflow(tmp_path / "wf")
    bad = {
        "study": {"name": "bad", "datasets": ["titanic"], "optimizers": ["lion"]},
        "datasets": {"titanic": entry},
    }
    (workdir / "bad.yaml").write_text(yaml.safe_dump(bad))
    proc = snakemake(
        workdir, "--cores", "1", "--configfile", "bad.yaml", mirror=mirror, check=False
    )
    assert proc.returncode != 0
    assert error in proc.stdout + proc.stderr
    (log,) = (workdir / log_dir).glob("*.log")
    assert error in log.read_text()
    assert not list((workdir / "results/data").rglob("*.parquet"))  # no half-written output


@pytest.mark.parametrize("name", ["my study", "../paper", "raw", "data", ""])
def test_a_bad_study_name_stops_before_any_job(tmp_path: Path, name: str) -> None:
    """A study name is one folder under results/ that is not a shared one (raw, data)."""
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "bad.yaml").write_text(yaml.safe_dump({"study": {"name": name}}))
    proc = snakemake(workdir, "-n", "--configfile", "bad.yaml", check=False)
    assert proc.returncode != 0
    assert "study" in output(proc) and repr(name) in output(proc), output(proc)
    assert "Job stats" not in output(proc)


def tasks_study(workdir: Path, folder: Path, target: str = "sweep") -> subprocess.CompletedProcess:
    """A user's study of a 3-class target (wine) and a regression target (diabetes), both
    from scikit-learn written as CSV, by configuration alone: Lion and SGD, 2 seeds."""
    from sklearn.datasets import load_diabetes, load_wine

    folder.mkdir()
    frames = {
        "wine": load_wine(as_frame=True).frame.replace({"target": {0: "a", 1: "b", 2: "c"}}),
        "diabetes": load_diabetes(as_frame=True, scaled=False).frame,
    }
    datasets = {}
    for name, frame in frames.items():
        path = folder / f"{name}.csv"
        frame.to_csv(path, index=False)
        datasets[name] = {
            "file": path.name,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "read": {"header": True},
            "target": "target",
            "task": "multiclass" if name == "wine" else "regression",
            "features": None,
        }
    study = {
        "study": {"name": "tasks", "datasets": ["wine", "diabetes"], "optimizers": ["lion", "sgd"]},
        "data_mirror": str(folder),
        "datasets": datasets,
        "model": {"hidden": 16},
        "training": {"epochs": 3, "batch_size": 16, "threads": 1, "memory_budget_mb": 256},
        "sweep": {"seeds": [0, 1], "shard_size": 100},
        "results": {"baseline": "lion"},
        "optimizers": {
            "lion": {"grid": [{"param": "lr", "values": [1e-3, 1e-2]}]},
            "sgd": {
                "grid": [
                    {"param": "lr", "values": [0.01, 0.1]},
                    {"param": "momentum", "values": [0.9]},
                ]
            },
        },
    }
    (workdir / "config" / "tasks.yaml").write_text(yaml.safe_dump(study))
    args = (target, "--cores", "2", "--configfile", "config/tasks.yaml")
    return snakemake(workdir, *args, check=False)


def test_multiclass_and_regression_by_configuration_alone(tmp_path: Path) -> None:
    """Wine (3 classes) and diabetes (regression) through `snakemake --configfile` to the
    sweep table: each dataset's own metric columns (the other task's are NaN), its task
    and primary metric, accuracy above chance after training, finite r2; then the tables
    name each dataset's metric and compare SGD with a configured baseline."""
    workdir = copy_workflow(tmp_path / "wf")
    proc = tasks_study(workdir, tmp_path / "mine")
    assert proc.returncode == 0, output(proc)
    assert "grid wine/sgd: 3 configurations (lr: 2, momentum: 1; + the default)" in output(proc)
    sweep = pd.read_parquet(workdir / "results/tasks/sweep.parquet")
    assert len(sweep) == 2 * 2 * 2 * 3  # datasets x optimizers x seeds x configurations
    wine, diabetes = (sweep[sweep.dataset == name] for name in ("wine", "diabetes"))
    assert set(wine.task) == {"multiclass"} and set(wine.primary_metric) == {"acc"}
    assert set(diabetes.task) == {"regression"} and set(diabetes.primary_metric) == {"r2"}
    assert wine.test_r2.isna().all() and diabetes.test_acc.isna().all()
    assert wine.curve_val_acc.map(len).eq(3).all() and diabetes.curve_val_r2.map(len).eq(3).all()
    trained = wine[~wine.is_default & ~wine.diverged]
    assert trained.test_acc.max() > 0.9 and trained.test_acc.median() > 1 / 3 + 0.2
    assert wine.test_auc_ovr.between(0, 1).all()
    ok = diabetes[~diabetes.diverged]
    assert np.isfinite(ok.test_r2).all() and ok.test_r2.max() > 0.2
    sgd = sweep[(sweep.optimizer == "sgd") & ~sweep.is_default]
    assert set(sgd.momentum) == {0.9} and sgd.beta1.isna().all()
    meta = [json.loads(p.read_text()) for p in (workdir / "results/data/wine").glob("*/meta.json")]
    assert [m["classes"] for m in meta] == [["a", "b", "c"]]
    # tables and figures from that sweep name each dataset's metric, and train nothing more
    proc = snakemake(workdir, "--cores", "2", "--configfile", "config/tasks.yaml", check=False)
    assert proc.returncode == 0, output(proc)
    assert "rule train_shard" not in output(proc)
    tables = workdir / "results/tasks/tables"
    honest = pd.read_csv(tables / "honest_table.csv").set_index(["dataset", "optimizer"])
    assert set(honest.metric) == {"acc", "r2"}
    assert honest.loc[("diabetes", "sgd"), "metric"] == "r2"
    assert np.isfinite(honest.loc[("diabetes", "sgd"), "test_r2_mean"])
    assert honest.loc[("wine", "lion"), "test_acc_mean"] > 0.9
    assert "R^2" in (tables / "honest_table.md").read_text()
    comparison = pd.read_csv(tables / "comparison.csv")
    assert set(comparison.optimizer) == {"sgd"} and set(comparison.dataset) == {"wine", "diabetes"}
    assert len(comparison) == 4  # 2 datasets x (defaults, tuned), SGD against the Lion baseline
