"""Batched steps of the Adam family beyond Adam/AdamW: NAdamW, RAdam, AdaBelief,
ADOPT and Cautious AdamW (the contract: :mod:`lionsweep.optim.registry`, docs/optimizers.md).

Per-step scalars (bias corrections, NAdam's momentum schedule, RAdam's rectification)
are computed per model in float64 from the [K] hyperparameters, as the references
compute them in Python floats, then cast to the parameter's dtype. They are computed
on the host (a few [K] ops), so a branch on them reads no device memory. Where a reference
branches on such a scalar (RAdam's ``rho_t > 5``), each model takes its own branch
through two exactly-zero-or-not coefficients, never a host-side ``if`` per model.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lionsweep.optim.kernels import Hyper, _add_scaled, _bcast, _is_zero, _sub_scaled
from lionsweep.optim.roles import parts


def f64(value: Hyper) -> Tensor:
    """A hyperparameter as a float64 host tensor: [K], or 0-dim for a scalar."""
    return torch.as_tensor(value, dtype=torch.float64).cpu()


def decay_factor(p: Tensor, lr: Hyper, weight_decay: Hyper) -> Hyper | None:
    """Decoupled decay's factor ``1 - lr*wd`` shaped for ``p``; None when no model decays."""
    return None if _is_zero(weight_decay) else 1.0 - _bcast(lr, p) * _bcast(weight_decay, p)


def ema_sq(v: Tensor, g: Tensor, beta2: Hyper, buffer: Tensor) -> None:
    """v = beta2*v + (1-beta2)*g*g, as torch's ``v.mul_(b2).addcmul_(g, g, value=1-b2)``."""
    v.mul_(beta2)
    if isinstance(beta2, Tensor):
        v.addcmul_(torch.mul(g, 1.0 - beta2, out=buffer), g)
    else:
        v.addcmul_(g, g, value=1.0 - beta2)


class AdamLike:
    """Hyperparameters of one parameter: broadcast for the tensor ops, float64 [K] for
    the per-step scalars (``f``), plus the decoupled decay factor."""

    def __init__(self, p: Tensor, hp: dict[str, Hyper], role: str = "other") -> None:
        self.b = {h: _bcast(v, p) for h, v in hp.items()}
        self.f = {h: f64(v) for h, v in hp.items()}
        self.decay = decay_factor(p, hp["lr"], hp["weight_decay"])
        self.any_decay = not _is_zero(hp["weight_decay"])
        self.role = role
        # a per-model running scalar and its step (NAdam's mu product, Schedule-Free's
        # weight sum): rebuilt from the hyperparameters when coefs are.
        self.run_step, self.run_value = 0, None

    def cast(self, value: Tensor, p: Tensor) -> Hyper:
        """A float64 per-model host scalar shaped, typed and placed for ``p``."""
        return _bcast(value, p)


def _moments(p: Tensor, g: Tensor, m: Tensor, v: Tensor, c: AdamLike, buf: Tensor) -> None:
    """Decoupled decay, then Adam's two moments (torch.optim order)."""
    if c.decay is not None:
        p.mul_(c.decay)
    m.lerp_(g, 1.0 - c.b["beta1"])
    ema_sq(v, g, c.b["beta2"], buf)


# ------------------------------------------------------------------ NAdamW
def _scalar_dtype() -> torch.dtype:
    # torch.optim keeps NAdam's mu_product in this dtype (optimizer._get_scalar_dtype).
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _nadam_mu(c: AdamLike, step: int) -> Tensor:
    return c.f["beta1"] * (1.0 - 0.5 * torch.pow(0.96, step * c.f["momentum_decay"]))


def nadam_mu_product(c: AdamLike, step: int) -> Tensor:
    """prod_{t<=step} mu_t as torch.optim.NAdam keeps it (float32 under the default
    dtype), returned as float64. Cached per step: coefs are rebuilt when a model is
    frozen, and the product, which lr and weight decay do not enter, is rebuilt alike."""
    if c.run_value is None or c.run_step > step:
        c.run_step, c.run_value = 0, torch.ones_like(c.f["beta1"], dtype=_scalar_dtype())
    for t in range(c.run_step + 1, step + 1):
        c.run_value = c.run_value * _nadam_mu(c, t).to(c.run_value.dtype)
    c.run_step = step
    return c.run_value.to(torch.float64)


@torch.no_grad()
def nadamw_update(
    p: Tensor, g: Tensor, m: Tensor, v: Tensor, c: AdamLike, step: int, buf: Tensor
) -> None:
    """One step of ``torch.optim.NAdam(decoupled_weight_decay=True)``; ``g`` is overwritten."""
    _moments(p, g, m, v, c, buf)
    lr, bc2 = c.f["lr"], 1.0 - c.f["beta2"] ** step
    mu, mu_next = _nadam_mu(c, step), _nadam_mu(c, step + 1)
    prod = nadam_mu_product(c, step)
    c_grad = -lr * (1.0 - mu) / (1.0 - prod)
    c_avg = (-lr * mu_next) / (1.0 - prod * mu_next)
    denom = torch.div(v, c.cast(bc2, p), out=buf).sqrt_().add_(c.b["eps"])
    _add_scaled(p, g.div_(denom), c.cast(c_grad, p))
    _add_scaled(p, torch.div(m, denom, out=g), c.cast(c_avg, p))


# ------------------------------------------------------------------- RAdam
def radam_coefs(c: AdamLike, step: int) -> tuple[Tensor, Tensor]:
    """(adaptive, plain) step sizes per model: exactly one is non-zero (rho_t > 5)."""
    b1, b2, lr = c.f["beta1"], c.f["beta2"], c.f["lr"]
    bc1, bc2 = 1.0 - b1**step, 1.0 - b2**step
    rho_inf = 2.0 / (1.0 - b2) - 1.0
    rho_t = rho_inf - 2.0 * step * (b2**step) / bc2
    rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)).sqrt()
    adaptive = rho_t > 5.0
    zero = torch.zeros_like(lr * bc1)
    return (
        torch.where(adaptive, lr / bc1 * (bc2**0.5) * rect, zero),
        torch.where(adaptive, zero, lr / bc1),
    )


@torch.no_grad()
def radam_update(
    p: Tensor, g: Tensor, m: Tensor, v: Tensor, c: AdamLike, step: int, buf: Tensor
) -> None:
    """One step of ``torch.optim.RAdam(decoupled_weight_decay=True)``."""
    _moments(p, g, m, v, c, buf)
    adaptive, plain = radam_coefs(c, step)
    if bool(adaptive.ne(0).any()):
        denom = torch.sqrt(v, out=buf).add_(c.b["eps"])
        _sub_scaled(p, torch.div(m, denom, out=buf), c.cast(adaptive, p))
    if bool(plain.ne(0).any()):
        _sub_scaled(p, m, c.cast(plain, p))


# --------------------------------------------------------------- AdaBelief
@torch.no_grad()
def adabelief_update(
    p: Tensor, g: Tensor, m: Tensor, s: Tensor, c: AdamLike, step: int, buf: Tensor
) -> None:
    """One step of ``pytorch_optimizer.AdaBelief(rectify=True)`` (decoupled decay),
    the rectified update adabelief-pytorch 0.2 runs by default; ``g`` is overwritten."""
    if c.decay is not None:
        p.mul_(c.decay)
    m.lerp_(g, 1.0 - c.b["beta1"])
    g.sub_(m)  # the residual g - m
    ema_sq(s, g, c.b["beta2"], buf)
    s.add_(c.b["eps"])
    b1, b2, lr = c.f["beta1"], c.f["beta2"], c.f["lr"]
    n_max = 2.0 / (1.0 - b2) - 1.0
    b2t = b2**step
    n_sma = n_max - 2 * step * b2t / (1.0 - b2t)
    rt = (
        (1.0 - b2t) * (n_sma - 4) / (n_max - 4) * (n_sma - 2) / n_sma * n_max / (n_max - 2)
    ).sqrt()
    size = lr / (1.0 - b1**step)
    adaptive = n_sma >= 5
    zero = torch.zeros_like(size)
    adapt, plain = torch.where(adaptive, size * rt, zero), torch.where(adaptive, zero, size)
    if bool(adapt.ne(0).any()):
        denom = torch.sqrt(s, out=buf).add_(c.b["eps"])
        _sub_scaled(p, torch.div(m, denom, out=buf), c.cast(adapt, p))
    if bool(plain.ne(0).any()):
        _sub_scaled(p, m, c.cast(plain, p))


# ------------------------------------------------------------------- ADOPT
@torch.no_grad()
def adopt_update(
    p: Tensor, g: Tensor, m: Tensor, v: Tensor, c: AdamLike, step: int, buf: Tensor
) -> None:
    """One step of ``pytorch_optimizer.ADOPT(weight_decouple=True)``: the first step
    only initialises v; then m follows g / max(sqrt(v), eps) clipped to step**0.25,
    and v is updated after the parameter."""
    if c.decay is not None:
        p.mul_(c.decay)
    if step == 1:
        v.addcmul_(g, g)
        return
    denom = torch.sqrt(v, out=buf).clamp_(min=c.b["eps"])
    normed = torch.div(g, denom, out=buf)
    clip = step**0.25
    normed.clamp_(-clip, clip)
    m.lerp_(normed, 1.0 - c.b["beta1"])
    _sub_scaled(p, m, c.b["lr"])
    ema_sq(v, g, c.b["beta2"], buf)


# ---------------------------------------------------------- Cautious AdamW
def cautious_mask(m: Tensor, g: Tensor, out: Tensor, role: str) -> Tensor:
    """mask = (m*g > 0) / max(mean(mask), 1e-3), the mean per model and per tensor
    (a folded bias column is its own tensor, see :mod:`lionsweep.optim.roles`)."""
    torch.mul(m, g, out=out)
    torch.gt(out, 0, out=out)  # 1.0 / 0.0 in out's dtype
    for view, _ in parts(out, role):
        mean = view.mean(dim=tuple(range(1, view.ndim)), keepdim=True) if view.ndim > 1 else None
        view.div_(mean.clamp_(min=1e-3) if mean is not None else view.clamp(min=1e-3))
    return out


@torch.no_grad()
def cadamw_update(
    p: Tensor, g: Tensor, m: Tensor, v: Tensor, c: AdamLike, step: int, buf: Tensor
) -> None:
    """One step of C-AdamW (Liang et al. 2024): ``torch.optim.AdamW`` whose update keeps
    only the coordinates where m and g agree in sign, divided by the kept fraction
    (C-Optim's current mask, which the benchmark vendors); ``g`` is overwritten."""
    _moments(p, g, m, v, c, buf)
    size = c.f["lr"] / (1.0 - c.f["beta1"] ** step)
    bc2_sqrt = (1.0 - c.f["beta2"] ** step).sqrt()
    mask = cautious_mask(m, g, g, c.role)
    denom = torch.sqrt(v, out=buf).div_(c.cast(bc2_sqrt, p)).add_(c.b["eps"])
    _sub_scaled(p, mask.mul_(m).div_(denom), c.cast(size, p))
