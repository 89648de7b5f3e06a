"""One chunk of K models through training, in named parts (used by :mod:`lionsweep.train.engine`).

The parts: :class:`ChunkState` (parameters, gradients, optimizer state, alive mask,
best-epoch copy, curves, weight EMA), :func:`train_step` (one mini-batch), :func:`end_of_epoch`
(validation curve, best-weights tracking, divergence epochs), :func:`assemble` (the
per-configuration results) and :func:`to_host`. The task head (:mod:`lionsweep.train.heads`)
and the optimizer step (:mod:`lionsweep.optim.registry`) are the two seams; nothing here knows
which task or optimizer it runs.

Nothing between a chunk's start and its :func:`assemble` reads a device value on the
host (divergence, best epochs and curves are masks and tensors on the device), so on
a GPU the host queues work without ever waiting for it; ``tests/test_hostreads.py``
counts the reads and the simulated-CUDA tier (``lionsweep gpu-check --simulate``)
proves the loop device-clean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lionsweep.optim.kernels import _bcast
from lionsweep.optim.registry import EvalPoint, OptimizerSpec
from lionsweep.train.heads import LOSS_CURVE, SPLITS, Head, curve_columns
from lionsweep.train.model import BatchedMLP, Workspace, backward, dropout_mask, forward


class Split:
    """One split on the device: X [n, D] in the training dtype and the head's targets.

    X is not copied when it already is what training needs (float32 on the CPU: the
    tensor shares the NumPy array's memory); the first layer's bias column of ones is
    appended per batch in the fixed-size buffers, never to the whole split."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        name: str,
        head: Head,
        dtype: torch.dtype,
        dev: torch.device,
    ):
        self.x = torch.as_tensor(np.asarray(x, dtype=np.float32)).to(dtype).to(dev)
        y_eval, y_train = head.encode(y, name, dtype)
        self.y, self.yt = y_eval.to(dev), y_train.to(dev)  # metrics: [n]; training: [W, n]
        self.n = len(self.x)


@dataclass
class Buffers:
    """Fixed-shape per-step inputs (partial batches are zero-padded) and the workspace."""

    ws: Workspace
    x: Tensor  # [B, D+1]: the batch's rows, then the bias column (1; padding rows 0)
    rows: Tensor  # [B, D]: the rows gathered from the split (contiguous)
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
        return cls(
            ws, zeros(b, d1), zeros(b, d1 - 1), zeros(d1, b), zeros(w, b), zeros(b), zeros(h, b)
        )


@dataclass
class Averaging:
    """The weight EMA of a chunk where some model has ``ema_decay`` > 0 (a chunk where
    none has gets none: no copy, no kernel). As torch's ``AveragedModel`` with
    ``get_ema_multi_avg_fn(decay)``, updated after every step: the first update copies
    the weights, later ones ``ema.lerp_(w, 1 - decay)``. A model with decay 0 has weight
    1, and ``lerp`` with weight 1 is exactly ``w``: it evaluates its own weights."""

    ema: BatchedMLP
    weight: list[Tensor]  # per parameter: 1 - decay per model, broadcast, on the device

    @classmethod
    def new(cls, model: BatchedMLP, decay: Tensor) -> Averaging | None:
        """``decay``: [K] on the host (whether any model averages is decided there)."""
        if not bool((decay > 0).any()):
            return None
        one_minus = 1.0 - decay.to(torch.float64)  # the reference's Python float
        return cls(model.clone(), [_bcast(one_minus, p) for p in model.params()])

    def update(self, current: BatchedMLP, step: int) -> None:
        for avg, w, weight in zip(self.ema.params(), current.params(), self.weight, strict=True):
            if step == 1:
                avg.copy_(w)
            else:
                avg.lerp_(w, weight)


@dataclass
class ChunkState:
    """Everything that changes while a chunk trains, all of it on the device: the loop
    decides nothing on the host, so it never waits for the device (no host read)."""

    model: BatchedMLP
    grads: BatchedMLP
    scratch: BatchedMLP
    states: list[BatchedMLP]  # one per optimizer state tensor
    best: BatchedMLP  # weights at each model's best epoch so far
    coefs: list  # the optimizer's per-parameter constants, computed once per chunk
    alive: Tensor  # [K] bool: False from the step a model's numbers become non-finite
    best_score: Tensor  # [K] float64, the head's primary validation metric
    best_epoch: Tensor  # [K] int64, 0 until a model first improves
    diverged_epoch: Tensor  # [K] int64, -1 = never
    curves: dict[str, Tensor]  # loss / primary curve name -> [K, epochs] float64
    step: int = 0
    val_out: Tensor | None = None  # the last validation outputs (reused by assemble)
    extra: list | None = None  # per parameter, the optimizer's extra_state (SOAP's)
    eval_point: EvalPoint | None = None  # the optimizer's, where it evaluates elsewhere
    averaging: Averaging | None = None  # the weight EMA, where any model has one


def eval_point(st: ChunkState) -> BatchedMLP:
    """The optimizer's point to evaluate: its parameters, or (Schedule-Free) the point
    its reference's ``eval()`` sets, written into the scratch copy (free between steps)."""
    if st.eval_point is None:
        return st.model
    states = [s.params() for s in st.states]
    params = zip(st.model.params(), st.scratch.params(), strict=True)
    return BatchedMLP(
        *(
            st.eval_point(p, [s[i] for s in states], st.coefs[i], out)
            for i, (p, out) in enumerate(params)
        )
    )


def eval_weights(st: ChunkState) -> BatchedMLP:
    """The weights every evaluation uses (curves, best epoch, final metrics): the EMA
    where the chunk has one (models without: their own, exactly), else the eval point."""
    return st.averaging.ema if st.averaging is not None else eval_point(st)


def new_state(
    model: BatchedMLP, opt: OptimizerSpec, hp: dict[str, Tensor], head: Head, epochs: int
) -> ChunkState:
    """``hp``: [K] hyperparameters, best on the host (which of them are zero is decided
    there, once: the kernels' coefficients move to the device)."""
    k, dev = model.k, model.w2.device

    def full(shape: tuple[int, ...], value: float, dtype: torch.dtype) -> Tensor:
        return torch.full(shape, value, dtype=dtype, device=dev)

    steps = opt.step_hparams(hp)
    decay = hp.get("ema_decay", torch.tensor(opt.averaging["ema_decay"].default).expand(k))
    return ChunkState(
        model=model,
        grads=model.zeros_like(),
        scratch=model.zeros_like(),
        states=[model.zeros_like() for _ in opt.state],
        best=model.clone(),
        coefs=[opt.coefs(p, steps, r) for p, r in zip(model.params(), model.ROLES, strict=True)],
        alive=torch.ones(k, dtype=torch.bool, device=dev),
        best_score=full((k,), -math.inf, torch.float64),
        best_epoch=full((k,), 0, torch.int64),
        diverged_epoch=full((k,), -1, torch.int64),
        curves={c: full((k, epochs), math.nan, torch.float64) for c in curve_columns(head.task)},
        extra=None
        if opt.extra_state is None
        else [opt.extra_state(p, r) for p, r in zip(model.params(), model.ROLES, strict=True)],
        eval_point=opt.eval_point,
        averaging=Averaging.new(model, decay),
    )


# Dropout masks are drawn per block of whole batches of at most this many elements:
# [H, n] for a whole epoch was the largest tensor of a job on large datasets.
KEEP_BLOCK_ELEMENTS = 2**21


class KeepStream:
    """One epoch's dropout masks times 1/(1-p), transposed ([H, rows] on the device),
    handed out batch by batch, drawn in blocks of whole batches.

    A block of ``m`` rows gives row for row the masks one draw of the epoch's ``n`` rows
    gave (:func:`dropout_mask` consumes the generator's uniforms element by element),
    so the numbers stay common random numbers, while the hot loop does a host-side draw
    and a host-to-device copy once per block, not per step, and memory stays bounded."""

    def __init__(self, n: int, b: int, buf: Buffers, p: float, gen: torch.Generator):
        h = buf.keep.shape[0]
        self.left, self.p, self.gen, self.buf = n, p, gen, buf
        self.block_rows = b * max(1, KEEP_BLOCK_ELEMENTS // (b * h))
        self.block: Tensor | None = None
        self.start = 0

    def take(self, nb: int) -> Tensor | None:
        """The next ``nb`` rows' masks ([H, nb]), None without dropout."""
        if self.p <= 0:
            return None
        if self.block is None or self.start >= self.block.shape[1]:
            rows = min(self.block_rows, self.left)
            mask = dropout_mask(rows, self.buf.keep.shape[0], self.p, self.gen)
            keep = self.buf.keep
            self.block = mask.t().to(device=keep.device, dtype=keep.dtype) * (1.0 / (1.0 - self.p))
            self.left -= rows
            self.start = 0
        cols = self.block[:, self.start : self.start + nb]
        self.start += nb
        return cols


def load_batch(buf: Buffers, train: Split, idx: Tensor, keep: Tensor | None) -> int:
    """Copy one mini-batch (rows ``idx``, then the bias column of ones) and its dropout
    columns ``keep`` ([H, nb], from :class:`KeepStream`) into the buffers."""
    nb, b = len(idx), buf.x.shape[0]
    idx = idx.to(buf.x.device)
    torch.index_select(train.x, 0, idx, out=buf.rows[:nb])
    buf.x[:nb, :-1] = buf.rows[:nb]
    buf.x[:nb, -1] = 1
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


def train_step(st: ChunkState, buf: Buffers, nb: int, head: Head, opt: OptimizerSpec, p: float):
    """Forward, divergence mask, head gradient, backward, optimizer step.

    A model whose outputs on this batch are not all finite is marked dead on the
    device; it is not frozen: its numbers are masked out of every result, and models
    never mix in any kernel, so the others are unaffected (no host read to find it)."""
    scale = 1.0 / (1.0 - p) if p > 0 else 1.0
    out = forward(st.model, buf.x, buf.ws, buf.keep if p > 0 else None)
    st.alive.logical_and_(torch.isfinite(out[:, :, :nb]).flatten(1).all(dim=1))
    head.loss_grad(out, buf.y, buf.w, buf.ws.dlogit)
    backward(st.model, buf.xt, buf.ws, st.grads, scale)
    st.step += 1
    params, grads, scratch = st.model.params(), st.grads.params(), st.scratch.params()
    states = [s.params() for s in st.states] + ([st.extra] if st.extra is not None else [])
    for i, (p_, g_) in enumerate(zip(params, grads, strict=True)):
        opt.update(p_, g_, [s[i] for s in states], st.coefs[i], st.step, scratch[i])
    if st.averaging is not None:
        st.averaging.update(eval_point(st), st.step)


def predict(
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
        chunk = data.x[start : start + rows]
        m = len(chunk)
        xbuf[:m, :-1] = chunk  # + the bias column, as in training (see Split)
        xbuf[:m, -1] = 1
        if m < rows:
            xbuf[m:] = 0
        out[:, :, start : start + m] = forward(model, xbuf, ws, None)[:, :, :m]
    return out


def _per_model(mask: Tensor, like: Tensor) -> Tensor:
    """[K] mask shaped to broadcast over a stacked parameter [K, ...]."""
    return mask.view(-1, *([1] * (like.dim() - 1)))


def end_of_epoch(st: ChunkState, val: Split, buf: Buffers, head: Head, epoch: int) -> None:
    """Check the weights, store the validation curves, copy improved models' weights:
    all with masks on the device (``torch.where`` copies exactly what index_copy did)."""
    st.alive.logical_and_(st.model.finite())
    weights = eval_weights(st)
    out = st.val_out = predict(weights, val, buf.ws, buf.x, st.val_out)
    loss, score = head.curve(out, val.y)
    st.alive.logical_and_(torch.isfinite(out).flatten(1).all(dim=1))
    dead = ~st.alive
    st.diverged_epoch.masked_fill_(dead & (st.diverged_epoch < 0), epoch)
    loss_name, score_name = curve_columns(head.task)
    st.curves[loss_name][:, epoch - 1] = loss.masked_fill(dead, math.nan)
    st.curves[score_name][:, epoch - 1] = score.masked_fill(dead, math.nan)
    improved = st.alive & (score > st.best_score)
    st.best_score = torch.where(improved, score, st.best_score)
    st.best_epoch.masked_fill_(improved, epoch)
    for dst, src in zip(st.best.params(), weights.params(), strict=True):
        torch.where(_per_model(improved, dst), src, dst, out=dst)


def _best_predictions(
    st: ChunkState, final: Tensor, data: Split, buf: Buffers, stale: Tensor
) -> Tensor:
    """Best-epoch outputs, written over ``final`` (the last weights' outputs).

    Only the ``stale`` models (indices whose best epoch is not the last) are
    recomputed, as a sub-batch: a model's GEMM rows do not depend on the other
    models (the same property that makes chunking invisible), so the others'
    best outputs are exactly their final ones."""
    if len(stale) == st.model.k:
        return predict(st.best, data, buf.ws, buf.x, final)
    sub = BatchedMLP(*(t.index_select(0, stale) for t in st.best.params()))
    x = buf.x
    ws = Workspace(buf.ws.rows, len(stale), sub.hidden, x.dtype, x.device, sub.width)
    return final.index_copy_(0, stale, predict(sub, data, ws, x))


def assemble(st: ChunkState, data: dict[str, Split], buf: Buffers, head: Head) -> dict[str, Tensor]:
    """Per-configuration results in :func:`lionsweep.train.heads.result_columns` order, on the
    device (:func:`to_host` copies them over).

    Skips the evaluations whose results are already known, with identical numbers:
    the final validation outputs are the last epoch's curve pass (``st.val_out``),
    and a model whose best epoch is the last has best weights == final weights, so
    its best metrics are its final ones (only the other models are re-evaluated;
    finding them is this chunk's one index read, besides the metrics' label counts)."""
    last = st.curves[LOSS_CURVE].shape[1]
    stale = (st.alive & (st.best_epoch != last)).nonzero().flatten()
    res: dict[str, dict[str, Tensor]] = {}
    weights = eval_weights(st)
    for split in SPLITS:
        reuse = split == "val" and st.val_out is not None
        final = st.val_out if reuse else predict(weights, data[split], buf.ws, buf.x)
        res[split] = head.evaluate(final, data[split].y)
        if len(stale) == 0:
            res[f"best_{split}"] = res[split]
        else:  # ``final`` is overwritten (val: after its last use)
            best = _best_predictions(st, final, data[split], buf, stale)
            res[f"best_{split}"] = head.evaluate(best, data[split].y)
    st.val_out = None
    dead = ~st.alive
    out: dict[str, Tensor] = {}
    for prefix in ("", "best_"):
        for split in SPLITS:
            for metric in head.metrics:
                value = res[prefix + split][metric].to(torch.float64)
                out[f"{prefix}{split}_{metric}"] = value.masked_fill(dead, math.nan)
    out["best_epoch"] = st.best_epoch.masked_fill(dead, -1)
    out.update({name: curve.to(torch.float32) for name, curve in st.curves.items()})
    out["diverged"] = dead
    out["diverged_epoch"] = st.diverged_epoch
    return out


def to_host(results: dict[str, Tensor]) -> dict[str, np.ndarray]:
    """The results as NumPy arrays: the chunk's device-to-host copies, one per column,
    after its last epoch (the one place where training waits for the device)."""
    return {key: value.cpu().numpy() for key, value in results.items()}
