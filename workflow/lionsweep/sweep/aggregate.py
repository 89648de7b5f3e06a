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
from collections.abc import Iterator, Set
from pathlib import Path

import numpy as np
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
BATCH_PARTS, BATCH_BYTES = 64, 1 << 20  # small consecutive slices joined (RowGroups)


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


def scan(shards: list[Path]) -> tuple[pa.Schema, list[Run], set[Path]]:
    """Pass 1: the sweep's schema (the shards' unified), every shard's runs and the
    shards whose rows are not in key order (pass 2 sorts only those).

    Per shard only what is cheap is kept: a shard's schema is held once per distinct
    schema (10^5 copies of the same schema took GBs), and a shard already in key order,
    as the workflow writes them, is not sorted."""
    schemas: dict[bytes, pa.Schema] = {}  # distinct, in first-seen order (unify's order)
    runs, damaged, engines, unsorted = [], [], set(), set()
    for path in shards:
        try:
            file = pq.ParquetFile(path)
            schema = file.schema_arrow
            names = set(schema.names)
            present = [c for c in (*KEYS, "task", ENGINE) if c in names]
            keys = file.read(columns=present, use_threads=False)
            schema = task_schema(schema)
        except (OSError, pa.ArrowInvalid) as err:
            damaged.append((path, why(err)))
            continue
        missing = [c for c in KEYS if c not in names]
        if missing:
            raise LionSweepError(f"{path}: missing columns {missing} (see docs/schema.md)")
        schemas.setdefault(schema.serialize().to_pybytes(), schema)
        engines |= set(keys.column(ENGINE).to_pylist()) if ENGINE in present else {1}
        order = key_order(keys)
        if order is not None:
            unsorted.add(path)
            keys = keys.take(order)
        runs += shard_runs(keys, path)
    if damaged:
        raise LionSweepError(damaged_message(damaged))
    check_one_engine(engines)
    try:
        schema = pa.unify_schemas(list(schemas.values()), promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise LionSweepError(f"shards have incompatible schemas: {err}") from None
    return schema, runs, unsorted


def key_order(table: pa.Table) -> pa.Array | None:
    """The (stable) order that sorts ``table`` by key, or None when it is sorted already."""
    if table.num_rows < 2:
        return None
    order = pc.sort_indices(table, sort_keys=SORT_KEYS)
    if np.array_equal(order.to_numpy(), np.arange(table.num_rows)):
        return None
    return order


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
    names = set(table.column_names)
    if "engine_version" not in names and "dataset" in names:
        ones = pa.array([1] * table.num_rows, pa.int64())
        table = table.append_column("engine_version", ones)
    if "task" in names or "dataset" not in names:
        return table
    n = table.num_rows
    at = table.column_names.index("dataset") + 1
    table = table.add_column(at, "task", pa.array(["binary"] * n, pa.string()))
    return table.add_column(at + 1, "primary_metric", pa.array([PRIMARY_METRIC["binary"]] * n))


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A shard in the sweep's schema: its columns in the sweep's order and types, the
    columns it lacks null (NaN for floats, as ``nan_for_other_tasks`` says).

    A shard already in the sweep's schema (the common case) needs neither ``with_task``
    (it would add nothing that stays) nor a rebuild: per-shard work counts at 10^5 shards."""
    if not table.schema.equals(schema, check_metadata=False):
        table = with_task(table)
    if table.schema.equals(schema, check_metadata=False):
        return nan_for_other_tasks(table.replace_schema_metadata(schema.metadata))
    index = {name: i for i, name in enumerate(table.column_names)}  # not a scan per field
    columns = []
    for field in schema:
        if field.name in index:
            column = table.column(index[field.name])
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


def slices(
    runs: list[Run], schema: pa.Schema, unsorted: Set[Path]
) -> Iterator[tuple[tuple[str, str], pa.Table]]:
    """Pass 2: each run's (dataset, optimizer) and rows, in the sweep's order; a shard is
    read once per visit (and sorted only if pass 1 found it out of order)."""
    path, table = None, None
    for run in runs:
        if run.path != path:
            path = run.path
            try:
                table = pq.ParquetFile(path).read(use_threads=False)
                table = conform(table.sort_by(SORT_KEYS) if path in unsorted else table, schema)
            except (OSError, pa.ArrowInvalid) as err:  # changed since pass 1
                raise LionSweepError(damaged_message([(path, why(err))])) from None
        yield (run.dataset, run.optimizer), table.slice(run.start, run.stop - run.start)


def write_sweep(
    runs: list[Run],
    schema: pa.Schema,
    output: Path,
    sink=None,
    group_bytes: int = ROW_GROUP_BYTES,
    unsorted: Set[Path] = frozenset(),
) -> int:
    """Write the runs' rows to ``output`` atomically, a row group per ``group_bytes``;
    the rows also go to ``sink`` (the summary's accumulator) in order. Returns the row
    count."""
    with atomic_path(output) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as w:
        groups = RowGroups(w, sink, group_bytes)
        for key, part in slices(runs, schema, unsorted):
            groups.add(key, part)
        groups.close(schema)
        if sink is not None:
            sink.close()
    return groups.rows


class RowGroups:
    """The rows on their way to the writer and the sink.

    A row group is written once ``group_bytes`` of slices are buffered (the bound on
    memory). Consecutive small slices of one (dataset, optimizer) are first joined
    into one contiguous table (up to ``BATCH_PARTS`` slices or ``BATCH_BYTES``): a
    one-row table held alone costs ~65 KB of buffers and objects for its ~1 KB of
    data, so 10^5 one-row shards buffered as such held GBs, and each part handed to
    the sink or the writer costs per-part work there too. A slice of ``BATCH_BYTES``
    or more goes on alone, uncopied."""

    def __init__(self, writer: pq.ParquetWriter, sink, group_bytes: int) -> None:
        self.writer, self.sink, self.group_bytes = writer, sink, group_bytes
        self.key: tuple[str, str] | None = None
        self.pending: list[pa.Table] = []  # small slices of ``key`` not yet joined
        self.pending_bytes = 0
        self.group: list[pa.Table] = []  # the row group being filled (joined parts)
        self.size = 0  # the row group's bytes, summed per slice
        self.rows = 0

    def add(self, key: tuple[str, str], part: pa.Table) -> None:
        nbytes = part.nbytes
        full = len(self.pending) >= BATCH_PARTS or self.pending_bytes + nbytes > BATCH_BYTES
        if self.pending and (key != self.key or full):
            self.join()
        self.key = key
        self.pending.append(part)
        self.pending_bytes += nbytes
        self.size += nbytes
        self.rows += part.num_rows
        if self.size >= self.group_bytes:
            self.join()
            self.writer.write_table(pa.concat_tables(self.group))
            self.group, self.size = [], 0

    def join(self) -> None:
        """Hand the pending slices on as one part (the sink sees one dataset and optimizer
        per part, in the sweep's order)."""
        if not self.pending:
            return
        if len(self.pending) == 1:
            part = self.pending[0]
        else:
            part = pa.concat_tables(self.pending).combine_chunks()
        if self.sink is not None:
            self.sink.add(part)
        self.group.append(part)
        self.pending, self.pending_bytes = [], 0

    def close(self, schema: pa.Schema) -> None:
        """The last row group (an empty table when there are no rows at all)."""
        self.join()
        if self.group or not self.rows:
            table = pa.concat_tables(self.group) if self.group else schema.empty_table()
            self.writer.write_table(table)
        self.group, self.size = [], 0


def aggregate(
    shards: list[Path], output: Path, sink=None, group_bytes: int = ROW_GROUP_BYTES
) -> int:
    """Merge ``shards`` into ``output`` (checked first: nothing is written on error)."""
    if not shards:
        raise LionSweepError("no shard files to aggregate")
    schema, runs, unsorted = scan(shards)
    folders = {Path(path).parent.parent for path in shards}  # .../shards/{dataset}/{optimizer}
    runs = order_runs(runs, folders, rerun_command())
    return write_sweep(runs, schema, output, sink, group_bytes, unsorted)


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
