"""Train K configurations of the MLP in one pass: the sweep's training engine.

Why it is fast: all K models share each mini-batch, so the first layer is one GEMM
with K*H rows each way (oneDNN/AVX-512 on CPU, see :mod:`lionsweep.model`),
forward/backward are hand-written with preallocated buffers and no input gradient,
and the optimizer updates all K models with per-model hyperparameters in a handful
of in-place kernels (:mod:`lionsweep.optim`). Best-epoch metrics come from a copy
of each model's weights taken when its validation accuracy improves (one indexed
copy per epoch) and evaluated once at the end, rather than evaluating train/test
every epoch.

Why results do not depend on K, chunking or order (common random numbers): the
initial weights, the batch order and the dropout masks are drawn from generators
seeded by ``seed`` alone (one model's init is copied to all K; one [B, H] dropout
mask per step is shared by all K), and every GEMM has the same fixed shape for
any K, so on CPU a configuration trains to the same numbers alone or among 5,000.

Divergence is a result: a model whose logits or weights become non-finite is
frozen (grads, optimizer state and lr zeroed), flagged with its epoch and gets NaN
metrics; the other models are unaffected.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from lionsweep.errors import LionSweepError
from lionsweep.metrics import METRICS, accuracy, binary_metrics, logloss
from lionsweep.model import (
    DROPOUT,
    ORDER,
    BatchedMLP,
    Workspace,
    backward,
    dropout_mask,
    epoch_batches,
    forward,
    generator,
    init_single,
)
from lionsweep.optim import adamw_step, lion_coefs, lion_update

SPLITS = ("train", "val", "test")
OPTIMIZERS = ("lion", "adamw")
REQUIRED_HPARAMS = {
    "lion": ("lr", "beta1", "beta2", "weight_decay"),
    "adamw": ("lr", "beta1", "beta2", "weight_decay", "eps"),
}
# Chunks are also capped for speed: a step touches ~(optimizer copies x params +
# 2 x batch x hidden) values per model, and keeping that working set within the
# last-level cache beat one big chunk by ~30% (K=250 vs 1000 on Spambase, 2-core
# EPYC with 32 MiB L3); MIN_CHUNK keeps the per-step Python overhead amortised.
CACHE_BYTES = 32 * 2**20
MIN_CHUNK, MAX_CHUNK = 128, 2048


@dataclass(frozen=True)
class TrainSettings:
    """Fixed model/training settings shared by every configuration of a sweep."""

    hidden: int = 64
    dropout: float = 0.2
    epochs: int = 20
    batch_size: int = 64
    dtype: str = "float32"
    device: str = "auto"  # auto: cuda if available else cpu
    memory_budget_mb: int = 2048
    threads: int | None = None  # torch.set_num_threads when given


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def bytes_per_model(
    n_max: int, d: int, settings: TrainSettings, optimizer: str, rows: int | None = None
) -> int:
    """Estimated peak bytes one configuration needs (params, state, buffers, metrics)."""
    elem = torch.empty(0, dtype=getattr(torch, settings.dtype)).element_size()
    h = settings.hidden
    n_params = (d + 1) * h + h + 1
    # model, grads, optimizer scratch, best-epoch copy, + 1 (Lion) or 2 (AdamW) moments,
    # + 1 transient: oneDNN returns fresh GEMM outputs (grads, activations) each step.
    copies = 6 if optimizer == "lion" else 7
    rows = rows or settings.batch_size
    ws = Workspace.elements_per_model(rows, h) + rows * h
    # eval logits in dtype plus ~10 float64/int64 [n] temporaries in the metrics
    return elem * (copies * n_params + ws + n_max) + 80 * n_max


def step_bytes_per_model(d: int, settings: TrainSettings, optimizer: str) -> int:
    """Bytes one model touches per training step (its cache footprint)."""
    elem = torch.empty(0, dtype=getattr(torch, settings.dtype)).element_size()
    h = settings.hidden
    copies = 4 if optimizer == "lion" else 5  # params, grads, scratch, moment(s)
    return elem * (copies * ((d + 1) * h + h + 1) + 2 * settings.batch_size * h)


def plan_chunks(k: int, per_model: int, budget_mb: int, step_bytes: int = 0) -> list[slice]:
    """Split K configurations into equal-ish contiguous chunks.

    A chunk fits ``budget_mb`` (hard limit) and, where possible, the cache (speed).
    The split never changes results (common random numbers), only speed and memory.
    """
    cache_fit = CACHE_BYTES // step_bytes if step_bytes else MAX_CHUNK
    cap = min(MAX_CHUNK, max(MIN_CHUNK, cache_fit))
    fit = max(1, min(cap, (budget_mb * 2**20) // max(per_model, 1)))
    n_chunks = max(1, math.ceil(k / fit))
    size = math.ceil(k / n_chunks)
    return [slice(i, min(i + size, k)) for i in range(0, k, size)]


def _check_inputs(
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    optimizer: str,
    hparams: dict[str, np.ndarray],
) -> int:
    if optimizer not in OPTIMIZERS:
        raise LionSweepError(f"unknown optimizer {optimizer!r}; expected one of {OPTIMIZERS}")
    missing = [s for s in SPLITS if s not in splits]
    if missing:
        raise LionSweepError(f"splits lack {missing}")
    d = splits["train"][0].shape[1]
    for s in SPLITS:
        x, y = splits[s]
        if x.ndim != 2 or x.shape[1] != d or y.shape != (x.shape[0],):
            raise LionSweepError(f"split {s!r}: X {x.shape} / y {y.shape} do not match")
    need = REQUIRED_HPARAMS[optimizer]
    absent = [h for h in need if h not in hparams]
    if absent:
        raise LionSweepError(f"hparams lack {absent} for {optimizer}")
    lengths = {len(np.atleast_1d(hparams[h])) for h in need}
    if len(lengths) != 1:
        raise LionSweepError(f"hparams arrays differ in length: {sorted(lengths)}")
    return lengths.pop()


class _Data:
    """One split on the device: X with a ones column appended, labels as float and int."""

    def __init__(self, x: np.ndarray, y: np.ndarray, dtype: torch.dtype, dev: torch.device):
        xt = torch.as_tensor(np.asarray(x, dtype=np.float32)).to(dtype)
        self.xa = torch.cat([xt, torch.ones(len(xt), 1, dtype=dtype)], dim=1).to(dev)
        self.y = torch.as_tensor(np.asarray(y)).to(torch.int64).to(dev)
        self.yf = self.y.to(dtype)
        self.n = len(xt)


def _logits(model: BatchedMLP, data: _Data, ws: Workspace, xbuf: Tensor) -> Tensor:
    """Eval-mode logits [n, K] (a transposed view), in fixed-size (zero-padded) row blocks."""
    out = torch.empty(model.k, data.n, dtype=model.w2.dtype, device=model.w2.device)
    rows = ws.rows
    for start in range(0, data.n, rows):
        chunk = data.xa[start : start + rows]
        m = len(chunk)
        if m < rows:
            xbuf[:m] = chunk
            xbuf[m:] = 0
            chunk = xbuf
        out[:, start : start + m] = forward(model, chunk, ws, None)[:, :m]
    return out.t()


def device_data(
    splits: dict[str, tuple[np.ndarray, np.ndarray]], settings: TrainSettings
) -> dict[str, _Data]:
    """The three splits as device tensors in the training dtype."""
    dev = resolve_device(settings.device)
    dtype = getattr(torch, settings.dtype)
    return {s: _Data(*splits[s], dtype, dev) for s in SPLITS}


def train_chunk(
    data: dict[str, _Data],
    optimizer: str,
    hp: dict[str, Tensor],
    seed: int,
    settings: TrainSettings,
    progress: bool,
) -> tuple[dict[str, np.ndarray], BatchedMLP]:
    """Train one chunk of k configurations: (per-configuration results, final weights)."""
    train = data["train"]
    dtype, dev = train.xa.dtype, train.xa.device
    k, h, b, epochs = len(hp["lr"]), settings.hidden, settings.batch_size, settings.epochs
    d1 = train.xa.shape[1]
    p = float(settings.dropout)
    scale = 1.0 / (1.0 - p) if p > 0 else 1.0

    model = BatchedMLP.from_single(init_single(d1 - 1, h, seed), k, dtype, dev)
    grads, scratch, exp_avg = model.zeros_like(), model.zeros_like(), model.zeros_like()
    exp_avg_sq = model.zeros_like() if optimizer == "adamw" else None
    best = model.clone()
    ws = Workspace(b, k, h, dtype, dev)
    xbuf = torch.zeros(b, d1, dtype=dtype, device=dev)
    ybuf = torch.zeros(b, dtype=dtype, device=dev)
    wbuf = torch.zeros(b, dtype=dtype, device=dev)
    keep = torch.zeros(h, b, dtype=dtype, device=dev)  # dropout mask, transposed

    lr_eff = hp["lr"].clone()
    alive = torch.ones(k, dtype=torch.bool, device=dev)
    any_frozen = False
    diverged_epoch = np.full(k, -1, dtype=np.int64)
    best_acc = torch.full((k,), -math.inf, dtype=torch.float64, device=dev)
    best_epoch = np.zeros(k, dtype=np.int64)
    curve_loss = np.full((k, epochs), np.nan, dtype=np.float32)
    curve_acc = np.full((k, epochs), np.nan, dtype=np.float32)
    states = [exp_avg] + ([exp_avg_sq] if exp_avg_sq is not None else [])

    def coefs() -> list:
        """Lion's broadcast coefficients; recomputed only when lr_eff changes (freeze)."""
        return [
            lion_coefs(
                p,
                lr=lr_eff,
                beta1=hp["beta1"],
                beta2=hp["beta2"],
                weight_decay=hp["weight_decay"],
            )
            for p in model.params()
        ]

    lion_c = coefs() if optimizer == "lion" else []

    def freeze(bad: Tensor, epoch: int) -> None:
        nonlocal any_frozen, lion_c
        idx = bad.nonzero().flatten()
        alive[idx] = False
        lr_eff[idx] = 0.0
        diverged_epoch[idx.cpu().numpy()] = epoch
        for s in states:
            for t in s.params():
                t.index_fill_(0, idx, 0.0)
        any_frozen = True
        if optimizer == "lion":
            lion_c = coefs()

    g_order, g_drop = generator(seed, ORDER), generator(seed, DROPOUT)
    step = 0
    epoch_bar = tqdm(
        range(1, epochs + 1), desc="epochs", leave=False, file=sys.stderr, disable=not progress
    )
    for epoch in epoch_bar:
        for idx in epoch_batches(train.n, b, g_order):
            nb = len(idx)
            idx = idx.to(dev)
            torch.index_select(train.xa, 0, idx, out=xbuf[:nb])
            torch.index_select(train.yf, 0, idx, out=ybuf[:nb])
            wbuf[:nb] = 1.0 / nb
            if nb < b:  # zero-pad: fixed GEMM shapes, padded rows carry no gradient
                xbuf[nb:] = 0
                ybuf[nb:] = 0
                wbuf[nb:] = 0
            mask = dropout_mask(nb, h, p, g_drop)
            ks = None
            if mask is not None:
                keep[:, :nb] = mask.t().to(device=dev, dtype=dtype) * scale
                keep[:, nb:] = 0
                ks = keep
            logits = forward(model, xbuf, ws, ks)
            bad = ~torch.isfinite(logits[:, :nb]).all(dim=1) & alive
            if bool(bad.any()):
                freeze(bad, epoch)
            frozen = ~alive if any_frozen else None
            backward(model, xbuf.t().contiguous(), ybuf, wbuf, ws, grads, scale, frozen)
            if frozen is not None:  # NaN weights can still leak NaN into their grads
                fidx = frozen.nonzero().flatten()
                for t in grads.params():
                    t.index_fill_(0, fidx, 0.0)
            step += 1
            if optimizer == "lion":
                for p_, g_, m_, c_, buf in zip(
                    model.params(),
                    grads.params(),
                    exp_avg.params(),
                    lion_c,
                    scratch.params(),
                    strict=True,
                ):
                    lion_update(p_, g_, m_, c_, buf)
            else:
                assert exp_avg_sq is not None
                adamw_step(
                    model.params(),
                    grads.params(),
                    exp_avg.params(),
                    exp_avg_sq.params(),
                    step=step,
                    lr=lr_eff,
                    beta1=hp["beta1"],
                    beta2=hp["beta2"],
                    eps=hp["eps"],
                    weight_decay=hp["weight_decay"],
                    buffers=scratch.params(),
                )
        # End of epoch: weights, then validation loss/accuracy (dropout off).
        bad = ~model.finite() & alive
        if bool(bad.any()):
            freeze(bad, epoch)
        val_logits = _logits(model, data["val"], ws, xbuf)
        v_loss, v_acc = logloss(val_logits, data["val"].y), accuracy(val_logits, data["val"].y)
        bad = ~torch.isfinite(val_logits).all(dim=0) & alive
        if bool(bad.any()):
            freeze(bad, epoch)
        v_loss = v_loss.masked_fill(~alive, math.nan)
        v_acc = v_acc.masked_fill(~alive, math.nan)
        curve_loss[:, epoch - 1] = v_loss.cpu().numpy()
        curve_acc[:, epoch - 1] = v_acc.cpu().numpy()
        improved = alive & (v_acc > best_acc)
        if bool(improved.any()):
            best_acc = torch.where(improved, v_acc, best_acc)
            best_epoch[improved.cpu().numpy()] = epoch
            iidx = improved.nonzero().flatten()
            for dst, src in zip(best.params(), model.params(), strict=True):
                dst.index_copy_(0, iidx, src.index_select(0, iidx))
    epoch_bar.close()

    out: dict[str, np.ndarray] = {}
    dead = (~alive).cpu().numpy()
    for prefix, weights in (("", model), ("best_", best)):
        for split in SPLITS:
            res = binary_metrics(_logits(weights, data[split], ws, xbuf), data[split].y)
            for metric in METRICS:
                arr = res[metric].cpu().numpy().astype(np.float64)
                arr[dead] = np.nan
                out[f"{prefix}{split}_{metric}"] = arr
    best_epoch[dead] = -1
    out["best_epoch"] = best_epoch
    out["curve_val_loss"] = curve_loss
    out["curve_val_acc"] = curve_acc
    out["diverged"] = dead.astype(bool)
    out["diverged_epoch"] = diverged_epoch
    return out, model


def train_grid(
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    optimizer: str,
    hparams: dict[str, np.ndarray],
    seed: int,
    settings: TrainSettings,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Train every configuration in ``hparams`` (arrays of length K) on ``splits``.

    Returns arrays of length K in input order (curves [K, epochs]); see
    docs/schema.md for the columns. ``best_epoch`` is -1 for diverged models (their
    best-epoch metrics are NaN). ``device`` is returned as a plain string.
    """
    k = _check_inputs(splits, optimizer, hparams)
    dev = resolve_device(settings.device)
    dtype = getattr(torch, settings.dtype)
    old_threads = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    try:
        data = device_data(splits, settings)
        d = data["train"].xa.shape[1] - 1
        n_max = max(data[s].n for s in SPLITS)
        per_model = bytes_per_model(n_max, d, settings, optimizer)
        names = REQUIRED_HPARAMS[optimizer]
        hp_all = {
            n: torch.as_tensor(np.asarray(hparams[n], dtype=np.float64)).to(dev, dtype)
            for n in names
        }
        results: dict[str, np.ndarray] = {}
        step_bytes = step_bytes_per_model(d, settings, optimizer)
        chunks = plan_chunks(k, per_model, settings.memory_budget_mb, step_bytes)
        for sl in tqdm(chunks, desc="chunks", file=sys.stderr, disable=not progress):
            part, _ = train_chunk(
                data, optimizer, {n: v[sl] for n, v in hp_all.items()}, seed, settings, progress
            )
            for key, val in part.items():
                if key not in results:
                    results[key] = np.empty((k, *val.shape[1:]), dtype=val.dtype)
                results[key][sl] = val
    finally:
        torch.set_num_threads(old_threads)
    out: dict[str, np.ndarray] = dict(results)
    out["device"] = str(dev)  # type: ignore[assignment]
    return out
