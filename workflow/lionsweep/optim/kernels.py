"""Batched functional optimizer steps: in-place updates of K stacked models.

The kernels behind :data:`lionsweep.optim.registry.REGISTRY` (see there for the contract).
Hyperparameters are Python scalars or [K] tensors broadcast over each parameter's
leading axis; parameters may be non-contiguous views. Each kernel follows its
reference's order of operations (lion-pytorch, ``torch.optim``), so a model slice
matches the reference to rounding (1e-12 in float64, tests/test_registry.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from lionsweep.optim import fused

Hyper = float | Tensor


def _bcast(value: Hyper, like: Tensor) -> Hyper:
    """Shape a [K] hyperparameter as [K, 1, ...] so it broadcasts over one stacked param."""
    if isinstance(value, Tensor) and value.ndim > 0:
        return value.to(dtype=like.dtype, device=like.device).view(-1, *([1] * (like.ndim - 1)))
    return float(value)


def _is_zero(value: Hyper) -> bool:
    if isinstance(value, Tensor):
        return not bool(value.ne(0).any())
    return value == 0


def _sub_scaled(p: Tensor, x: Tensor, coef: Hyper) -> None:
    """p -= coef * x for a broadcast tensor or a scalar coefficient."""
    if isinstance(coef, Tensor):
        p.addcmul_(x, coef, value=-1.0)
    else:
        p.add_(x, alpha=-coef)


def _add_scaled(g: Tensor, x: Tensor, coef: Hyper) -> None:
    """g += coef * x (coupled weight decay), as torch's ``grad.add(param, alpha=wd)``."""
    if isinstance(coef, Tensor):
        g.addcmul_(x, coef)
    else:
        g.add_(x, alpha=coef)


# --------------------------------------------------------------------- Lion
LionCoefs = tuple[Hyper, Hyper, Hyper, Hyper | None]


def lion_coefs(
    p: Tensor, *, lr: Hyper, beta1: Hyper, beta2: Hyper, weight_decay: Hyper
) -> LionCoefs:
    """(lr, beta1, 1 - beta2, decay factor or None) shaped to broadcast over ``p``.

    Split out so a caller stepping the same parameters many times (the engine) can
    compute them once instead of ~10 small tensor ops per parameter per step.
    """
    lr_b = _bcast(lr, p)
    decay = None if _is_zero(weight_decay) else 1.0 - lr_b * _bcast(weight_decay, p)
    return lr_b, _bcast(beta1, p), 1.0 - _bcast(beta2, p), decay


@torch.no_grad()
def lion_update(
    p: Tensor, g: Tensor, m: Tensor, coefs: LionCoefs, buffer: Tensor | None = None
) -> None:
    """One Lion step for one (stacked) parameter with precomputed :func:`lion_coefs`."""
    if fused.lion(p, g, m, coefs):  # same numbers, one memory pass
        return
    lr, beta1, one_minus_beta2, decay = coefs
    if decay is not None:
        p.mul_(decay)
    # c = beta1 * m + (1 - beta1) * g, as one fused kernel.
    c = torch.lerp(g, m, beta1, out=buffer) if buffer is not None else torch.lerp(g, m, beta1)
    c.sign_()
    _sub_scaled(p, c, lr)
    # m = beta2 * m + (1 - beta2) * g
    m.lerp_(g, one_minus_beta2)


@torch.no_grad()
def lion_step(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    exp_avgs: Sequence[Tensor],
    *,
    lr: Hyper,
    beta1: Hyper,
    beta2: Hyper,
    weight_decay: Hyper,
    buffers: Sequence[Tensor] | None = None,
) -> None:
    """One Lion step, in place: decay, sign update, then momentum (reference order).

    ``buffers`` (same shapes as ``params``) are scratch space for the interpolation
    ``c``; passing preallocated ones avoids large allocations (page faults) per step.
    """
    for i, (p, g, m) in enumerate(zip(params, grads, exp_avgs, strict=True)):
        coefs = lion_coefs(p, lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay)
        lion_update(p, g, m, coefs, buffers[i] if buffers else None)


# ------------------------------------------------------------- Adam / AdamW
@dataclass(frozen=True)
class AdamCoefs:
    """Broadcast hyperparameters, plus lr/betas as float64 [K] for the bias corrections."""

    lr: Hyper
    beta1: Hyper
    beta2: Hyper
    eps: Hyper
    weight_decay: Hyper | None  # None: no decay
    decay: Hyper | None  # AdamW's factor 1 - lr*wd (None for Adam or wd == 0)
    f64: tuple[Tensor, Tensor, Tensor] | None  # (lr, beta1, beta2); None: all scalars


def adam_coefs(
    p: Tensor,
    *,
    lr: Hyper,
    beta1: Hyper,
    beta2: Hyper,
    eps: Hyper,
    weight_decay: Hyper,
    decoupled: bool,
) -> AdamCoefs:
    """Per-parameter constants of Adam (coupled L2) or AdamW (``decoupled``)."""
    lr_b, b1, b2, eps_b = (_bcast(h, p) for h in (lr, beta1, beta2, eps))
    wd = None if _is_zero(weight_decay) else _bcast(weight_decay, p)
    decay = 1.0 - lr_b * wd if decoupled and wd is not None else None
    f64 = None
    if any(isinstance(h, Tensor) for h in (lr_b, b1, b2)):
        # Bias corrections in float64 like the reference's Python floats.
        f64 = tuple(
            torch.as_tensor(h, dtype=torch.float64).to(p.device) for h in (lr, beta1, beta2)
        )
    return AdamCoefs(lr_b, b1, b2, eps_b, None if decoupled else wd, decay, f64)  # type: ignore[arg-type]


@torch.no_grad()
def adam_update(
    p: Tensor,
    g: Tensor,
    m: Tensor,
    v: Tensor,
    c: AdamCoefs,
    step: int,
    buffer: Tensor | None = None,
) -> None:
    """One Adam/AdamW step (``step`` from 1) for one stacked parameter, in place.

    Coupled decay (Adam) is added to ``g`` in place: callers pass a gradient they
    may lose (the engine's are recomputed every step; the drivers pass copies).
    """
    if fused.adam(p, g, m, v, c, step, buffer):  # same numbers, two memory passes
        return
    if c.decay is not None:
        p.mul_(c.decay)
    if c.weight_decay is not None:
        _add_scaled(g, p, c.weight_decay)
    m.lerp_(g, 1.0 - c.beta1)
    v.mul_(c.beta2)
    if isinstance(c.beta2, Tensor):
        w = torch.mul(g, 1.0 - c.beta2, out=buffer) if buffer is not None else g * (1.0 - c.beta2)
        v.addcmul_(w, g)
    else:
        v.addcmul_(g, g, value=1.0 - c.beta2)
    if c.f64 is not None:
        lrd, b1d, b2d = c.f64
        step_size = _bcast(lrd / (1 - b1d**step), p)
        bc2_sqrt = _bcast(torch.sqrt(1 - b2d**step), p)
        denom = torch.sqrt(v, out=buffer) if buffer is not None else torch.sqrt(v)
        if isinstance(c.eps, Tensor):
            # sqrt(v) / bc2 + eps in one pass: addcdiv is eps + 1 * (t1 / t2), the
            # same two roundings as div_ then add_ (bitwise; one memory pass less).
            torch.addcdiv(c.eps, denom, bc2_sqrt, out=denom)
        else:
            denom.div_(bc2_sqrt).add_(c.eps)
        if isinstance(step_size, Tensor):
            # p -= step_size * m / denom; folding step_size into denom saves a buffer.
            denom.div_(step_size)
            p.addcdiv_(m, denom, value=-1.0)
        else:
            p.addcdiv_(m, denom, value=-step_size)
    else:
        step_size = c.lr / (1 - c.beta1**step)  # type: ignore[operator]
        denom = (v.sqrt() / math.sqrt(1 - c.beta2**step)).add_(c.eps)  # type: ignore[operator]
        p.addcdiv_(m, denom, value=-step_size)


@torch.no_grad()
def adamw_step(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    exp_avgs: Sequence[Tensor],
    exp_avg_sqs: Sequence[Tensor],
    *,
    step: int,
    lr: Hyper,
    beta1: Hyper,
    beta2: Hyper,
    eps: Hyper,
    weight_decay: Hyper,
    buffers: Sequence[Tensor] | None = None,
) -> None:
    """One AdamW step (``step`` counts from 1), in place, as ``torch.optim.AdamW``."""
    hp = {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay}
    for i, (p, g, m, v) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs, strict=True)):
        c = adam_coefs(p, **hp, decoupled=True)
        adam_update(p, g, m, v, c, step, buffers[i] if buffers else None)


# ---------------------------------------------------------------------- SGD
class SGDCoefs(NamedTuple):
    momentum: Hyper
    weight_decay: Hyper | None
    lr_nesterov: Hyper | None  # lr where nesterov == 1 (None: no such model)
    lr_plain: Hyper | None  # lr where nesterov == 0
    damp: Hyper | None = None  # 1 - dampening (None: no model dampens)


def sgd_coefs(
    p: Tensor,
    *,
    lr: Hyper,
    momentum: Hyper,
    weight_decay: Hyper,
    nesterov: Hyper,
    dampening: Hyper = 0.0,
) -> SGDCoefs:
    """SGD's constants; ``nesterov`` (0/1 per model) splits lr into two exact parts
    (lr*1 and lr*0), so each model takes exactly its own kind of step."""
    lr_b, nest, mom = _bcast(lr, p), _bcast(nesterov, p), _bcast(momentum, p)
    lr_n, lr_p = lr_b * nest, lr_b * (1.0 - nest)
    wd = None if _is_zero(weight_decay) else _bcast(weight_decay, p)
    damp = _bcast(dampening, p) * (mom != 0)  # torch has no buffer, so no dampening, at 0
    return SGDCoefs(
        mom,
        wd,
        None if _is_zero(nesterov) else lr_n,
        None if _is_zero(lr_p) else lr_p,
        None if _is_zero(damp) else 1.0 - damp,
    )


@torch.no_grad()
def sgd_update(p: Tensor, g: Tensor, buf: Tensor, c: SGDCoefs, step: int = 1) -> None:
    """One step of ``torch.optim.SGD`` for one stacked parameter.

    The buffer starts at zero, so the first step's ``0*mu + g`` is torch's
    ``buf = g.clone()`` exactly (undampened on step 1, as torch). Without dampening
    the old ``add_(g)`` runs, so those numbers are bit for bit what they were.
    ``g`` is overwritten (see :func:`adam_update`). Nesterov with dampening, which
    torch refuses, steps with ``g + momentum*buf`` of the dampened buffer.
    """
    if c.weight_decay is not None:
        _add_scaled(g, p, c.weight_decay)
    if c.damp is None or step == 1:
        buf.mul_(c.momentum).add_(g)
    else:
        _add_scaled(buf.mul_(c.momentum), g, c.damp)
    if c.lr_plain is not None:
        _sub_scaled(p, buf, c.lr_plain)
    if c.lr_nesterov is not None:
        _add_scaled(g, buf, c.momentum)  # g + momentum * buf
        _sub_scaled(p, g, c.lr_nesterov)
