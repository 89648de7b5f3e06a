"""Expand an optimizer's hyperparameter grid for one dataset into a stable table.

The table is written once per (dataset, optimizer) and read by every shard job,
so that whole grids never sit in rule parameters: changing one dataset's grid
changes one small file, and only that dataset's shards rerun.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from lionsweep.errors import LionSweepError
from lionsweep.io import write_parquet
from lionsweep.optim import hparam_names

HPARAMS = hparam_names()  # every registry optimizer's hyperparameters, in a fixed order


def _tidy(value: float) -> float:
    """Round to 12 significant digits so 0.8 + 0.01 * k prints as people wrote it."""
    return float(f"{value:.12g}")


def axis_values(spec: list[float] | dict[str, Any], name: str = "axis") -> list[float]:
    """Values of one axis: an explicit list, or {start, stop, num, scale: linear|log}."""
    if isinstance(spec, list):
        if not spec:
            raise LionSweepError(f"grid axis {name!r} is empty")
        return [_tidy(float(v)) for v in spec]
    start, stop, num = float(spec["start"]), float(spec["stop"]), int(spec["num"])
    if num < 1:
        raise LionSweepError(f"grid axis {name!r}: num must be >= 1, got {num}")
    if spec.get("scale", "linear") == "log":
        if start <= 0 or stop <= 0:
            raise LionSweepError(f"grid axis {name!r}: a log scale needs start and stop > 0")
        values = np.geomspace(start, stop, num)
    else:
        values = np.linspace(start, stop, num)
    return [_tidy(v) for v in values]


def grid_spec(config: dict[str, Any], dataset: str, optimizer: str) -> dict[str, Any]:
    """The grid and defaults that apply to ``dataset`` (per-dataset override, else `grid`)."""
    opt = config["optimizers"][optimizer]
    grid = opt.get("grid_overrides", {}).get(dataset, opt["grid"])
    return {"optimizer": optimizer, "defaults": opt["defaults"], "grid": grid}


def expand(spec: dict[str, Any]) -> pd.DataFrame:
    """All grid points (config_id 0..n-1, last axis fastest), then the default as its own row."""
    defaults = spec["defaults"]
    grid = spec["grid"]
    unknown = sorted(set(grid) - set(HPARAMS))
    if unknown:
        raise LionSweepError(f"unknown hyperparameters in grid: {unknown}")
    axes = {
        h: axis_values(grid[h], h) if h in grid else [defaults.get(h, math.nan)] for h in HPARAMS
    }
    rows = [dict(zip(HPARAMS, point, strict=True)) for point in itertools.product(*axes.values())]
    default_row = {h: float(defaults.get(h, math.nan)) for h in HPARAMS}
    frame = pd.DataFrame([*rows, default_row], columns=list(HPARAMS), dtype="float64")
    frame.insert(0, "is_default", [False] * len(rows) + [True])
    frame.insert(0, "config_id", np.arange(len(frame), dtype=np.int64))
    return frame


def grid_size(spec: dict[str, Any]) -> int:
    """Rows of ``expand(spec)`` without building it (grid points + the default)."""
    n = 1
    for h, axis in spec["grid"].items():
        n *= len(axis) if isinstance(axis, list) else int(axis["num"])
        if h not in HPARAMS:
            raise LionSweepError(f"unknown hyperparameter in grid: {h!r}")
    return n + 1


def shard_bounds(rows: int, shard_size: int) -> list[tuple[int, int]]:
    """[start, stop) of every shard of a ``rows``-row grid table.

    Shards hold ``shard_size`` rows; the last one also takes the remainder (fewer
    than ``shard_size`` rows), so that e.g. a 1000-point grid plus its default is one
    shard, not a second job training a single configuration. The bounds depend only
    on the grid's size and the shard size, so a shard's identity is stable.
    """
    count = max(1, rows // shard_size)
    return [
        (i * shard_size, rows if i == count - 1 else (i + 1) * shard_size) for i in range(count)
    ]


def n_shards(spec: dict[str, Any], shard_size: int) -> int:
    return len(shard_bounds(grid_size(spec), shard_size))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", required=True, help="grid spec as JSON (see grid_spec)")
    parser.add_argument("--output", required=True, type=Path)


def run(args: argparse.Namespace) -> None:
    frame = expand(json.loads(args.spec))
    write_parquet(pa.Table.from_pandas(frame, preserve_index=False), args.output)
    print(f"{args.output}: {len(frame)} configurations")
