"""K copies of the MLP Linear(D,H) -> ReLU -> Dropout(p) -> Linear(H,C) in stacked tensors.

Layout, chosen so that the first layer of all K models is ONE GEMM with K*H rows
and its bias comes out of the same GEMM (an appended column of ones in X):

- ``w1``: [K, H, D+1]; model k's nn.Linear ``weight`` with its ``bias`` as last column.
- ``w2``: [K, C, H] (output weights), ``b2``: [K, C] (output bias); C is the task
  head's output width (1 for binary and regression, the classes for multiclass).

Activations are kept transposed, [K*H, B] (hidden units x batch rows), so that both
GEMMs take contiguous operands: Z^T = W1 @ Xa^T and dW1 = dZ^T @ Xa. On CPU in
float32 they run through oneDNN (``mkldnn._linear_pointwise``), which uses AVX-512
where MKL (the ``torch.mm`` backend) does not on AMD CPUs; how much that gains
depends on the host (measured: docs/performance.md). That op is private, so it is probed
once (present, old signature, right numbers) and ``torch.mm`` is used whenever the
probe fails, as on other devices and dtypes.

Forward and backward are written by hand: the gradient w.r.t. the input is never
computed, every large temporary lives in a preallocated :class:`Workspace` (fresh
multi-MB allocations cost page faults on every step), and elementwise passes are
fused where PyTorch has a kernel for it (``threshold_backward`` applies the ReLU
and dropout masks in one pass). Every GEMM has a fixed batch dimension (partial
batches are zero-padded), which keeps each model's numbers independent of K on CPU.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lionsweep.optim.roles import HIDDEN_BIAS, OTHER

# Stream ids for the per-purpose generators (see ``generator``).
INIT, ORDER, DROPOUT = 0, 1, 2


def generator(seed: int, stream: int) -> torch.Generator:
    """A CPU generator for one purpose, seeded from (seed, stream).

    Separate streams keep init, batch order and dropout statistically independent
    (one generator seeded three times with ``seed`` would reuse the same uniforms).
    """
    state = np.random.SeedSequence([int(seed), stream]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device="cpu").manual_seed(int(state) & ((1 << 63) - 1))


def init_single(d: int, h: int, seed: int, out: int = 1) -> dict[str, Tensor]:
    """PyTorch's default nn.Linear init for ONE model, float32, in nn.Linear layout.

    Drawn in float32 whatever the training dtype, so float32 and float64 runs of a
    seed start from the same weights (``out`` = the head's output width).
    """
    g = generator(seed, INIT)
    w1 = torch.empty(h, d)
    torch.nn.init.kaiming_uniform_(w1, a=math.sqrt(5), generator=g)
    b1 = torch.empty(h).uniform_(-1 / math.sqrt(d), 1 / math.sqrt(d), generator=g)
    w2 = torch.empty(out, h)
    torch.nn.init.kaiming_uniform_(w2, a=math.sqrt(5), generator=g)
    b2 = torch.empty(out).uniform_(-1 / math.sqrt(h), 1 / math.sqrt(h), generator=g)
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


ONEDNN_OP = "_linear_pointwise"  # torch.ops.mkldnn.<this>: private, may change


def _load_onednn_op() -> Callable[..., Tensor]:
    return getattr(torch.ops.mkldnn, ONEDNN_OP)


@functools.cache
def onednn_linear() -> Callable[..., Tensor] | None:
    """The private oneDNN GEMM if it exists and still works as we call it, else None.

    Probed once per process (cached): a missing op, a changed signature or wrong
    numbers on a small problem all select the ``torch.mm`` fallback.
    """
    if not torch.backends.mkldnn.is_available():
        return None
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(16, 9, generator=g), torch.randn(5, 9, generator=g)
    try:
        op = _load_onednn_op()
        got = op(a, b, None, "relu", [], "")
        ok = torch.allclose(got, torch.mm(a, b.t()).relu(), rtol=1e-4, atol=1e-5)
    except Exception:  # any failure of a private op means: do not use it
        return None
    return op if ok else None


def _onednn_ok(t: Tensor) -> bool:
    return t.device.type == "cpu" and t.dtype == torch.float32 and onednn_linear() is not None


def gemm_nt(a: Tensor, b: Tensor, out: Tensor | None = None, relu: bool = False) -> Tensor:
    """``a @ b.T`` (then ReLU) for contiguous a [M, K], b [N, K]; oneDNN when possible.

    oneDNN fuses the ReLU into the GEMM's output pass (one pass less over [M, N]);
    it returns a fresh tensor, so callers use the result, not ``out``.
    """
    op = onednn_linear() if _onednn_ok(a) else None
    if op is not None:
        return op(a, b, None, "relu" if relu else "none", [], "")
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
        c = single["3.weight"].shape[0]
        w2k = single["3.weight"][None].expand(k, c, h).to(device=device, dtype=dtype)
        b2k = single["3.bias"][None].expand(k, c).to(device=device, dtype=dtype)
        return cls(w1k, w2k.contiguous(), b2k.contiguous())

    @property
    def k(self) -> int:
        return self.w2.shape[0]

    @property
    def hidden(self) -> int:
        return self.w2.shape[2]

    @property
    def width(self) -> int:
        """Outputs per model (the task head's C)."""
        return self.w2.shape[1]

    def params(self) -> list[Tensor]:
        """Tensors with the model dimension first, as the optimizers expect."""
        return [self.w1, self.w2, self.b2]

    # What each of params() is, for matrix optimizers (lionsweep.optim.roles): w1 is the hidden
    # weight matrix with the first layer's bias folded in as its last column.
    ROLES = (HIDDEN_BIAS, OTHER, OTHER)

    def zeros_like(self) -> BatchedMLP:
        return BatchedMLP(*(torch.zeros_like(t) for t in self.params()))

    def clone(self) -> BatchedMLP:
        return BatchedMLP(*(t.clone() for t in self.params()))

    def model_state(self, k: int) -> dict[str, Tensor]:
        """Model k's weights in nn.Sequential state_dict layout (for tests and export)."""
        return {
            "0.weight": self.w1[k, :, :-1].clone(),
            "0.bias": self.w1[k, :, -1].clone(),
            "3.weight": self.w2[k].clone(),
            "3.bias": self.b2[k].clone(),
        }

    def finite(self) -> Tensor:
        """[K] bool: all of model k's parameters are finite."""
        ok = torch.isfinite(self.w1).flatten(1).all(dim=1)
        ok &= torch.isfinite(self.w2).flatten(1).all(dim=1)
        return ok & torch.isfinite(self.b2).all(dim=1)


class Workspace:
    """Preallocated temporaries for ``rows``-row forward/backward passes of K models."""

    def __init__(
        self, rows: int, k: int, h: int, dtype: torch.dtype, device: torch.device, c: int = 1
    ):
        self.rows = rows
        self.z = torch.empty(k * h, rows, dtype=dtype, device=device)
        self.t = torch.empty(k, h, rows, dtype=dtype, device=device)
        self.logits = torch.empty(k, c, rows, dtype=dtype, device=device)  # outputs
        self.dlogit = torch.empty(k, c, rows, dtype=dtype, device=device)  # d loss / d output

    @staticmethod
    def elements_per_model(rows: int, h: int, c: int = 1) -> int:
        return 2 * rows * h + 2 * rows * c


def forward(model: BatchedMLP, xa: Tensor, ws: Workspace, keep_scale: Tensor | None) -> Tensor:
    """Outputs [K, C, rows] for ``xa`` = [rows, D+1] (last column ones, padded rows zero).

    ``keep_scale`` is the dropout mask times 1/(1-p), transposed: [H, rows] (None: no
    dropout). Leaves the post-dropout activations in ``ws.z`` for :func:`backward`.
    """
    k, h = model.k, model.hidden
    ws.z = gemm_nt(model.w1.view(k * h, -1), xa, out=ws.z, relu=True)  # relu(Z)^T [K*H, rows]
    a = ws.z.view(k, h, -1)
    if keep_scale is not None:
        a.mul_(keep_scale)
    # Per-model w2 . a as a batched GEMV with contiguous operands (2x mul+sum here).
    torch.bmm(model.w2, a, out=ws.logits)
    ws.logits.add_(model.b2[:, :, None])
    return ws.logits


def backward(
    model: BatchedMLP, xa_t: Tensor, ws: Workspace, grads: BatchedMLP, scale: float
) -> None:
    """Parameter gradients from ``ws.dlogit`` (d loss / d output, [K, C, rows]).

    The task head writes ``ws.dlogit`` (row weights and frozen models applied);
    ``xa_t`` is the batch transposed, [D+1, rows] contiguous; ``scale`` is the
    dropout scale 1/(1-p). dW2 is a batched GEMM for any width; dZ for one output
    (C = 1) is an elementwise product, for C > 1 a batched GEMM.
    """
    k, h = model.k, model.hidden
    dl = ws.dlogit
    torch.sum(dl, dim=2, out=grads.b2)
    a = ws.z.view(k, h, -1)
    # dZ = dout . w2 * scale where the unit is active and kept (a > 0), else 0.
    w2s = model.w2 * scale if scale != 1.0 else model.w2
    # dW2 = dout . a^T as a batched GEMV: one read of ``a``, where mul + sum took a
    # write and a re-read of [K, H, rows] (any width; docs/performance.md).
    torch.bmm(dl, a.transpose(1, 2), out=grads.w2)
    if model.width == 1:
        torch.mul(dl, w2s.view(k, h, 1), out=ws.t)
    else:
        torch.bmm(w2s.transpose(1, 2), dl, out=ws.t)
    torch.ops.aten.threshold_backward.grad_input(ws.t, a, 0, grad_input=ws.t)
    target = grads.w1.view(k * h, -1)
    g1 = gemm_nt(ws.t.view(k * h, -1), xa_t, out=target)
    if g1 is not target:  # oneDNN's fresh output (torch.mm returns ``out`` itself)
        grads.w1 = g1.view_as(grads.w1)
