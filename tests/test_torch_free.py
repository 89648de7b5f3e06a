"""torch only where training happens: the data and results commands run, for real, with
a ``torch`` that refuses to import first on the path (conftest's ``torch_refused``).

Every prepare, aggregate, tables and figures job is a fresh process, and importing
torch cost each ~1.5-2 s, for constants (splits, task names, hyperparameter names)
that live in torch-free modules. The rules' parse-time helpers are test_parse's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from synthetic_sweep import make_sweep, to_parquet
from test_imports import failed_imports, package_modules

from conftest import ROOT

# The packages that train (or drive training) are the only ones allowed torch, less
# the torch-free halves the other stages read; plus the two stage modules that train.
TRAINING_PACKAGES = ("lionsweep.optim.", "lionsweep.train.")
TORCH_FREE_THERE = {"lionsweep.optim.hparams", "lionsweep.train.memory", "lionsweep.train.tasks"}
TRAINING_ELSEWHERE = {"lionsweep.confirm.retrain", "lionsweep.sweep.shards"}


def trains(module: str) -> bool:
    if module in TORCH_FREE_THERE:
        return False
    return module in TRAINING_ELSEWHERE or module.startswith(TRAINING_PACKAGES)


def lionsweep(torch_refused: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m lionsweep ARGS`` with torch refused; fails the test on an error."""
    path = os.pathsep.join((str(torch_refused), str(ROOT / "workflow")))
    env = dict(os.environ, PYTHONPATH=path, MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, "-m", "lionsweep", *args], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, f"lionsweep {args[0]}: {proc.stderr}"
    return proc


def test_the_named_modules_exist():
    named = TORCH_FREE_THERE | TRAINING_ELSEWHERE
    missing = named - set(package_modules())
    assert not missing, f"renamed or moved? update this file: {sorted(missing)}"


def test_other_modules_import_without_torch(torch_refused):
    others = [m for m in package_modules() if not trains(m)]
    assert len(others) > 30  # the data, sweep, results stages and the top level
    path = os.pathsep.join((str(torch_refused), str(ROOT / "workflow")))
    assert failed_imports(others, path) == {}


def test_fetch_and_prepare_without_torch(tmp_path, mirror, config, torch_refused):
    spec = config["datasets"]["titanic"]
    raw = tmp_path / "raw" / spec["file"]
    sha = ["--sha256", spec["sha256"]]
    lionsweep(torch_refused, "fetch", "--file", spec["file"], *sha, "--mirror", str(mirror),
              "--output", str(raw))  # fmt: skip
    out = tmp_path / "prepared"
    lionsweep(torch_refused, "prepare", "--dataset", "titanic", "--spec", json.dumps(spec),
              "--split", json.dumps(config["split"]), "--raw", str(raw), *sha,
              "--outdir", str(out))  # fmt: skip
    sizes = {s: len(pd.read_parquet(out / f"{s}.parquet")) for s in ("train", "val", "test")}
    assert sizes["test"] == 143  # the paper's titanic test split


def test_aggregate_tables_and_figures_without_torch(tmp_path, torch_refused):
    """Shards as the sweep writes them (one folder per dataset/optimizer), then the
    three results commands, each reading the previous one's output."""
    tasks = {"titanic": "binary", "wine": "multiclass", "diabetes": "regression"}
    frame = make_sweep(datasets=tuple(tasks), optimizers=("lion", "adamw", "sgd"), task=tasks)
    shards = []
    for (dataset, optimizer), part in frame.groupby(["dataset", "optimizer"]):
        shards.append(tmp_path / "shards" / dataset / optimizer / "0.parquet")
        shards[-1].parent.mkdir(parents=True)
        to_parquet(part, shards[-1])
    sweep = tmp_path / "sweep.parquet"
    summary = tmp_path / "summary.parquet"
    lionsweep(torch_refused, "aggregate", "--output", str(sweep), "--summary", str(summary),
              *map(str, shards))  # fmt: skip
    assert len(pd.read_parquet(sweep)) == len(frame)
    names = ["--sweep", str(sweep), "--datasets", *tasks]
    lionsweep(torch_refused, "tables", *names, "--outdir", str(tmp_path / "tables"))
    lionsweep(torch_refused, "figures", *names, "--outdir", str(tmp_path / "figures"),
              "--summary", str(summary))  # fmt: skip
    assert list((tmp_path / "tables").glob("*.md")) and list((tmp_path / "figures").glob("*.png"))
    budget = json.dumps({"budget_curve": [{"study": "s", "kind": "subsets"}]})  # mixed tasks
    dirs = ["--table-dir", str(tmp_path / "tables"), "--figure-dir", str(tmp_path / "figures")]
    lionsweep(torch_refused, "budget", "--sweeps", str(sweep), "--settings", budget, *dirs)
    assert set(pd.read_csv(tmp_path / "tables" / "budget_curve.csv")["dataset"]) == set(tasks)
