"""Reference implementations of the 2026 field's optimizers, one model at a time.

Each factory ``(params, hp, roles=None) -> torch.optim.Optimizer`` builds the
implementation an entry claims to match, with plain floats (tests/test_registry.py,
tests/test_heads.py, the naive benchmark). ``torch.optim`` where it has the
optimizer; else the test-only packages pinned in envs/requirements-test.txt
(``pytorch-optimizer``), imported inside the factory. Two have no packaged
reference and are transcribed here from their authors' code: Cautious AdamW and the
Muon + AdamW split. ``roles`` (:mod:`lionsweep.optim.roles`; default
:func:`~lionsweep.optim.roles.default_roles`) matter only to the matrix optimizers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any
from unittest import mock

import torch
from torch import Tensor

from lionsweep.optim.roles import HIDDEN, default_roles

Reference = Callable[..., torch.optim.Optimizer]


def _betas(hp: Mapping[str, float]) -> tuple[float, float]:
    return (hp["beta1"], hp["beta2"])


def nadamw(params: Iterable[Tensor], hp: Mapping[str, float], roles: Any = None):
    return torch.optim.NAdam(
        params,
        lr=hp["lr"],
        betas=_betas(hp),
        eps=hp["eps"],
        weight_decay=hp["weight_decay"],
        momentum_decay=hp["momentum_decay"],
        decoupled_weight_decay=True,
    )


def radam(params: Iterable[Tensor], hp: Mapping[str, float], roles: Any = None):
    return torch.optim.RAdam(
        params,
        lr=hp["lr"],
        betas=_betas(hp),
        eps=hp["eps"],
        weight_decay=hp["weight_decay"],
        decoupled_weight_decay=True,
    )


def signum(params: Iterable[Tensor], hp: Mapping[str, float], roles: Any = None):
    from pytorch_optimizer import SignSGD  # test dependency only

    return SignSGD(params, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"])


def adabelief(params: Iterable[Tensor], hp: Mapping[str, float], roles: Any = None):
    from pytorch_optimizer import AdaBelief

    # rectify=True: adabelief-pytorch 0.2's default, which the benchmark runs.
    kw = {"eps": hp["eps"], "weight_decay": hp["weight_decay"]}
    return AdaBelief(params, lr=hp["lr"], betas=_betas(hp), rectify=True, **kw)


def adopt(params: Iterable[Tensor], hp: Mapping[str, float], roles: Any = None):
    from pytorch_optimizer import ADOPT

    kw = {"eps": hp["eps"], "weight_decay": hp["weight_decay"]}
    return ADOPT(params, lr=hp["lr"], betas=_betas(hp), weight_decouple=True, **kw)


def adan(params: Iterable[Tensor], hp: Mapping[str, float], roles: Any = None):
    from pytorch_optimizer import Adan

    betas = (hp["beta1"], hp["beta2"], hp["beta3"])
    return Adan(params, lr=hp["lr"], betas=betas, eps=hp["eps"], weight_decay=hp["weight_decay"])


def ademamix(params: Iterable[Tensor], hp: Mapping[str, float], roles: Any = None):
    from pytorch_optimizer import AdEMAMix

    betas = (hp["beta1"], hp["beta2"], hp["beta3"])
    kw = {"eps": hp["eps"], "weight_decay": hp["weight_decay"], "alpha": hp["alpha"]}
    return AdEMAMix(params, lr=hp["lr"], betas=betas, weight_decouple=True, **kw)


def schedulefree(params: Iterable[Tensor], hp: Mapping[str, float], roles: Any = None):
    from schedulefree import AdamWScheduleFree

    kw = {"eps": hp["eps"], "weight_decay": hp["weight_decay"]}
    opt = AdamWScheduleFree(params, lr=hp["lr"], betas=_betas(hp), **kw)
    opt.train()  # steps are taken in train mode (parameters hold y)
    return opt


class CautiousAdamW(torch.optim.Optimizer):
    """C-AdamW (Liang et al. 2024) for one model: ``torch.optim.AdamW``'s step with the
    update masked where exp_avg and grad disagree in sign, the mask divided by its
    mean (at least 1e-3), as C-Optim's c_adamw.py (commit 2c0517c, vendored by the
    tabular-MLP benchmark) and timm's ``caution=True``. Defaults: C-Optim's."""

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(
            params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        )

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state.update(step=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                state["step"] += 1
                step, m, v, grad = state["step"], state["m"], state["v"], p.grad
                p.mul_(1 - lr * group["weight_decay"])
                m.lerp_(grad, 1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (v.sqrt() / (1 - beta2**step) ** 0.5).add_(eps)
                mask = (m * grad > 0).to(grad.dtype)
                mask.div_(mask.mean().clamp_(min=1e-3))
                p.addcdiv_(m * mask, denom, value=-lr / (1 - beta1**step))


def cadamw(params: Iterable[Tensor], hp: Mapping[str, float], roles: Any = None):
    kw = {"eps": hp["eps"], "weight_decay": hp["weight_decay"]}
    return CautiousAdamW(params, lr=hp["lr"], betas=_betas(hp), **kw)


@contextlib.contextmanager
def _no_bfloat16() -> Iterator[None]:
    """torch.optim.Muon's Newton-Schulz with its bfloat16 cast made a copy in the
    input's dtype: the one line our kernel deliberately does otherwise."""
    with mock.patch.object(torch.Tensor, "bfloat16", lambda self: self.clone()):
        yield


class MuonAdamW(torch.optim.Optimizer):
    """``torch.optim.Muon`` on the hidden weight matrices, ``torch.optim.AdamW`` on every
    other parameter, one weight decay: the tabular-MLP benchmark's split (its
    SingleDeviceMuonWithAuxAdam). ``exact_muon=False`` keeps Muon's bfloat16."""

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        muon_lr: float = 1e-3,
        momentum: float = 0.95,
        nesterov: bool = True,
        roles: Sequence[str] | None = None,
        exact_muon: bool = True,
    ) -> None:
        params = list(params)
        roles = list(roles) if roles is not None else default_roles(params)
        hidden = [p for p, r in zip(params, roles, strict=True) if r == HIDDEN]
        rest = [p for p, r in zip(params, roles, strict=True) if r != HIDDEN]
        super().__init__(params, {})
        kw = {"momentum": momentum, "nesterov": nesterov, "weight_decay": weight_decay}
        self.muon = torch.optim.Muon(hidden, lr=muon_lr, **kw) if hidden else None
        kw = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        self.adamw = torch.optim.AdamW(rest, **kw) if rest else None
        self.exact_muon = exact_muon

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        if self.muon is not None:
            with _no_bfloat16() if self.exact_muon else contextlib.nullcontext():
                self.muon.step()
        if self.adamw is not None:
            self.adamw.step()


def muon(params: Iterable[Tensor], hp: Mapping[str, float], roles: Any = None):
    return MuonAdamW(
        params,
        lr=hp["lr"],
        betas=_betas(hp),
        eps=hp["eps"],
        weight_decay=hp["weight_decay"],
        muon_lr=hp["muon_lr"],
        momentum=hp["momentum"],
        nesterov=bool(hp["nesterov"]),
        roles=roles,
    )
