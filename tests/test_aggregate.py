"""Aggregation refuses an incomplete or duplicated set of shards, naming the grid."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lionsweep.aggregate import aggregate
from lionsweep.errors import LionSweepError


def shard(path: Path, ids: list[int], default: int | None, seed: int = 0) -> Path:
    n = len(ids)
    pq.write_table(
        pa.table(
            {
                "dataset": ["titanic"] * n,
                "optimizer": ["lion"] * n,
                "seed": [seed] * n,
                "config_id": ids,
                "is_default": [i == default for i in ids],
                "test_acc": [0.5] * n,
            }
        ),
        path,
    )
    return path


def test_complete_shards_merge_sorted(tmp_path: Path) -> None:
    a = shard(tmp_path / "b.parquet", [3, 4], default=4)
    b = shard(tmp_path / "a.parquet", [0, 1, 2], default=None)
    table = aggregate([a, b])
    assert table.column("config_id").to_pylist() == [0, 1, 2, 3, 4]


def test_missing_rows_are_an_error(tmp_path: Path) -> None:
    a = shard(tmp_path / "a.parquet", [0, 1, 2], default=None)
    b = shard(tmp_path / "b.parquet", [4, 5], default=5)
    with pytest.raises(LionSweepError, match="titanic/lion/seed0 do not cover its grid"):
        aggregate([a, b])


def test_stale_last_shard_without_default_is_an_error(tmp_path: Path) -> None:
    a = shard(tmp_path / "a.parquet", [0, 1, 2], default=None)
    with pytest.raises(LionSweepError, match="0 default rows"):
        aggregate([a])


def test_duplicates_are_an_error(tmp_path: Path) -> None:
    a = shard(tmp_path / "a.parquet", [0, 1], default=1)
    with pytest.raises(LionSweepError, match="duplicate"):
        aggregate([a, a])
