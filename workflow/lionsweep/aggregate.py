"""Merge shard files into one sweep table (docs/schema.md), sorted for stable bytes."""

from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lionsweep.errors import LionSweepError
from lionsweep.io import write_parquet

SORT_KEYS = [
    ("dataset", "ascending"),
    ("optimizer", "ascending"),
    ("seed", "ascending"),
    ("config_id", "ascending"),
]


def aggregate(shards: list[Path]) -> pa.Table:
    if not shards:
        raise LionSweepError("no shard files to aggregate")
    tables = []
    for path in shards:
        try:
            tables.append(pq.read_table(path))
        except (OSError, pa.ArrowInvalid) as err:
            raise LionSweepError(f"{path}: not a readable Parquet shard ({err})") from None
    try:
        table = pa.concat_tables(tables, promote_options="default")
    except pa.ArrowInvalid as err:
        raise LionSweepError(f"shards have incompatible schemas: {err}") from None
    table = table.sort_by(SORT_KEYS)
    check_complete(table.select(["dataset", "optimizer", "seed", "config_id", "is_default"]))
    return table


def check_complete(keys: pa.Table) -> None:
    """Each (dataset, optimizer, seed) must hold configurations 0..n-1 once each, the
    default among them: a stale or missing shard is an error, not a silent gap."""
    frame = keys.to_pandas()
    if frame.duplicated(["dataset", "optimizer", "seed", "config_id"]).any():
        raise LionSweepError("duplicate (dataset, optimizer, seed, config_id) rows across shards")
    for (dataset, optimizer, seed), group in frame.groupby(["dataset", "optimizer", "seed"]):
        ids = group["config_id"].to_numpy()
        gaps = len(ids) != ids.max() + 1
        if gaps or int(group["is_default"].sum()) != 1:
            raise LionSweepError(
                f"shards of {dataset}/{optimizer}/seed{seed} do not cover its grid "
                f"({len(ids)} rows, config_id up to {ids.max()}, "
                f"{int(group['is_default'].sum())} default rows): a shard is stale or missing; "
                f"delete results/shards/{dataset}/{optimizer} and rerun"
            )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("shards", nargs="+", type=Path)


def run(args: argparse.Namespace) -> None:
    table = aggregate(args.shards)
    write_parquet(table, args.output)
    print(f"{args.output}: {table.num_rows} rows from {len(args.shards)} shards")
