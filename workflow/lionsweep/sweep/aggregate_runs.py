"""The aggregate's plan: shards cut into runs of consecutive configurations, ordered
and checked (one task per dataset, no duplicate, every grid complete) from their key
columns alone, before a row of the sweep is written."""

from __future__ import annotations

import itertools
import shlex
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from lionsweep.errors import LionSweepError

KEYS = ("dataset", "optimizer", "seed", "config_id", "is_default")


@dataclass(frozen=True, slots=True)
class Run:
    """Rows ``start:stop`` of a shard (sorted by key): one dataset, optimizer, seed and
    task, config ids ``first`` to ``last`` without a gap."""

    dataset: str
    optimizer: str
    seed: int
    first: int
    last: int
    defaults: int
    task: str
    path: Path
    start: int
    stop: int

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.dataset, self.optimizer, self.seed, self.first)


def shard_runs(keys: pa.Table, path: Path) -> list[Run]:
    """The runs of one shard's key columns, already sorted by (dataset, optimizer, seed,
    config_id); a shard of the workflow is a single run."""
    n = keys.num_rows
    if n == 0:
        return []
    cols = {c: keys.column(c).to_numpy(zero_copy_only=False) for c in KEYS}
    task = (
        keys.column("task").to_numpy(zero_copy_only=False)
        if "task" in keys.column_names
        else np.full(n, "binary", dtype=object)
    )
    ids = cols["config_id"].astype(np.int64)
    breaks = np.zeros(n, dtype=bool)
    breaks[0] = True
    breaks[1:] = ids[1:] != ids[:-1] + 1
    for c in ("dataset", "optimizer", "seed"):
        breaks[1:] |= cols[c][1:] != cols[c][:-1]
    breaks[1:] |= task[1:] != task[:-1]
    starts = np.flatnonzero(breaks).tolist()
    defaults = np.add.reduceat(cols["is_default"].astype(np.int64), starts).tolist()
    runs = []
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else n
        group = (
            str(cols["dataset"][start]),
            str(cols["optimizer"][start]),
            int(cols["seed"][start]),
        )
        ends = (int(ids[start]), int(ids[stop - 1]), int(defaults[i]), str(task[start]))
        runs.append(Run(*group, *ends, path, start, stop))
    return runs


def order_runs(runs: list[Run], folders: set[Path], rerun: str) -> list[Run]:
    """The runs in the sweep's order, checked: a stale or missing shard is an error
    naming what to delete, not a silent gap."""
    runs = sorted(runs, key=lambda r: r.key)
    check_one_task(runs, rerun)
    for a, b in itertools.pairwise(runs):
        if a.key[:3] == b.key[:3] and b.first <= a.last:
            raise LionSweepError(
                "duplicate (dataset, optimizer, seed, config_id) rows across shards"
            )
    check_complete(runs, folders, rerun)
    return runs


def check_one_task(runs: list[Run], rerun: str) -> None:
    """A dataset's shards must share one task: two mean shards of old prepared data."""
    tasks: dict[str, set[str]] = defaultdict(set)
    for r in runs:
        tasks[r.dataset].add(r.task)
    for name, found in tasks.items():
        if len(found) > 1:
            raise LionSweepError(
                f"shards of {name} hold different tasks ({', '.join(sorted(found))}): some "
                f"are stale; delete the dataset's shards and rerun: {rerun}"
            )


def check_complete(runs: list[Run], folders: set[Path], rerun: str) -> None:
    """Each (dataset, optimizer, seed) must hold configurations 0..n-1 once each, the
    default among them (runs do not overlap: checked before)."""
    groups: dict[tuple[str, str, int], list[int]] = {}
    for r in runs:  # [rows, max id, defaults]
        g = groups.setdefault(r.key[:3], [0, -1, 0])
        g[0] += r.last - r.first + 1
        g[1] = max(g[1], r.last)
        g[2] += r.defaults
    for (dataset, optimizer, seed), (rows, top, defaults) in groups.items():
        if rows != top + 1 or defaults != 1:
            grid = [str(f) for f in folders if f.parts[-2:] == (dataset, optimizer)]
            where = shlex.join(["rm", "-r", *grid]) if grid else "delete its shards"
            raise LionSweepError(
                f"shards of {dataset}/{optimizer}/seed{seed} do not cover its grid "
                f"({rows} rows, config_id up to {top}, {defaults} default rows): a shard is "
                f"stale or missing; {where} && {rerun}"
            )
