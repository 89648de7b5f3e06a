"""The optimizer registry: Lion, AdamW, Adam and SGD for K models at once.

Structured like ``torch/optim/adamw.py``: a functional core that updates stacked
tensors in place, and thin ``torch.optim.Optimizer`` drivers
(:mod:`lionsweep.optim_drivers`, re-exported here). Every hyperparameter may be a
Python scalar (then these are ordinary drop-in optimizers) or a tensor of shape
[K], broadcast over the leading dimension of every parameter, so one call updates
K independent models stacked as [K, ...] (possibly non-contiguous views).

:data:`REGISTRY` is the one place an optimizer is described: its hyperparameters
(default and valid range), its state tensors, its batched step (``coefs`` once per
hyperparameter change, ``update`` per parameter per step) and the reference
implementation every model slice must match (tests/test_optim.py). The engine,
the memory plan, the grid columns and the CLI derive from it; docs/optimizers.md
says how to add one.

The maths is exactly that of the references (lion-pytorch / google/automl for
Lion, ``torch.optim``); only the kernel choice differs (``lerp`` fuses two passes),
which changes results at the rounding level only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from lionsweep.errors import LionSweepError

Hyper = float | Tensor
INF = math.inf


class HParam(NamedTuple):
    """A hyperparameter's default and valid range (``inclusive``: are low/high allowed)."""

    default: float
    low: float
    high: float
    inclusive: tuple[bool, bool] = (True, False)
    integer: bool = False  # a 0/1 switch or a count: whole numbers only

    def contains(self, value: float) -> bool:
        lo_ok = value >= self.low if self.inclusive[0] else value > self.low
        hi_ok = value <= self.high if self.inclusive[1] else value < self.high
        return lo_ok and hi_ok and (not self.integer or float(value).is_integer())

    def describe(self) -> str:
        lo, hi = "[("[not self.inclusive[0]], "])"[not self.inclusive[1]]
        kind = "a whole number in " if self.integer else "in "
        return f"{kind}{lo}{self.low:g}, {self.high:g}{hi}"


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


def sgd_coefs(
    p: Tensor, *, lr: Hyper, momentum: Hyper, weight_decay: Hyper, nesterov: Hyper
) -> SGDCoefs:
    """SGD's constants; ``nesterov`` (0/1 per model) splits lr into two exact parts
    (lr*1 and lr*0), so each model takes exactly its own kind of step."""
    lr_b, nest = _bcast(lr, p), _bcast(nesterov, p)
    lr_n, lr_p = lr_b * nest, lr_b * (1.0 - nest)
    wd = None if _is_zero(weight_decay) else _bcast(weight_decay, p)
    return SGDCoefs(
        _bcast(momentum, p),
        wd,
        None if _is_zero(nesterov) else lr_n,
        None if _is_zero(lr_p) else lr_p,
    )


@torch.no_grad()
def sgd_update(p: Tensor, g: Tensor, buf: Tensor, c: SGDCoefs) -> None:
    """One step of ``torch.optim.SGD`` (dampening 0) for one stacked parameter.

    The buffer starts at zero, so the first step's ``0*mu + g`` is torch's
    ``buf = g.clone()`` exactly. ``g`` is overwritten (see :func:`adam_update`).
    """
    if c.weight_decay is not None:
        _add_scaled(g, p, c.weight_decay)
    buf.mul_(c.momentum).add_(g)
    if c.lr_plain is not None:
        _sub_scaled(p, buf, c.lr_plain)
    if c.lr_nesterov is not None:
        _add_scaled(g, buf, c.momentum)  # g + momentum * buf
        _sub_scaled(p, g, c.lr_nesterov)


# ------------------------------------------------------------------ registry
Update = Callable[[Tensor, Tensor, Sequence[Tensor], Any, int, Tensor | None], None]


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer as the engine, the grid and the tests see it.

    ``coefs(p, hp)`` turns the hyperparameters (scalars or [K] tensors, keyed by
    ``hparams``) into per-parameter constants; the engine calls it again only when
    they change (a frozen model). ``update(p, g, states, coefs, step, buffer)`` is
    one in-place step of one stacked parameter; ``g`` may be overwritten, ``buffer``
    is optional scratch of p's shape. ``reference(params, hp)`` builds the torch /
    lion-pytorch optimizer with plain floats that each model slice must match.
    """

    name: str
    hparams: dict[str, HParam]
    state: tuple[str, ...]
    coefs: Callable[[Tensor, Mapping[str, Hyper]], Any]
    update: Update
    reference: Callable[[Iterable[Tensor], Mapping[str, float]], torch.optim.Optimizer]


def _lion_reference(params: Iterable[Tensor], hp: Mapping[str, float]) -> torch.optim.Optimizer:
    from lion_pytorch import Lion as RefLion  # a test dependency only

    betas = (hp["beta1"], hp["beta2"])
    return RefLion(params, lr=hp["lr"], betas=betas, weight_decay=hp["weight_decay"])


def _adam_reference(cls: type) -> Callable[..., torch.optim.Optimizer]:
    def build(params: Iterable[Tensor], hp: Mapping[str, float]) -> torch.optim.Optimizer:
        betas = (hp["beta1"], hp["beta2"])
        return cls(params, lr=hp["lr"], betas=betas, eps=hp["eps"], weight_decay=hp["weight_decay"])

    return build


def _sgd_reference(params: Iterable[Tensor], hp: Mapping[str, float]) -> torch.optim.Optimizer:
    # torch refuses nesterov without momentum; with momentum 0 both are plain SGD.
    nesterov = bool(hp["nesterov"]) and hp["momentum"] > 0
    return torch.optim.SGD(
        params,
        lr=hp["lr"],
        momentum=hp["momentum"],
        weight_decay=hp["weight_decay"],
        nesterov=nesterov,
    )


LR = HParam(1e-3, 0.0, INF, (False, False))
BETA = HParam(0.9, 0.0, 1.0)
EPS = HParam(1e-8, 0.0, INF, (False, False))
DECAY = HParam(0.0, 0.0, INF)
ADAM_HPARAMS = {"lr": LR, "beta1": BETA, "beta2": BETA._replace(default=0.999), "eps": EPS}

REGISTRY: dict[str, OptimizerSpec] = {
    spec.name: spec
    for spec in (
        OptimizerSpec(
            "lion",
            {
                "lr": LR._replace(default=1e-4),
                "beta1": BETA,
                "beta2": BETA._replace(default=0.99),
                "weight_decay": DECAY,
            },
            ("exp_avg",),
            lambda p, hp: lion_coefs(p, **hp),
            lambda p, g, s, c, step, buf: lion_update(p, g, s[0], c, buf),
            _lion_reference,
        ),
        OptimizerSpec(
            "adamw",
            {**ADAM_HPARAMS, "weight_decay": DECAY._replace(default=1e-2)},
            ("exp_avg", "exp_avg_sq"),
            lambda p, hp: adam_coefs(p, **hp, decoupled=True),
            lambda p, g, s, c, step, buf: adam_update(p, g, s[0], s[1], c, step, buf),
            _adam_reference(torch.optim.AdamW),
        ),
        OptimizerSpec(
            "adam",
            {**ADAM_HPARAMS, "weight_decay": DECAY},
            ("exp_avg", "exp_avg_sq"),
            lambda p, hp: adam_coefs(p, **hp, decoupled=False),
            lambda p, g, s, c, step, buf: adam_update(p, g, s[0], s[1], c, step, buf),
            _adam_reference(torch.optim.Adam),
        ),
        OptimizerSpec(
            "sgd",
            {
                "lr": LR,
                "momentum": HParam(0.0, 0.0, 1.0),
                "weight_decay": DECAY,
                "nesterov": HParam(0.0, 0.0, 1.0, (True, True), integer=True),
            },
            ("momentum_buffer",),
            lambda p, hp: sgd_coefs(p, **hp),
            lambda p, g, s, c, step, buf: sgd_update(p, g, s[0], c),
            _sgd_reference,
        ),
    )
}
# The engine freezes a diverged model by zeroing these, so every optimizer needs them.
FROZEN_HPARAMS = ("lr", "weight_decay")
assert all(set(FROZEN_HPARAMS) <= set(s.hparams) for s in REGISTRY.values())


def names() -> tuple[str, ...]:
    """Registered optimizer names, in registration order."""
    return tuple(REGISTRY)


def hparam_names() -> tuple[str, ...]:
    """Every optimizer's hyperparameters, first appearance first: the grid's columns."""
    return tuple(dict.fromkeys(h for s in REGISTRY.values() for h in s.hparams))


def spec(name: str) -> OptimizerSpec:
    """The registry entry for ``name``, or a user error listing the known ones."""
    if name not in REGISTRY:
        raise LionSweepError(f"unknown optimizer {name!r}; expected one of {names()}")
    return REGISTRY[name]


def check_hparams(name: str, hparams: Mapping[str, Any]) -> int:
    """Validate ``name``'s hyperparameter arrays (present, equal length, in range): K."""
    opt = spec(name)
    absent = [h for h in opt.hparams if h not in hparams]
    if absent:
        raise LionSweepError(f"hparams lack {absent} for {name}")
    arrays = {h: np.atleast_1d(np.asarray(hparams[h], dtype=np.float64)) for h in opt.hparams}
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) != 1:
        raise LionSweepError(f"hparams arrays differ in length: {sorted(lengths)}")
    for h, values in arrays.items():
        bad = [i for i, v in enumerate(values) if not opt.hparams[h].contains(float(v))]
        if bad:
            value, rng = float(values[bad[0]]), opt.hparams[h].describe()
            raise LionSweepError(
                f"{name} hyperparameter {h}={value!r} (configuration {bad[0]}) is not {rng}"
            )
    return lengths.pop()


@torch.no_grad()
def batched_step(
    name: str,
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    states: Sequence[Sequence[Tensor]],
    hp: Mapping[str, Hyper],
    step: int,
    buffers: Sequence[Tensor] | None = None,
) -> None:
    """One step of registry optimizer ``name``; ``states[j]`` lists state ``j`` per param."""
    opt = REGISTRY[name]
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        c = opt.coefs(p, hp)
        opt.update(p, g, [s[i] for s in states], c, step, buffers[i] if buffers else None)


from lionsweep.optim_drivers import SGD, Adam, AdamW, Lion  # noqa: E402  (they use the registry)

__all__ = [
    "REGISTRY",
    "SGD",
    "Adam",
    "AdamW",
    "HParam",
    "Lion",
    "OptimizerSpec",
    "adam_update",
    "adamw_step",
    "batched_step",
    "check_hparams",
    "hparam_names",
    "lion_coefs",
    "lion_step",
    "lion_update",
    "names",
    "sgd_update",
    "spec",
]
