"""Task heads: what the network's outputs mean, their loss gradient and their metrics.

A head is the engine's seam for the task (the optimizer is the other one, in
:mod:`lionsweep.optim.registry`). It fixes the output width C, encodes a split's targets
(checking them), writes d loss / d output by hand (no autograd: the engine's
backward is hand-written), and evaluates its metrics batched over K models. Its
``primary`` metric (higher is better) picks the best epoch and names the stored
validation curve next to the loss curve; :func:`result_columns` lists every
per-configuration column a task produces, for docs, tables and figures.

- ``binary``: one logit, BCE-with-logits, positive when the logit is > 0.
- ``multiclass``: C >= 3 logits, softmax cross-entropy, argmax prediction.
- ``regression``: one output, MSE on the target standardized with the training
  split's mean/std (given by the caller); metrics in the target's own units.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from lionsweep.errors import LionSweepError
from lionsweep.layout import SPLITS
from lionsweep.train import metrics
from lionsweep.train.tasks import PRIMARY_METRIC, TASKS, Task

LOSS_CURVE = "curve_val_loss"


class Head:
    """Base class; see the module docstring. Outputs are [K, C, rows] tensors."""

    metrics: tuple[str, ...] = ()
    primary = ""

    def __init__(self, task: Task) -> None:
        self.task = task

    @property
    def width(self) -> int:
        """Network outputs per model (C)."""
        return 1

    @property
    def target_width(self) -> int:
        """Rows W of the training target :meth:`encode` returns (one-hot: C)."""
        return self.width

    def encode(self, y: np.ndarray, split: str, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """(targets for the metrics [n], training targets [W, n] in ``dtype``)."""
        raise NotImplementedError

    def loss_grad(self, out: Tensor, y: Tensor, row_weight: Tensor, dout: Tensor) -> None:
        """Write d(mean loss)/d(out) into ``dout``; ``row_weight`` is 1/n (0 on padding)."""
        raise NotImplementedError

    def curve(self, out: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """[K] float64 (loss, primary metric) on one split, for the per-epoch curves."""
        raise NotImplementedError

    def evaluate(self, out: Tensor, y: Tensor) -> dict[str, Tensor]:
        """Every metric in :attr:`metrics` as [K] float64 (NaN for non-finite outputs)."""
        raise NotImplementedError


def _labels(y: np.ndarray, split: str, task: str, n_classes: int) -> np.ndarray:
    """Integer class labels in 0..n_classes-1, or a one-line error naming the split."""
    arr = np.asarray(y)
    if arr.dtype.kind == "f" and not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
        raise LionSweepError(f"split {split!r}: {task} target must hold class numbers")
    if arr.dtype.kind not in "biuf":
        raise LionSweepError(f"split {split!r}: {task} target has dtype {arr.dtype}, not numbers")
    bad = (arr < 0) | (arr >= n_classes)
    if bad.any():
        label = arr[bad][0].item()
        raise LionSweepError(
            f"split {split!r}: {task} target has label {label!r} outside 0..{n_classes - 1}"
        )
    return arr.astype(np.int64)


class BinaryHead(Head):
    """One logit, BCE-with-logits (the engine's original task, bit for bit)."""

    metrics = metrics.METRICS
    primary = PRIMARY_METRIC["binary"]

    def encode(self, y: np.ndarray, split: str, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        labels = torch.as_tensor(_labels(y, split, "binary", 2))
        return labels, labels.to(dtype)[None, :]

    def loss_grad(self, out: Tensor, y: Tensor, row_weight: Tensor, dout: Tensor) -> None:
        torch.sigmoid(out, out=dout)
        dout.sub_(y).mul_(row_weight)

    def curve(self, out: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        z = out[:, 0].t()
        return metrics.logloss(z, y), metrics.accuracy(z, y)

    def evaluate(self, out: Tensor, y: Tensor) -> dict[str, Tensor]:
        return metrics.binary_metrics(out[:, 0].t(), y)


class MulticlassHead(Head):
    """C logits, softmax cross-entropy, predicted class = argmax."""

    metrics = metrics.MULTICLASS_METRICS
    primary = PRIMARY_METRIC["multiclass"]

    @property
    def width(self) -> int:
        return self.task.n_classes

    def encode(self, y: np.ndarray, split: str, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        labels = torch.as_tensor(_labels(y, split, "multiclass", self.width))
        return labels, torch.nn.functional.one_hot(labels, self.width).to(dtype).t().contiguous()

    def loss_grad(self, out: Tensor, y: Tensor, row_weight: Tensor, dout: Tensor) -> None:
        dout.copy_(torch.softmax(out, dim=1))
        dout.sub_(y).mul_(row_weight)

    def curve(self, out: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return metrics.multiclass_curve(out, y)

    def evaluate(self, out: Tensor, y: Tensor) -> dict[str, Tensor]:
        return metrics.multiclass_metrics(out, y)


class RegressionHead(Head):
    """One output predicting the standardized target; MSE loss; metrics in target units."""

    metrics = metrics.REGRESSION_METRICS
    primary = PRIMARY_METRIC["regression"]

    def encode(self, y: np.ndarray, split: str, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        arr = np.asarray(y)
        if arr.dtype.kind not in "biuf" or not np.isfinite(arr.astype(np.float64)).all():
            raise LionSweepError(f"split {split!r}: regression target must be finite numbers")
        t = torch.as_tensor(arr.astype(np.float64))
        scaled = (t - self.task.target_mean) / self.task.target_std
        return t, scaled.to(dtype)[None, :]

    def loss_grad(self, out: Tensor, y: Tensor, row_weight: Tensor, dout: Tensor) -> None:
        torch.sub(out, y, out=dout)
        dout.mul_(row_weight).mul_(2.0)

    def _units(self, out: Tensor) -> Tensor:
        return out.to(torch.float64) * self.task.target_std + self.task.target_mean

    def curve(self, out: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Loss = the training objective (MSE of the standardized target), float64."""
        scaled = (y - self.task.target_mean) / self.task.target_std
        mse = (out[:, 0].to(torch.float64) - scaled[None, :]).square().mean(dim=1)
        mse.masked_fill_(~torch.isfinite(out).flatten(1).all(dim=1), math.nan)
        return mse, metrics.regression_metrics(self._units(out), y)["r2"]

    def evaluate(self, out: Tensor, y: Tensor) -> dict[str, Tensor]:
        return metrics.regression_metrics(self._units(out), y)


HEADS: dict[str, type[Head]] = {
    "binary": BinaryHead,
    "multiclass": MulticlassHead,
    "regression": RegressionHead,
}


def as_task(task: Task | str) -> Task:
    """Check a task (a name means its defaults); one-line errors name the field."""
    task = Task(task) if isinstance(task, str) else task
    if not isinstance(task, Task):
        raise LionSweepError(
            f"task must be a task name or a lionsweep.train.heads.Task, got {task!r}"
        )
    if task.name not in HEADS:
        raise LionSweepError(f"unknown task {task.name!r}; expected one of {TASKS}")
    if task.name == "multiclass" and (int(task.n_classes) != task.n_classes or task.n_classes < 3):
        raise LionSweepError(f"task multiclass needs n_classes >= 3, got {task.n_classes!r}")
    if task.name == "binary" and task.n_classes != 2:
        raise LionSweepError(f"task binary has 2 classes, got n_classes={task.n_classes!r}")
    if task.name == "regression":
        if not math.isfinite(task.target_mean):
            raise LionSweepError(f"task regression: target_mean={task.target_mean!r}")
        if not (math.isfinite(task.target_std) and task.target_std > 0):
            raise LionSweepError(
                f"task regression needs target_std > 0 (training split), got {task.target_std!r}"
            )
    return task


def make_head(task: Task | str = "binary") -> Head:
    task = as_task(task)
    return HEADS[task.name](task)


def curve_columns(task: Task | str = "binary") -> tuple[str, str]:
    """The stored per-epoch validation curves: the loss and the primary metric."""
    return LOSS_CURVE, f"curve_val_{HEADS[as_task(task).name].primary}"


def metric_columns(task: Task | str = "binary") -> tuple[str, ...]:
    """``{split}_{metric}`` after the last epoch, then ``best_{split}_{metric}``."""
    names = HEADS[as_task(task).name].metrics
    return tuple(f"{p}{s}_{m}" for p in ("", "best_") for s in SPLITS for m in names)


def result_columns(task: Task | str = "binary") -> tuple[str, ...]:
    """Every per-configuration result the engine returns for ``task`` (plus ``device``)."""
    return (
        *metric_columns(task),
        "best_epoch",
        *curve_columns(task),
        "diverged",
        "diverged_epoch",
    )
