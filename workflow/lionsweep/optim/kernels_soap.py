"""SOAP (Vyas et al. 2024, "SOAP: Improving and Stabilizing Shampoo using Adam") for K
models at once, as ``pytorch_optimizer.SOAP`` 4.1.0 with its defaults.

Adam runs in the eigenbasis of Shampoo's two Gram matrices of each weight matrix
``W`` [A, B]: ``L = EMA(G G^T)`` [A, A] and ``R = EMA(G^T G)`` [B, B] (EMA rate
``shampoo_beta``, None = beta2 in the reference, so beta2 here). The first step only
fills L, R and takes their eigenbases (``eigh``, eigenvalues descending); every
``precondition_frequency`` steps after it the bases are refreshed by one power
iteration and a QR, with the rotated second moment re-sorted by the estimated
eigenvalues. The first moment stays in the original basis (rotated on use), the
second lives in the rotated basis. Parameters that are not matrices (biases, the
engine's folded bias column, scalars) take the reference's identity basis: Adam with
SOAP's step counting, eps placement and decay order (``precondition_1d`` False).
Every 2-D parameter is a matrix here, the output layer too, as in the reference
applied to a whole ``nn.Module``; roles (:mod:`lionsweep.optim.roles`) only split the folded
bias column off.

Batched: L, R and the bases are [K, A, A] / [K, B, B] tensors (:class:`Preconditioner`,
the entry's ``extra_state``); the products are ``matmul`` over K; ``eigh`` and ``qr``
take the whole stack (LAPACK per matrix, each model alone).

Deviation from the reference, on purpose: the refresh's QR runs in the parameter's
dtype; the reference casts to float32 for it (for bfloat16 parameters). The tests'
reference makes that cast the identity, and ``tests/test_soap.py`` bounds the gap to
the unmodified one. Not supported: ``merge_dims`` (off by default; no-op for 2-D
parameters when off), ``max_precondition_dim`` (a dimension above 10000 is refused),
``normalize_gradient`` (off by default).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lionsweep.optim.kernels import Hyper, _bcast, _sub_scaled
from lionsweep.optim.kernels_adam_family import f64
from lionsweep.optim.roles import HIDDEN_BIAS

MAX_PRECONDITION_DIM = 10000  # the reference's default; larger sides would get no basis


def _soap_parts(t: Tensor, role: str) -> list[tuple[Tensor, bool]]:
    """(view, is_matrix) pairs: the folded bias column is a vector, every other
    per-model 2-D tensor a matrix."""
    if role == HIDDEN_BIAS:
        return [(t[..., :-1], True), (t[..., -1:], False)]
    if t.dim() > 3:
        raise ValueError(f"SOAP here handles matrices and vectors, not shape {tuple(t.shape)}")
    return [(t, t.dim() == 3)]


class Preconditioner:
    """One matrix's per-model Gram matrices ``gg`` ([K,A,A], [K,B,B]) and eigenbases ``q``
    (None until the first step). SOAP's state that is not shaped like the parameter."""

    def __init__(self, w: Tensor) -> None:
        if max(w.shape[-2:]) > MAX_PRECONDITION_DIM:
            raise ValueError(f"SOAP: a side above {MAX_PRECONDITION_DIM} is not supported")
        k, a, b = w.shape
        kw = {"dtype": w.dtype, "device": w.device}
        self.gg = [torch.zeros(k, a, a, **kw), torch.zeros(k, b, b, **kw)]
        self.q: list[Tensor] | None = None


def soap_state(p: Tensor, role: str) -> list[Preconditioner | None]:
    """The extra state of stacked parameter ``p``: a Preconditioner per matrix part."""
    return [Preconditioner(v) if is_m else None for v, is_m in _soap_parts(p, role)]


class SoapCoefs:
    """Broadcast hyperparameters, float64 host copies for the per-step scalars, role."""

    def __init__(self, p: Tensor, hp: dict[str, Hyper], role: str) -> None:
        self.role = role
        self.f = {h: f64(v) for h, v in hp.items()}
        self.lr = _bcast(hp["lr"], p)
        self.one_minus_b1 = _bcast(1.0 - self.f["beta1"], p)
        self.one_minus_b2 = _bcast(1.0 - self.f["beta2"], p)
        self.eps = _bcast(hp["eps"], p)
        self.decay = _bcast(1.0 - self.f["lr"] * self.f["weight_decay"], p)
        # Python ints (read once per chunk): the refresh decision reads nothing per step.
        self.freq = [int(f) for f in self.f["precondition_frequency"].reshape(-1).tolist()]

    def step_size(self, t: int, like: Tensor) -> Hyper:
        """lr * sqrt(1 - beta2^t) / (1 - beta1^t), per model, in float64 then cast."""
        f = self.f
        bc1, bc2 = 1.0 - torch.pow(f["beta1"], t), 1.0 - torch.pow(f["beta2"], t)
        return _bcast(f["lr"] * (torch.sqrt(bc2) / bc1), like)

    def refresh(self, t: int) -> list[bool] | None:
        """Per model, is its basis refreshed after step t (its own
        precondition_frequency)? None when no model's is."""
        due = [t % f == 0 for f in self.freq]
        return due if any(due) else None


def _rotate(x: Tensor, q: list[Tensor]) -> Tensor:
    """Q_L^T X Q_R (the reference's forward ``project``)."""
    return torch.matmul(torch.matmul(q[0].transpose(-2, -1), x), q[1])


def _unrotate(x: Tensor, q: list[Tensor]) -> Tensor:
    """Q_L X Q_R^T (the reference's backward ``project``)."""
    return torch.matmul(torch.matmul(q[0], x), q[1].transpose(-2, -1))


def _accumulate(pre: Preconditioner, g: Tensor, c: SoapCoefs) -> None:
    """L, R <- lerp towards G G^T, G^T G with weight 1 - shampoo_beta (= 1 - beta2)."""
    gt = g.transpose(-2, -1)
    pre.gg[0].lerp_(torch.matmul(g, gt), c.one_minus_b2)
    pre.gg[1].lerp_(torch.matmul(gt, g), c.one_minus_b2)


def _eigenbases(pre: Preconditioner) -> None:
    """Eigenvectors of L and R, largest eigenvalue first (the reference adds 1e-30 I)."""
    bases = []
    for m in pre.gg:
        eye = torch.eye(m.shape[-1], dtype=m.dtype, device=m.device)
        bases.append(torch.flip(torch.linalg.eigh(m + 1e-30 * eye)[1], dims=[-1]))
    pre.q = bases


def _refresh(pre: Preconditioner, v: Tensor, due: list[bool]) -> None:
    """One power iteration + QR per side, the rotated second moment ``v`` re-sorted
    along that side by the estimated eigenvalues; only for the models in ``due``."""
    assert pre.q is not None
    everyone = all(due)
    mask = None if everyone else torch.tensor(due, device=v.device).view(-1, 1, 1)
    for side, (m, o) in enumerate(zip(pre.gg, pre.q, strict=True)):
        product = torch.matmul(m, o)
        order = torch.argsort((o * product).sum(dim=-2), dim=-1, descending=True)  # [K, n]
        n = order.shape[-1]
        if side == 0:  # rows of v
            v_sorted = torch.gather(v, -2, order[:, :, None].expand(-1, -1, v.shape[-1]))
        else:
            v_sorted = torch.gather(v, -1, order[:, None, :].expand(-1, v.shape[-2], -1))
        power = torch.gather(product, -1, order[:, None, :].expand(-1, n, -1))
        q_new = torch.linalg.qr(power)[0]
        v.copy_(v_sorted if everyone else torch.where(mask, v_sorted, v))
        pre.q[side] = q_new if everyone else torch.where(mask, q_new, o)


def _matrix_step(
    w: Tensor, g: Tensor, m: Tensor, v: Tensor, pre: Preconditioner, c: SoapCoefs, size: Hyper
) -> None:
    """Adam in the rotated basis for one [K, A, B] matrix part (order as the reference)."""
    assert pre.q is not None
    gp = _rotate(g, pre.q)
    m.lerp_(g, c.one_minus_b1)
    v.lerp_(gp.square_(), c.one_minus_b2)
    ratio = _rotate(m, pre.q).div_(v.sqrt().add_(c.eps))
    _sub_scaled(w, _unrotate(ratio, pre.q), size)


def _vector_step(w: Tensor, g: Tensor, m: Tensor, v: Tensor, c: SoapCoefs, size: Hyper) -> None:
    """The reference's identity basis: Adam with SOAP's eps placement."""
    m.lerp_(g, c.one_minus_b1)
    v.lerp_(g.square(), c.one_minus_b2)
    _sub_scaled(w, m / v.sqrt().add_(c.eps), size)


@torch.no_grad()
def soap_update(
    p: Tensor, g: Tensor, m: Tensor, v: Tensor, pres: list, c: SoapCoefs, step: int
) -> None:
    """One SOAP step of stacked parameter ``p`` (``pres``: :func:`soap_state`). Step 1
    only builds the bases (the reference takes no step then); step s uses the bias
    corrections of s - 1, decays after the update, then updates L and R."""
    parts = (_soap_parts(t, c.role) for t in (g, m, v))
    views = list(zip(_soap_parts(p, c.role), *parts, pres, strict=True))
    if step == 1:
        for _, (gv, _), _, _, pre in views:
            if pre is not None:
                _accumulate(pre, gv, c)
                _eigenbases(pre)
        return
    t = step - 1
    size, due = c.step_size(t, p), c.refresh(t)
    for (pv, is_m), (gv, _), (mv, _), (vv, _), pre in views:
        if is_m:
            _matrix_step(pv, gv, mv, vv, pre, c, size)
        else:
            _vector_step(pv, gv, mv, vv, c, size)
        pv.mul_(c.decay)
        if is_m:
            _accumulate(pre, gv, c)
            if due is not None:
                _refresh(pre, vv, due)
