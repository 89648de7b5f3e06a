"""Train one shard of a (dataset, optimizer, seed) grid and write it as one Parquet file.

A shard is a fixed slice of the grid table, so its identity (and its file) does
not change when seeds, datasets or optimizers are added. Thanks to common random
numbers in the engine, its numbers do not depend on how the grid was sharded.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lionsweep import ENGINE_VERSION, __version__
from lionsweep.atomic import write_parquet
from lionsweep.data.prepare import load_splits, load_task
from lionsweep.errors import LionSweepError
from lionsweep.optim.hparams import AVERAGING, accepted, hparam_names
from lionsweep.optim.registry import names as optimizer_names
from lionsweep.sweep.halving import compute_saved
from lionsweep.sweep.halving import parse as parse_halving
from lionsweep.train.heads import HEADS, Task, as_task, curve_columns
from lionsweep.train.memory import models_budget_mb, read_meta

if TYPE_CHECKING:  # the engine imports torch: loaded only when a shard trains
    from lionsweep.train.engine import TrainSettings


def shard_slice(grid: pd.DataFrame, rows: tuple[int, int]) -> pd.DataFrame:
    """Rows [start, stop) of the grid table (the rule passes them: see grid.shard_bounds)."""
    start, stop = rows
    if not 0 <= start < stop <= len(grid):
        raise LionSweepError(f"rows {start}:{stop} are outside the {len(grid)}-row grid")
    return grid.iloc[start:stop].reset_index(drop=True)


def parse_rows(text: str) -> tuple[int, int]:
    try:
        start, stop = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:STOP, got {text!r}") from None
    return start, stop


def settings_from(config: dict[str, Any], threads: int | None) -> TrainSettings:
    """Build TrainSettings from the model+training config sections and the job's threads."""
    from lionsweep.train.engine import TrainSettings

    known = TrainSettings.__dataclass_fields__
    values = {k: v for k, v in config.items() if k in known and k != "threads"}
    return TrainSettings(**values, threads=threads)


def fit_to_grant(
    settings: TrainSettings, job_mem_mb: int | None, data_dir: Path, optimizer: str
) -> TrainSettings:
    """A job granted ``job_mem_mb`` gives its models what the grant leaves after the base
    and ``data_dir``'s data (lionsweep.train.memory), or stops here, in one line, before any
    data is read, when not even one model fits. None (no grant): ``settings`` as given."""
    if job_mem_mb is None:
        return settings
    training = dataclasses.asdict(settings)
    budget = models_budget_mb(read_meta(data_dir), training, optimizer, job_mem_mb)
    return dataclasses.replace(settings, memory_budget_mb=budget)


def grid_hparams(configs: pd.DataFrame, optimizer: str) -> dict[str, np.ndarray]:
    """Every hyperparameter column of grid-table rows (NaN: another optimizer's). The
    weight averaging's, which every optimizer has, take ``optimizer``'s default where
    NaN or absent (grid tables written before the weight EMA existed)."""
    out = {}
    for h in hparam_names():
        values = configs[h].to_numpy(np.float64) if h in configs else np.full(len(configs), np.nan)
        if h in AVERAGING:
            values = np.where(np.isnan(values), accepted(optimizer)[h].default, values)
        out[h] = values
    return out


def results_table(
    rows: pd.DataFrame,
    out: dict[str, Any],
    meta: dict[str, Any],
) -> pa.Table:
    """Assemble the sweep table's columns (docs/schema.md) for one shard. The task and its
    primary metric are columns, so that tables and figures need no meta.json."""
    k = len(rows)
    task = as_task(meta.get("task", "binary"))
    curves = curve_columns(task)
    frame = pd.DataFrame(
        {
            "dataset": meta["dataset"],
            "task": task.name,
            "primary_metric": HEADS[task.name].primary,
            "optimizer": meta["optimizer"],
            "seed": np.full(k, meta["seed"], dtype=np.int64),
            "config_id": rows["config_id"].to_numpy(np.int64),
            "is_default": rows["is_default"].to_numpy(bool),
        }
    )
    for h, values in grid_hparams(rows, meta["optimizer"]).items():
        frame[h] = values
    for key in ("hidden", "batch_size"):
        frame[key] = np.full(k, meta["settings"][key], dtype=np.int64)
    frame["epochs"] = budgets(rows, meta["settings"]["epochs"])
    frame["dropout"] = float(meta["settings"]["dropout"])
    for key, value in out.items():
        if key in curves or key == "device":
            continue
        if key in ("diverged_epoch", "best_epoch", "stopped_epoch"):  # engine's -1: null
            epochs = np.asarray(value, dtype=np.int64)
            frame[key] = pd.array(np.where(epochs < 0, None, epochs), dtype="Int64")
        elif key == "diverged":
            frame[key] = np.asarray(value, dtype=bool)
        else:
            frame[key] = np.asarray(value, dtype=np.float64)
    if "stopped_epoch" not in out:  # trained every epoch of its budget (no halving)
        frame["stopped_epoch"] = pd.array([None] * k, dtype="Int64")
    frame["device"] = str(out.get("device", "cpu"))
    frame["lionsweep_version"] = __version__
    frame["engine_version"] = np.full(k, ENGINE_VERSION, dtype=np.int64)
    frame["shard"] = np.full(k, meta["shard"], dtype=np.int64)
    frame["wall_time_s"] = meta["wall_time_s"] / k
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for name in curves:
        values = np.asarray(out[name], dtype=np.float32)
        table = table.append_column(name, pa.array(list(values), type=pa.list_(pa.float32())))
    return table


def budgets(configs: pd.DataFrame, epochs: int) -> np.ndarray:
    """Each configuration's training budget: its grid's `epochs` axis, else ``epochs``
    (training.epochs; also for grid tables written before the axis existed)."""
    if "epochs" not in configs.columns:
        return np.full(len(configs), int(epochs), dtype=np.int64)
    return configs["epochs"].fillna(epochs).to_numpy(np.float64).astype(np.int64)


def train_budgets(
    splits: dict[str, Any],
    optimizer: str,
    configs: pd.DataFrame,
    seed: int,
    settings: TrainSettings,
    curve_epochs: int,
    **kwargs: Any,
) -> dict[str, Any]:
    """Train ``configs`` grouped by their epochs budget, each group with that budget; the
    results come back in ``configs``' order, curves NaN-padded to ``curve_epochs`` epochs (the
    grid's longest budget, so every shard of a grid has the same curve length). With a
    constant lr and seed-only random streams, an E-epoch run is the first E epochs of a
    longer one, so grouping changes no number. The data goes to the device once."""
    from lionsweep.train.engine import check_splits, device_data, train_grid
    from lionsweep.train.heads import make_head

    check_splits(splits)
    data = device_data(splits, settings, make_head(kwargs.get("task", "binary")))
    epochs = budgets(configs, settings.epochs)
    if kwargs.get("halving") is not None and len(np.unique(epochs)) > 1:
        raise LionSweepError("training.halving cannot train a grid with an `epochs` axis")
    columns = grid_hparams(configs, optimizer)
    out: dict[str, Any] = {}
    for budget in np.unique(epochs):
        idx = np.flatnonzero(epochs == budget)
        hparams = {h: values[idx] for h, values in columns.items()}
        group = dataclasses.replace(settings, epochs=int(budget))
        part = train_grid(splits, optimizer, hparams, seed, group, data=data, **kwargs)
        out["device"] = part.pop("device")
        for key, val in part.items():
            if key not in out:
                shape = (len(configs), curve_epochs) if val.ndim == 2 else (len(configs),)
                fill = np.nan if val.dtype.kind == "f" else 0
                out[key] = np.full(shape, fill, dtype=val.dtype)
            if val.ndim == 2:
                out[key][idx, : val.shape[1]] = val
            else:
                out[key][idx] = val
    return out


def check_device(device: str | None) -> None:
    """``training.device: cuda`` on a node without CUDA: one line saying what to do, before
    any data is read (torch itself would fail deep inside the engine with an assertion)."""
    if device != "cuda":
        return
    import socket

    import torch

    if torch.cuda.is_available():
        return
    why = "this torch is a CPU-only build" if torch.version.cuda is None else "no GPU is visible"
    raise LionSweepError(
        f"training.device is cuda, but CUDA is not available on this node "
        f"({socket.gethostname()}: {why}); set training.device: auto (CUDA where a node has "
        "it, else CPU), or install a CUDA build of torch"
    )


@dataclass(frozen=True)
class ShardJob:
    """One ``train_shard`` job, as the rule gives it: which rows of which grid to train, on
    which prepared data and seed, with which settings, and where the shard goes."""

    grid: Path
    data: Path
    dataset: str
    optimizer: str
    seed: int
    shard: int
    rows: tuple[int, int]
    settings: dict[str, Any]
    output: Path
    threads: int | None = None
    job_mem_mb: int | None = None  # the scheduler's grant; None: no grant to fit

    @property
    def key(self) -> tuple[str, str, int, int]:
        """(dataset, optimizer, seed, shard): the columns every row of the shard carries."""
        return (self.dataset, self.optimizer, self.seed, self.shard)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ShardJob:
        return cls(
            args.grid, args.data, args.dataset, args.optimizer, args.seed, args.shard,
            args.rows, json.loads(args.settings), args.output, args.threads, args.job_mem_mb,
        )  # fmt: skip


def train_shard(job: ShardJob, progress: bool = True, task: Task | str | None = None) -> pa.Table:
    """Train ``job``'s rows of its grid and write its shard. ``task``: a
    ``lionsweep.train.heads.Task`` or its name (the engine's seam); None = the prepared
    data's own, from its meta.json (as the workflow runs it)."""
    check_device(job.settings.get("device"))
    task = as_task(load_task(job.data) if task is None else task)  # before the grid is read
    grid = pq.read_table(job.grid).to_pandas()
    table = train_configs(
        shard_slice(grid, job.rows),
        job.data,
        job.key,
        job.settings,
        job.threads,
        progress=progress,
        job_mem_mb=job.job_mem_mb,
        task=task,
        curve_epochs=int(budgets(grid, settings_from(job.settings, job.threads).epochs).max()),
    )
    write_parquet(table, job.output)
    return table


def train_configs(
    configs: pd.DataFrame,
    data_dir: Path,
    key: tuple[str, str, int, int],
    config: dict[str, Any],
    threads: int | None,
    progress: bool = True,
    job_mem_mb: int | None = None,
    task: Task | str | None = None,
    curve_epochs: int | None = None,
) -> pa.Table:
    """Train ``configs`` (grid-table rows: config_id, is_default, hyperparameters) on the
    prepared data in ``data_dir`` for ``key`` = (dataset, optimizer, seed, shard): the one
    path from a grid's rows to the sweep table's rows, shared by the sweep's shards and
    the confirmation stage, so that both train (and record) exactly the same thing.
    ``curve_epochs``: the curves' epochs (the whole grid's longest budget, so that every shard of
    a grid has the same curve length); None = the longest budget among ``configs``."""
    dataset, optimizer, seed, shard = key
    task = as_task(load_task(data_dir) if task is None else task)
    settings = fit_to_grant(settings_from(config, threads), job_mem_mb, data_dir, optimizer)
    if curve_epochs is None:
        curve_epochs = int(budgets(configs, settings.epochs).max())
    start = time.perf_counter()
    splits = load_splits(data_dir)
    out = train_budgets(
        splits, optimizer, configs, seed, settings, curve_epochs, progress=progress, task=task,
        **halving_options(config),
    )  # fmt: skip
    meta = {
        "task": task,
        "dataset": dataset,
        "optimizer": optimizer,
        "seed": seed,
        "shard": shard,
        "settings": config,
        "wall_time_s": time.perf_counter() - start,
    }
    return results_table(configs, out, meta)


def halving_options(config: dict[str, Any]) -> dict[str, Any]:
    """train_grid's halving arguments from a shard's settings (``halving`` and, where
    the dataset sets a primary metric, ``halving_metric``); empty when off."""
    halving = parse_halving(config.get("halving"), int(config["epochs"]))
    if halving is None:
        return {}
    return {"halving": halving, "metric": config.get("halving_metric")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--optimizer", required=True, choices=optimizer_names())
    parser.add_argument("--seed", required=True, type=int)
    parser.add_argument("--shard", required=True, type=int)
    parser.add_argument(
        "--rows", required=True, type=parse_rows, help="START:STOP rows of the grid table"
    )
    parser.add_argument("--settings", required=True, help="model+training config as JSON")
    parser.add_argument("--grid", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path, help="prepared data folder")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--job-mem-mb", type=int, default=None, help="memory granted to the job")
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--engine-version", type=int, default=None, help="the rule's engine version (checked)"
    )


def check_engine(version: int | None) -> None:
    """The rules (their params) and the package that trains must be one engine version."""
    if version is not None and version != ENGINE_VERSION:
        raise LionSweepError(
            f"the workflow asks for engine version {version}, but the lionsweep this job "
            f"imports trains version {ENGINE_VERSION}: the rules and the package come from "
            "different checkouts"
        )


def run(args: argparse.Namespace) -> None:
    check_engine(args.engine_version)
    table = train_shard(ShardJob.from_args(args), progress=not args.no_progress)
    diverged = int(pc.sum(table.column("diverged")).as_py() or 0)
    print(f"{args.output}: {table.num_rows} configurations, {diverged} diverged")
    print(halving_line(table), file=sys.stderr)


def halving_line(table: pa.Table) -> str:
    """The log's compute line: model-epochs trained of the full budget's."""
    keys = ["dataset", "optimizer", "seed", "epochs", "stopped_epoch"]
    saved = compute_saved(table.select(keys).to_pandas()).iloc[0]
    return (
        f"halving: {saved.model_epochs} of {saved.full_model_epochs} model-epochs trained "
        f"({100 * saved.saved_fraction:.1f}% saved)"
    )
