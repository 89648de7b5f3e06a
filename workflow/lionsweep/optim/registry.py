"""The optimizer registry: Lion, AdamW, Adam, SGD and the 2026 field for K models at once.

Structured like ``torch/optim/adamw.py``: a functional core that updates stacked
tensors in place (:mod:`lionsweep.optim.kernels`, re-exported here) and thin
``torch.optim.Optimizer`` drivers over it (:mod:`lionsweep.optim.drivers`, which
imports this module and is not imported by it: one direction, no cycle). Every
hyperparameter may be a Python scalar (then the drivers are ordinary drop-in
optimizers) or a tensor of shape [K], broadcast over the leading dimension of every
parameter, so one call updates K independent models stacked as [K, ...] (possibly
non-contiguous views).

:data:`REGISTRY` is where an optimizer is described: its hyperparameters (default
and valid range) and state tensors, from :mod:`lionsweep.optim.hparams` (torch-free, for
the workflow's parse-time checks), with its batched step (``coefs`` once per
hyperparameter change, ``update`` per parameter per step) and the reference
implementation every model slice must match (tests/test_registry.py), here. The engine,
the memory plan, the grid columns and the CLI derive from it; docs/optimizers.md
says how to add one.

The maths is exactly that of the references (lion-pytorch / google/automl for
Lion, ``torch.optim``); only the kernel choice differs (``lerp`` fuses two passes),
which changes results at the rounding level only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lionsweep.errors import LionSweepError
from lionsweep.optim import fused, kernels
from lionsweep.optim.field import EVAL_POINTS, FIELD_KERNELS
from lionsweep.optim.hparams import (
    AVERAGING,
    DESCRIPTIONS,
    EMA_VARIANTS,
    FROZEN_HPARAMS,
    TRAINING_AXES,
    Description,
    HParam,
    accepted,
    describe,
    grid_columns,
    hparam_names,
    names,
)
from lionsweep.optim.kernels import (
    AdamCoefs,
    Hyper,
    LionCoefs,
    adam_coefs,
    lion_coefs,
    sgd_coefs,
    sgd_update,
)
from lionsweep.optim.roles import OTHER


# ------------------------------------------------------------ entry points
# Fused or eager is chosen here, as torch.optim's functional adamw() chooses fused,
# foreach or single-tensor: the kernels stay eager and the fused library (the same
# numbers in fewer memory passes, checked by its probe) never calls back up.
@torch.no_grad()
def lion_update(
    p: Tensor, g: Tensor, m: Tensor, coefs: LionCoefs, buffer: Tensor | None = None
) -> None:
    """One Lion step of one stacked parameter: fused where the library takes it, else eager."""
    if not fused.lion(p, g, m, coefs):
        kernels.lion_update(p, g, m, coefs, buffer)


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
    """One Adam/AdamW step of one stacked parameter: fused where it can, else eager."""
    if not fused.adam(p, g, m, v, c, step, buffer):
        kernels.adam_update(p, g, m, v, c, step, buffer)


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
    """One Lion step of every parameter, in place: decay, sign update, then momentum.

    ``buffers`` (same shapes as ``params``) are scratch space for the interpolation;
    preallocated ones avoid large allocations (page faults) per step.
    """
    hp = {"lr": lr, "beta1": beta1, "beta2": beta2, "weight_decay": weight_decay}
    for i, (p, g, m) in enumerate(zip(params, grads, exp_avgs, strict=True)):
        lion_update(p, g, m, lion_coefs(p, **hp), buffers[i] if buffers else None)


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
    """One AdamW step (``step`` from 1) of every parameter, as ``torch.optim.AdamW``."""
    hp = {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay}
    for i, (p, g, m, v) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs, strict=True)):
        c = adam_coefs(p, **hp, decoupled=True)
        adam_update(p, g, m, v, c, step, buffers[i] if buffers else None)


# ------------------------------------------------------------------ registry
Update = Callable[[Tensor, Tensor, Sequence[Tensor], Any, int, Tensor | None], None]
EvalPoint = Callable[[Tensor, Sequence[Tensor], Any, Tensor], Tensor]


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer as the engine, the grid and the tests see it.

    ``coefs(p, hp, role)`` turns the hyperparameters (scalars or [K] tensors, keyed by
    ``hparams``) into per-parameter constants; the engine calls it again only when
    they change (a frozen model). ``role`` (:mod:`lionsweep.optim.roles`) says what ``p``
    is; elementwise optimizers ignore it. ``update(p, g, states, coefs, step, buffer)`` is
    one in-place step of one stacked parameter; ``g`` may be overwritten, ``buffer``
    is optional scratch of p's shape. ``reference(params, hp, roles=None)`` builds the
    torch / package optimizer with plain floats that each model slice must match.
    ``eval_point(p, states, coefs, out)``, where set, is the point to evaluate when it
    is not ``p`` (Schedule-Free's x, the reference's ``eval()``), written into ``out``.
    ``averaging``: the weight averaging's hyperparameters as this entry accepts them.
    """

    name: str
    hparams: dict[str, HParam]
    state: tuple[str, ...]
    coefs: Callable[[Tensor, Mapping[str, Hyper], str], Any]
    update: Update
    reference: Callable[..., torch.optim.Optimizer]
    # State not shaped like p (SOAP's Gram matrices): ``extra_state(p, role)`` per
    # parameter, passed to ``update`` as the last element of ``states``.
    extra_state: Callable[[Tensor, str], Any] | None = None
    eval_point: EvalPoint | None = None
    averaging: Mapping[str, HParam] = field(default_factory=lambda: dict(AVERAGING))

    def step_hparams(self, hp: Mapping[str, Hyper]) -> dict[str, Hyper]:
        """``hp`` without the weight averaging's: what ``coefs`` takes."""
        return {h: hp[h] for h in self.hparams}


def _lion_reference(
    params: Iterable[Tensor], hp: Mapping[str, float], roles: Any = None
) -> torch.optim.Optimizer:
    from lion_pytorch import Lion as RefLion  # a test dependency only

    betas = (hp["beta1"], hp["beta2"])
    return RefLion(params, lr=hp["lr"], betas=betas, weight_decay=hp["weight_decay"])


def _adam_reference(cls: type) -> Callable[..., torch.optim.Optimizer]:
    def build(
        params: Iterable[Tensor], hp: Mapping[str, float], roles: Any = None
    ) -> torch.optim.Optimizer:
        betas = (hp["beta1"], hp["beta2"])
        return cls(params, lr=hp["lr"], betas=betas, eps=hp["eps"], weight_decay=hp["weight_decay"])

    return build


def _sgd_reference(
    params: Iterable[Tensor], hp: Mapping[str, float], roles: Any = None
) -> torch.optim.Optimizer:
    # torch refuses nesterov without momentum; with momentum 0 both are plain SGD.
    nesterov = bool(hp["nesterov"]) and hp["momentum"] > 0
    return torch.optim.SGD(
        params,
        lr=hp["lr"],
        momentum=hp["momentum"],
        weight_decay=hp["weight_decay"],
        nesterov=nesterov,
        dampening=hp.get("dampening", 0.0),
    )


# name -> (coefs, update, reference): the torch half of each lionsweep.optim.hparams entry.
KERNELS: dict[str, tuple[Any, ...]] = {
    "lion": (
        lambda p, hp, role: lion_coefs(p, **hp),
        lambda p, g, s, c, step, buf: lion_update(p, g, s[0], c, buf),
        _lion_reference,
    ),
    "adamw": (
        lambda p, hp, role: adam_coefs(p, **hp, decoupled=True),
        lambda p, g, s, c, step, buf: adam_update(p, g, s[0], s[1], c, step, buf),
        _adam_reference(torch.optim.AdamW),
    ),
    "adam": (
        lambda p, hp, role: adam_coefs(p, **hp, decoupled=False),
        lambda p, g, s, c, step, buf: adam_update(p, g, s[0], s[1], c, step, buf),
        _adam_reference(torch.optim.Adam),
    ),
    "sgd": (
        lambda p, hp, role: sgd_coefs(p, **hp),
        lambda p, g, s, c, step, buf: sgd_update(p, g, s[0], c, step),
        _sgd_reference,
    ),
    **FIELD_KERNELS,
}
KERNELS.update({name: KERNELS[base] for name, base in EMA_VARIANTS.items()})
assert tuple(KERNELS) == names(), (
    "lionsweep.optim.hparams and KERNELS must name the same optimizers"
)


def _entry(name: str, described: Description) -> OptimizerSpec:
    base = EMA_VARIANTS.get(name, name)
    averaging = {h: accepted(name)[h] for h in AVERAGING}
    coefs, update, reference, *extra = KERNELS[name]  # (SOAP's) extra_state last
    return OptimizerSpec(
        name,
        described.hparams,
        described.state,
        coefs,
        update,
        reference,
        extra_state=extra[0] if extra else None,
        eval_point=EVAL_POINTS.get(base),
        averaging=averaging,
    )


REGISTRY: dict[str, OptimizerSpec] = {n: _entry(n, d) for n, d in DESCRIPTIONS.items()}


def new_states(
    name: str, params: Sequence[Tensor], roles: Sequence[str] | None = None
) -> list[list[Any]]:
    """Zero state for ``params``: one list per state name (p-shaped tensors), then the
    extra state's list when the optimizer has one (the ``states`` of :func:`batched_step`)."""
    opt = REGISTRY[name]
    states: list[list[Any]] = [[torch.zeros_like(p) for p in params] for _ in opt.state]
    if opt.extra_state is not None:
        roles = roles or [OTHER] * len(params)
        states.append([opt.extra_state(p, r) for p, r in zip(params, roles, strict=True)])
    return states


def spec(name: str) -> OptimizerSpec:
    """The registry entry for ``name``, or a user error listing the known ones."""
    describe(name)
    return REGISTRY[name]


def _floats(name: str, h: str, values: Any) -> np.ndarray:
    try:
        return np.atleast_1d(np.asarray(values, dtype=np.float64)).ravel()
    except (TypeError, ValueError):
        raise LionSweepError(f"{name} hyperparameter {h} must be numbers") from None


def check_hparams(name: str, hparams: Mapping[str, Any]) -> int:
    """Validate ``name``'s hyperparameter arrays (present, equal length, in range): K.
    The weight averaging's are optional (absent: the entry's default) but checked."""
    opt = spec(name)
    absent = [h for h in opt.hparams if h not in hparams]
    if absent:
        raise LionSweepError(f"hparams lack {absent} for {name}")
    ranges = {**opt.hparams, **{h: r for h, r in opt.averaging.items() if h in hparams}}
    arrays = {h: _floats(name, h, hparams[h]) for h in ranges}
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) != 1:
        raise LionSweepError(f"hparams arrays differ in length: {sorted(lengths)}")
    if lengths == {0}:
        raise LionSweepError(f"no configurations: the {name} hparams arrays are empty")
    for h, values in arrays.items():
        bad = [i for i, v in enumerate(values) if not ranges[h].contains(float(v))]
        if bad:
            value, rng = float(values[bad[0]]), ranges[h].describe()
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
    roles: Sequence[str] | None = None,
) -> None:
    """One step of registry optimizer ``name``; ``states[j]`` lists state ``j`` per param;
    ``roles`` per param (:mod:`lionsweep.optim.roles`; default: all OTHER). The weight
    averaging is the engine's, not the step's: its hyperparameters are ignored here."""
    opt = REGISTRY[name]
    roles = roles or [OTHER] * len(params)
    hp = opt.step_hparams(hp)
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        c = opt.coefs(p, hp, roles[i])
        buf = buffers[i] if buffers else torch.empty_like(p)
        opt.update(p, g, [s[i] for s in states], c, step, buf)


__all__ = [
    "AVERAGING",
    "FROZEN_HPARAMS",
    "REGISTRY",
    "TRAINING_AXES",
    "HParam",
    "OptimizerSpec",
    "adam_update",
    "adamw_step",
    "batched_step",
    "check_hparams",
    "grid_columns",
    "hparam_names",
    "lion_coefs",
    "lion_step",
    "lion_update",
    "names",
    "new_states",
    "sgd_update",
    "spec",
]
