"""Lion and AdamW for K models at once: per-model hyperparameters as [K] tensors.

Structured like ``torch/optim/adamw.py``: a functional core that updates lists of
tensors in place (``lion_step``, ``adamw_step``) and thin ``torch.optim.Optimizer``
subclasses. Every hyperparameter may be a Python scalar (then these are ordinary
drop-in optimizers) or a tensor of shape [K] that is broadcast over the leading
dimension of every parameter, so one call updates K independent models whose
parameters are stacked as [K, ...] (the stacked tensors may be non-contiguous
views, e.g. a permuted [D, K, H] buffer; all updates are in place).

The maths is exactly that of the reference implementations (lion-pytorch /
google/automl for Lion, ``torch.optim.AdamW``); only the kernel choice differs
(``lerp`` fuses two passes), which changes results at the rounding level only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor

Hyper = float | Tensor

__all__ = ["AdamW", "Lion", "adamw_step", "lion_coefs", "lion_step", "lion_update"]


def _bcast(value: Hyper, like: Tensor) -> Hyper:
    """Shape a [K] hyperparameter as [K, 1, ...] so it broadcasts over one stacked param."""
    if isinstance(value, Tensor) and value.ndim > 0:
        return value.to(dtype=like.dtype, device=like.device).view(-1, *([1] * (like.ndim - 1)))
    return float(value)


def _is_zero(value: Hyper) -> bool:
    if isinstance(value, Tensor):
        return not bool(value.ne(0).any())
    return value == 0


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
    lr, beta1, one_minus_beta2, decay = coefs
    if decay is not None:
        p.mul_(decay)
    # c = beta1 * m + (1 - beta1) * g, as one fused kernel.
    c = torch.lerp(g, m, beta1, out=buffer) if buffer is not None else torch.lerp(g, m, beta1)
    c.sign_()
    if isinstance(lr, Tensor):
        p.addcmul_(c, lr, value=-1.0)
    else:
        p.add_(c, alpha=-lr)
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
    for i, (p, g, m, v) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs, strict=True)):
        lr_i, b1, b2, eps_i = (_bcast(h, p) for h in (lr, beta1, beta2, eps))
        if not _is_zero(weight_decay):
            p.mul_(1.0 - lr_i * _bcast(weight_decay, p))
        m.lerp_(g, 1.0 - b1)
        v.mul_(b2)
        if isinstance(b2, Tensor):
            w = torch.mul(g, 1.0 - b2, out=buffers[i]) if buffers else g * (1.0 - b2)
            v.addcmul_(w, g)
        else:
            v.addcmul_(g, g, value=1.0 - b2)
        # Bias corrections in float64 like the reference's Python floats.
        if isinstance(b1, Tensor) or isinstance(b2, Tensor) or isinstance(lr_i, Tensor):
            b1d = torch.as_tensor(beta1, dtype=torch.float64).to(p.device)
            b2d = torch.as_tensor(beta2, dtype=torch.float64).to(p.device)
            lrd = torch.as_tensor(lr, dtype=torch.float64).to(p.device)
            step_size = _bcast(lrd / (1 - b1d**step), p)
            bc2_sqrt = _bcast(torch.sqrt(1 - b2d**step), p)
            denom = torch.sqrt(v, out=buffers[i]) if buffers else torch.sqrt(v)
            denom.div_(bc2_sqrt).add_(eps_i)
            if isinstance(step_size, Tensor):
                # p -= step_size * m / denom; folding step_size into denom saves a buffer.
                denom.div_(step_size)
                p.addcdiv_(m, denom, value=-1.0)
            else:
                p.addcdiv_(m, denom, value=-step_size)
        else:
            step_size = lr_i / (1 - b1**step)
            bc2_sqrt = math.sqrt(1 - b2**step)
            denom = (v.sqrt() / bc2_sqrt).add_(eps_i)
            p.addcdiv_(m, denom, value=-step_size)


def _as_hyper(value: Hyper) -> Hyper:
    return value.detach() if isinstance(value, Tensor) else float(value)


class _SweepOptimizer(torch.optim.Optimizer):
    """The thin driver both optimizers share: closure handling and lazily created state.

    Subclasses name their moment buffers and implement ``_update`` with the
    functional core, as torch.optim.AdamW wraps ``adamw``.
    """

    _moments: tuple[str, ...] = ()

    def _update(
        self, group: dict, params: list[Tensor], grads: list[Tensor], states: list[dict]
    ) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            states = []
            for p in params:
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    for name in self._moments:
                        state[name] = torch.zeros_like(p)
                state["step"] += 1
                states.append(state)
            if params:
                self._update(group, params, [p.grad for p in params], states)
        return loss


class Lion(_SweepOptimizer):
    """Lion (Chen et al. 2023); hyperparameters are scalars or [K] tensors (see module doc)."""

    _moments = ("exp_avg",)

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: Hyper = 1e-4,
        betas: tuple[Hyper, Hyper] = (0.9, 0.99),
        weight_decay: Hyper = 0.0,
    ) -> None:
        defaults = {
            "lr": _as_hyper(lr),
            "betas": (_as_hyper(betas[0]), _as_hyper(betas[1])),
            "weight_decay": _as_hyper(weight_decay),
        }
        super().__init__(params, defaults)

    def _update(
        self, group: dict, params: list[Tensor], grads: list[Tensor], states: list[dict]
    ) -> None:
        lion_step(
            params,
            grads,
            [s["exp_avg"] for s in states],
            lr=group["lr"],
            beta1=group["betas"][0],
            beta2=group["betas"][1],
            weight_decay=group["weight_decay"],
        )


class AdamW(_SweepOptimizer):
    """AdamW as ``torch.optim.AdamW``; hyperparameters are scalars or [K] tensors."""

    _moments = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: Hyper = 1e-3,
        betas: tuple[Hyper, Hyper] = (0.9, 0.999),
        eps: Hyper = 1e-8,
        weight_decay: Hyper = 1e-2,
    ) -> None:
        defaults = {
            "lr": _as_hyper(lr),
            "betas": (_as_hyper(betas[0]), _as_hyper(betas[1])),
            "eps": _as_hyper(eps),
            "weight_decay": _as_hyper(weight_decay),
        }
        super().__init__(params, defaults)

    def _update(
        self, group: dict, params: list[Tensor], grads: list[Tensor], states: list[dict]
    ) -> None:
        for p, g, state in zip(params, grads, states, strict=True):
            adamw_step(
                [p],
                [g],
                [state["exp_avg"]],
                [state["exp_avg_sq"]],
                step=state["step"],
                lr=group["lr"],
                beta1=group["betas"][0],
                beta2=group["betas"][1],
                eps=group["eps"],
                weight_decay=group["weight_decay"],
            )
