"""Successive halving's rules, without torch: the config, the rungs, who survives a
rung, and the compute it saved (the engine's loop is :mod:`lionsweep.train.halving_engine`).

``training.halving: {min_epochs: m, eta: e}`` trains every configuration of a
(dataset, optimizer, seed) grid ``m`` epochs, keeps the best ``ceil(n / e)`` of the
``n`` that trained the rung, trains those to ``m * e``, keeps ``ceil(n' / e)`` ... and
trains the last survivors to ``training.epochs``. Why these choices:

- The selection unit is one (dataset, optimizer, seed) grid, whole: a seed is its own
  job (shards never mix seeds), so each seed halves independently, on its own
  validation numbers, like an Optuna/Ray Tune study per seed; a seed-mean selection
  would need every seed's job to meet at every rung. The workflow makes each grid one
  shard when halving is on, so the survivors never depend on how a grid is sharded
  (or chunked: the engine selects across all its chunks).
- Rank by the validation primary metric at the rung's epoch (the current weights,
  as the study's default `final` protocol reads them), in its direction; ties go to
  the lower validation loss, then to the earlier grid row (lower config_id): fully
  deterministic, and accuracy ties (a 143-row validation set has few values) are not
  broken by grid order, which would favour the first axis' low end.
- A diverged model never survives a rung (its metric is NaN); ``ceil`` keeps at least
  one survivor while any model is alive.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lionsweep.errors import LionSweepError

if TYPE_CHECKING:  # the config check imports this module: pandas only where tables are read
    import pandas as pd

KEYS = ("min_epochs", "eta")


@dataclass(frozen=True)
class Halving:
    """A checked ``training.halving`` section."""

    min_epochs: int
    eta: int

    def rungs(self, epochs: int) -> list[int]:
        """The epochs at which a rung ends: ``min_epochs * eta**i`` below ``epochs``, then
        ``epochs`` (where training ends, without a selection)."""
        ends, end = [], self.min_epochs
        while end < epochs:
            ends.append(end)
            end *= self.eta
        return [*ends, epochs]


def parse(section: Any, epochs: int, where: str = "training.halving") -> Halving | None:
    """``training.halving`` checked against ``training.epochs`` (one-line errors naming the
    key); None (or absent) means off."""
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise LionSweepError(f"{where} must be a mapping {{min_epochs, eta}}, got {section!r}")
    unknown = sorted(set(section) - set(KEYS))
    if unknown:
        raise LionSweepError(f"{where}: unknown key {unknown[0]!r} (expected {list(KEYS)})")
    values = {}
    for key in KEYS:
        value = section.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise LionSweepError(f"{where}.{key} must be an integer, got {value!r}")
        values[key] = value
    if values["eta"] < 2:
        raise LionSweepError(f"{where}.eta must be >= 2 (keep 1/eta per rung), got {values['eta']}")
    if values["min_epochs"] < 1:
        raise LionSweepError(f"{where}.min_epochs must be >= 1, got {values['min_epochs']}")
    if values["min_epochs"] > epochs:
        raise LionSweepError(
            f"{where}.min_epochs ({values['min_epochs']}) exceeds training.epochs ({epochs})"
        )
    return Halving(**values)


def survivors(score: np.ndarray, loss: np.ndarray, eta: int) -> np.ndarray:
    """Positions (ascending) of the ``ceil(n / eta)`` best of ``n`` models: highest
    ``score`` (already oriented: higher is better), then lowest ``loss``, then lowest
    position; non-finite scores never survive."""
    score, loss = np.asarray(score, np.float64), np.asarray(loss, np.float64)
    n_keep = math.ceil(len(score) / eta)
    alive = np.flatnonzero(np.isfinite(score))
    tie_loss = np.where(np.isnan(loss[alive]), np.inf, loss[alive])
    order = np.lexsort((alive, tie_loss, -score[alive]))  # last key is the primary one
    return np.sort(alive[order[:n_keep]])


def model_epochs(k: int, epochs: int, halving: Halving | None) -> int:
    """Model-epochs a ``k``-configuration grid trains (``k * epochs`` without halving),
    counting diverged models as trained (the engine computes them until a rung)."""
    if halving is None:
        return k * epochs
    total, n, done = 0, k, 0
    for end in halving.rungs(epochs):
        total += n * (end - done)
        n, done = math.ceil(n / halving.eta), end
    return total


def compute_saved(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, optimizer, seed): model-epochs trained, the full budget's, and the
    share saved, from a sweep or shard table (its ``epochs`` and ``stopped_epoch``
    columns; a table without ``stopped_epoch`` trained everything)."""
    import pandas as pd

    keys = ["dataset", "optimizer", "seed"]
    full = frame["epochs"].astype(np.int64)
    if "stopped_epoch" in frame.columns:
        trained = frame["stopped_epoch"].astype("Int64").fillna(full).astype(np.int64)
    else:
        trained = full
    out = (
        pd.DataFrame({**{k: frame[k] for k in keys}, "trained": trained, "full": full})
        .groupby(keys, sort=True)[["trained", "full"]]
        .sum()
        .reset_index()
        .rename(columns={"trained": "model_epochs", "full": "full_model_epochs"})
    )
    out["saved_fraction"] = 1.0 - out["model_epochs"] / out["full_model_epochs"]
    return out


def check_config(config: Mapping[str, Any]) -> Halving | None:
    """``training.halving`` of a whole config: its values, and no `epochs` grid axis
    beside it (halving allots the epochs itself; a grid of budgets would be halved per
    budget, a different study)."""
    training = config["training"]
    halving = parse(training.get("halving"), training["epochs"])
    if halving is None:
        return None
    for opt in config["study"]["optimizers"]:
        spec = config["optimizers"].get(opt) or {}
        grids = [spec.get("grid") or [], *(spec.get("grid_overrides") or {}).values()]
        if any(axis.get("param") == "epochs" for grid in grids for axis in grid or []):
            raise LionSweepError(
                f"optimizers.{opt}: an `epochs` grid axis cannot be combined with "
                "training.halving (halving allots the epochs); remove one of them"
            )
    return halving


def saved_line(sweep_path: Any) -> str:
    """The aggregate log's line: the study's model-epochs trained of its full budget's."""
    import pyarrow.parquet as pq

    keys = ["dataset", "optimizer", "seed", "epochs", "stopped_epoch"]
    names = pq.read_schema(sweep_path).names
    if "epochs" not in names:  # a sweep without its budgets (hand-made): nothing to count
        return "halving: no epochs column to count model-epochs from"
    table = pq.read_table(sweep_path, columns=[c for c in keys if c in names]).to_pandas()
    saved = compute_saved(table)
    done, full = int(saved.model_epochs.sum()), int(saved.full_model_epochs.sum())
    share = 100 * (1 - done / full) if full else 0.0
    return f"halving: {done} of {full} model-epochs trained ({share:.1f}% saved)"
