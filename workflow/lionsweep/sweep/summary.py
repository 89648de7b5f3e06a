"""The per-configuration summary beside the sweep (``summary.parquet``): one row per
(dataset, optimizer, config_id) with its hyperparameters and the seed means, sds and
counts that selection reads (``selection.config_table``) for both protocols' metric
kinds, so that per-configuration results scale with configurations, not with rows x
columns. ``sweep.parquet`` stays the full record; ``load_columns`` reads from it only
the columns a stage needs.

Written by ``lionsweep aggregate`` in its streaming pass: the sweep is sorted by
dataset and optimizer, so one (dataset, optimizer)'s rows are buffered at a time
(their key, hyperparameter and metric columns only) and summarized with
``config_table`` itself: the numbers are those a stage would compute from the sweep.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lionsweep.atomic import atomic_path, temporary_folder
from lionsweep.errors import LionSweepError
from lionsweep.results.selection import (
    FALLBACK_METRIC,
    GROUP,
    HPARAMS,
    PRIMARY,
    REQUIRED,
    Metrics,
    check_sweep,
    config_table,
    metric_info,
    restrict,
    with_named_copies,
)
from lionsweep.train.tasks import PRIMARY_METRIC

KINDS = ("final", "best_epoch")
SUMMARY_KEYS = (*GROUP, "config_id", "is_default", "metric", "n_seeds", "val_mean", "best_val_mean")
STATS = ("val_mean", "val_sd", "val_loss_mean", "val_loss_sd", "test_mean", "test_sd")
COUNTS = ("n_failed_seeds",)
PREFIX = {"final": "", "best_epoch": "best_"}  # summary columns of each metric kind
BUCKET_CONFIGS = 20_000  # configurations summarized at a time (x seeds rows in pandas)
SPILL_BYTES = 64 << 20  # a (dataset, optimizer) buffered past this goes to scratch disk


def metric_columns(metric: str) -> list[str]:
    """The sweep columns a primary metric's selection reads (final and best epoch)."""
    info = metric_info(metric)
    return [f"{p}{s}_{k}" for p in ("", "best_") for s in ("val", "test")
            for k in (metric, info.tiebreak)]  # fmt: skip


def needed_columns(schema: pa.Schema, metrics: list[str]) -> list[str]:
    """Keys, task, hyperparameters, divergence and ``metrics``' columns, in the sweep's order."""
    wanted = {*REQUIRED, PRIMARY, "task", *HPARAMS}
    for m in metrics:
        wanted.update(metric_columns(m))
    return [c for c in schema.names if c in wanted]


def summarize(frame: pd.DataFrame, whole: bool = True) -> pd.DataFrame:
    """The summary rows of a sweep, or of part of it (not ``whole``: a configuration
    range of one dataset and optimizer, which need not hold the default)."""
    frame = check_sweep(frame, whole=whole)
    tables = {kind: config_table(frame, Metrics(kind)) for kind in KINDS}
    first = tables["final"]
    out = first[[*GROUP, "config_id", "is_default", *HPARAMS, "metric", "n_seeds"]].copy()
    for kind, table in tables.items():
        for col in (*COUNTS, *STATS):
            out[f"{PREFIX[kind]}{col}"] = table[col].to_numpy()
    return out


class SummaryWriter:
    """Summarizes the sweep's rows as ``aggregate`` streams them, a configuration range
    at a time, and writes the summary atomically on ``close``.

    Rows arrive seed by seed, so a configuration's seeds are a whole grid apart: a
    (dataset, optimizer)'s narrow columns (``needed_columns``) are buffered, and past
    ``spill_bytes`` spilled to a scratch Parquet file in row groups of one range of
    ``bucket`` configurations each. At the group's end each range is read back alone
    and summarized with ``summarize`` (``config_table`` is per configuration, so the
    ranges' rows are the whole group's), and written out as its own row group. Memory
    thus holds one range, not one grid (10^6 configurations x seeds at 100x)."""

    def __init__(
        self, path: Path, bucket: int = BUCKET_CONFIGS, spill_bytes: int = SPILL_BYTES
    ) -> None:
        self.path, self.bucket, self.spill_bytes = Path(path), max(1, bucket), spill_bytes
        self.group: tuple[str, str] | None = None
        self.parts: list[pa.Table] = []
        self.size = 0
        self.stack = contextlib.ExitStack()  # the scratch folder and the atomic output
        self.scratch: Path | None = None
        self.spilled: pq.ParquetWriter | None = None
        self.row_groups: dict[int, list[int]] = {}  # configuration range -> scratch groups
        self.n_spilled = 0
        self.out: pq.ParquetWriter | None = None

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.__exit__(*exc)  # on an error: no summary and no temporary left

    def add(self, part: pa.Table) -> None:
        if part.num_rows == 0:
            return
        group = (part.column("dataset")[0].as_py(), part.column("optimizer")[0].as_py())
        if group != self.group:
            self.flush()
            self.group = group
        metric = FALLBACK_METRIC
        if PRIMARY in part.column_names:
            metric = part.column(PRIMARY)[0].as_py() or FALLBACK_METRIC
        columns = needed_columns(part.schema, [metric])
        missing = [c for c in (*REQUIRED, *metric_columns(metric)) if c not in columns]
        if missing:
            raise LionSweepError(
                f"the shards have no columns {missing}: no summary (see docs/schema.md)"
            )
        self.parts.append(part.select(columns))
        self.size += self.parts[-1].nbytes
        if self.size >= self.spill_bytes:
            self.spill()

    def spill(self) -> None:
        """The buffered rows to the scratch file, a row group per configuration range."""
        rows = pa.concat_tables(self.parts)
        self.parts, self.size = [], 0
        if self.scratch is None:
            self.scratch = self.stack.enter_context(temporary_folder(self.path))
        if self.spilled is None:
            self.spilled = pq.ParquetWriter(self.scratch / "rows.parquet", rows.schema)
        for bucket, piece in by_range(rows, self.bucket):  # one row group per write
            self.row_groups.setdefault(bucket, []).append(self.n_spilled)
            self.spilled.write_table(piece, row_group_size=piece.num_rows)
            self.n_spilled += 1

    def ranges(self) -> Iterator[pa.Table]:
        """The group's rows, one configuration range at a time (all at once when the
        group never passed ``spill_bytes``)."""
        if self.spilled is None:
            if self.parts:
                yield pa.concat_tables(self.parts)
            return
        if self.parts:
            self.spill()
        self.spilled.close()
        where = self.scratch / "rows.parquet"
        with pq.ParquetFile(where) as file:
            for bucket in sorted(self.row_groups):
                yield file.read_row_groups(self.row_groups[bucket], use_threads=False)
        where.unlink()
        self.spilled, self.row_groups, self.n_spilled = None, {}, 0

    def flush(self) -> None:
        for rows in self.ranges():
            self.write(summary_table(summarize(rows.to_pandas(), whole=False)))
        self.parts, self.size = [], 0

    def write(self, table: pa.Table) -> None:
        if self.out is None:
            tmp = self.stack.enter_context(atomic_path(self.path))
            self.out = pq.ParquetWriter(tmp, table.schema, compression="zstd")
        try:
            self.out.write_table(table.cast(self.out.schema))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            raise LionSweepError(f"{self.path}: summary parts disagree ({err})") from None

    def close(self) -> None:
        self.flush()
        if self.out is None:
            raise LionSweepError("no rows to summarize")
        self.out.close()
        self.stack.close()  # the summary moves into place, the scratch folder goes


def by_range(rows: pa.Table, bucket: int) -> Iterator[tuple[int, pa.Table]]:
    """``rows`` cut by configuration range (``config_id // bucket``), ranges ascending,
    each keeping its rows' order (seed, then config_id)."""
    ranges = rows.column("config_id").to_numpy() // bucket
    order = np.argsort(ranges, kind="stable")
    ranges = ranges[order]
    rows = rows.take(pa.array(order))
    cuts = np.flatnonzero(np.diff(ranges)) + 1
    for start, stop in zip([0, *cuts], [*cuts, len(ranges)], strict=True):
        yield int(ranges[start]), rows.slice(start, stop - start)


def summary_table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def load_summary(path: str | Path) -> pd.DataFrame:
    try:
        return pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowInvalid) as err:
        raise LionSweepError(f"{path}: not a readable summary table ({err})") from None


def summary_groups(
    path: str | Path, datasets: list[str] | None = None, optimizers: list[str] | None = None
) -> dict[tuple[str, str], str]:
    """Each (dataset, optimizer) of the summary, in its order, with its primary metric
    (three dictionary-encoded columns, whatever the number of configurations); only
    ``datasets`` and ``optimizers`` when given, each of which must be there."""
    check_summary(path)
    columns = [*GROUP, "metric"]
    try:
        table = pq.read_table(path, columns=columns, read_dictionary=columns)
        table = table.unify_dictionaries()  # each row group has its own
    except (OSError, pa.ArrowInvalid) as err:
        raise LionSweepError(f"{path}: not a readable summary table ({err})") from None
    keys = table.group_by(columns, use_threads=False).aggregate([]).to_pandas()
    keys = restrict(keys.astype(str), datasets, optimizers, str(path)).sort_values(GROUP)
    return {(d, o): m for d, o, m in keys[columns].itertuples(index=False, name=None)}


def check_summary(path: str | Path) -> None:
    """A readable summary with its key columns, or one line naming the file (a sweep
    given as the summary, a damaged or missing file)."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise LionSweepError(f"{path}: not a readable summary table ({reason})") from None
    missing = [c for c in SUMMARY_KEYS if c not in schema.names]
    if missing:
        raise LionSweepError(
            f"{path}: missing columns {missing}: not a summary table (see docs/schema.md)"
        )


def group_configs(path: str | Path, metrics: Metrics, dataset: str, optimizer: str) -> pd.DataFrame:
    """``configs`` of one (dataset, optimizer), read alone: the summary is written a
    configuration range per row group, so the filter skips the others' row groups."""
    where = [("dataset", "=", dataset), ("optimizer", "=", optimizer)]
    try:
        summary = pq.read_table(path, filters=where).to_pandas()
    except (OSError, pa.ArrowInvalid) as err:
        raise LionSweepError(f"{path}: not a readable summary table ({err})") from None
    return configs(summary, metrics)


def configs(summary: pd.DataFrame, metrics: Metrics) -> pd.DataFrame:
    """``selection.config_table(sweep, metrics)`` from the summary: the same frame."""
    prefix = PREFIX[metrics.kind]
    out = summary[[*GROUP, "config_id", "is_default", *HPARAMS, "metric", "n_seeds"]].copy()
    out["n_failed_seeds"] = summary[f"{prefix}n_failed_seeds"].astype("int64")
    out["failed"] = out["n_failed_seeds"] > 0
    for col in STATS:
        out[col] = summary[f"{prefix}{col}"]
    return with_named_copies(out)


def sweep_schema(path: str | Path) -> pa.Schema:
    """The sweep's schema, its required columns checked (one line naming the file)."""
    try:
        schema = pq.read_schema(path)
    except (OSError, ValueError) as err:
        raise LionSweepError(f"{path}: not a readable sweep table ({err})") from None
    missing = [c for c in REQUIRED if c not in schema.names]
    if missing:
        raise LionSweepError(f"{path}: missing columns {missing} (see docs/schema.md)")
    return schema


def sweep_metrics(path: str | Path, extra: Iterable[str] = ()) -> tuple[pa.Schema, list[str]]:
    """The sweep's schema (``sweep_schema``) and the primary metrics its rows name, with
    ``extra`` (configured ones), read from one dictionary column."""
    schema = sweep_schema(path)
    metrics = [FALLBACK_METRIC]
    try:
        if PRIMARY in schema.names:
            found = pq.read_table(path, columns=[PRIMARY], read_dictionary=[PRIMARY])
            found = found.column(PRIMARY).unique()
            metrics = [m for m in found.to_pylist() if m] or metrics
    except (OSError, ValueError) as err:
        raise LionSweepError(f"{path}: not a readable sweep table ({err})") from None
    return schema, list(dict.fromkeys([*metrics, *extra]))


def load_columns(path: str | Path, curves: bool = False, extra: Iterable[str] = ()) -> pd.DataFrame:
    """The sweep's rows with only the columns selection and the figures read (and the
    validation curves with ``curves``), checked as ``selection.load_sweep`` checks;
    ``extra``: metrics read besides the rows' own (datasets.<name>.primary_metric)."""
    schema, metrics = sweep_metrics(path, extra)
    try:  # an unknown metric name in the sweep: say which file
        columns = needed_columns(schema, metrics)
    except LionSweepError as err:
        raise LionSweepError(f"{path}: {err}") from None
    if curves:
        names = ("curve_val_loss", *(f"curve_val_{m}" for m in metrics))
        columns += [c for c in schema.names if c in names]
    frame = pq.read_table(path, columns=columns).to_pandas()
    try:
        return check_sweep(frame, curves=curves)
    except LionSweepError as err:
        raise LionSweepError(f"{path}: {err}") from None


def with_curves(frame: pd.DataFrame, path: str | Path, chosen: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the validation curves of the rows the figures draw (each default
    and each chosen configuration, every seed), read alone from the sweep: the other
    rows' curves, most of the sweep's bytes, stay on disk (NaN here)."""
    tasks = frame["task"].unique() if "task" in frame.columns else ["binary"]
    metrics = dict.fromkeys([*frame[PRIMARY], *(PRIMARY_METRIC[t] for t in tasks)])
    schema = pq.read_schema(path)
    # curves follow the task's metric: a configured primary metric may have none
    stored = [f"curve_val_{m}" for m in metrics if f"curve_val_{m}" in schema.names]
    names = ["curve_val_loss", *stored]
    missing = [c for c in names if c not in schema.names]
    if missing:
        raise LionSweepError(f"{path}: missing columns {missing} (see docs/schema.md)")
    keys = ["dataset", "optimizer", "seed", "config_id"]
    ids = sorted(set(chosen["config_id"].astype(int)))
    filters = [[("is_default", "=", True)]] + ([[("config_id", "in", ids)]] if ids else [])
    table = pq.read_table(path, columns=[*keys, "is_default", *names], filters=filters)
    curves = table.to_pandas()
    picked = set(map(tuple, chosen[[*GROUP, "config_id"]].to_numpy().tolist()))
    mine = [tuple(k) in picked for k in curves[[*GROUP, "config_id"]].to_numpy().tolist()]
    curves = curves[curves["is_default"].to_numpy() | pd.array(mine, dtype=bool)]
    return frame.merge(curves.drop(columns="is_default"), on=keys, how="left", validate="1:1")
