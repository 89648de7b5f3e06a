"""Batched steps of the field's momentum methods: Signum (and, later in this module,
Adan, AdEMAMix and Schedule-Free). The contract: :mod:`lionsweep.optim`."""

from __future__ import annotations

import torch
from torch import Tensor

from lionsweep.kernels import Hyper, _bcast, _sub_scaled
from lionsweep.kernels_adam_family import decay_factor


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
