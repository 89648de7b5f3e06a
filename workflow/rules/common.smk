"""Helpers for the rules: config validation, paths, targets, and per-job parameters."""

import json
import os
import shlex
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# The package lives beside the rules: importable here, and in every job through
# PYTHONPATH (see lionsweep.config.export_job_environment). Found from this file, not
# from workflow.basedir (the main Snakefile's folder), which differs between the two
# entry points (./Snakefile, workflow/Snakefile) and a snakedeploy'd module.
PACKAGE_ROOT = str(Path(str(workflow.current_basedir)).parent)
sys.path.insert(0, PACKAGE_ROOT)

from lionsweep import ENGINE_VERSION, layout, manifest  # noqa: E402
from lionsweep.train import memory  # noqa: E402
from lionsweep.config import (  # noqa: E402
    confirm_seeds,
    export_job_environment,
    validate,
)
from lionsweep.errors import LionSweepError  # noqa: E402
from lionsweep.data.fetch import resolve_mirror  # noqa: E402
from lionsweep.atomic import write_atomic  # noqa: E402
from lionsweep.results.files import is_field  # noqa: E402
from lionsweep.sweep.grid import (  # noqa: E402
    check_grids,
    grid_size,
    mean_budget,
    grid_spec,
    grid_summary,
    sampled_ranges,
    shard_bounds,
)
from lionsweep.results.report import CONFIG_ENV as REPORT_CONFIG_ENV  # noqa: E402
from lionsweep.sweep.shardcost import cost_shard_bounds  # noqa: E402

try:  # grids first: the schema's message for a grid written as a mapping says not how to fix it
    check_grids(config)
    validate(config, Path(PACKAGE_ROOT) / "schemas" / "config.schema.yaml")
except LionSweepError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None

export_job_environment(
    PACKAGE_ROOT, sys.executable, resolve_mirror(config.get("data_mirror"))
)


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


STUDY = config["study"]["name"]
DATASETS = config["study"]["datasets"]
OPTIMIZERS = config["study"]["optimizers"]
SEEDS = config["sweep"]["seeds"]
# This study's outputs and logs; raw files and prepared data are shared (lionsweep.layout).
RESULTS = layout.study_dir(STUDY)
LOGS = layout.study_logs(STUDY)
SWEEP = f"{RESULTS}/sweep.parquet"
SUMMARY = f"{RESULTS}/summary.parquet"  # a row per configuration (sweep/summary.py)
CONFIRM = f"{RESULTS}/confirm.parquet"
# The field's rank figure reads the confirmation (lionsweep.results.files.is_field): only then
# do the figures wait for it.
FIGURES_CONFIRM = [CONFIRM] if is_field(OPTIMIZERS) else []
CONFIRM_SEEDS = confirm_seeds(config)  # fresh seeds, disjoint from SEEDS (checked)
# Each dataset's `primary_metric` (datasets.<name>), added to the results settings only
# when some dataset sets one: a study without it keeps its settings (and its outputs).
PRIMARY_METRICS = layout.primary_metrics(config)
CHOSEN_METRICS = {"primary_metrics": PRIMARY_METRICS} if PRIMARY_METRICS else {}
# The sampled axes' ranges (lionsweep.sweep.grid.sampled_ranges), for the tables' edge flags;
# added only when a grid samples, like the primary metrics.
SAMPLED_RANGES = sampled_ranges(config)
SAMPLED = {"sampled_ranges": SAMPLED_RANGES} if SAMPLED_RANGES else {}
RESULTS_SETTINGS = as_json({**config.get("results", {}), **CHOSEN_METRICS, **SAMPLED})
# The results options the confirmation reads (which metrics select): the others
# change tables only and must not retrain it.
SELECTION_SETTINGS = as_json(
    {
        **{k: v for k, v in config.get("results", {}).items() if k == "honest_metrics"},
        **CHOSEN_METRICS,
    }
)
# The budget curve's sweeps (results.budget_curve): this study's own, or another's.
BUDGET = config.get("results", {}).get("budget_curve") or []


def budget_sweeps():
    """The sweeps results.budget_curve reads, in its order (the `budget` rule's inputs)."""
    return [f"{layout.study_dir(e['study'])}/sweep.parquet" for e in BUDGET]


# What the study folder holds (lionsweep.manifest): claimed in onstart, before any job.
STUDY_MANIFEST = manifest.study_manifest(
    DATASETS,
    OPTIMIZERS,
    {f"{d}/{o}": grid_spec(config, d, o) for d in DATASETS for o in OPTIMIZERS},
)
# a prepared dataset's files
SPLIT_FILES = [f"{split}.parquet" for split in layout.SPLITS]
os.environ[layout.RERUN_ENV] = layout.rerun_command(workflow.overwrite_configfiles)
os.environ.update(layout.download_environment(config))
os.environ[REPORT_CONFIG_ENV] = as_json(config)  # the `report` rule's nested run


wildcard_constraints:
    dataset="[a-z0-9_]+",
    optimizer="|".join(config["optimizers"]),
    seed=r"\d+",
    shard=r"\d{4}",
    sha=r"[0-9a-f]{16}",
    digest=r"[0-9a-f]{16}",
    file=r"[^/]+",


def confirm_flag(wildcards, input):
    """` --confirm PATH` for the figures of a field study, else nothing."""
    return "".join(f" --confirm {shlex.quote(p)}" for p in input.confirm)


def raw_file(wildcards):
    return layout.raw_path(wildcards.dataset, config["datasets"][wildcards.dataset])


def data_dir(dataset):
    """The prepared data folder, named by a digest of what preparing depends on."""
    return layout.data_dir(dataset, config["datasets"][dataset], config["split"])


def prepared(dataset):
    return [f"{data_dir(dataset)}/{name}" for name in SPLIT_FILES]


def shard_plan(dataset, optimizer):
    """[start, stop) of each shard of a grid. With `sweep.shard_seconds`, shards are
    sized by estimated cost (lionsweep.sweep.shardcost, version `sweep.shard_cost_model`)
    from the prepared data's meta, which the `prepare` checkpoint provides; without
    it, `sweep.shard_size` configurations each."""
    spec = grid_spec(config, dataset, optimizer)
    rows = grid_size(spec)
    sweep = config["sweep"]
    # halving selects over a whole grid: one shard, whatever the sharding keys say
    if config["training"].get("halving") is not None:
        return [(0, rows)]
    if sweep["shard_seconds"] is None:
        return shard_bounds(rows, sweep["shard_size"])
    digest = os.path.basename(data_dir(dataset))
    meta_path = checkpoints.prepare.get(dataset=dataset, digest=digest).output.meta
    meta = json.loads(Path(meta_path).read_text())
    settings = train_settings()  # an epochs axis: its mean budget per configuration
    settings["epochs"] = mean_budget(spec, settings["epochs"])
    return cost_shard_bounds(
        rows,
        meta,
        settings,
        optimizer,
        sweep["shard_seconds"],
        sweep["shard_cost_model"],
    )


def shard_rows(wildcards):
    """START:STOP of the shard's rows in its grid table. A parameter, so that a shard
    whose rows change (grid size, shard size, sharding rule) is retrained."""
    start, stop = shard_plan(wildcards.dataset, wildcards.optimizer)[
        int(wildcards.shard)
    ]
    return f"{start}:{stop}"


def shard_files(dataset, optimizer, seed):
    count = len(shard_plan(dataset, optimizer))
    return [
        f"{RESULTS}/shards/{dataset}/{optimizer}/seed{seed}/shard{i:04d}.parquet"
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


def study_settings():
    """The model and training sections as a job's memory request reads them."""
    return {**config["model"], **config["training"]}


def train_mem_mb(wildcards):
    """A training job's memory request (MB): base + its dataset's data, from the prepared
    meta.json, + training.memory_budget_mb for the models (lionsweep.train.memory). Snakemake
    evaluates it again when the job is scheduled, its data then prepared; before that (a
    dry run of an unprepared study) the models' budget + 1 GB stands in. The same for
    every optimizer of a dataset: a SLURM array of its shards shares one request."""
    return dataset_mem_mb(wildcards.dataset)


def dataset_mem_mb(dataset):
    meta = Path(data_dir(dataset)) / "meta.json"
    if not meta.exists():
        return config["training"]["memory_budget_mb"] + 1024
    meta = json.loads(meta.read_text())
    return max(memory.train_request_mb(meta, study_settings(), o) for o in OPTIMIZERS)


def largest_grid_rows():
    """Rows of the study's largest grid, known from the config: configurations x seeds
    (what the results stages hold grows with it: lionsweep.train.memory)."""
    largest = max(
        grid_size(grid_spec(config, d, o)) for d in DATASETS for o in OPTIMIZERS
    )
    return largest * len(SEEDS)


def confirm_mem_mb(wildcards):
    """The confirmation's request (MB): its largest training (dataset, optimizer) plus
    the selection it holds meanwhile (lionsweep.train.memory.selection_mb)."""
    training = max(dataset_mem_mb(d) for d in DATASETS)
    return training + memory.selection_mb(largest_grid_rows())


def results_mem_mb(stage):
    """A results rule's request (MB), from the largest grid (lionsweep.train.memory)."""
    return memory.results_request_mb(stage, largest_grid_rows())


def shard_list(wildcards, input):
    """The aggregate's shards, written to a file whose path the job gets (a command
    line cannot hold 10^5 paths). Rewritten, atomically, whenever the job is planned,
    except in a dry run, which writes nothing."""
    path = f"{RESULTS}/shards/list.txt"
    if not workflow.dryrun:
        write_atomic(path, lambda tmp: tmp.write_text("".join(f"{p}\n" for p in input)))
    return path


def dataset_spec(dataset):
    """What preparing a dataset depends on (a changed URL or description must not rerun)."""
    return layout.preparing_spec(config["datasets"][dataset])


def train_settings(dataset=None, halving=True):
    """What a shard's numbers depend on. Threads, memory and run time are left out:
    they change how a job runs, not what it computes, and must not rerun the sweep.
    `halving` only when on (a study without it keeps its settings), with the metric
    its rungs rank by where ``dataset`` sets one; never for the confirmation."""
    job_only = ("threads", "memory_budget_mb", "runtime_min")
    if config["training"].get("halving") is None or not halving:
        job_only += ("halving",)
    training = {k: v for k, v in config["training"].items() if k not in job_only}
    if "halving" in training and dataset in PRIMARY_METRICS:
        training["halving_metric"] = PRIMARY_METRICS[dataset]
    return {**config["model"], **training}


def sharding():
    """How the grids are cut: the keys of `sweep` that shard_plan reads (the cost
    model's version only when shards are sized by cost; fixed-size shards keep the
    digest they had before cost-aware shards existed)."""
    sweep = config["sweep"]
    if config["training"].get("halving") is not None:
        return {"shards": "one per grid (halving)"}
    if sweep["shard_seconds"] is None:
        return {"shard_size": sweep["shard_size"]}
    return {k: sweep[k] for k in ("shard_seconds", "shard_cost_model")}


def sweep_digest():
    """Everything the shards compute from, as one digest: a parameter of the aggregate,
    so that a changed setting makes the sweep (and all after it) out of date even when
    the shards it would retrain are gone (e.g. deleted after failing)."""
    return layout.digest(
        {
            "training": train_settings(),
            "engine": ENGINE_VERSION,
            "seeds": SEEDS,
            **sharding(),
            "grids": {
                f"{d}/{o}": grid_spec(config, d, o)
                for d in DATASETS
                for o in OPTIMIZERS
            },
            "data": {d: data_dir(d) for d in DATASETS},
        }
    )


onstart:
    try:  # another study's folder stops the run here, before any job (study.replace)
        replace = config["study"]["replace"]
        for path in manifest.claim(RESULTS, STUDY_MANIFEST, replace):
            print(f"study.replace: removed {path}")
    except LionSweepError as err:
        raise WorkflowError(err) from None
    print(f"study {STUDY!r}: outputs in {RESULTS}/, logs in {LOGS}/")
    for line in grid_summary(config):
        print(line)
