"""`lionsweep confirm`: retrain the default and the honest choice on fresh seeds.

The sweep's seeds both *select* the honest configuration (mean validation metric) and
*report* it, so its test estimate carries the selection's seed luck, and with a few
seeds its interval is too wide to decide anything. Here, per (dataset, optimizer),
the default and the validation-selected configuration are retrained on
``confirm.seeds`` seeds that the sweep did not use (Bouthillier et al. 2021,
"Accounting for variance in machine learning benchmarks"): 2 x datasets x optimizers
x N trainings, a small fraction of the grid's cost, and the claims are decided on them.

Training goes through ``lionsweep.sweep.shards.train_configs``, the shards' own path, so a
configuration given a sweep seed reproduces the sweep's row bit for bit (the
consistency check in the tests). A (dataset, optimizer) without a working grid point
keeps its default's rows and gets one n/a ``tuned`` row per seed with the reason.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lionsweep.atomic import write_parquet
from lionsweep.errors import LionSweepError
from lionsweep.results.scoring import Metrics, with_primary
from lionsweep.results.selection import (
    GROUP,
    HPARAMS,
    NO_GRID_POINT,
    PRIMARY,
    check_sweep,
    config_table,
    parse_settings,
    restrict,
    select_honest,
)
from lionsweep.sweep.aggregate import nan_for_other_tasks
from lionsweep.sweep.shards import check_device, train_configs
from lionsweep.sweep.summary import group_configs, load_columns, summary_groups, sweep_metrics
from lionsweep.train.memory import selection_mb

ROLES = ("default", "tuned")  # the role column's values, in this order
KEYS = ["dataset", "optimizer", "seed", "role"]
OUT_OF_KEY = ("shard",)  # a sweep column that means nothing here


def plan(frame: pd.DataFrame, metrics: Metrics) -> pd.DataFrame:
    """Per (dataset, optimizer) of the sweep's rows: the default and the honest choice."""
    return plan_configs(config_table(check_sweep(frame), metrics))


def plan_summary(
    path: Path, metrics: Metrics, pairs: list[tuple[str, str]]
) -> tuple[pd.DataFrame, int]:
    """``plan`` from summary.parquet, one (dataset, optimizer) read at a time: memory
    holds one grid's configurations, not the sweep's rows (issue 19). Also returns the
    largest grid's number of configurations (the memory request's measure)."""
    plans, largest = [], 0
    for dataset, optimizer in pairs:
        configs = group_configs(path, metrics, dataset, optimizer)
        largest = max(largest, len(configs))
        plans.append(plan_configs(configs))
    return pd.concat(plans, ignore_index=True), largest


def plan_configs(configs: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, optimizer): the default and the honest choice (``select_honest``),
    as grid-table rows (config_id, is_default, hyperparameters) with their ``role``.
    A pair without a working grid point gets a tuned row with NA config_id and ``note``."""
    chosen = select_honest(configs).set_index(GROUP)
    rows = []
    for (dataset, optimizer), g in configs.groupby(GROUP, sort=True):
        base = {"dataset": dataset, "optimizer": optimizer}
        default = g[g["is_default"]].iloc[0]
        rows.append({**base, "role": "default", **_config(default), "note": ""})
        if (dataset, optimizer) in chosen.index:
            tuned = chosen.loc[(dataset, optimizer)]
            rows.append({**base, "role": "tuned", **_config(tuned), "note": ""})
        else:
            empty = {"config_id": pd.NA, "is_default": False, **dict.fromkeys(HPARAMS, np.nan)}
            rows.append({**base, "role": "tuned", **empty, "note": NO_GRID_POINT})
    out = pd.DataFrame(rows)
    out["config_id"] = out["config_id"].astype("Int64")
    return out


def _config(row: pd.Series) -> dict[str, Any]:
    return {
        "config_id": int(row["config_id"]),
        "is_default": bool(row["is_default"]),
        **{h: float(row[h]) for h in HPARAMS},
    }


def check_seeds(swept: list[int], seeds: list[int]) -> None:
    """Fresh seeds only: a sweep seed would report the selection's own luck again."""
    if not seeds:
        raise LionSweepError("confirm: no seeds given (confirm.seeds must be at least 1)")
    reused = sorted(set(seeds) & set(swept))
    if reused:
        raise LionSweepError(
            f"confirm seeds {reused} are sweep seeds (sweep.seeds): the confirmation must "
            "use fresh seeds; move confirm.first_seed past them"
        )


def _na_rows(picked: pd.Series, seeds: list[int], like: pa.Table) -> pa.Table:
    """One n/a ``tuned`` row per seed for a pair without a selection (metrics null),
    typed as the trained rows ``like`` (the concatenation then fills the rest with nulls)."""
    first = like.slice(0, 1).select(["task", PRIMARY]).to_pandas()
    frame = pd.DataFrame(
        {
            "dataset": picked["dataset"],
            "task": first["task"].iloc[0],
            PRIMARY: first[PRIMARY].iloc[0],
            "optimizer": picked["optimizer"],
            "seed": np.asarray(seeds, dtype=np.int64),
            "config_id": pd.array([pd.NA] * len(seeds), dtype="Int64"),
            "is_default": False,
            **{h: np.nan for h in HPARAMS},
            "role": "tuned",
            "note": picked["note"],
        }
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    schema = pa.schema([like.schema.field(n) for n in table.column_names])
    return table.cast(schema)


def train_pair(
    picks: pd.DataFrame,
    data_dir: Path,
    seeds: list[int],
    settings: dict[str, Any],
    threads: int | None,
    job_mem_mb: int | None,
) -> list[pa.Table]:
    """The pair's picks (default, tuned when there is one) trained on every seed."""
    dataset, optimizer = picks["dataset"].iloc[0], picks["optimizer"].iloc[0]
    ok = picks[picks["config_id"].notna()].reset_index(drop=True)
    grid_rows = ok.assign(config_id=ok["config_id"].astype(np.int64))
    out = []
    for seed in seeds:
        table = train_configs(
            grid_rows, data_dir, (dataset, optimizer, seed, 0), settings, threads,
            progress=False, job_mem_mb=job_mem_mb,
        )  # fmt: skip
        table = table.drop_columns([c for c in OUT_OF_KEY if c in table.column_names])
        table = table.append_column("role", pa.array(ok["role"].tolist(), pa.string()))
        out.append(table.append_column("note", pa.array(ok["note"].tolist(), pa.string())))
    missing = picks[picks["config_id"].isna()]
    if len(missing):
        out += [_na_rows(missing.iloc[0], seeds, out[0])]
    return out


def confirm(
    frame: pd.DataFrame,
    data_dirs: dict[str, Path],
    seeds: list[int],
    settings: dict[str, Any],
    metrics: Metrics,
    threads: int | None = None,
    job_mem_mb: int | None = None,
) -> pa.Table:
    """The confirmation of the sweep's rows ``frame`` (``confirm_picks``)."""
    primary = frame.groupby("dataset")[PRIMARY].first().to_dict() if PRIMARY in frame else {}
    return confirm_picks(
        plan(frame, metrics), primary, data_dirs, seeds, settings, threads, job_mem_mb
    )


def confirm_picks(
    picks: pd.DataFrame,
    primary: dict[str, str],
    data_dirs: dict[str, Path],
    seeds: list[int],
    settings: dict[str, Any],
    threads: int | None = None,
    job_mem_mb: int | None = None,
) -> pa.Table:
    """The confirmation table: one row per (dataset, optimizer, seed, role), the sweep
    table's columns plus ``role`` and ``note``, sorted by key (stable bytes).
    ``primary``: each dataset's primary metric in the sweep, kept over training's own."""
    check_device(settings.get("device"))
    # the sweep's halving selects among a grid; the confirmation trains its picks whole
    settings = {k: v for k, v in settings.items() if k not in ("halving", "halving_metric")}
    lacking = sorted(set(picks["dataset"]) - set(data_dirs))
    if lacking:  # before any training, not after the datasets that have one
        raise LionSweepError(f"--data: no prepared data folder for dataset(s) {lacking}")
    tables = []
    for (dataset, optimizer), pair in picks.groupby(GROUP, sort=True):
        start = time.perf_counter()
        tables += train_pair(pair, data_dirs[dataset], seeds, settings, threads, job_mem_mb)
        ids = ", ".join(f"{r.role} {_id(r.config_id)}" for r in pair.itertuples())
        print(
            f"confirm {dataset}/{optimizer}: {ids} on {len(seeds)} seeds in "
            f"{time.perf_counter() - start:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    table = pa.concat_tables(tables, promote_options="default")
    if primary:  # training writes its task's; keep the sweep's (with_primary)
        names = [primary[d] for d in table.column("dataset").to_pylist()]
        at = table.schema.get_field_index(PRIMARY)
        table = table.set_column(at, PRIMARY, pa.array(names, pa.string()))
    return nan_for_other_tasks(table).sort_by([(k, "ascending") for k in KEYS])


def _id(config_id: Any) -> str:
    return "n/a" if pd.isna(config_id) else f"config {int(config_id)}"


def data_folders(paths: list[Path]) -> dict[str, Path]:
    """Prepared data folders by dataset name, read from each folder's meta.json."""
    out = {}
    for path in paths:
        try:
            name = json.loads((Path(path) / "meta.json").read_text())["dataset"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise LionSweepError(f"{path}/meta.json: not a prepared data folder ({err})") from None
        out[name] = Path(path)
    return out


def seed_list(text: str) -> list[int]:
    try:
        seeds = [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers, got {text!r}") from None
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must be distinct and >= 0, got {text!r}")
    return seeds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sweep", required=True, type=Path, help="results/<study>/sweep.parquet")
    parser.add_argument(
        "--summary", type=Path, help="results/<study>/summary.parquet (select from it)"
    )
    parser.add_argument("--data", required=True, nargs="+", type=Path, help="prepared folders")
    parser.add_argument("--seeds", required=True, type=seed_list, help='e.g. "1000 1001 1002"')
    parser.add_argument("--settings", required=True, help="model+training config as JSON")
    parser.add_argument("--results", default="{}", help="the `results:` config section as JSON")
    parser.add_argument("--datasets", nargs="*", help="datasets to confirm (default: all)")
    parser.add_argument("--optimizers", nargs="*", help="optimizers to confirm (default: all)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--job-mem-mb", type=int, default=None, help="memory granted to the job")
    parser.add_argument("--inputs-digest", default="", help="digest of the settings (logged)")
    parser.add_argument(
        "--allow-sweep-seeds",
        action="store_true",
        help="consistency checks only: retrain on sweep seeds (reproduces the sweep's rows)",
    )
    parser.add_argument("--output", required=True, type=Path)


def run(args: argparse.Namespace) -> None:
    results = parse_settings(args.results, "--results")
    try:
        settings = json.loads(args.settings)
    except json.JSONDecodeError as err:
        raise LionSweepError(f"--settings is not valid JSON ({err})") from None
    metrics = Metrics(results["honest_metrics"])
    if args.summary is not None and not results["primary_metrics"]:
        picks, primary, swept, rows = from_summary(args, metrics)
    else:  # a configured primary metric: the summary holds each task's own
        picks, primary, swept, rows = from_rows(args, results, metrics)
    if not args.allow_sweep_seeds:
        check_seeds(swept, args.seeds)
    # the training's grant: the job's, less what the selection holds (lionsweep.train.memory)
    grant = None if args.job_mem_mb is None else args.job_mem_mb - selection_mb(rows)
    dirs = data_folders(args.data)
    table = confirm_picks(picks, primary, dirs, args.seeds, settings, args.threads, grant)
    write_parquet(table, args.output)
    digest = f" (inputs digest {args.inputs_digest})" if args.inputs_digest else ""
    print(f"{args.output}: {table.num_rows} rows, {len(args.seeds)} seeds{digest}")


Picked = tuple[pd.DataFrame, dict[str, str], list[int], int]


def from_summary(args: argparse.Namespace, metrics: Metrics) -> Picked:
    """The picks from summary.parquet, a grid at a time; the sweep gives its seeds only."""
    groups = summary_groups(args.summary, args.datasets, args.optimizers)
    sweep_metrics(args.sweep)  # its required columns, or one line naming it
    try:
        seeds = pq.read_table(args.sweep, columns=["seed"]).column("seed").unique().to_pylist()
    except (OSError, pa.ArrowInvalid, KeyError) as err:
        raise LionSweepError(f"{args.sweep}: not a readable sweep table ({err})") from None
    primary = {d: m for (d, _), m in groups.items()}
    picks, largest = plan_summary(args.summary, metrics, list(groups))
    rows = largest * len(seeds)  # the largest grid's, as the rule's request counts them
    return picks, primary, seeds, rows


def from_rows(args: argparse.Namespace, results: dict[str, Any], metrics: Metrics) -> Picked:
    """The picks from the sweep's rows (only the columns selection reads)."""
    frame = load_columns(args.sweep, extra=results["primary_metrics"].values())
    frame = with_primary(
        restrict(frame, args.datasets, args.optimizers), results["primary_metrics"]
    )
    primary = frame.groupby("dataset")[PRIMARY].first().to_dict()
    rows = int(frame.groupby(GROUP).size().max())  # the largest grid's (the rule's count)
    return plan(frame, metrics), primary, frame["seed"].unique().tolist(), rows
