"""``torch.optim.Optimizer`` drivers over the registry's functional core.

Thin, like ``torch.optim.AdamW`` over ``adamw``: they hold state lazily and call
:func:`lionsweep.optim.registry.batched_step`. Constructor signatures and defaults are the
references' (``betas`` tuples, ``nesterov`` bool), so they are drop-in optimizers
with scalar hyperparameters and K-model optimizers with [K] tensors.

Like ``torch.optim``'s constructors they refuse hyperparameters outside their
range with torch's own ``ValueError`` messages ("Invalid learning rate: -1"), each
model's value of a [K] tensor checked alone: a bad value would otherwise surface as
NaN weights many steps later. The sweep itself validates through
:func:`lionsweep.optim.registry.check_hparams` (the registry's ranges), not here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from lionsweep.optim import registry as optim
from lionsweep.optim.kernels import Hyper


def _at_least_zero(value: float) -> bool:
    return value >= 0.0  # False for NaN, as torch.optim.AdamW's `not 0.0 <= lr`


def _not_negative(value: float) -> bool:
    return not value < 0.0  # True for NaN, as torch.optim.SGD's `lr < 0.0`


def _beta(value: float) -> bool:
    return 0.0 <= value < 1.0


def _refuse(value: Hyper, valid: Callable[[float], bool], message: str) -> None:
    """``ValueError(message.format(bad))`` unless every model's value is ``valid``."""
    values = value.detach().reshape(-1).tolist() if isinstance(value, Tensor) else [value]
    bad = [v for v in values if not valid(v)]
    if bad:
        raise ValueError(message.format(bad[0]))


def _check_betas(betas: tuple[Hyper, Hyper]) -> None:
    for i, beta in enumerate(betas):
        _refuse(beta, _beta, f"Invalid beta parameter at index {i}: {{}}")


def _as_hyper(value: Hyper) -> Hyper:
    return value.detach() if isinstance(value, Tensor) else float(value)


class _SweepOptimizer(torch.optim.Optimizer):
    """The driver all registry optimizers share: closure handling and lazy state."""

    name = ""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], **hp: Any) -> None:
        defaults = {
            k: tuple(map(_as_hyper, v)) if isinstance(v, tuple) else _as_hyper(v)
            for k, v in hp.items()
        }
        super().__init__(params, defaults)

    @staticmethod
    def _hparams(group: dict) -> dict[str, Hyper]:
        """The registry's hyperparameters from a param group (betas unpacked)."""
        hp = {k: v for k, v in group.items() if k not in ("params", "betas")}
        if "betas" in group:
            hp["beta1"], hp["beta2"] = group["betas"]
        return hp

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        spec = optim.REGISTRY[self.name]
        for group in self.param_groups:
            hp = self._hparams(group)
            hp = {h: hp[h] for h in spec.hparams}
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    for name in spec.state:
                        state[name] = torch.zeros_like(p)
                state["step"] += 1
                moments = [[state[name]] for name in spec.state]
                # The core may overwrite the gradient (coupled decay): give it a copy.
                optim.batched_step(self.name, [p], [p.grad.clone()], moments, hp, state["step"])
        return loss


class Lion(_SweepOptimizer):
    """Lion (Chen et al. 2023) as ``lion_pytorch.Lion``; scalars or [K] tensors."""

    name = "lion"

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: Hyper = 1e-4,
        betas: tuple[Hyper, Hyper] = (0.9, 0.99),
        weight_decay: Hyper = 0.0,
    ) -> None:
        # torch.optim.AdamW's ranges (lion-pytorch only asserts lr > 0, betas in [0, 1]).
        _refuse(lr, _at_least_zero, "Invalid learning rate: {}")
        _check_betas(betas)
        _refuse(weight_decay, _at_least_zero, "Invalid weight_decay value: {}")
        super().__init__(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)


class AdamW(_SweepOptimizer):
    """AdamW as ``torch.optim.AdamW``; hyperparameters are scalars or [K] tensors."""

    name = "adamw"

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: Hyper = 1e-3,
        betas: tuple[Hyper, Hyper] = (0.9, 0.999),
        eps: Hyper = 1e-8,
        weight_decay: Hyper = 1e-2,
    ) -> None:
        # torch.optim.AdamW's checks, in its order (Adam's are the same).
        _refuse(lr, _at_least_zero, "Invalid learning rate: {}")
        _refuse(eps, _at_least_zero, "Invalid epsilon value: {}")
        _check_betas(betas)
        _refuse(weight_decay, _at_least_zero, "Invalid weight_decay value: {}")
        super().__init__(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)


class Adam(AdamW):
    """Adam with coupled L2 decay, as ``torch.optim.Adam``."""

    name = "adam"

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: Hyper = 1e-3,
        betas: tuple[Hyper, Hyper] = (0.9, 0.999),
        eps: Hyper = 1e-8,
        weight_decay: Hyper = 0.0,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


class SGD(_SweepOptimizer):
    """SGD with momentum as ``torch.optim.SGD``; ``nesterov`` may be [K] 0/1."""

    name = "sgd"

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: Hyper = 1e-3,
        momentum: Hyper = 0.0,
        weight_decay: Hyper = 0.0,
        nesterov: Hyper = False,
        dampening: Hyper = 0.0,
    ) -> None:
        # torch.optim.SGD's checks, in its order; Nesterov needs momentum > 0 per model.
        _refuse(lr, _not_negative, "Invalid learning rate: {}")
        _refuse(momentum, _not_negative, "Invalid momentum value: {}")
        _refuse(weight_decay, _not_negative, "Invalid weight_decay value: {}")
        nesterov_without = torch.as_tensor(nesterov, device="cpu").ne(0) & torch.as_tensor(
            momentum, dtype=torch.float64, device="cpu"
        ).le(0)
        if bool(nesterov_without.any()):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        nest = nesterov.to(torch.float64) if isinstance(nesterov, Tensor) else float(nesterov)
        super().__init__(
            params,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            nesterov=nest,
            dampening=dampening,
        )
