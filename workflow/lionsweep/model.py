"""K copies of the MLP Linear(D,H) -> ReLU -> Dropout(p) -> Linear(H,1) in stacked tensors.

Layout, chosen so that the first layer of all K models is ONE GEMM with K*H rows
and its bias comes out of the same GEMM (an appended column of ones in X):

- ``w1``: [K, H, D+1]; model k's nn.Linear ``weight`` with its ``bias`` as last column.
- ``w2``: [K, H] (output weights), ``b2``: [K] (output bias).

Activations are kept transposed, [K*H, B] (hidden units x batch rows), so that both
GEMMs take contiguous operands: Z^T = W1 @ Xa^T and dW1 = dZ^T @ Xa. On CPU in
float32 they run through oneDNN (``mkldnn._linear_pointwise``), which uses AVX-512
where MKL (the ``torch.mm`` backend) does not on AMD CPUs: ~2x the GEMM throughput
measured here (215 vs 105 GFLOP/s per core). Other devices/dtypes use ``torch.mm``.

Forward and backward are written by hand: the gradient w.r.t. the input is never
computed, every large temporary lives in a preallocated :class:`Workspace` (fresh
multi-MB allocations cost page faults on every step), and elementwise passes are
fused where PyTorch has a kernel for it (``threshold_backward`` applies the ReLU
and dropout masks in one pass). Every GEMM has a fixed batch dimension (partial
batches are zero-padded), which keeps each model's numbers independent of K on CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

# Stream ids for the per-purpose generators (see ``generator``).
INIT, ORDER, DROPOUT = 0, 1, 2


def generator(seed: int, stream: int) -> torch.Generator:
    """A CPU generator for one purpose, seeded from (seed, stream).

    Separate streams keep init, batch order and dropout statistically independent
    (one generator seeded three times with ``seed`` would reuse the same uniforms).
    """
    state = np.random.SeedSequence([int(seed), stream]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device="cpu").manual_seed(int(state) & ((1 << 63) - 1))


def init_single(d: int, h: int, seed: int) -> dict[str, Tensor]:
    """PyTorch's default nn.Linear init for ONE model, float32, in nn.Linear layout.

    Drawn in float32 whatever the training dtype, so float32 and float64 runs of a
    seed start from the same weights.
    """
    g = generator(seed, INIT)
    w1 = torch.empty(h, d)
    torch.nn.init.kaiming_uniform_(w1, a=math.sqrt(5), generator=g)
    b1 = torch.empty(h).uniform_(-1 / math.sqrt(d), 1 / math.sqrt(d), generator=g)
    w2 = torch.empty(1, h)
    torch.nn.init.kaiming_uniform_(w2, a=math.sqrt(5), generator=g)
    b2 = torch.empty(1).uniform_(-1 / math.sqrt(h), 1 / math.sqrt(h), generator=g)
    return {"0.weight": w1, "0.bias": b1, "3.weight": w2, "3.bias": b2}


def epoch_batches(n: int, batch_size: int, gen: torch.Generator) -> list[Tensor]:
    """One epoch's mini-batches: a fresh permutation, last partial batch kept."""
    perm = torch.randperm(n, generator=gen)
    return list(perm.split(batch_size))


def dropout_mask(rows: int, h: int, p: float, gen: torch.Generator) -> Tensor | None:
    """Keep-mask [rows, H] (float32 0/1) shared by all K models; None when p == 0."""
    if p <= 0:
        return None
    return (torch.rand(rows, h, generator=gen) >= p).to(torch.float32)


def _onednn_ok(t: Tensor) -> bool:
    return (
        t.device.type == "cpu"
        and t.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    )


def gemm_nt(a: Tensor, b: Tensor, out: Tensor | None = None, relu: bool = False) -> Tensor:
    """``a @ b.T`` (then ReLU) for contiguous a [M, K], b [N, K]; oneDNN when possible.

    oneDNN fuses the ReLU into the GEMM's output pass (one pass less over [M, N]).
    """
    if _onednn_ok(a):
        attr = "relu" if relu else "none"
        return torch.ops.mkldnn._linear_pointwise(a, b, None, attr, [], "")
    res = torch.mm(a, b.t(), out=out)
    return res.relu_() if relu else res


@dataclass
class BatchedMLP:
    """Parameters of K models (see module docstring for the layout)."""

    w1: Tensor
    w2: Tensor
    b2: Tensor

    @classmethod
    def from_single(
        cls, single: dict[str, Tensor], k: int, dtype: torch.dtype, device: torch.device
    ) -> BatchedMLP:
        """Broadcast one model's weights (``init_single`` layout) to K identical copies."""
        w1, b1 = single["0.weight"], single["0.bias"]
        h, d = w1.shape
        one = torch.cat([w1, b1[:, None]], dim=1)  # [H, D+1]
        w1k = one[None].expand(k, h, d + 1).to(device=device, dtype=dtype).contiguous()
        w2k = single["3.weight"].reshape(1, h).expand(k, h).to(device=device, dtype=dtype)
        b2k = single["3.bias"].reshape(1).expand(k).to(device=device, dtype=dtype)
        return cls(w1k, w2k.contiguous(), b2k.contiguous())

    @property
    def k(self) -> int:
        return self.w2.shape[0]

    @property
    def hidden(self) -> int:
        return self.w2.shape[1]

    def params(self) -> list[Tensor]:
        """Tensors with the model dimension first, as the optimizers expect."""
        return [self.w1, self.w2, self.b2]

    def zeros_like(self) -> BatchedMLP:
        return BatchedMLP(*(torch.zeros_like(t) for t in self.params()))

    def clone(self) -> BatchedMLP:
        return BatchedMLP(*(t.clone() for t in self.params()))

    def model_state(self, k: int) -> dict[str, Tensor]:
        """Model k's weights in nn.Sequential state_dict layout (for tests and export)."""
        return {
            "0.weight": self.w1[k, :, :-1].clone(),
            "0.bias": self.w1[k, :, -1].clone(),
            "3.weight": self.w2[k][None, :].clone(),
            "3.bias": self.b2[k : k + 1].clone(),
        }

    def finite(self) -> Tensor:
        """[K] bool: all of model k's parameters are finite."""
        ok = torch.isfinite(self.w1).flatten(1).all(dim=1)
        return ok & torch.isfinite(self.w2).all(dim=1) & torch.isfinite(self.b2)


class Workspace:
    """Preallocated temporaries for ``rows``-row forward/backward passes of K models."""

    def __init__(self, rows: int, k: int, h: int, dtype: torch.dtype, device: torch.device):
        self.rows = rows
        self.z = torch.empty(k * h, rows, dtype=dtype, device=device)
        self.t = torch.empty(k, h, rows, dtype=dtype, device=device)
        self.logits = torch.empty(k, rows, dtype=dtype, device=device)
        self.dlogit = torch.empty(k, rows, dtype=dtype, device=device)

    @staticmethod
    def elements_per_model(rows: int, h: int) -> int:
        return 2 * rows * h + 2 * rows


def forward(model: BatchedMLP, xa: Tensor, ws: Workspace, keep_scale: Tensor | None) -> Tensor:
    """Logits [K, rows] for ``xa`` = [rows, D+1] (last column ones, padded rows zero).

    ``keep_scale`` is the dropout mask times 1/(1-p), transposed: [H, rows] (None: no
    dropout). Leaves the post-dropout activations in ``ws.z`` for :func:`backward`.
    """
    k, h = model.k, model.hidden
    ws.z = gemm_nt(model.w1.view(k * h, -1), xa, out=ws.z, relu=True)  # relu(Z)^T [K*H, rows]
    a = ws.z.view(k, h, -1)
    if keep_scale is not None:
        a.mul_(keep_scale)
    # Per-model w2 . a as a batched GEMV with contiguous operands (2x mul+sum here).
    torch.bmm(model.w2[:, None, :], a, out=ws.logits.view(k, 1, -1))
    ws.logits.add_(model.b2[:, None])
    return ws.logits


def backward(
    model: BatchedMLP,
    xa_t: Tensor,
    y: Tensor,
    row_weight: Tensor,
    ws: Workspace,
    grads: BatchedMLP,
    scale: float,
    frozen: Tensor | None,
) -> None:
    """Gradients of each model's mean BCE-with-logits loss, written into ``grads``.

    ``xa_t`` is the batch transposed, [D+1, rows] contiguous; ``row_weight`` is 1/n for
    the n real rows and 0 for padding; ``scale`` is the dropout scale 1/(1-p);
    ``frozen`` ([K] bool or None) zeroes those models' output gradients.
    """
    k, h = model.k, model.hidden
    dl = torch.sigmoid(ws.logits, out=ws.dlogit)
    dl.sub_(y).mul_(row_weight)
    if frozen is not None:
        dl.masked_fill_(frozen[:, None], 0.0)
    torch.sum(dl, dim=1, out=grads.b2)
    a = ws.z.view(k, h, -1)
    torch.mul(a, dl[:, None, :], out=ws.t)
    torch.sum(ws.t, dim=2, out=grads.w2)
    # dZ = dlogit * w2 * scale where the unit is active and kept (a > 0), else 0.
    w2s = model.w2 * scale if scale != 1.0 else model.w2
    torch.mul(dl[:, None, :], w2s[:, :, None], out=ws.t)
    torch.ops.aten.threshold_backward.grad_input(ws.t, a, 0, grad_input=ws.t)
    g1 = gemm_nt(ws.t.view(k * h, -1), xa_t, out=grads.w1.view(k * h, -1))
    if g1.data_ptr() != grads.w1.data_ptr():
        grads.w1 = g1.view_as(grads.w1)
