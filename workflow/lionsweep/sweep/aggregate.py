"""Merge shard files into one sweep table (docs/schema.md), sorted for stable bytes.

Streaming: a first pass reads each shard's key columns only and cuts it into runs
(one dataset/optimizer/seed, consecutive config ids); the runs are ordered and
checked (duplicates, gaps, one task per dataset) before anything is written; a
second pass reads each shard once more and writes its rows in that order, a row
group at a time. Memory thus grows with one shard and one row group, not with the
sweep, and the shard list comes from a file (``--shard-list``): 10^5 paths exceed
the kernel's argument-list limit.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lionsweep.atomic import atomic_path
from lionsweep.errors import LionSweepError
from lionsweep.layout import RERUN_ENV
from lionsweep.sweep.aggregate_runs import KEYS, Run, order_runs, shard_runs
from lionsweep.train.tasks import PRIMARY_METRIC

SORT_KEYS = [
    ("dataset", "ascending"),
    ("optimizer", "ascending"),
    ("seed", "ascending"),
    ("config_id", "ascending"),
]
ROW_GROUP_BYTES = 64 << 20  # a row group is written once this much is buffered (bounds RSS)


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


ENGINE = "engine_version"


def why(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def scan(shards: list[Path]) -> tuple[pa.Schema, list[Run]]:
    """Pass 1: the sweep's schema (the shards' unified) and every shard's runs."""
    schemas, runs, damaged, engines = [], [], [], set()
    for path in shards:
        try:
            file = pq.ParquetFile(path)
            schema = file.schema_arrow
            present = [c for c in (*KEYS, "task", ENGINE) if c in schema.names]
            keys = file.read(columns=present, use_threads=False)
            schema = task_schema(schema)
        except (OSError, pa.ArrowInvalid) as err:
            damaged.append((path, why(err)))
            continue
        missing = [c for c in KEYS if c not in schema.names]
        if missing:
            raise LionSweepError(f"{path}: missing columns {missing} (see docs/schema.md)")
        schemas.append(schema)
        engines |= set(keys.column(ENGINE).to_pylist()) if ENGINE in present else {1}
        runs += shard_runs(keys.sort_by(SORT_KEYS), path)
    if damaged:
        raise LionSweepError(damaged_message(damaged))
    check_one_engine(engines)
    try:
        schema = pa.unify_schemas(schemas, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise LionSweepError(f"shards have incompatible schemas: {err}") from None
    return schema, runs


def check_one_engine(versions: set[int]) -> None:
    """Shards of different engine versions differ in numbers: never one sweep of them
    (a shard without the column predates it: version 1)."""
    if len(versions) > 1:
        raise LionSweepError(
            f"shards come from engine versions {', '.join(map(str, sorted(versions)))}, whose "
            f"numbers differ: delete the older shards and rerun, which retrains them: "
            f"{rerun_command()}"
        )


def task_schema(schema: pa.Schema) -> pa.Schema:
    """The schema ``with_task`` gives a shard: task columns after ``dataset``."""
    if "task" in schema.names or "dataset" not in schema.names:
        return schema
    at = schema.get_field_index("dataset") + 1
    schema = schema.insert(at, pa.field("task", pa.string()))
    return schema.insert(at + 1, pa.field("primary_metric", pa.string()))


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
    return table.add_column(at + 1, "primary_metric", pa.array([PRIMARY_METRIC["binary"]] * n))


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A shard in the sweep's schema: its columns in the sweep's order and types, the
    columns it lacks null (NaN for floats, as ``nan_for_other_tasks`` says)."""
    table = with_task(table)
    if table.schema.equals(schema, check_metadata=False):  # the common case: nothing to do
        return nan_for_other_tasks(table.replace_schema_metadata(schema.metadata))
    columns = []
    for field in schema:
        if field.name in table.column_names:
            column = table.column(field.name)
            columns.append(column if column.type == field.type else column.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return nan_for_other_tasks(pa.Table.from_arrays(columns, schema=schema))


def nan_for_other_tasks(table: pa.Table) -> pa.Table:
    """Shards of different tasks have different metric columns (heads.result_columns):
    the concatenation leaves nulls where a task has no such metric; they become NaN, as
    a float metric that does not apply reads everywhere else (curves stay null)."""
    for i, field in enumerate(table.schema):
        if pa.types.is_floating(field.type) and table.column(i).null_count:
            filled = pc.fill_null(table.column(i), pa.scalar(float("nan"), field.type))
            table = table.set_column(i, field, filled)
    return table


def slices(runs: list[Run], schema: pa.Schema) -> Iterator[pa.Table]:
    """Pass 2: each run's rows in the sweep's order; a shard is read once per visit."""
    path, table = None, None
    for run in runs:
        if run.path != path:
            path = run.path
            try:
                table = pq.ParquetFile(path).read(use_threads=False)
                table = conform(table.sort_by(SORT_KEYS), schema)
            except (OSError, pa.ArrowInvalid) as err:  # changed since pass 1
                raise LionSweepError(damaged_message([(path, why(err))])) from None
        yield table.slice(run.start, run.stop - run.start)


def write_sweep(
    runs: list[Run], schema: pa.Schema, output: Path, sink=None, group_bytes: int = ROW_GROUP_BYTES
) -> int:
    """Write the runs' rows to ``output`` atomically, a row group per ``group_bytes``;
    each slice also goes to ``sink`` (the summary's accumulator). Returns the row count."""
    rows, buffered, size = 0, [], 0
    with atomic_path(output) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as w:
        for part in slices(runs, schema):
            if sink is not None:
                sink.add(part)
            buffered.append(part)
            size += part.nbytes
            rows += part.num_rows
            if size >= group_bytes:
                w.write_table(pa.concat_tables(buffered))
                buffered, size = [], 0
        if buffered or not rows:
            w.write_table(pa.concat_tables(buffered) if buffered else schema.empty_table())
        if sink is not None:
            sink.close()
    return rows


def aggregate(
    shards: list[Path], output: Path, sink=None, group_bytes: int = ROW_GROUP_BYTES
) -> int:
    """Merge ``shards`` into ``output`` (checked first: nothing is written on error)."""
    if not shards:
        raise LionSweepError("no shard files to aggregate")
    schema, runs = scan(shards)
    folders = {Path(path).parent.parent for path in shards}  # .../shards/{dataset}/{optimizer}
    runs = order_runs(runs, folders, rerun_command())
    return write_sweep(runs, schema, output, sink, group_bytes)


def read_list(path: Path) -> list[Path]:
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise LionSweepError(f"cannot read the shard list {path}: {why(err)}") from None
    return [Path(line) for line in lines if line.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--summary", type=Path, help="also write the per-configuration summary")
    parser.add_argument(
        "--inputs-digest", default="", help="digest of the settings the shards come from (logged)"
    )
    parser.add_argument("--shard-list", type=Path, help="a file naming the shards, one path a line")
    parser.add_argument(
        "--row-group-mib", type=int, default=ROW_GROUP_BYTES >> 20, help="rows buffered per write"
    )
    parser.add_argument("shards", nargs="*", type=Path)


def run(args: argparse.Namespace) -> None:
    shards = [*(read_list(args.shard_list) if args.shard_list else []), *args.shards]
    with contextlib.ExitStack() as stack:
        sink = None
        if args.summary is not None:
            from lionsweep.sweep.summary import SummaryWriter

            sink = stack.enter_context(SummaryWriter(args.summary))
        rows = aggregate(shards, args.output, sink, max(1, args.row_group_mib) << 20)
    digest = f" (inputs digest {args.inputs_digest})" if args.inputs_digest else ""
    print(f"{args.output}: {rows} rows from {len(shards)} shards{digest}")
    from lionsweep.sweep.halving import saved_line

    print(saved_line(args.output))
