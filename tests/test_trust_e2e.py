"""Issue 16 through Snakemake: the two data defects that silently changed numbers.

1. a feature named like the prepared data's label column (`target`) replaced by the
   label: now the run stops with one line naming the column, and writes nothing;
3. duplicate feature rows in train and test alike: now each group lies in one split,
   and meta.json and the datasets table say how many there were and what was done.

A tiny study each (one optimizer, two grid points, one seed, one epoch); the second
also sets `primary_metric: balanced_acc`, which the honest table must follow.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import copy_workflow, snakemake

pytestmark = pytest.mark.slow


def study(workdir: Path, csv: Path, **entry) -> tuple[str, ...]:
    """config/trust.yaml: Lion on the user's file alone, as small as a study gets."""
    config = {
        "study": {"name": "trust", "datasets": ["mine"], "optimizers": ["lion"]},
        "data_mirror": str(csv.parent),
        "datasets": {
            "mine": {
                "file": csv.name,
                "sha256": hashlib.sha256(csv.read_bytes()).hexdigest(),
                "read": {"header": True},
                "target": "y",
                "positive": 1,
                "features": None,
                **entry,
            }
        },
        "model": {"hidden": 8},
        "training": {"epochs": 1, "threads": 1, "memory_budget_mb": 256},
        "sweep": {"seeds": [0], "shard_size": 100},
        "confirm": {"seeds": 2},
        "optimizers": {"lion": {"grid": [{"param": "lr", "values": [1e-3, 1e-2]}]}},
    }
    (workdir / "config" / "trust.yaml").write_text(yaml.safe_dump(config))
    return ("--cores", "2", "--configfile", "config/trust.yaml")


def test_a_feature_named_target_stops_the_run(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"target": rng.normal(size=120), "b": rng.normal(size=120)})
    frame["y"] = (frame["target"] > 0).astype(int)
    (tmp_path / "mine").mkdir()
    frame.to_csv(tmp_path / "mine" / "data.csv", index=False)
    workdir = copy_workflow(tmp_path / "wf")
    proc = snakemake(workdir, *study(workdir, tmp_path / "mine" / "data.csv"), check=False)
    assert proc.returncode != 0
    line = "lionsweep prepare: error: mine: feature column 'target' would be stored as 'target'"
    assert line in proc.stdout + proc.stderr
    assert not list((workdir / "results/data").rglob("*.parquet"))


def test_duplicate_rows_stay_in_one_split_through_the_workflow(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    base = pd.DataFrame(rng.normal(size=(60, 3)).round(6), columns=["a", "b", "c"])
    base["y"] = rng.integers(0, 2, len(base))
    (tmp_path / "mine").mkdir()
    csv = tmp_path / "mine" / "noise.csv"
    pd.concat([base] * 4, ignore_index=True).to_csv(csv, index=False)
    workdir = copy_workflow(tmp_path / "wf")
    args = study(workdir, csv, primary_metric="balanced_acc")
    proc = snakemake(workdir, "tables", *args, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (folder,) = (workdir / "results/data/mine").iterdir()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["duplicates"] == {
        "handling": "group", "rows": 180, "groups": 60, "conflicting_groups": 0, "removed": 0
    }  # fmt: skip
    seen = {}
    for split in ("train", "val", "test"):
        x = pd.read_parquet(folder / f"{split}.parquet").drop(columns="target")
        seen[split] = set(map(tuple, x.to_numpy()))
    assert not seen["train"] & seen["test"] and not seen["train"] & seen["val"]
    assert not seen["val"] & seen["test"]
    log = (workdir / f"logs/data/mine/{folder.name}.log").read_text()
    assert "180 row(s) repeat another row's features (60 group(s)" in log
    tables = workdir / "results/trust/tables"
    datasets = pd.read_csv(tables / "datasets.csv")
    assert datasets.loc[0, ["duplicates", "duplicate_rows", "duplicate_groups"]].tolist() == [
        "group", 180, 60
    ]  # fmt: skip
    honest = pd.read_csv(tables / "honest_table.csv")
    assert set(honest["metric"]) == {"balanced_acc"}
    assert "test_balanced_acc_mean" in honest.columns
