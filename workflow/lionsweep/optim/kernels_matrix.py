"""Batched steps whose update is matrix work: Muon (and its AdamW for the rest).

Muon (Jordan et al. 2024; ``torch.optim.Muon``) orthogonalises each hidden weight
matrix's momentum with a Newton-Schulz iteration; the other parameters (biases, the
output layer, a folded bias column) take AdamW, as the tabular-MLP benchmark assigns
them. Roles (:mod:`lionsweep.optim.roles`) say which is which. The iteration runs for all K
models at once with ``bmm``/``baddbmm``; the Frobenius norm is per model.

Deviation from ``torch.optim.Muon``, on purpose: the iteration runs in the
parameter's dtype, not bfloat16. On CPU bf16 matrix products are no faster here,
and float64 lets the tests check every other operation to rounding; the reference
in the tests is ``torch.optim.Muon`` with its bf16 cast made the identity.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lionsweep.optim.kernels import AdamCoefs, Hyper, _bcast, _sub_scaled, adam_coefs, adam_update
from lionsweep.optim.roles import HIDDEN, parts, views

# torch.optim.Muon's (Keller Jordan's) quintic coefficients, steps and eps.
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NS_STEPS = 5
NS_EPS = 1e-7


def newton_schulz(x: Tensor, steps: int = NS_STEPS, eps: float = NS_EPS) -> Tensor:
    """The orthogonalised [K, A, B] stack (a new tensor), each model as torch.optim.Muon's
    ``_zeropower_via_newtonschulz``: transpose tall matrices, divide by the Frobenius
    norm (at least eps), then ``steps`` quintic iterations."""
    a, b, c = NS_COEFFICIENTS
    tall = x.shape[-2] > x.shape[-1]
    y = x.transpose(-2, -1) if tall else x
    norm = torch.linalg.vector_norm(y, dim=(-2, -1), keepdim=True).clamp_(min=eps)
    y = y / norm
    for _ in range(steps):
        gram = torch.bmm(y, y.transpose(-2, -1))
        poly = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)
        y = torch.baddbmm(y, poly, y, beta=a)
    return y.transpose(-2, -1) if tall else y


class MuonCoefs:
    """Muon's broadcast constants, the AdamW constants for the other parts, the role."""

    def __init__(self, p: Tensor, hp: dict[str, Hyper], role: str) -> None:
        self.role = role
        adam = {h: hp[h] for h in ("lr", "beta1", "beta2", "eps", "weight_decay")}
        self.adam: AdamCoefs = adam_coefs(p, **adam, decoupled=True)
        self.muon_lr = _bcast(hp["muon_lr"], p)
        self.decay = 1.0 - self.muon_lr * _bcast(hp["weight_decay"], p)
        self.momentum = _bcast(hp["momentum"], p)
        # lerp weight of the update: momentum for Nesterov models, 1 (exactly m) for the rest.
        nest = _bcast(hp["nesterov"], p)
        self.lerp = nest * self.momentum + (1.0 - nest)


def muon_hidden(p: Tensor, g: Tensor, m: Tensor, c: MuonCoefs) -> None:
    """One Muon step of a hidden [K, A, B] weight stack; ``g`` is overwritten."""
    m.lerp_(g, 1.0 - c.momentum)
    g.lerp_(m, c.lerp)  # Nesterov: g + momentum*(m - g); else m
    update = newton_schulz(g)
    rows, cols = p.shape[-2:]
    p.mul_(c.decay)
    _sub_scaled(p, update, c.muon_lr * math.sqrt(max(1.0, rows / cols)))


@torch.no_grad()
def muon_update(
    p: Tensor, g: Tensor, m: Tensor, v: Tensor, c: MuonCoefs, step: int, buf: Tensor
) -> None:
    """Muon on the hidden weight part of ``p``, AdamW on the rest (``m`` is Muon's
    momentum buffer there, AdamW's first moment elsewhere; ``v`` is unused there)."""
    others = (views(t, c.role) for t in (g, m, v, buf))
    for (pv, role), gv, mv, vv, bv in zip(parts(p, c.role), *others, strict=True):
        if role == HIDDEN:
            muon_hidden(pv, gv, mv, c)
        else:
            adam_update(pv, gv, mv, vv, c.adam, step, bv)
