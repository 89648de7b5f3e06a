"""Streaming aggregation (issue 19): the sweep written shard by shard is the table the
whole-table merge gave, the summary is `config_table`'s numbers, the shard list comes
from a file, and memory does not grow with the number of shards."""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from synthetic_sweep import DEGENERATE, diverge, make_sweep, to_parquet

from lionsweep.cli import main
from lionsweep.errors import LionSweepError
from lionsweep.results.selection import Metrics, check_sweep, config_table
from lionsweep.sweep.aggregate import SORT_KEYS, aggregate
from lionsweep.sweep.summary import KINDS, SummaryWriter, configs, load_summary

ROOT = Path(__file__).resolve().parents[1]
TASKS = {"titanic": "binary", "wine": "multiclass", "diabetes": "regression"}


def write_shards(frame: pd.DataFrame, folder: Path, size: int = 4) -> list[Path]:
    """Shards as the sweep cuts them (contiguous config ranges of one dataset, optimizer
    and seed), listed in a shuffled order."""
    frame = frame.sort_values(["dataset", "optimizer", "seed", "config_id"], ignore_index=True)
    whole = folder / "whole.parquet"
    folder.mkdir(parents=True)
    to_parquet(frame, whole)
    table = pq.read_table(whole)
    whole.unlink()
    paths = []
    for (d, o, s), rows in frame.groupby(["dataset", "optimizer", "seed"]).indices.items():
        for i in range(0, len(rows), size):
            path = folder / d / o / f"seed{s}" / f"shard{i // size:04d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table.slice(rows[0] + i, min(size, len(rows) - i)), path)
            paths.append(path)
    random.Random(3).shuffle(paths)
    return paths


def whole_table_merge(shards: list[Path]) -> pa.Table:
    """What aggregate wrote before it streamed: one concatenation, NaN-filled, sorted."""
    table = pa.concat_tables([pq.read_table(p) for p in shards], promote_options="default")
    for i, field in enumerate(table.schema):
        if pa.types.is_floating(field.type) and table.column(i).null_count:
            nan = pa.scalar(float("nan"), field.type)
            table = table.set_column(i, field, pc.fill_null(table.column(i), nan))
    return table.sort_by(SORT_KEYS)


def assert_same_table(new: pa.Table, old: pa.Table) -> None:
    """Same columns, types, row order and values (NaN where NaN); metadata aside."""
    assert new.schema.equals(old.schema, check_metadata=False)
    pd.testing.assert_frame_equal(new.to_pandas(), old.to_pandas(), check_exact=True)


@pytest.mark.parametrize("group_bytes", [1, 64 << 20])
def test_streamed_sweep_is_the_whole_table_merge(tmp_path: Path, group_bytes: int) -> None:
    """Three tasks (so other tasks' metric columns are filled with NaN), shards listed
    out of order; one row group per shard or one for all: the same table."""
    frame = make_sweep(datasets=tuple(TASKS), optimizers=("lion", "adamw", "sgd"), task=TASKS)
    shards = write_shards(frame, tmp_path / "shards")
    out = tmp_path / "sweep.parquet"
    assert aggregate(shards, out, group_bytes=group_bytes) == len(frame)
    assert_same_table(pq.read_table(out), whole_table_merge(shards))
    groups = pq.ParquetFile(out).metadata.num_row_groups
    assert groups == (len(shards) if group_bytes == 1 else 1)


def summaries(frame: pd.DataFrame, tmp_path: Path, **writer: int) -> pd.DataFrame:
    shards = write_shards(frame, tmp_path / "shards", size=5)
    summary = tmp_path / "summary.parquet"
    with SummaryWriter(summary, **writer) as sink:
        aggregate(shards, tmp_path / "sweep.parquet", sink)
    return load_summary(summary)


# in memory (the defaults), and spilled at every part into ranges of 3 configurations
WRITERS = {"in memory": {}, "spilled, ranges of 3": {"bucket": 3, "spill_bytes": 1}}


CASES = {
    "three tasks, four optimizers": lambda: make_sweep(
        datasets=tuple(TASKS), optimizers=("lion", "adamw", "sgd", "adam"), task=TASKS
    ),
    **DEGENERATE,
}


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("case", CASES)
def test_summary_gives_config_table_s_numbers(case: str, writer: str, tmp_path: Path) -> None:
    """Per configuration, for final and best-epoch metrics alike: the frame a stage
    computes from the whole sweep, to the last bit, degenerate sweeps included, whether
    a grid is summarized at once or range by range from the scratch file."""
    frame = CASES[case]()
    if case == "three tasks, four optimizers":
        diverge(frame, (frame["config_id"] % 5 == 1) & (frame["seed"] == 1))
    summary = summaries(frame, tmp_path, **WRITERS[writer])
    sweep = check_sweep(pq.read_table(tmp_path / "sweep.parquet").to_pandas())
    for kind in KINDS:
        expected = config_table(sweep, Metrics(kind))
        pd.testing.assert_frame_equal(configs(summary, Metrics(kind)), expected, check_exact=True)


def test_a_shard_list_file_of_many_tiny_shards(tmp_path: Path) -> None:
    """1,000 one-row shards reach the command through --shard-list (a command line of
    10^5 paths exceeds the kernel's limit), with the summary."""
    frame = make_sweep(datasets=("toy",), optimizers=("lion",), seeds=tuple(range(53)))
    shards = write_shards(frame, tmp_path / "shards", size=1)
    assert len(shards) == len(frame) >= 1000
    listing = tmp_path / "shards.txt"
    listing.write_text("".join(f"{p}\n" for p in shards))
    sweep, summary = tmp_path / "sweep.parquet", tmp_path / "summary.parquet"
    argv = ["aggregate", "--shard-list", str(listing), "--output", str(sweep)]
    assert main([*argv, "--summary", str(summary)]) == 0
    assert pq.read_metadata(sweep).num_rows == len(frame)
    assert load_summary(summary)["n_seeds"].tolist() == [53] * 19


def test_an_unreadable_shard_list_is_one_line(tmp_path: Path, capsys) -> None:
    argv = ["aggregate", "--shard-list", str(tmp_path / "nope.txt"), "--output", "x.parquet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot read the shard list {tmp_path}/nope.txt" in err


def wide_shards(folder: Path, count: int, rows: int = 2000, columns: int = 40) -> Path:
    """``count`` shards of one grid, ``columns`` float metrics each; returns their list."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        ids = np.arange(i * rows, (i + 1) * rows)
        table = {"dataset": ["d"] * rows, "optimizer": ["lion"] * rows, "seed": [0] * rows}
        table |= {"config_id": ids, "is_default": ids == count * rows - 1}
        table |= {f"m{j}": rng.random(rows) for j in range(columns)}
        paths.append(folder / f"shard{i:04d}.parquet")
        pq.write_table(pa.table(table), paths[-1])
    listing = folder / "list.txt"
    listing.write_text("".join(f"{p}\n" for p in paths))
    return listing


def peak_rss_mib(listing: Path, out: Path, *extra: str) -> float:
    """The aggregate command's peak RSS, from its own process (``extra``: more options)."""
    # VmHWM, the peak of the process's own memory since its exec: ru_maxrss would also
    # hold the peak of the (v)forking parent, pytest, and hide the command's own
    code = (
        "import re, sys; from lionsweep.cli import main; rc = main(sys.argv[1:]); "
        "status = open('/proc/self/status').read(); "
        "print(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)); sys.exit(rc)"
    )
    argv = ["aggregate", "--shard-list", str(listing), "--output", str(out), "--row-group-mib", "2"]
    argv += extra
    env = {**os.environ, "PYTHONPATH": str(ROOT / "workflow")}
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          env=env, check=True)  # fmt: skip
    return int(proc.stdout.split()[-1]) / 1024


def test_peak_memory_does_not_grow_with_the_shards(tmp_path: Path) -> None:
    """10x the shards (about 6 MiB -> 64 MiB of floats): the peak stays within 20% of
    one shard's run; the whole-table merge held the sweep at least twice (ratio ~2)."""
    (tmp_path / "few").mkdir()
    (tmp_path / "many").mkdir()
    few = peak_rss_mib(wide_shards(tmp_path / "few", 10), tmp_path / "few.parquet")
    many = peak_rss_mib(wide_shards(tmp_path / "many", 100), tmp_path / "many.parquet")
    assert pq.read_metadata(tmp_path / "many.parquet").num_rows == 200_000
    assert many < 1.2 * few, json.dumps({"10 shards MiB": few, "100 shards MiB": many})


def test_a_spilled_grid_is_summarized_one_range_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 19: a grid of 10^6 configurations x seeds was summarized in pandas at once
    (2.3 GB at 100x). Spilled, no call sees more than one range's rows, and the scratch
    folder is gone afterwards."""
    import lionsweep.sweep.summary as summary_module

    seen: list[int] = []
    real = summary_module.summarize
    monkeypatch.setattr(
        summary_module, "summarize", lambda f, **kw: seen.append(len(f)) or real(f, **kw)
    )
    frame = make_sweep(datasets=("toy",), optimizers=("lion",), seeds=(0, 1, 2))
    n_configs = frame["config_id"].nunique()
    assert n_configs > 8
    summary = summaries(frame, tmp_path, bucket=4, spill_bytes=1)
    assert len(summary) == n_configs
    assert max(seen) == 4 * 3 and sum(seen) == len(frame)
    assert not list(tmp_path.glob(".*.part"))  # the scratch folder and the temporary


def test_a_failing_summary_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A summary that fails after some ranges were spilled and written leaves neither a
    summary, its temporary nor the scratch folder."""
    import lionsweep.sweep.summary as summary_module

    calls: list[int] = []
    real = summary_module.summarize

    def failing(frame: pd.DataFrame, **kw: bool) -> pd.DataFrame:
        calls.append(len(frame))
        if len(calls) == 3:
            raise LionSweepError("a range failed")
        return real(frame, **kw)

    monkeypatch.setattr(summary_module, "summarize", failing)
    frame = make_sweep(datasets=("toy",), optimizers=("lion", "sgd"))
    shards = write_shards(frame, tmp_path / "shards", size=5)
    writer = SummaryWriter(tmp_path / "summary.parquet", bucket=2, spill_bytes=1)
    with pytest.raises(LionSweepError, match="a range failed"), writer as sink:
        aggregate(shards, tmp_path / "sweep.parquet", sink)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shards"]


def tiny_shards(folder: Path, seeds: int) -> Path:
    """One-row shards of one grid (19 configurations x ``seeds``); returns their list."""
    frame = make_sweep(datasets=("toy",), optimizers=("lion",), seeds=tuple(range(seeds)))
    listing = folder / "list.txt"
    shards = write_shards(frame, folder / "shards", size=1)
    listing.write_text("".join(f"{p}\n" for p in shards))
    return listing


def test_peak_memory_does_not_grow_with_tiny_shards(tmp_path: Path) -> None:
    """10x the one-row shards (114 -> 1,140, a few hundred KB of rows): the peak, summary
    included, grows by under 15 MiB. Holding every shard's schema (for unify_schemas)
    and buffering each one-row slice as its own table (~65 KB of buffers and objects
    for ~1 KB of data, up to a whole row group) made it grow by ~100 KB per shard:
    GBs at 10^5 shards."""
    runs = {}
    for seeds in (6, 60):
        folder = tmp_path / f"seeds{seeds}"
        listing = tiny_shards(folder, seeds)
        summary = ("--summary", str(folder / "summary.parquet"))
        runs[seeds] = peak_rss_mib(listing, folder / "sweep.parquet", *summary)
    assert pq.read_metadata(tmp_path / "seeds60" / "sweep.parquet").num_rows == 19 * 60
    assert runs[60] < runs[6] + 15, json.dumps({"114 shards MiB": runs[6], "1140 MiB": runs[60]})


def test_shards_out_of_key_order_spanning_grids(tmp_path: Path) -> None:
    """Shards of 1 to 13 rows cut from a shuffled sweep: rows out of key order (pass 2
    sorts only these), several datasets, optimizers and seeds per shard (a shard read
    once per run), one-row slices joined across shards: the whole-table merge row for
    row, and the summary's numbers are config_table's."""
    frame = make_sweep(datasets=tuple(TASKS), optimizers=("lion", "adamw"), task=TASKS)
    whole = tmp_path / "whole.parquet"
    to_parquet(frame.sample(frac=1.0, random_state=5, ignore_index=True), whole)
    table = pq.read_table(whole)
    whole.unlink()
    shards, start = [], 0
    for i, size in enumerate(itertools.cycle((1, 7, 1, 2, 13, 1))):
        if start >= table.num_rows:
            break
        shards.append(tmp_path / "shards" / f"shard{i:04d}.parquet")
        shards[-1].parent.mkdir(exist_ok=True)
        pq.write_table(table.slice(start, size), shards[-1])
        start += size
    out, summary = tmp_path / "sweep.parquet", tmp_path / "summary.parquet"
    assert aggregate(shards, out, SummaryWriter(summary), group_bytes=4096) == len(frame)
    assert_same_table(pq.read_table(out), whole_table_merge(shards))
    sweep = check_sweep(pq.read_table(out).to_pandas())
    for kind in KINDS:
        expected = config_table(sweep, Metrics(kind))
        got = configs(load_summary(summary), Metrics(kind))
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
