"""``torch.optim.Optimizer`` drivers over the registry's functional core.

Thin, like ``torch.optim.AdamW`` over ``adamw``: they hold state lazily and call
:func:`lionsweep.optim.batched_step`. Constructor signatures and defaults are the
references' (``betas`` tuples, ``nesterov`` bool), so they are drop-in optimizers
with scalar hyperparameters and K-model optimizers with [K] tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from lionsweep import optim

Hyper = float | Tensor


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
        nest = nesterov.to(torch.float64) if isinstance(nesterov, Tensor) else float(nesterov)
        super().__init__(
            params,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            nesterov=nest,
            dampening=dampening,
        )
