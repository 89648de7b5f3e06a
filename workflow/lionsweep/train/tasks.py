"""The learning tasks by name, without torch: their names, their primary metric and
the :class:`Task` value (classes, target scaling) that a prepared dataset records.

Why a module of its own: preparing data, aggregating shards and writing tables and
figures need these values but never train, and took them from :mod:`lionsweep.train.heads`,
which imports torch (seconds per job). The heads add what training needs: the
loss gradient, the metrics and the checks (:func:`lionsweep.train.heads.as_task`).
"""

from __future__ import annotations

from dataclasses import dataclass

TASKS = ("binary", "multiclass", "regression")
# The metric (higher is better) that picks the best epoch and scores a dataset.
PRIMARY_METRIC = {"binary": "acc", "multiclass": "acc", "regression": "r2"}


@dataclass(frozen=True)
class Task:
    """The learning task: its name, classes (multiclass) and target scaling (regression)."""

    name: str = "binary"
    n_classes: int = 2
    target_mean: float = 0.0  # regression: the training split's mean and std
    target_std: float = 1.0
