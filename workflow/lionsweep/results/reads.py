"""What the tables read of a sweep of any size (issue 19): the configurations they can
show, from summary.parquet a (dataset, optimizer) at a time, and the rows they pair by
seed, from sweep.parquet a batch at a time. Memory holds one grid's configurations
and the kept rows, never the sweep (6 M rows at 100x the paper's study held 5 GB).

Every table then computes from these exactly what it computes from the whole sweep:
``compact_configs`` keeps each grid's default, its ``top_k`` ranked points, its best
decayed and best undecayed point and the rows at each hyperparameter's extremes (the
grid's extent, for the edge flags), and carries each grid's size and failures in
``attrs`` (``selection.grid_counts``); ``table_rows`` keeps every default row, every
seed of the kept configurations and, per seed, the test-selected best of each batch
(``select_paper`` of their union is the sweep's).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lionsweep.errors import LionSweepError
from lionsweep.results.scoring import Metrics
from lionsweep.results.selection import (
    GRID_COUNTS,
    GROUP,
    HPARAMS,
    PRIMARY,
    REQUIRED,
    check_sweep,
    grid_counts,
    rank_grid,
    select_paper,
)
from lionsweep.sweep.summary import (
    group_configs,
    metric_columns,
    needed_columns,
    sweep_metrics,
    sweep_schema,
)

BATCH_ROWS = 1 << 17  # sweep rows read at a time
KEYS = [*GROUP, "config_id"]


def sufficient(configs: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """The rows of one grid's configurations the tables can read (module docstring)."""
    ranked = rank_grid(configs)
    keep = [ranked.head(max(1, top_k))]
    for decayed in (ranked["weight_decay"] > 0, ranked["weight_decay"] == 0):
        keep.append(ranked[decayed].head(1))
    grid = configs[~configs["is_default"]]
    for h in HPARAMS:
        values = grid[h].dropna()
        if len(values):
            keep.append(grid.loc[[values.idxmin(), values.idxmax()]])
    ids = pd.concat([configs[configs["is_default"]], *keep])["config_id"]
    return configs[configs["config_id"].isin(set(ids))]


def compact_configs(
    path: str | Path, metrics: Metrics, pairs: Iterable[tuple[str, str]], top_k: int
) -> pd.DataFrame:
    """``sufficient`` rows of every (dataset, optimizer) in ``pairs``, read one at a time,
    with each grid's (points, failed points) in ``attrs[GRID_COUNTS]``."""
    parts, counts = [], {}
    for dataset, optimizer in pairs:
        configs = group_configs(path, metrics, dataset, optimizer)
        counts |= grid_counts(configs)
        parts.append(sufficient(configs, top_k))
    out = pd.concat(parts, ignore_index=True)
    out.attrs[GRID_COUNTS] = counts
    return out


def table_rows(
    path: str | Path, configs: pd.DataFrame, extra: Iterable[str] = (), paper: bool = True
) -> pd.DataFrame:
    """The sweep's rows the tables pair by seed (module docstring), read in batches of
    the columns selection reads; without ``paper``, the defaults and ``configs`` only."""
    schema, metrics = sweep_metrics(path, extra)
    columns = needed_columns(schema, metrics)
    wanted = configs[KEYS].drop_duplicates().assign(_keep=True)
    kept, candidates = [], []
    try:
        batches = pq.ParquetFile(path).iter_batches(BATCH_ROWS, columns=columns)
        for batch in batches:
            frame = check_sweep(batch.to_pandas(), whole=False)
            mine = frame.merge(wanted, on=KEYS, how="left")["_keep"].notna().to_numpy()
            kept.append(frame[frame["is_default"].to_numpy() | mine])
            if paper:
                best = select_paper(frame)[[*KEYS, "seed"]]
                candidates.append(frame.merge(best, on=[*KEYS, "seed"]))
    except (OSError, pa.ArrowInvalid) as err:
        raise LionSweepError(f"{path}: not a readable sweep table ({err})") from None
    except LionSweepError as err:
        raise LionSweepError(f"{path}: {err}") from None
    rows = pd.concat([*kept, *candidates], ignore_index=True)
    rows = rows.drop_duplicates([*KEYS, "seed"])
    return rows.sort_values([*GROUP, "seed", "config_id"], ignore_index=True)


def group_rows(
    path: str | Path, dataset: str, optimizer: str, axes: list[str], metric: str
) -> pd.DataFrame:
    """One (dataset, optimizer)'s rows with the columns the marginal figures read (keys,
    the grid's ``axes``, divergence, its primary ``metric``'s), read alone: the sweep is
    sorted by dataset and optimizer, so the filter skips the others' row groups."""
    schema = sweep_schema(path)
    where = [("dataset", "=", dataset), ("optimizer", "=", optimizer)]
    wanted = {*REQUIRED, PRIMARY, *axes, *metric_columns(metric)}
    columns = [c for c in schema.names if c in wanted]
    try:
        frame = pq.read_table(path, columns=columns, filters=where).to_pandas()
    except (OSError, pa.ArrowInvalid) as err:
        raise LionSweepError(f"{path}: not a readable sweep table ({err})") from None
    if PRIMARY not in frame.columns:
        frame[PRIMARY] = metric
    frame["diverged"] = frame["diverged"].astype(bool)
    return frame
