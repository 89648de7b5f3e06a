"""Merge shard files into one sweep table (docs/schema.md), sorted for stable bytes."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lionsweep.errors import LionSweepError
from lionsweep.heads import HEADS
from lionsweep.io import write_parquet
from lionsweep.layout import RERUN_ENV

SORT_KEYS = [
    ("dataset", "ascending"),
    ("optimizer", "ascending"),
    ("seed", "ascending"),
    ("config_id", "ascending"),
]


def rerun_command() -> str:
    return os.environ.get(RERUN_ENV) or "your snakemake command (with its --configfile)"


def damaged_message(damaged: list[tuple[Path, str]]) -> str:
    """What to do about unreadable shards: which files, how to delete them, how to rerun.

    Deleting is the remedy because Snakemake sees a damaged file as finished; once
    gone, the same command retrains only those shards (with identical numbers)."""
    names = ", ".join(f"{path} ({why})" for path, why in damaged)
    rm = shlex.join(["rm", *(str(path) for path, _ in damaged)])
    return (
        f"{len(damaged)} damaged shard file(s), not readable as Parquet: {names}. "
        f"Delete them and rerun, which retrains only those shards: {rm} && {rerun_command()}"
    )


def read_shards(shards: list[Path]) -> list[pa.Table]:
    tables, damaged = [], []
    for path in shards:
        try:
            tables.append(pq.read_table(path))
        except (OSError, pa.ArrowInvalid) as err:
            damaged.append((path, str(err).splitlines()[0] if str(err) else type(err).__name__))
    if damaged:
        raise LionSweepError(damaged_message(damaged))
    return tables


def aggregate(shards: list[Path]) -> pa.Table:
    if not shards:
        raise LionSweepError("no shard files to aggregate")
    tables = [with_task(t) for t in read_shards(shards)]
    try:
        table = pa.concat_tables(tables, promote_options="default")
    except pa.ArrowInvalid as err:
        raise LionSweepError(f"shards have incompatible schemas: {err}") from None
    table = nan_for_other_tasks(table).sort_by(SORT_KEYS)
    check_one_task(table)
    check_one_engine(table)
    folders = {Path(path).parent.parent for path in shards}  # .../shards/{dataset}/{optimizer}
    check_complete(
        table.select(["dataset", "optimizer", "seed", "config_id", "is_default"]), folders
    )
    return table


def with_task(table: pa.Table) -> pa.Table:
    """A shard written before tasks existed (no `task` column) is binary: the engine had
    no other head. Its task columns are added, so it needs no retraining. A shard
    without `engine_version` is version 1 (written before the column existed)."""
    if "engine_version" not in table.column_names and "dataset" in table.column_names:
        ones = pa.array([1] * table.num_rows, pa.int64())
        table = table.append_column("engine_version", ones)
    if "task" in table.column_names or "dataset" not in table.column_names:
        return table
    n = table.num_rows
    at = table.column_names.index("dataset") + 1
    table = table.add_column(at, "task", pa.array(["binary"] * n, pa.string()))
    return table.add_column(at + 1, "primary_metric", pa.array([HEADS["binary"].primary] * n))


def nan_for_other_tasks(table: pa.Table) -> pa.Table:
    """Shards of different tasks have different metric columns (heads.result_columns):
    the concatenation leaves nulls where a task has no such metric; they become NaN, as
    a float metric that does not apply reads everywhere else (curves stay null)."""
    for i, field in enumerate(table.schema):
        if pa.types.is_floating(field.type) and table.column(i).null_count:
            filled = pc.fill_null(table.column(i), pa.scalar(float("nan"), field.type))
            table = table.set_column(i, field, filled)
    return table


def check_one_task(table: pa.Table) -> None:
    """A dataset's shards must share one task: two mean shards of old prepared data."""
    if "task" not in table.column_names:
        return
    tasks = table.select(["dataset", "task"]).to_pandas().groupby("dataset")["task"].unique()
    for name, found in tasks.items():
        if len(found) > 1:
            raise LionSweepError(
                f"shards of {name} hold different tasks ({', '.join(sorted(found))}): some "
                f"are stale; delete the dataset's shards and rerun: {rerun_command()}"
            )


def check_one_engine(table: pa.Table) -> None:
    """Shards of different engine versions differ in numbers: never one sweep of them."""
    if "engine_version" not in table.column_names:
        return
    versions = sorted(set(table.column("engine_version").to_pylist()))
    if len(versions) > 1:
        raise LionSweepError(
            f"shards come from engine versions {', '.join(map(str, versions))}, whose numbers "
            f"differ: delete the older shards and rerun, which retrains them: {rerun_command()}"
        )


def check_complete(keys: pa.Table, folders: set[Path] = frozenset()) -> None:
    """Each (dataset, optimizer, seed) must hold configurations 0..n-1 once each, the
    default among them: a stale or missing shard is an error, not a silent gap."""
    frame = keys.to_pandas()
    if frame.duplicated(["dataset", "optimizer", "seed", "config_id"]).any():
        raise LionSweepError("duplicate (dataset, optimizer, seed, config_id) rows across shards")
    for (dataset, optimizer, seed), group in frame.groupby(["dataset", "optimizer", "seed"]):
        ids = group["config_id"].to_numpy()
        gaps = len(ids) != ids.max() + 1
        if gaps or int(group["is_default"].sum()) != 1:
            grid = [str(f) for f in folders if f.parts[-2:] == (dataset, optimizer)]
            where = shlex.join(["rm", "-r", *grid]) if grid else "delete its shards"
            raise LionSweepError(
                f"shards of {dataset}/{optimizer}/seed{seed} do not cover its grid "
                f"({len(ids)} rows, config_id up to {ids.max()}, "
                f"{int(group['is_default'].sum())} default rows): a shard is stale or missing; "
                f"{where} && {rerun_command()}"
            )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument(
        "--inputs-digest", default="", help="digest of the settings the shards come from (logged)"
    )
    parser.add_argument("shards", nargs="+", type=Path)


def run(args: argparse.Namespace) -> None:
    table = aggregate(args.shards)
    write_parquet(table, args.output)
    digest = f" (inputs digest {args.inputs_digest})" if args.inputs_digest else ""
    print(f"{args.output}: {table.num_rows} rows from {len(args.shards)} shards{digest}")
