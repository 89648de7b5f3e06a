"""Aggregation refuses an incomplete or duplicated set of shards, naming the grid."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lionsweep.errors import LionSweepError
from lionsweep.sweep.aggregate import aggregate as aggregate_to


def aggregate(shards: list[Path]) -> pa.Table:
    """The sweep the shards merge into (written beside the first shard, read back)."""
    out = Path(shards[0]).parent / "merged" / "sweep.parquet" if shards else Path("none")
    aggregate_to(shards, out)
    return pq.read_table(out)


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


def test_damaged_shards_are_named_with_the_command_that_recovers(
    tmp_path: Path, monkeypatch
) -> None:
    """A truncated shard: one line naming every damaged file, how to delete it, and the
    command that reruns the study (which the workflow puts in LIONSWEEP_RERUN)."""
    monkeypatch.setenv("LIONSWEEP_RERUN", "snakemake --cores all --configfile config/test.yaml")
    good = shard(tmp_path / "good.parquet", [0, 1], default=1)
    bad = tmp_path / "my shards" / "shard0001.parquet"
    bad.parent.mkdir()
    data = shard(bad, [2, 3], default=None).read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    with pytest.raises(LionSweepError) as err:
        aggregate([good, bad, empty])
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("2 damaged shard file(s), not readable as Parquet: ")
    assert f"{bad} (" in message and f"{empty} (" in message and f"{good} (" not in message
    assert message.endswith(
        f"rm '{bad}' {empty} && snakemake --cores all --configfile config/test.yaml"
    )


def test_a_gap_names_the_folder_to_delete(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LIONSWEEP_RERUN", "snakemake --cores all")
    folder = tmp_path / "shards" / "titanic" / "lion" / "seed0"
    folder.mkdir(parents=True)
    a = shard(folder / "shard0000.parquet", [0, 1, 2], default=None)
    with pytest.raises(LionSweepError) as err:
        aggregate([a])
    assert str(err.value).endswith(f"rm -r {folder.parent} && snakemake --cores all")


def task_shard(path: Path, dataset: str, task: str, metrics: dict[str, float]) -> Path:
    """A complete one-configuration grid of ``task`` with that task's metric columns."""
    columns = {
        "dataset": [dataset],
        "task": [task],
        "optimizer": ["lion"],
        "seed": [0],
        "config_id": [0],
        "is_default": [True],
    }
    pq.write_table(pa.table({**columns, **{k: [v] for k, v in metrics.items()}}), path)
    return path


def test_shards_of_different_tasks_merge_with_nan_metrics(tmp_path: Path) -> None:
    """A multiclass and a regression dataset in one sweep: each row has its task's metrics,
    the other task's columns are NaN (not null), and the rows stay complete."""
    wine = task_shard(tmp_path / "w.parquet", "wine", "multiclass", {"test_acc": 0.9})
    diab = task_shard(tmp_path / "d.parquet", "diabetes", "regression", {"test_r2": 0.4})
    table = aggregate([wine, diab])
    assert table.column("dataset").to_pylist() == ["diabetes", "wine"]
    assert table.column("test_acc").null_count == table.column("test_r2").null_count == 0
    frame = table.to_pandas().set_index("dataset")
    assert frame.loc["wine", "test_acc"] == 0.9 and frame.loc["diabetes", "test_r2"] == 0.4
    assert pd.isna(frame.loc["wine", "test_r2"]) and pd.isna(frame.loc["diabetes", "test_acc"])


def test_one_dataset_with_two_tasks_is_an_error(tmp_path: Path) -> None:
    a = task_shard(tmp_path / "a.parquet", "mine", "binary", {"test_acc": 0.9})
    b = task_shard(tmp_path / "b.parquet", "mine", "regression", {"test_r2": 0.4})
    with pytest.raises(LionSweepError, match=r"shards of mine hold different tasks \(binary, "):
        aggregate([a, b])


def test_shards_from_before_tasks_are_binary(tmp_path: Path) -> None:
    """Shards written before the task columns existed join a new binary shard's sweep
    without retraining: their task is binary, their primary metric accuracy."""
    old = shard(tmp_path / "old.parquet", [0, 1], default=None)
    new = tmp_path / "new.parquet"
    columns = {"dataset": ["titanic"], "task": ["binary"], "primary_metric": ["acc"]}
    keys = {"optimizer": ["lion"], "seed": [0], "config_id": [2], "is_default": [True]}
    pq.write_table(pa.table({**columns, **keys, "test_acc": [0.7]}), new)
    table = aggregate([old, new])
    assert table.column_names[:3] == ["dataset", "task", "primary_metric"]
    assert table.column("task").to_pylist() == ["binary"] * 3
    assert table.column("primary_metric").to_pylist() == ["acc"] * 3
    assert table.column("test_acc").to_pylist() == [0.5, 0.5, 0.7]


def test_shards_of_two_engine_versions_are_refused(tmp_path: Path) -> None:
    """Shards of another engine version differ in numbers: one line, never one sweep.
    A shard written before the column existed is version 1."""
    from lionsweep import ENGINE_VERSION

    old = shard(tmp_path / "old.parquet", [0, 1], default=None)
    new = tmp_path / "new.parquet"
    keys = {"dataset": ["titanic"], "optimizer": ["lion"], "seed": [0], "config_id": [2]}
    extra = {"is_default": [True], "test_acc": [0.7], "engine_version": [ENGINE_VERSION]}
    pq.write_table(pa.table({**keys, **extra}), new)
    with pytest.raises(LionSweepError, match=rf"engine versions 1, {ENGINE_VERSION}, whose"):
        aggregate([old, new])
    newer = shard(tmp_path / "newer.parquet", [0, 1], default=None)
    table = pq.read_table(newer)
    pq.write_table(table.append_column("engine_version", pa.array([ENGINE_VERSION] * 2)), newer)
    assert aggregate([newer, new]).column("engine_version").to_pylist() == [ENGINE_VERSION] * 3
