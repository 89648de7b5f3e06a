"""Expand an optimizer's hyperparameter grid for one dataset into a stable table.

A grid is a YAML *list* of axes, ``[{param: lr, values: [...]}, {param: beta1,
start:, stop:, num:, scale:}]``, not a mapping: Snakemake merges ``--configfile``
mappings key by key but replaces lists whole, so a user's grid is exactly what
they wrote and never silently inherits axes from config/config.yaml.

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
from typing import TYPE_CHECKING, Any

import numpy as np

from lionsweep.errors import LionSweepError
from lionsweep.optim.hparams import (
    AVERAGING,
    DESCRIPTIONS,
    TRAINING_AXES,
    HParam,
    accepted,
    grid_columns,
    names,
)
from lionsweep.sweep.sampling import axis_range, check_sampling, is_sampled, sample, sampling_spec

if TYPE_CHECKING:  # pandas and pyarrow are imported where used: the rules parse this module
    import pandas as pd

# The grid table's axis columns: every registry optimizer's hyperparameters in a fixed
# order, then the training axes (epochs), which every optimizer accepts.
HPARAMS = grid_columns()
RANGE_KEYS = ("start", "stop", "num")


def _tidy(value: float) -> float:
    """Round to 12 significant digits so 0.8 + 0.01 * k prints as people wrote it."""
    return float(f"{value:.12g}")


def _yaml_value(value: Any) -> str:
    if isinstance(value, dict):
        return _flow(value)
    return value if isinstance(value, str) else json.dumps(value)


def _flow(mapping: dict[str, Any]) -> str:
    """A mapping as one-line YAML flow style, for error messages users can paste."""
    return "{" + ", ".join(f"{k}: {_yaml_value(v)}" for k, v in mapping.items()) + "}"


def old_shape_hint(where: str, grid: dict[str, Any]) -> str:
    """The message for a grid written as a mapping (the shape before grids were lists)."""
    axes = [
        {"param": name, "values": axis} if isinstance(axis, list) else {"param": name, **axis}
        for name, axis in grid.items()
    ]
    example = "[" + ", ".join(_flow(a) for a in axes) + "]"
    return (
        f"{where} is a mapping; a grid is now a list of axes, e.g. {where.rsplit('.', 1)[-1]}: "
        f"{example} (Snakemake merges --configfile mappings with config/config.yaml's, "
        "so a mapping would pick up the paper's axes; a list is replaced whole)"
    )


def _number(value: Any, where: str, key: str) -> float:
    """A YAML number (this runs before the schema: a string must not be a traceback)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LionSweepError(f"{where}: {value!r} in `{key}` is not a number")
    return float(value)


def axis_values(axis: dict[str, Any], where: str = "axis") -> list[float]:
    """Values of one axis: ``{param, values: [...]}`` or ``{param, start, stop, num, scale}``."""
    if "values" in axis:
        values = axis["values"]
        if not isinstance(values, list) or not values:
            raise LionSweepError(f"{where}: `values` must be a non-empty list")
        return [_tidy(_number(v, where, "values")) for v in values]
    missing = [k for k in RANGE_KEYS if k not in axis]
    if missing:
        raise LionSweepError(f"{where}: needs `values`, or `start`, `stop` and `num`")
    start, stop, num = (_number(axis[k], where, k) for k in RANGE_KEYS)
    if not num.is_integer():
        raise LionSweepError(f"{where}: num must be a whole number, got {num!r}")
    if num < 1:
        raise LionSweepError(f"{where}: num must be >= 1, got {int(num)}")
    if axis.get("scale", "linear") == "log":
        if start <= 0 or stop <= 0:
            raise LionSweepError(f"{where}: a log scale needs start and stop > 0")
        values = np.geomspace(start, stop, int(num))
    else:
        values = np.linspace(start, stop, int(num))
    return [_tidy(v) for v in values]


def axis_length(axis: dict[str, Any]) -> int:
    """Values of a listed or start/stop/num axis (a sampled axis has no length of its own)."""
    return len(axis["values"]) if "values" in axis else int(axis["num"])


def registry_hparams(optimizer: str, where: str) -> dict[str, HParam]:
    """``optimizer``'s hyperparameters from the registry, the weight averaging's
    (``ema_decay``, which every optimizer has) included, or one line naming ``where``."""
    if optimizer not in DESCRIPTIONS:
        raise LionSweepError(
            f"{where}: unknown optimizer {optimizer!r}; expected one of {', '.join(names())}"
        )
    return accepted(optimizer)


def _not_its_param(optimizer: str, name: Any, hparams: dict[str, HParam]) -> str:
    return f"{optimizer} has no hyperparameter {name!r} (it has {', '.join(hparams)})"


def check_value(hparam: HParam, value: float, where: str) -> None:
    """One line when ``value`` is outside the registry's range (or not whole for a switch)."""
    if not hparam.contains(value):
        raise LionSweepError(f"{where}: {value!r} is not {hparam.describe()}")


def check_grid(grid: Any, where: str, optimizer: str) -> None:
    """Raise LionSweepError naming ``where`` for a grid that is not a valid list of axes
    of ``optimizer``'s hyperparameters with values in the registry's ranges."""
    if isinstance(grid, dict):
        raise LionSweepError(old_shape_hint(where, grid))
    if not isinstance(grid, list) or not grid:
        raise LionSweepError(f"{where}: a grid is a non-empty list of axes {{param: ..., ...}}")
    own = registry_hparams(optimizer, f"optimizers.{optimizer}")
    hparams = {**own, **TRAINING_AXES}
    seen: set[str] = set()
    for i, axis in enumerate(grid):
        name = axis.get("param") if isinstance(axis, dict) else None
        if not isinstance(name, str) or name not in hparams:
            step = [h for h in own if h not in AVERAGING]
            raise LionSweepError(
                f"{where}[{i}]: `param` must be one of {step} ({optimizer}'s hyperparameters), "
                f"{list(AVERAGING)} (weight EMA) or {list(TRAINING_AXES)} (training), not {name!r}"
            )
        if name in seen:
            raise LionSweepError(f"{where}: param {name!r} appears twice (one axis per param)")
        seen.add(name)
        if is_sampled(axis):
            axis_range(axis, f"{where}[{i}] ({name})", hparams[name])
            continue
        for value in axis_values(axis, f"{where}[{i}] ({name})"):
            check_value(hparams[name], value, f"{where}[{i}] ({name})")


def check_defaults(defaults: Any, where: str, optimizer: str) -> None:
    """A study's ``defaults`` override registry hyperparameters of ``optimizer`` only."""
    hparams = registry_hparams(optimizer, f"optimizers.{optimizer}")
    for name, value in (defaults or {}).items():
        if name in TRAINING_AXES:
            raise LionSweepError(
                f"{where}.{name}: {name} is a training axis, not a hyperparameter: its "
                f"default is training.{name} (or give the grid a {name} axis)"
            )
        if name not in hparams:
            raise LionSweepError(f"{where}.{name}: {_not_its_param(optimizer, name, hparams)}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise LionSweepError(f"{where}.{name}: {value!r} is not a number")
        check_value(hparams[name], float(value), f"{where}.{name}")


def effective_defaults(optimizer: str, overrides: dict[str, float] | None) -> dict[str, float]:
    """The study's default configuration: the registry's defaults updated by ``overrides``
    (the registry holds each optimizer's library defaults once; config may change them)."""
    hparams = registry_hparams(optimizer, f"optimizers.{optimizer}")
    return {h: float((overrides or {}).get(h, p.default)) for h, p in hparams.items()}


def grid_source(config: dict[str, Any], dataset: str, optimizer: str) -> str:
    """Which config key gives ``dataset``'s grid: `grid_overrides.<dataset>` or `grid`.

    An override set to null means "no override" (the only way a --configfile can
    drop an override that config/config.yaml defines, since mappings are merged).
    """
    overrides = config["optimizers"][optimizer].get("grid_overrides") or {}
    return f"grid_overrides.{dataset}" if overrides.get(dataset) is not None else "grid"


def grid_spec(config: dict[str, Any], dataset: str, optimizer: str) -> dict[str, Any]:
    """The grid and defaults that apply to ``dataset`` (per-dataset override, else `grid`);
    the defaults are the registry's updated by the config's (see effective_defaults), and
    the training axes' defaults are the `training` section's (training.epochs)."""
    opt = config["optimizers"][optimizer]
    source = grid_source(config, dataset, optimizer)
    grid = opt["grid"] if source == "grid" else opt["grid_overrides"][dataset]
    defaults = effective_defaults(optimizer, opt.get("defaults"))
    training = {k: v for k, v in config.get("training", {}).items() if k in TRAINING_AXES}
    spec = {"optimizer": optimizer, "defaults": defaults, "grid": grid, "training": training}
    if any(is_sampled(axis) for axis in grid):  # only then: a value grid's spec is unchanged
        spec["sampling"] = sampling_spec(opt, optimizer, dataset)
    return spec


def check_grids(config: dict[str, Any]) -> None:
    """Check every grid of the configuration (before the schema, whose messages for the
    old mapping shape would not say how to write the new one)."""
    optimizers = config.get("optimizers")
    for optimizer, opt in (optimizers if isinstance(optimizers, dict) else {}).items():
        if not isinstance(opt, dict):
            continue
        if "grid" in opt:
            check_grid(opt["grid"], f"optimizers.{optimizer}.grid", optimizer)
        overrides = opt.get("grid_overrides")
        for dataset, grid in (overrides if isinstance(overrides, dict) else {}).items():
            if grid is not None:
                check_grid(grid, f"optimizers.{optimizer}.grid_overrides.{dataset}", optimizer)
        check_sampling(opt, f"optimizers.{optimizer}")


def expand(spec: dict[str, Any]) -> pd.DataFrame:
    """All grid points (config_id 0..n-1, axes in the order written, last axis fastest),
    then the default as its own row; a hyperparameter without an axis keeps its default
    (registry defaults updated by ``spec["defaults"]``); another optimizer's is NaN. A
    training axis without an axis takes ``spec["training"]`` (NaN without it: the
    training job then uses its own settings, e.g. training.epochs). Sampled axes add
    their N points as one factor of the product (see factors)."""
    import pandas as pd

    optimizer = spec["optimizer"]
    check_grid(spec["grid"], f"optimizers.{optimizer} grid", optimizer)
    check_defaults(spec.get("defaults"), f"optimizers.{optimizer}.defaults", optimizer)
    defaults = {**effective_defaults(optimizer, spec.get("defaults")), **spec.get("training", {})}
    fixed = {h: defaults.get(h, math.nan) for h in HPARAMS}
    rows = [
        {**fixed, **{k: v for part in point for k, v in part.items()}}
        for point in itertools.product(*factors(spec))
    ]
    frame = pd.DataFrame([*rows, fixed], columns=list(HPARAMS), dtype="float64")
    frame.insert(0, "is_default", [False] * len(rows) + [True])
    frame.insert(0, "config_id", np.arange(len(frame), dtype=np.int64))
    return frame


def sampled_points(spec: dict[str, Any]) -> list[dict[str, float]]:
    """The N points of a grid's sampled axes ({param: value} each; [] without any),
    drawn as ``spec["sampling"]`` says (lionsweep.sweep.sampling)."""
    optimizer = spec["optimizer"]
    axes = [axis for axis in spec["grid"] if is_sampled(axis)]
    if not axes:
        return []
    if "sampling" not in spec:
        raise LionSweepError(f"optimizers.{optimizer}: a sampled axis needs `samples`")
    hparams = {**registry_hparams(optimizer, f"optimizers.{optimizer}"), **TRAINING_AXES}
    ranges = [axis_range(a, a["param"], hparams[a["param"]]) for a in axes]
    how = spec["sampling"]
    drawn = sample(ranges, int(how["samples"]), how["sampler"], int(how["seed"]))
    return [{a["param"]: float(v) for a, v in zip(axes, row, strict=True)} for row in drawn]


def factors(spec: dict[str, Any]) -> list[list[dict[str, float]]]:
    """The grid as factors of a product: one per value axis, and the sampled points as
    one factor where the first sampled axis is written (last factor fastest). So
    sampled points are crossed with the value axes, never with each other."""
    out: list[list[dict[str, float]]] = []
    points = None
    for axis in spec["grid"]:
        if not is_sampled(axis):
            out.append([{axis["param"]: v} for v in axis_values(axis, axis["param"])])
        elif points is None:
            points = sampled_points(spec)
            out.append(points)
    return out


def mean_budget(spec: dict[str, Any], epochs: int) -> float:
    """Mean training epochs over a grid's points (each value of a product axis occurs
    equally often), for sizing shards by cost; ``epochs`` when no axis varies them."""
    for axis in spec["grid"]:
        if axis["param"] == "epochs" and is_sampled(axis):
            drawn = [p["epochs"] for p in sampled_points(spec)]
            return sum(drawn) / len(drawn)
        if axis["param"] == "epochs":
            values = axis_values(axis, "epochs")
            return sum(values) / len(values)
    return float(epochs)


def grid_size(spec: dict[str, Any]) -> int:
    """Rows of ``expand(spec)`` without building it (grid points + the default)."""
    listed = math.prod(axis_length(axis) for axis in spec["grid"] if not is_sampled(axis))
    return listed * (spec["sampling"]["samples"] if "sampling" in spec else 1) + 1


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


def grid_summary(config: dict[str, Any]) -> list[str]:
    """One line per studied (dataset, optimizer): configurations and where the grid came from."""
    lines = []
    for dataset in config["study"]["datasets"]:
        for optimizer in config["study"]["optimizers"]:
            spec = grid_spec(config, dataset, optimizer)
            axes = ", ".join(
                f"{a['param']}: {axis_length(a)}" for a in spec["grid"] if not is_sampled(a)
            )
            if "sampling" in spec:
                how, drawn = spec["sampling"], [a["param"] for a in spec["grid"] if is_sampled(a)]
                points = f"{how['samples']} {how['sampler']} samples of ({', '.join(drawn)})"
                axes = ", ".join(filter(None, (axes, points)))
            source = grid_source(config, dataset, optimizer)
            lines.append(
                f"grid {dataset}/{optimizer}: {grid_size(spec)} configurations "
                f"({axes}; + the default) from optimizers.{optimizer}.{source}"
            )
    return lines


def sampled_ranges(config: dict[str, Any]) -> dict[str, dict[str, dict[str, list]]]:
    """{dataset: {optimizer: {param: [low, high, scale]}}} of every studied grid's sampled
    axes ({} without any): the tables flag a selected point near a range's end
    (lionsweep.results.edges), which the sampled points alone cannot tell."""
    out: dict[str, dict[str, dict[str, list]]] = {}
    for dataset in config["study"]["datasets"]:
        for optimizer in config["study"]["optimizers"]:
            axes = [a for a in grid_spec(config, dataset, optimizer)["grid"] if is_sampled(a)]
            if axes:
                out.setdefault(dataset, {})[optimizer] = {
                    a["param"]: [a["low"], a["high"], a.get("scale", "linear")] for a in axes
                }
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", required=True, help="grid spec as JSON (see grid_spec)")
    parser.add_argument("--output", required=True, type=Path)


def run(args: argparse.Namespace) -> None:
    import pyarrow as pa

    from lionsweep.atomic import write_parquet

    frame = expand(json.loads(args.spec))
    write_parquet(pa.Table.from_pandas(frame, preserve_index=False), args.output)
    print(f"{args.output}: {len(frame)} configurations")
