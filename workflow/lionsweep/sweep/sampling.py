"""Sampled grid axes: N random or scrambled-Sobol points of hyperparameter ranges.

An axis ``{param: lr, low: 1.0e-5, high: 1.0e-1, scale: log}`` is a range to sample,
not a list of values: ``optimizers.<name>.samples`` points are drawn jointly over all
sampled axes of a grid (one point = one value per sampled axis), by
``optimizers.<name>.sampler`` (``sobol``, the default, or ``random``). Why sample: when
one axis (the learning rate) carries nearly all the variance, a product grid spends its
budget on axes that do not matter, while N samples try N distinct values of every axis
(Bergstra and Bengio 2012). Scrambled Sobol points fill the unit cube more evenly than
independent uniform ones (Owen scrambling keeps the estimate unbiased).

The points depend only on the configuration: the generator's seed is derived from
``optimizers.<name>.sample_seed`` (default 0), the optimizer and the dataset
(:func:`derived_seed`), so the same config always gives the same points and config ids,
in every process and on every run, and each dataset gets its own independent draw.

A sampled whole-number hyperparameter (epochs, SGD's nesterov switch) is drawn on
``[low, high + 1)`` in its scale and rounded down, so each whole number in ``[low,
high]`` gets its share of the range (equal shares on a linear scale) and ``high`` is
reachable; ``low`` and ``high`` must then be whole numbers themselves.

Plain numpy and scipy, no pandas or torch: the rules import this when they parse.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from lionsweep.errors import LionSweepError

SAMPLERS = ("sobol", "random")
DEFAULT_SAMPLER = "sobol"
SAMPLED_KEYS = ("low", "high")
SCALES = ("linear", "log")
# More points than any sweep here trains (the paper's largest grid has 8000): a larger N
# is a typo, and drawing it would exhaust memory before the first job.
MAX_SAMPLES = 10_000_000


class Range(NamedTuple):
    """One sampled axis: [low, high) in ``scale``; ``integer``: whole numbers only."""

    low: float
    high: float
    scale: str = "linear"
    integer: bool = False


def is_sampled(axis: Any) -> bool:
    """Whether a grid axis is a range to sample (it names ``low`` or ``high``)."""
    return isinstance(axis, dict) and any(k in axis for k in SAMPLED_KEYS)


def derived_seed(sample_seed: int, optimizer: str, dataset: str) -> int:
    """The generator seed of one (dataset, optimizer)'s sampled grid: a digest, so that
    it is the same in every process (Python's ``hash`` of a string is not) and datasets
    and optimizers draw independent points from one ``sample_seed``."""
    text = f"lionsweep-samples/{int(sample_seed)}/{optimizer}/{dataset}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def unit_points(n: int, dims: int, sampler: str, seed: int) -> np.ndarray:
    """``n`` points of the unit cube [0, 1)^dims: scrambled Sobol (scipy.stats.qmc) or
    independent uniform (numpy's default generator), both seeded by ``seed``."""
    if sampler not in SAMPLERS:
        raise LionSweepError(f"sampler must be one of {', '.join(SAMPLERS)}, not {sampler!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise LionSweepError(f"samples must be a whole number >= 1, got {n!r}")
    if sampler == "random":
        return np.random.default_rng(seed).random((n, dims))
    from scipy.stats import qmc

    with warnings.catch_warnings():  # N not a power of 2: still a valid (less balanced) set
        warnings.simplefilter("ignore", UserWarning)
        return qmc.Sobol(d=dims, scramble=True, seed=seed).random(n)


def to_range(u: np.ndarray, r: Range) -> np.ndarray:
    """Map unit values ``u`` to ``r``: affinely in the axis's scale (log: in log space);
    a whole-number axis on [low, high + 1), rounded down and capped at ``high``."""
    top = r.high + 1.0 if r.integer else r.high
    if r.scale == "log":
        values = np.exp(math.log(r.low) + u * (math.log(top) - math.log(r.low)))
    else:
        values = r.low + u * (top - r.low)
    if r.integer:
        return np.minimum(np.floor(values), r.high)
    return np.array([float(f"{v:.12g}") for v in values])  # grid.py's 12 digits


def sample(ranges: Sequence[Range], n: int, sampler: str = DEFAULT_SAMPLER, seed: int = 0):
    """``n`` points of the box ``ranges`` (an (n, len(ranges)) float array, one column
    per range): the points a sampled grid trains, and what a budget curve needs to
    compare random and Sobol samples of the same ranges for N = 1, 2, 4, ...

    Sobol points are the first ``n`` of one scrambled sequence, so for a power-of-two
    ``n`` they are balanced; random points with the same seed are nested too (the first
    ``n`` of ``2n``)."""
    u = unit_points(n, len(ranges), sampler, seed)
    return np.column_stack([to_range(u[:, j], r) for j, r in enumerate(ranges)])


def _bound(axis: dict[str, Any], key: str, where: str) -> float:
    if key not in axis:
        raise LionSweepError(f"{where}: a sampled axis needs both `low` and `high`")
    value = axis[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        hint = ""
        if isinstance(value, str):  # YAML 1.1 reads 1e-5 (no dot) as a string
            hint = " (YAML reads a number like 1e-5 as a string: write 1.0e-5)"
        raise LionSweepError(f"{where}: `{key}` must be a finite number, got {value!r}{hint}")
    return float(value)


def axis_range(axis: dict[str, Any], where: str, hparam: Any) -> Range:
    """The checked range of a sampled axis ``{param, low, high, scale}``: one line naming
    ``where`` for a mixed axis, a missing or inverted bound, a log scale through zero,
    or a bound outside the hyperparameter's valid range (``hparam``: its HParam)."""
    mixed = [k for k in ("values", "start", "stop", "num") if k in axis]
    if mixed:
        raise LionSweepError(
            f"{where}: mixes `{mixed[0]}` with `low`/`high`; an axis is either listed "
            "values, a start/stop/num range, or a sampled low/high range"
        )
    unknown = sorted(set(axis) - {"param", *SAMPLED_KEYS, "scale"})
    if unknown:
        beside = [k for k in unknown if k in ("samples", "sampler", "sample_seed")]
        hint = (
            f" (`{beside[0]}` goes beside `grid`: optimizers.<name>.{beside[0]})" if beside else ""
        )
        raise LionSweepError(f"{where}: unknown key(s) {unknown} in a sampled axis{hint}")
    low, high = _bound(axis, "low", where), _bound(axis, "high", where)
    scale = axis.get("scale", "linear")
    if scale not in SCALES:
        raise LionSweepError(f"{where}: scale must be linear or log, not {scale!r}")
    if low >= high:
        raise LionSweepError(f"{where}: low ({low:g}) must be below high ({high:g})")
    if scale == "log" and low <= 0:
        raise LionSweepError(f"{where}: a log scale needs low > 0, got {low:g}")
    for key, value in (("low", low), ("high", high)):
        if not hparam.contains(value):
            raise LionSweepError(f"{where}: {key} {value!r} is not {hparam.describe()}")
    return Range(low, high, scale, bool(hparam.integer))


def check_sampling(entry: dict[str, Any], where: str) -> None:
    """``samples``, ``sampler`` and ``sample_seed`` of one optimizer entry: valid values,
    given exactly when some grid of the entry (`grid` or a `grid_overrides` one) has a
    sampled axis. Each grid's axes are checked by lionsweep.sweep.grid.check_grid."""
    grids = {"grid": entry.get("grid")}
    overrides = entry.get("grid_overrides")
    if isinstance(overrides, dict):
        grids |= {f"grid_overrides.{d}": g for d, g in overrides.items() if g is not None}
    sampled = {
        key: [a for a in grid if is_sampled(a)]
        for key, grid in grids.items()
        if isinstance(grid, list) and any(is_sampled(a) for a in grid)
    }
    samples = entry.get("samples")
    if "samples" in entry:
        if isinstance(samples, bool) or not isinstance(samples, int | float):
            raise LionSweepError(f"{where}.samples: {samples!r} is not a whole number")
        if not float(samples).is_integer() or not 1 <= samples <= MAX_SAMPLES:
            raise LionSweepError(
                f"{where}.samples: must be a whole number from 1 to {MAX_SAMPLES:,}, "
                f"got {samples!r}"
            )
        if not sampled:
            raise LionSweepError(
                f"{where}.samples: no axis of {where}.grid or its grid_overrides is sampled "
                "(an axis {param: ..., low: ..., high: ...}); use values, or drop samples"
            )
    for key in ("sampler", "sample_seed"):
        if key in entry and "samples" not in entry:
            raise LionSweepError(f"{where}.{key}: given without {where}.samples")
    if "sampler" in entry and entry["sampler"] not in SAMPLERS:
        raise LionSweepError(
            f"{where}.sampler: {entry['sampler']!r} is not one of {', '.join(SAMPLERS)}"
        )
    seed = entry.get("sample_seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise LionSweepError(f"{where}.sample_seed: must be a whole number >= 0, got {seed!r}")
    if sampled and "samples" not in entry:
        key, axes = next(iter(sampled.items()))
        raise LionSweepError(
            f"{where}.{key}: axis {axes[0].get('param')!r} is sampled (low/high) but "
            f"{where}.samples (how many points) is not given"
        )


def sampling_spec(entry: dict[str, Any], optimizer: str, dataset: str) -> dict[str, Any]:
    """What a sampled grid's points depend on, for the grid spec: N, sampler, seed."""
    return {
        "samples": int(entry["samples"]),
        "sampler": entry.get("sampler", DEFAULT_SAMPLER),
        "seed": derived_seed(entry.get("sample_seed", 0), optimizer, dataset),
    }
