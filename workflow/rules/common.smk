"""Helpers for the rules: config validation, targets, and per-job parameters."""

import json
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# The package lives beside the rules: importable here, and in every job through
# PYTHONPATH (see lionsweep.config.export_job_environment).
PACKAGE_ROOT = str(Path(workflow.basedir) / "workflow")
sys.path.insert(0, PACKAGE_ROOT)

from lionsweep.config import export_job_environment, validate  # noqa: E402
from lionsweep.errors import LionSweepError  # noqa: E402
from lionsweep.fetch import resolve_mirror  # noqa: E402
from lionsweep.grid import grid_size, grid_spec, n_shards, shard_bounds  # noqa: E402

try:
    validate(config, Path(PACKAGE_ROOT) / "schemas" / "config.schema.yaml")
except LionSweepError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None

export_job_environment(
    PACKAGE_ROOT, sys.executable, resolve_mirror(config.get("data_mirror"))
)

DATASETS = config["study"]["datasets"]
OPTIMIZERS = config["study"]["optimizers"]
SEEDS = config["sweep"]["seeds"]


wildcard_constraints:
    dataset="[a-z0-9_]+",
    optimizer="|".join(config["optimizers"]),
    seed=r"\d+",
    shard=r"\d{4}",


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


def raw_file(wildcards):
    return f"results/raw/{wildcards.dataset}/{config['datasets'][wildcards.dataset]['file']}"


def prepared(dataset):
    return expand(
        "results/data/{dataset}/{split}.parquet",
        dataset=dataset,
        split=["train", "val", "test"],
    )


def shard_rows(wildcards):
    """START:STOP of the shard's rows in its grid table. A parameter, so that a shard
    whose rows change (grid size, shard size, sharding rule) is retrained."""
    spec = grid_spec(config, wildcards.dataset, wildcards.optimizer)
    bounds = shard_bounds(grid_size(spec), config["sweep"]["shard_size"])
    start, stop = bounds[int(wildcards.shard)]
    return f"{start}:{stop}"


def shard_files(dataset, optimizer, seed):
    spec = grid_spec(config, dataset, optimizer)
    count = n_shards(spec, config["sweep"]["shard_size"])
    return [
        f"results/shards/{dataset}/{optimizer}/seed{seed}/shard{i:04d}.parquet"
        for i in range(count)
    ]


def all_shards(wildcards=None):
    return [
        path
        for d in DATASETS
        for o in OPTIMIZERS
        for s in SEEDS
        for path in shard_files(d, o, s)
    ]


def dataset_spec(dataset):
    """What preparing a dataset depends on: its entry, less provenance-only keys
    (a changed URL or description must not rerun the sweep)."""
    spec = config["datasets"][dataset]
    return {k: v for k, v in spec.items() if k not in ("url", "description")}


def train_settings():
    """What a shard's numbers depend on. Threads, memory and run time are left out:
    they change how a job runs, not what it computes, and must not rerun the sweep."""
    job_only = ("threads", "memory_budget_mb", "runtime_min")
    training = {k: v for k, v in config["training"].items() if k not in job_only}
    return {**config["model"], **training}
