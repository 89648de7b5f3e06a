"""Helpers shared by the engine and heads tests (test_engine.py, test_heads.py).

Both check the batched engine against the same configurations trained one by one the
reference way: an ``nn.Sequential`` with the engine's initial weights, batch order and
dropout masks (common random numbers), autograd, and the registry's reference
optimizer. One copy here, so the two tests cannot drift apart.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Mapping
from typing import NamedTuple

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lionsweep.optim import registry as optim
from lionsweep.train import engine
from lionsweep.train.engine import TrainSettings, train_chunk
from lionsweep.train.heads import Task, make_head
from lionsweep.train.model import (
    DROPOUT,
    ORDER,
    dropout_mask,
    epoch_batches,
    generator,
    init_single,
)

Splits = Mapping[str, tuple[np.ndarray, np.ndarray]]


class FixedMask(torch.nn.Module):
    """Dropout whose mask the test sets per step (the engine's CRN mask)."""

    mask: torch.Tensor | None = None
    scale: float = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.mask is None else x * (self.mask * self.scale)


def reference_loss(task: Task, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The task's loss by torch.nn.functional (autograd differentiates it)."""
    if task.name == "binary":
        return torch.nn.functional.binary_cross_entropy_with_logits(out[:, 0], y.to(out.dtype))
    if task.name == "multiclass":
        return torch.nn.functional.cross_entropy(out, y)
    target = ((y - task.target_mean) / task.target_std).to(out.dtype)
    return torch.nn.functional.mse_loss(out[:, 0], target)


class Reference(NamedTuple):
    """One configuration trained alone: ``net`` holds the trained weights, ``evaluated``
    the model the engine must evaluate (a copy: the EMA's, or Schedule-Free's x)."""

    net: torch.nn.Sequential
    evaluated: torch.nn.Module


def ema_decay(optimizer: str, hp: Mapping[str, np.ndarray], k: int) -> float:
    """Configuration ``k``'s weight EMA decay (absent: the registry entry's default)."""
    if "ema_decay" in hp:
        return float(hp["ema_decay"][k])
    return optim.spec(optimizer).averaging["ema_decay"].default


@contextlib.contextmanager
def evaluated(
    net: torch.nn.Module, opt: torch.optim.Optimizer, avg: AveragedModel | None
) -> Iterator[torch.nn.Module]:
    """The model to evaluate, the reference way: the EMA's module where on, else ``net``
    at the optimizer's evaluation point (Schedule-Free's ``eval()``, undone after)."""
    if avg is not None:
        yield avg.module
        return
    swap = hasattr(opt, "eval") and hasattr(opt, "train")  # schedulefree's optimizers
    if swap:
        opt.eval()
    try:
        yield net
    finally:
        if swap:
            opt.train()


def train_reference(
    splits: Splits,
    optimizer: str,
    hp: Mapping[str, np.ndarray],
    k: int,
    settings: TrainSettings,
    seed: int,
    task: Task | None = None,
    on_epoch: Callable[[torch.nn.Module], None] | None = None,
) -> Reference:
    """Configuration ``k`` trained alone: nn.Sequential + the registry's reference optimizer,
    with ``AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay))`` updated after
    every step where it has a weight EMA (of Schedule-Free's x: what it evaluates);
    ``on_epoch`` gets the model to evaluate after every epoch."""
    task = task or Task()
    dtype = getattr(torch, settings.dtype)
    x, y = (torch.as_tensor(a) for a in splits["train"])
    x, d, width = x.to(dtype), x.shape[1], make_head(task).width
    drop = FixedMask()
    drop.scale = 1 / (1 - settings.dropout)
    net = torch.nn.Sequential(
        torch.nn.Linear(d, settings.hidden),
        torch.nn.ReLU(),
        drop,
        torch.nn.Linear(settings.hidden, width),
    ).to(dtype)
    init = init_single(d, settings.hidden, seed, width)
    net.load_state_dict({n: t.to(dtype) for n, t in init.items()})
    spec = optim.spec(optimizer)
    opt = spec.reference(net.parameters(), {h: float(hp[h][k]) for h in spec.hparams})
    decay = ema_decay(optimizer, hp, k)
    avg = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay)) if decay > 0 else None
    g_order, g_drop = generator(seed, ORDER), generator(seed, DROPOUT)
    for _ in range(settings.epochs):
        for idx in epoch_batches(len(x), settings.batch_size, g_order):
            m = dropout_mask(len(idx), settings.hidden, settings.dropout, g_drop)
            drop.mask = None if m is None else m.to(dtype)
            opt.zero_grad()
            reference_loss(task, net(x[idx]), y[idx]).backward()
            opt.step()
            if avg is not None:
                with evaluated(net, opt, None) as point:
                    avg.update_parameters(point)
        drop.mask = None
        if on_epoch is not None:
            with evaluated(net, opt, avg) as model:
                on_epoch(model)
    drop.mask = None
    with evaluated(net, opt, avg) as model:
        return Reference(net, copy.deepcopy(model))


def train_alone(
    splits: Splits,
    optimizer: str,
    hp: Mapping[str, np.ndarray],
    k: int,
    settings: TrainSettings,
    seed: int,
    task: Task | None = None,
) -> torch.nn.Sequential:
    """Configuration ``k``'s trained weights (:func:`train_reference`'s ``net``)."""
    return train_reference(splits, optimizer, hp, k, settings, seed, task).net


def train_batched(
    splits: Splits,
    optimizer: str,
    hp: Mapping[str, np.ndarray],
    settings: TrainSettings,
    seed: int,
    task: Task | None = None,
):
    """All configurations of ``hp`` in one engine chunk: (results, model).

    Without ``task`` the engine's default head is used (what a caller that passes
    none gets); with one, its head."""
    head = None if task is None else make_head(task)
    data = engine.device_data(splits, settings, head)
    dtype = getattr(torch, settings.dtype)
    hpt = {n: torch.as_tensor(np.asarray(v, dtype=np.float64)).to(dtype) for n, v in hp.items()}
    if head is None:
        return train_chunk(data, optimizer, hpt, seed, settings, progress=False)
    return train_chunk(data, optimizer, hpt, seed, settings, progress=False, head=head)


def linear_splits(n: int, n_eval: int, d: int = 6, seed: int = 0) -> dict[str, tuple]:
    """A small binary task with a linear truth: ``n`` training rows, ``n_eval`` validation
    and ``n_eval + 1`` test rows (uneven, so a split mix-up changes a shape)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d)

    def make(m: int):
        x = rng.normal(size=(m, d)).astype(np.float32)
        return x, (x @ w + rng.normal(size=m) > 0).astype(np.int64)

    return {"train": make(n), "val": make(n_eval), "test": make(n_eval + 1)}
