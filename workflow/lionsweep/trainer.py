"""One chunk of K models through training, in named parts (used by :mod:`lionsweep.engine`).

The parts: :class:`ChunkState` (parameters, gradients, optimizer state, alive mask,
best-epoch copy, curves), :func:`train_step` (one mini-batch), :func:`end_of_epoch`
(validation curve, best-weights tracking), :func:`freeze` (divergence) and
:func:`assemble` (the per-configuration results). The task head
(:mod:`lionsweep.heads`) and the optimizer step (:mod:`lionsweep.optim`) are the
two seams; nothing here knows which task or optimizer it runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lionsweep.heads import SPLITS, Head, curve_columns
from lionsweep.model import BatchedMLP, Workspace, backward, dropout_mask, forward
from lionsweep.optim import FROZEN_HPARAMS, OptimizerSpec


class Split:
    """One split on the device: X with a ones column appended, and the head's targets."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        name: str,
        head: Head,
        dtype: torch.dtype,
        dev: torch.device,
    ):
        xt = torch.as_tensor(np.asarray(x, dtype=np.float32)).to(dtype)
        self.xa = torch.cat([xt, torch.ones(len(xt), 1, dtype=dtype)], dim=1).to(dev)
        y_eval, y_train = head.encode(y, name, dtype)
        self.y, self.yt = y_eval.to(dev), y_train.to(dev)  # metrics: [n]; training: [W, n]
        self.n = len(xt)


@dataclass
class Buffers:
    """Fixed-shape per-step inputs (partial batches are zero-padded) and the workspace."""

    ws: Workspace
    x: Tensor  # [B, D+1]
    xt: Tensor  # [D+1, B]: x transposed, contiguous (the weight-gradient GEMM's operand)
    y: Tensor  # [W, B]
    w: Tensor  # [B] row weights: 1/n real rows, 0 padding
    keep: Tensor  # [H, B] dropout mask * 1/(1-p), transposed

    @classmethod
    def new(
        cls, b: int, k: int, h: int, d1: int, head: Head, dtype: torch.dtype, dev: torch.device
    ) -> Buffers:
        def zeros(*shape: int) -> Tensor:
            return torch.zeros(*shape, dtype=dtype, device=dev)

        ws = Workspace(b, k, h, dtype, dev, head.width)
        w = head.target_width
        return cls(ws, zeros(b, d1), zeros(d1, b), zeros(w, b), zeros(b), zeros(h, b))


@dataclass
class ChunkState:
    """Everything that changes while a chunk trains."""

    model: BatchedMLP
    grads: BatchedMLP
    scratch: BatchedMLP
    states: list[BatchedMLP]  # one per optimizer state tensor
    best: BatchedMLP  # weights at each model's best epoch so far
    hp: dict[str, Tensor]  # effective hyperparameters (frozen models: lr = wd = 0)
    coefs: list  # the optimizer's per-parameter constants for ``hp``
    alive: Tensor  # [K] bool
    best_score: Tensor  # [K] float64, the head's primary validation metric
    curves: dict[str, np.ndarray]  # loss / primary curve name -> [K, epochs] float32
    diverged_epoch: np.ndarray
    best_epoch: np.ndarray
    step: int = 0
    any_frozen: bool = False
    val_out: Tensor | None = None  # the last validation outputs (reused by assemble)


def new_state(
    model: BatchedMLP, opt: OptimizerSpec, hp: dict[str, Tensor], head: Head, epochs: int
) -> ChunkState:
    k, dev = model.k, model.w2.device
    hp = {n: v.clone() for n, v in hp.items()}
    curves = {c: np.full((k, epochs), np.nan, dtype=np.float32) for c in curve_columns(head.task)}
    return ChunkState(
        model=model,
        grads=model.zeros_like(),
        scratch=model.zeros_like(),
        states=[model.zeros_like() for _ in opt.state],
        best=model.clone(),
        hp=hp,
        coefs=[opt.coefs(p, hp, r) for p, r in zip(model.params(), model.ROLES, strict=True)],
        alive=torch.ones(k, dtype=torch.bool, device=dev),
        best_score=torch.full((k,), -math.inf, dtype=torch.float64, device=dev),
        curves=curves,
        diverged_epoch=np.full(k, -1, dtype=np.int64),
        best_epoch=np.zeros(k, dtype=np.int64),
    )


def freeze(st: ChunkState, bad: Tensor, epoch: int, opt: OptimizerSpec) -> None:
    """Stop models ``bad`` ([K] bool) for good: zero their optimizer state and their
    lr and weight decay (so every registry step leaves them unchanged), record the
    epoch. The others are untouched."""
    idx = bad.nonzero().flatten()
    st.alive[idx] = False
    for name in FROZEN_HPARAMS:
        st.hp[name][idx] = 0.0
    st.diverged_epoch[idx.cpu().numpy()] = epoch
    for state in st.states:
        for t in state.params():
            t.index_fill_(0, idx, 0.0)
    st.any_frozen = True
    params = zip(st.model.params(), st.model.ROLES, strict=True)
    st.coefs = [opt.coefs(p, st.hp, r) for p, r in params]


def _check(st: ChunkState, finite: Tensor, epoch: int, opt: OptimizerSpec) -> None:
    """Freeze the alive models whose ``finite`` flag ([K] bool) is False."""
    bad = ~finite & st.alive
    if bool(bad.any()):
        freeze(st, bad, epoch, opt)


def epoch_keep(n: int, buf: Buffers, p: float, gen: torch.Generator) -> Tensor | None:
    """One epoch's dropout masks times 1/(1-p), transposed: [H, n] on the device.

    One draw of ``n`` rows gives row for row the masks the per-step draws gave
    (:func:`dropout_mask` consumes the generator's uniforms element by element), so
    the numbers stay common random numbers while the hot loop does no host-side
    draw and no host-to-device copy per step."""
    mask = dropout_mask(n, buf.keep.shape[0], p, gen)
    if mask is None:
        return None
    return mask.t().to(device=buf.keep.device, dtype=buf.keep.dtype) * (1.0 / (1.0 - p))


def load_batch(buf: Buffers, train: Split, idx: Tensor, keep: Tensor | None) -> int:
    """Copy one mini-batch (rows ``idx``) and its dropout columns ``keep`` ([H, nb],
    from :func:`epoch_keep`) into the buffers."""
    nb, b = len(idx), buf.x.shape[0]
    idx = idx.to(buf.x.device)
    torch.index_select(train.xa, 0, idx, out=buf.x[:nb])
    buf.y[:, :nb] = train.yt.index_select(1, idx)
    buf.w[:nb] = 1.0 / nb
    if nb < b:  # zero-pad: fixed GEMM shapes, padded rows carry no gradient
        buf.x[nb:] = 0
        buf.y[:, nb:] = 0
        buf.w[nb:] = 0
    buf.xt.copy_(buf.x.t())
    if keep is not None:
        buf.keep[:, :nb] = keep
        if nb < b:
            buf.keep[:, nb:] = 0
    return nb


def train_step(
    st: ChunkState, buf: Buffers, nb: int, head: Head, opt: OptimizerSpec, p: float, epoch: int
) -> None:
    """Forward, freeze what overflowed, head gradient, backward, optimizer step."""
    scale = 1.0 / (1.0 - p) if p > 0 else 1.0
    out = forward(st.model, buf.x, buf.ws, buf.keep if p > 0 else None)
    live = out[:, :, :nb]
    if not bool(torch.isfinite(live).all()):  # one reduction in the common case
        _check(st, torch.isfinite(live).flatten(1).all(dim=1), epoch, opt)
    head.loss_grad(out, buf.y, buf.w, buf.ws.dlogit)
    frozen = ~st.alive if st.any_frozen else None
    if frozen is not None:
        buf.ws.dlogit.masked_fill_(frozen[:, None, None], 0.0)
    backward(st.model, buf.xt, buf.ws, st.grads, scale)
    if frozen is not None:  # NaN weights can still leak NaN into their grads
        fidx = frozen.nonzero().flatten()
        for t in st.grads.params():
            t.index_fill_(0, fidx, 0.0)
    st.step += 1
    params, grads, scratch = st.model.params(), st.grads.params(), st.scratch.params()
    states = [s.params() for s in st.states]
    for i, (p_, g_) in enumerate(zip(params, grads, strict=True)):
        opt.update(p_, g_, [s[i] for s in states], st.coefs[i], st.step, scratch[i])


def outputs(
    model: BatchedMLP, data: Split, ws: Workspace, xbuf: Tensor, out: Tensor | None = None
) -> Tensor:
    """Eval-mode outputs [K, C, n], in fixed-size (zero-padded) row blocks.

    ``out`` (that shape) is reused when given: the per-epoch validation pass
    would otherwise allocate a fresh multi-MB tensor every epoch."""
    shape = (model.k, model.width, data.n)
    if out is None or out.shape != shape:
        out = torch.empty(shape, dtype=model.w2.dtype, device=model.w2.device)
    rows = ws.rows
    for start in range(0, data.n, rows):
        chunk = data.xa[start : start + rows]
        m = len(chunk)
        if m < rows:
            xbuf[:m] = chunk
            xbuf[m:] = 0
            chunk = xbuf
        out[:, :, start : start + m] = forward(model, chunk, ws, None)[:, :, :m]
    return out


def end_of_epoch(
    st: ChunkState, val: Split, buf: Buffers, head: Head, opt: OptimizerSpec, epoch: int
) -> None:
    """Check the weights, store the validation curves, copy improved models' weights."""
    _check(st, st.model.finite(), epoch, opt)
    out = st.val_out = outputs(st.model, val, buf.ws, buf.x, st.val_out)
    loss, score = head.curve(out, val.y)
    _check(st, torch.isfinite(out).flatten(1).all(dim=1), epoch, opt)
    loss = loss.masked_fill(~st.alive, math.nan)
    score = score.masked_fill(~st.alive, math.nan)
    loss_name, score_name = curve_columns(head.task)
    st.curves[loss_name][:, epoch - 1] = loss.cpu().numpy()
    st.curves[score_name][:, epoch - 1] = score.cpu().numpy()
    improved = st.alive & (score > st.best_score)
    if bool(improved.any()):
        st.best_score = torch.where(improved, score, st.best_score)
        st.best_epoch[improved.cpu().numpy()] = epoch
        iidx = improved.nonzero().flatten()
        for dst, src in zip(st.best.params(), st.model.params(), strict=True):
            dst.index_copy_(0, iidx, src.index_select(0, iidx))


def _best_outputs(
    st: ChunkState, final: Tensor, data: Split, buf: Buffers, stale: Tensor
) -> Tensor:
    """Best-epoch outputs, written over ``final`` (the last weights' outputs).

    Only the ``stale`` models (indices whose best epoch is not the last) are
    recomputed, as a sub-batch: a model's GEMM rows do not depend on the other
    models (the same property that makes chunking invisible), so the others'
    best outputs are exactly their final ones."""
    if len(stale) == st.model.k:
        return outputs(st.best, data, buf.ws, buf.x, final)
    sub = BatchedMLP(*(t.index_select(0, stale) for t in st.best.params()))
    x = buf.x
    ws = Workspace(buf.ws.rows, len(stale), sub.hidden, x.dtype, x.device, sub.width)
    return final.index_copy_(0, stale, outputs(sub, data, ws, x))


def assemble(
    st: ChunkState, data: dict[str, Split], buf: Buffers, head: Head
) -> dict[str, np.ndarray]:
    """Per-configuration results in :func:`lionsweep.heads.result_columns` order.

    Skips the evaluations whose results are already known, with identical numbers:
    the final validation outputs are the last epoch's curve pass (``st.val_out``),
    and a model whose best epoch is the last has best weights == final weights, so
    its best metrics are its final ones (only the other models are re-evaluated)."""
    dead = (~st.alive).cpu().numpy()
    last = next(iter(st.curves.values())).shape[1]
    stale = (st.alive & torch.as_tensor(st.best_epoch != last, device=st.alive.device)).nonzero()
    stale = stale.flatten()
    res: dict[str, dict[str, Tensor]] = {}
    for split in SPLITS:
        reuse = split == "val" and st.val_out is not None
        final = st.val_out if reuse else outputs(st.model, data[split], buf.ws, buf.x)
        res[split] = head.evaluate(final, data[split].y)
        if len(stale) == 0:
            res[f"best_{split}"] = res[split]
        else:  # ``final`` is overwritten (val: after its last use)
            best = _best_outputs(st, final, data[split], buf, stale)
            res[f"best_{split}"] = head.evaluate(best, data[split].y)
    st.val_out = None
    out: dict[str, np.ndarray] = {}
    for prefix in ("", "best_"):
        for split in SPLITS:
            for metric in head.metrics:
                arr = res[prefix + split][metric].cpu().numpy().astype(np.float64)
                arr[dead] = np.nan
                out[f"{prefix}{split}_{metric}"] = arr
    best_epoch = st.best_epoch.copy()
    best_epoch[dead] = -1
    out["best_epoch"] = best_epoch
    out.update(st.curves)
    out["diverged"] = dead.astype(bool)
    out["diverged_epoch"] = st.diverged_epoch
    return out
