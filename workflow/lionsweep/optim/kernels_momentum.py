"""Batched steps of the field's momentum methods beyond Adam: Signum, Adan, AdEMAMix
and Schedule-Free AdamW. The contract: :mod:`lionsweep.optim.registry`; the per-step scalars
are per model in float64, as in :mod:`lionsweep.optim.kernels_adam_family`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lionsweep.optim.kernels import Hyper, _add_scaled, _bcast, _sub_scaled
from lionsweep.optim.kernels_adam_family import AdamLike, decay_factor, ema_sq, f64


class SignumCoefs:
    def __init__(self, p: Tensor, hp: dict[str, Hyper]) -> None:
        self.lr = _bcast(hp["lr"], p)
        self.one_minus_momentum = 1.0 - _bcast(hp["momentum"], p)
        self.decay = decay_factor(p, hp["lr"], hp["weight_decay"])


@torch.no_grad()
def signum_update(p: Tensor, g: Tensor, m: Tensor, c: SignumCoefs, buf: Tensor) -> None:
    """One step of ``pytorch_optimizer.SignSGD`` (decoupled decay): p -= lr*sign(m),
    m the EMA of the gradient (momentum 0: sign(g), as lerp with weight 1 is exactly g)."""
    if c.decay is not None:
        p.mul_(c.decay)
    m.lerp_(g, c.one_minus_momentum)
    _sub_scaled(p, torch.sign(m, out=buf), c.lr)


# -------------------------------------------------------------------- Adan
@torch.no_grad()
def adan_update(
    p: Tensor, g: Tensor, states: Sequence[Tensor], c: AdamLike, step: int, buf: Tensor
) -> None:
    """One step of ``pytorch_optimizer.Adan`` (the official sail-sg code's defaults:
    proximal decay ``p / (1 + lr*wd)`` after the update, no gradient clipping).

    ``states`` = (m, v, n, prev): first moment, second moment of the corrected
    gradient, EMA of gradient differences, and minus the previous gradient (set to
    -g on step 1, so the first difference is exactly 0, as the reference)."""
    m, v, n, prev = states
    b = c.b
    if step == 1:
        torch.neg(g, out=prev)
    d = prev.add_(g)  # g - g_prev
    m.lerp_(g, 1.0 - b["beta1"])
    n.lerp_(d, 1.0 - b["beta2"])
    d.mul_(b["beta2"]).add_(g)  # g + beta2 * (g - g_prev)
    ema_sq(v, d, b["beta3"], buf)
    f = c.f
    bc3_sqrt = (1.0 - f["beta3"] ** step).sqrt()
    denom = torch.sqrt(v, out=buf).div_(c.cast(bc3_sqrt, p)).add_(b["eps"])
    _sub_scaled(p, torch.div(m, denom, out=d), c.cast(f["lr"] / (1.0 - f["beta1"] ** step), p))
    size_diff = f["lr"] * f["beta2"] / (1.0 - f["beta2"] ** step)
    _sub_scaled(p, torch.div(n, denom, out=d), c.cast(size_diff, p))
    if c.any_decay:
        p.div_(1.0 + b["lr"] * b["weight_decay"])
    torch.neg(g, out=prev)


# ---------------------------------------------------------------- AdEMAMix
@torch.no_grad()
def ademamix_update(
    p: Tensor, g: Tensor, states: Sequence[Tensor], c: AdamLike, step: int, buf: Tensor
) -> None:
    """One step of ``pytorch_optimizer.AdEMAMix(weight_decouple=True)``, no alpha/beta3
    warm-up (Apple's reference as the benchmark runs it): the update mixes the fast
    EMA m (bias-corrected) with ``alpha`` times the slow EMA (beta3); ``g`` is overwritten."""
    m, v, slow = states
    b, f = c.b, c.f
    if c.decay is not None:
        p.mul_(c.decay)
    m.lerp_(g, 1.0 - b["beta1"])
    ema_sq(v, g, b["beta2"], buf)
    slow.lerp_(g, 1.0 - b["beta3"])
    bc2_sqrt = (1.0 - f["beta2"] ** step).sqrt()
    denom = torch.sqrt(v, out=buf).div_(c.cast(bc2_sqrt, p)).add_(b["eps"])
    update = torch.div(m, c.cast(1.0 - f["beta1"] ** step, p), out=g)
    _add_scaled(update, slow, b["alpha"])
    _sub_scaled(p, update.div_(denom), b["lr"])


# ----------------------------------------------------------- Schedule-Free
def schedulefree_ckp1(c: AdamLike, step: int) -> Tensor:
    """weight_t / sum of weights, weight = lr_max**2 (r = 0, weight_lr_power = 2), per
    model in float64, summed step by step as the reference's group scalars (cached
    like NAdam's product; 0 where every weight is 0: a frozen model, lr = 0)."""
    if c.run_value is None or c.run_step > step:
        c.run_step, c.run_value = 0, torch.zeros_like(c.f["lr"])
    weight = c.f["lr"] ** 2.0  # lr_max**2: a model's lr is constant
    for _ in range(c.run_step + 1, step + 1):
        c.run_value = c.run_value + weight
    c.run_step = step
    return torch.where(c.run_value > 0, weight / c.run_value, torch.zeros_like(weight))


@torch.no_grad()
def schedulefree_update(
    p: Tensor, g: Tensor, states: Sequence[Tensor], c: AdamLike, step: int, buf: Tensor
) -> None:
    """One training step of ``schedulefree.AdamWScheduleFree`` (no warm-up): ``p`` holds
    y, the point where gradients are taken; ``z`` (state 0, p on step 1) is the base
    sequence. The model to evaluate is x = lerp(y, z, 1 - 1/beta1):
    :func:`schedulefree_x`, the registry entry's ``eval_point``. ``g`` is overwritten."""
    z, v = states
    b, f = c.b, c.f
    if step == 1:
        z.copy_(p)
    ema_sq(v, g, b["beta2"], buf)
    denom = torch.div(v, c.cast(1.0 - f["beta2"] ** step, p), out=buf).sqrt_().add_(b["eps"])
    g.div_(denom)
    if c.any_decay:
        _add_scaled(g, p, b["weight_decay"])
    ckp1 = schedulefree_ckp1(c, step)
    p.lerp_(z, c.cast(ckp1, p))
    _add_scaled(p, g, c.cast(f["lr"] * (f["beta1"] * (1.0 - ckp1) - 1.0), p))
    _sub_scaled(z, g, b["lr"])


def schedulefree_x(y: Tensor, z: Tensor, beta1: Hyper, out: Tensor | None = None) -> Tensor:
    """Schedule-Free's evaluation point x from the trained y and the state z, as the
    reference's ``optimizer.eval()`` (``y.lerp_(z, 1 - 1/beta1)``), without touching y.
    The weight is computed in float64 (the reference's Python float), then cast."""
    one = 1.0 - 1.0 / f64(beta1) if isinstance(beta1, Tensor) else 1.0 - 1.0 / beta1
    weight = _bcast(one, y)
    return torch.lerp(y, z, weight, out=out) if out is not None else torch.lerp(y, z, weight)
