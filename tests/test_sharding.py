"""Cost-aware shards end to end: the `prepare` checkpoint, the same numbers however the
grids are cut, and a cost model pinned by the config (never re-sharded by a code change)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_workflow import RESULTS, TEST_CONFIG, comparable, merged_test_config

from conftest import copy_run, snakemake
from lionsweep.sweep.grid import grid_size, grid_spec
from lionsweep.sweep.shardcost import cost_shard_bounds

pytestmark = pytest.mark.slow

NOTHING = "Nothing to be done"
# ~4 ms of estimated work per shard: the test study's Mushroom Lion grid (13 configurations
# of ~0.9 ms) is cut into 3 shards where config/test.yaml's shard_size 6 makes 2, and its
# Spambase Lion grid into 1 where shard_size makes 2.
SECONDS = 0.004
KEYS = ["dataset", "optimizer", "seed"]


def cost_plan(workdir: Path, overrides: dict) -> dict[tuple[str, str], list[tuple[int, int]]]:
    """Each grid's shards as lionsweep.sweep.shardcost cuts it, from the prepared meta.json."""
    cfg = merged_test_config(workdir)
    cfg["sweep"].update(overrides)
    settings = {**cfg["model"], **cfg["training"]}
    plan = {}
    for d in cfg["study"]["datasets"]:
        (meta_path,) = (workdir / "results" / "data" / d).glob("*/meta.json")
        meta = json.loads(meta_path.read_text())
        for o in cfg["study"]["optimizers"]:
            rows = grid_size(grid_spec(cfg, d, o))
            plan[d, o] = cost_shard_bounds(
                rows, meta, settings, o, cfg["sweep"]["shard_seconds"], 1
            )
    return plan


def shards_per_grid(sweep: pd.DataFrame) -> dict[tuple[str, str], int]:
    counts = sweep.groupby(KEYS).shard.nunique()
    assert counts.groupby(level=[0, 1]).nunique().eq(1).all()  # every seed cut alike
    return {key: int(n) for key, n in counts.groupby(level=[0, 1]).first().items()}


COST = (*TEST_CONFIG, "config/cost.yaml")  # the test study with cost-aware shards


@pytest.fixture(scope="module")
def cost_run(finished: Path, mirror: Path, tmp_path_factory) -> Path:
    """The finished test study (shard_size 6) swept again with cost-aware shards over the
    same folders, so every shard whose rows changed must retrain."""
    workdir = copy_run(finished, tmp_path_factory.mktemp("cost") / "wf")
    (workdir / "config" / "cost.yaml").write_text(
        yaml.safe_dump({"sweep": {"shard_seconds": SECONDS}})
    )
    snakemake(workdir, "sweep", "--cores", "2", *COST, mirror=mirror)
    return workdir


def test_cost_aware_shards_give_identical_numbers(
    finished: Path, cost_run: Path, mirror: Path
) -> None:
    """Cut by cost, the sweep is bit-identical to the fixed-size cut but for the shard
    numbers (a stale file of the old cut is never reused), and a rerun does nothing."""
    workdir = cost_run
    plan = cost_plan(workdir, {"shard_seconds": SECONDS})
    fixed = shards_per_grid(pd.read_parquet(finished / RESULTS / "sweep.parquet"))
    assert plan["mushroom", "lion"] == [(0, 4), (4, 8), (8, 13)]  # version 1, pinned
    assert shards_per_grid(pd.read_parquet(workdir / RESULTS / "sweep.parquet")) == {
        key: len(bounds) for key, bounds in plan.items()
    }
    assert {key: len(b) for key, b in plan.items()} != fixed  # really another cut
    pd.testing.assert_frame_equal(
        comparable(workdir / RESULTS / "sweep.parquet").drop(columns=["shard"]),
        comparable(finished / RESULTS / "sweep.parquet").drop(columns=["shard"]),
        check_exact=True,
    )
    assert NOTHING in snakemake(workdir, "-n", "sweep", *COST, mirror=mirror).stdout


def _dry_run(workdir: Path, mirror: Path, *configs: str) -> str:
    proc = snakemake(workdir, "-n", "sweep", "--configfile", *configs, mirror=mirror)
    return proc.stdout + proc.stderr


def _add_cost_model_2(workdir: Path) -> None:
    """The code gains a (10x slower) version 2 and makes it the default."""
    module = workdir / "workflow" / "lionsweep" / "shardcost.py"
    code = module.read_text()
    assert "DEFAULT_COST_MODEL = 1\n" in code
    code = code.replace("DEFAULT_COST_MODEL = 1\n", "DEFAULT_COST_MODEL = 2\n")
    code += "\nCOST_MODELS[2] = CostModel(gflops=32.6, elem_ns=0.68, passes_per_state=5)\n"
    module.write_text(code)


def test_a_new_default_cost_model_never_reshards_a_finished_study(
    cost_run: Path, mirror: Path, tmp_path: Path
) -> None:
    """The config pins the version it was cut with: a newer default in the code plans
    nothing; raising `sweep.shard_cost_model` re-cuts (and says so through the sweep)."""
    workdir = copy_run(cost_run, tmp_path / "wf")
    _add_cost_model_2(workdir)
    assert NOTHING in _dry_run(workdir, mirror, "config/test.yaml", "config/cost.yaml")

    (workdir / "config" / "model2.yaml").write_text(
        yaml.safe_dump({"sweep": {"shard_cost_model": 2}})
    )
    plan = _dry_run(workdir, mirror, "config/test.yaml", "config/cost.yaml", "config/model2.yaml")
    assert re.search(r"^train_shard\s+\d+$", plan, flags=re.M), plan
    assert re.search(r"^aggregate\s+1$", plan, flags=re.M), plan
