"""What each stacked parameter is, for optimizers that treat parameters differently.

Elementwise optimizers (Lion, Adam, ...) ignore roles. Matrix optimizers (Muon, SOAP)
and those with a per-tensor reduction (Cautious AdamW's mask mean) need two facts the
shapes do not carry: which tensors are *hidden* weight matrices (Muon is for those
only, not for the output layer), and where a bias is folded into a weight as its last
column (the engine's first layer, :mod:`lionsweep.train.model`), so that the bias is
optimized as the separate tensor it is in ``nn.Linear`` and in every reference.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

HIDDEN = "hidden"  # a hidden layer's weight matrix, [K, out, in]
HIDDEN_BIAS = "hidden+bias"  # the same with the layer's bias as last column, [K, out, in+1]
OTHER = "other"  # anything else: biases, the output layer
ROLES = (HIDDEN, HIDDEN_BIAS, OTHER)


def parts(t: Tensor, role: str) -> list[tuple[Tensor, str]]:
    """``t`` as the separate parameters it stands for: (view, role) pairs.

    A folded bias column becomes its own [K, out, 1] view (role OTHER), so a
    per-tensor reduction or a matrix step sees the weight and the bias apart.
    """
    if role == HIDDEN_BIAS:
        return [(t[..., :-1], HIDDEN), (t[..., -1:], OTHER)]
    if role not in ROLES:
        raise ValueError(f"unknown parameter role {role!r}; expected one of {ROLES}")
    return [(t, role)]


def views(t: Tensor, role: str) -> list[Tensor]:
    """The views of :func:`parts` alone (for the gradient, state and scratch of ``t``)."""
    return [v for v, _ in parts(t, role)]


def default_roles(params: Sequence[Tensor]) -> list[str]:
    """Roles of an ``nn.Module``'s parameters in registration order (references, the
    naive benchmark): every 2-D weight but the last (the output layer) is HIDDEN, as
    the tabular-MLP benchmark assigns Muon to its backbone's Linear weights."""
    two_d = [i for i, p in enumerate(params) if p.ndim == 2]
    hidden = set(two_d[:-1])
    return [HIDDEN if i in hidden else OTHER for i in range(len(params))]
