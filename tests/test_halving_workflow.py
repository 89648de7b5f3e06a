"""Successive halving run by configuration alone: a small study swept with and without
`training.halving`; with it each grid is one shard, and its numbers are the unhalved
sweep's (cut into two shards): survivors identical, stopped configurations cut."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_workflow import KEYS, comparable

from conftest import copy_workflow, snakemake
from lionsweep.sweep.halving import Halving, compute_saved, model_epochs

pytestmark = pytest.mark.slow
HALVING = {"min_epochs": 1, "eta": 2}  # test.yaml trains 3 epochs: rungs end at 1, 2
# test.yaml's Spambase Lion grid (12 configurations: two shards of 6), one seed
SMALL = {"study": {"datasets": ["spambase"], "optimizers": ["lion"]}, "sweep": {"seeds": [0]}}


def sweep(workdir: Path, mirror: Path, name: str, **training) -> Path:
    """Sweep the small study as study ``name``; its folder."""
    override = {**SMALL, "study": {**SMALL["study"], "name": name}, "training": training}
    (workdir / "config" / f"{name}.yaml").write_text(yaml.safe_dump(override))
    configs = ("--configfile", "config/test.yaml", f"config/{name}.yaml")
    snakemake(workdir, "sweep", "--cores", "2", *configs, mirror=mirror)
    return workdir / "results" / name


@pytest.fixture(scope="module")
def runs(mirror: Path, tmp_path_factory) -> tuple[Path, Path]:
    workdir = copy_workflow(tmp_path_factory.mktemp("halving") / "wf")
    return sweep(workdir, mirror, "whole"), sweep(workdir, mirror, "halved", halving=HALVING)


def test_each_grid_is_one_shard_with_its_compute_logged(runs) -> None:
    whole, halved = runs
    assert set(pd.read_parquet(whole / "sweep.parquet").shard) == {0, 1}
    table = pd.read_parquet(halved / "sweep.parquet")
    assert (table.shard == 0).all()
    saved = compute_saved(table)
    sizes = table.groupby(["dataset", "optimizer", "seed"]).size()
    for row in saved.itertuples():
        k = sizes[row.dataset, row.optimizer, row.seed]
        assert row.model_epochs == model_epochs(k, 3, Halving(**HALVING)) < 3 * k
        log = halved.parents[1] / "logs" / "halved" / "train" / row.dataset / row.optimizer
        text = (log / f"seed{row.seed}" / "shard0000.log").read_text()
        assert f"halving: {row.model_epochs} of {3 * k} model-epochs trained" in text


def test_numbers_are_the_unhalved_sweeps(runs) -> None:
    """Different sharding (one shard vs shard_size 6) and halving change no number:
    a survivor is its full run, a stopped configuration its run cut at stopped_epoch."""
    old, new = (comparable(run / "sweep.parquet") for run in runs)
    assert new[KEYS].equals(old[KEYS])
    stopped = new.stopped_epoch
    assert set(stopped.dropna()) == {1, 2} and stopped.isna().sum() > 0
    assert old.stopped_epoch.isna().all()
    full = stopped.isna().to_numpy()
    skip = {"stopped_epoch", "shard", "curve_val_loss", "curve_val_acc"}
    cols = [c for c in old.columns if c not in skip]
    pd.testing.assert_frame_equal(new.loc[full, cols], old.loc[full, cols])
    for curve in ("curve_val_loss", "curve_val_acc"):
        for i in range(len(new)):
            a, b = new[curve][i], old[curve][i]
            e = 3 if pd.isna(stopped[i]) else int(stopped[i])
            assert np.array_equal(a[:e], b[:e], equal_nan=True) and np.isnan(a[e:]).all()
