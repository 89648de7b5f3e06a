"""Successive halving in the batched engine: all K models train rung by rung, and after
each rung only the survivors (:func:`lionsweep.sweep.halving.survivors`) go on.

Why a survivor's numbers are those of the same configuration trained alone, bit for
bit: every model sees the seed's batches and dropout masks (the generators are reset
to the rung's start for every chunk), no kernel mixes models, and every GEMM has a
fixed row count, so neither the other models nor the chunk a model sits in change its
numbers (the property :func:`lionsweep.train.engine.train_grid`'s chunking rests on). After a
rung, the survivors' whole state (weights, optimizer state, best-epoch copy, curves) is
gathered into new chunks of survivors only: a stopped model costs nothing more. A
stopped model's results are assembled from its state at its last rung, so they are
its solo run's truncated there (its curves NaN after ``stopped_epoch``).

Rung selection needs one host read per rung (the scores), the only ones in the loop.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from lionsweep.errors import LionSweepError
from lionsweep.optim import registry as optim
from lionsweep.results.stats import metric_info
from lionsweep.sweep.halving import Halving, survivors
from lionsweep.train.engine import TrainSettings, chunk_plan, start_chunk, train_epochs
from lionsweep.train.heads import Head, curve_columns
from lionsweep.train.model import DROPOUT, ORDER, BatchedMLP, generator
from lionsweep.train.trainer import Averaging, Buffers, ChunkState, Split, assemble, to_host

Chunk = tuple[ChunkState, Buffers]


def _take(parts: list[Tensor], idx: Tensor) -> Tensor:
    """Rows ``idx`` of the parts' concatenation along the model dimension."""
    whole = parts[0] if len(parts) == 1 else torch.cat(parts)
    return whole.index_select(0, idx.to(whole.device))


def _take_mlp(mlps: list[BatchedMLP], idx: Tensor) -> BatchedMLP:
    per_param = zip(*(m.params() for m in mlps), strict=True)
    return BatchedMLP(*(_take(list(ts), idx) for ts in per_param))


def gather(
    sts: list[ChunkState], idx: np.ndarray, hp: dict[str, Tensor], opt: optim.OptimizerSpec
) -> ChunkState:
    """The state of models ``idx`` (positions in the states' concatenation; ``hp``:
    their hyperparameters), every piece of it, as if they had trained together."""
    at = torch.as_tensor(idx, dtype=torch.int64)
    model = _take_mlp([s.model for s in sts], at)
    return ChunkState(
        model=model,
        grads=_take_mlp([s.grads for s in sts], at),
        scratch=_take_mlp([s.scratch for s in sts], at),
        states=[_take_mlp([s.states[i] for s in sts], at) for i in range(len(sts[0].states))],
        best=_take_mlp([s.best for s in sts], at),
        coefs=[
            opt.coefs(p, opt.step_hparams(hp), r)
            for p, r in zip(model.params(), model.ROLES, strict=True)
        ],
        alive=_take([s.alive for s in sts], at),
        best_score=_take([s.best_score for s in sts], at),
        best_epoch=_take([s.best_epoch for s in sts], at),
        diverged_epoch=_take([s.diverged_epoch for s in sts], at),
        curves={c: _take([s.curves[c] for s in sts], at) for c in sts[0].curves},
        step=sts[0].step,
        val_out=None if sts[0].val_out is None else _take([s.val_out for s in sts], at),
        eval_point=sts[0].eval_point,
        averaging=_gather_averaging(sts, at, model, hp),
    )


def _gather_averaging(
    sts: list[ChunkState], at: Tensor, model: BatchedMLP, hp: dict[str, Tensor]
) -> Averaging | None:
    """The survivors' weight EMA: each chunk's average (a chunk without one: its weights,
    which is what a model with decay 0 averages to), with the survivors' own decays."""
    averaging = Averaging.new(model, hp["ema_decay"])
    if averaging is not None:
        sources = [s.model if s.averaging is None else s.averaging.ema for s in sts]
        averaging.ema = _take_mlp(sources, at)
    return averaging


def rung_scores(
    sts: list[ChunkState], val: Split, head: Head, metric: str | None, epoch: int
) -> tuple[np.ndarray, np.ndarray]:
    """(score oriented higher-is-better, validation loss) of every model at ``epoch``:
    the stored curves, or ``metric`` (the dataset's primary metric, when it is not the
    head's) from the epoch's validation outputs."""
    loss_name, score_name = curve_columns(head.task)
    loss = torch.cat([st.curves[loss_name][:, epoch - 1] for st in sts])
    if metric is None or metric == head.primary:
        score = torch.cat([st.curves[score_name][:, epoch - 1] for st in sts])
    else:
        sign = 1.0 if metric_info(metric).higher else -1.0
        parts = []
        for st in sts:
            value = head.evaluate(st.val_out, val.y)[metric].to(torch.float64) * sign
            parts.append(value.masked_fill(~st.alive, math.nan))
        score = torch.cat(parts)
    return score.cpu().numpy(), loss.cpu().numpy()


class Rungs:
    """One halving run's fixed inputs, and how it cuts models into chunks."""

    def __init__(self, data, optimizer, hp, settings, head):
        self.data, self.optimizer, self.hp = data, optimizer, hp
        self.settings, self.head, self.opt = settings, head, optim.spec(optimizer)

    def buffers(self, st: ChunkState) -> Buffers:
        m, s = st.model, self.settings
        d1, dtype, dev = m.w1.shape[2], m.w2.dtype, m.w2.device
        return Buffers.new(s.batch_size, m.k, s.hidden, d1, self.head, dtype, dev)

    def regroup(self, sts: list[ChunkState], ids: np.ndarray, pick: np.ndarray) -> list[Chunk]:
        """Models ``pick`` (positions in ``sts``' concatenation, input positions
        ``ids[pick]``) in new chunks of the engine's plan for their number."""
        plan = chunk_plan(len(pick), self.data, self.settings, self.optimizer, self.head)
        out = []
        for sl in plan:
            st = gather(sts, pick[sl], self.hp_of(ids[pick[sl]]), self.opt)
            out.append((st, self.buffers(st)))
        return out

    def hp_of(self, ids: np.ndarray) -> dict[str, Tensor]:
        at = torch.as_tensor(ids, dtype=torch.int64)
        return {n: v.index_select(0, at) for n, v in self.hp.items()}

    def results(self, chunks: list[Chunk]) -> list[dict[str, np.ndarray]]:
        return [to_host(assemble(st, self.data, buf, self.head)) for st, buf in chunks]


def train_halving(
    data: dict[str, Split],
    optimizer: str,
    hp: dict[str, Tensor],
    seed: int,
    settings: TrainSettings,
    head: Head,
    halving: Halving,
    metric: str | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Train the K configurations of ``hp`` ([K] host tensors) with successive halving:
    :func:`lionsweep.train.engine.train_grid`'s results (input order) plus ``stopped_epoch``
    (the last epoch a stopped model trained; -1 for those that trained all epochs)."""
    if optim.spec(optimizer).extra_state is not None:
        raise LionSweepError(
            f"training.halving: {optimizer}'s extra state (SOAP's preconditioners) is not "
            f"carried across rungs; sweep {optimizer} without halving"
        )
    r = Rungs(data, optimizer, hp, settings, head)
    k = len(hp["lr"])
    ids = np.arange(k)  # input position of each model, in the chunks' order
    plan = chunk_plan(k, data, settings, optimizer, head, bool((hp["ema_decay"] > 0).any()))
    chunks = [start_chunk(data, optimizer, r.hp_of(ids[sl]), seed, settings, head) for sl in plan]
    gens = generator(seed, ORDER), generator(seed, DROPOUT)
    parts: list[tuple[np.ndarray, dict[str, np.ndarray], int]] = []
    done = 0
    for end in halving.rungs(settings.epochs):
        start = [g.get_state() for g in gens]
        for st, buf in chunks:  # every chunk sees the rung's batches and masks
            for g, state in zip(gens, start, strict=True):
                g.set_state(state)
            epochs = range(done + 1, end + 1)
            train_epochs(st, buf, data, r.opt, head, settings, gens, epochs, progress)
        done, sts = end, [st for st, _ in chunks]
        if len(sts) > 1 and end < settings.epochs:  # one concatenation; new chunks index it
            sts = [gather(sts, np.arange(len(ids)), r.hp_of(ids), r.opt)]
        if end == settings.epochs:
            parts += _parts(ids, [len(st.alive) for st in sts], r.results(chunks), -1)
            break
        keep = survivors(*rung_scores(sts, data["val"], head, metric, end), halving.eta)
        drop = np.setdiff1d(np.arange(len(ids)), keep)
        if len(drop):
            stopped = r.regroup(sts, ids, drop)
            sizes = [st.model.k for st, _ in stopped]
            parts += _parts(ids[drop], sizes, r.results(stopped), end)
        chunks = r.regroup(sts, ids, keep) if len(keep) else []
        ids = ids[keep]
        if not chunks:
            break
    return _merge(parts, k)


def _parts(ids: np.ndarray, sizes: list[int], results: list, stopped: int) -> list:
    """(input positions, results, stopped epoch) per chunk of consecutive ``ids``."""
    bounds = np.cumsum([0, *sizes])
    spans = zip(bounds[:-1], bounds[1:], results, strict=True)
    return [(ids[a:b], res, stopped) for a, b, res in spans]


def _merge(parts: list, k: int) -> dict[str, np.ndarray]:
    """The parts' results as arrays of length ``k`` in input order, with ``stopped_epoch``."""
    out: dict[str, np.ndarray] = {}
    stopped = np.full(k, -1, dtype=np.int64)
    for ids, res, epoch in parts:
        for key, val in res.items():
            if key not in out:
                out[key] = np.empty((k, *val.shape[1:]), dtype=val.dtype)
            out[key][ids] = val
        stopped[ids] = epoch
    out["stopped_epoch"] = stopped
    return out
