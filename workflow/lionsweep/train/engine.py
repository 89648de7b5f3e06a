"""Train K configurations of the MLP in one pass: the sweep's training engine.

Why it is fast: all K models share each mini-batch, so the first layer is one GEMM
with K*H rows each way (oneDNN/AVX-512 on CPU, see :mod:`lionsweep.train.model`),
forward/backward are hand-written with preallocated buffers and no input gradient,
and the optimizer updates all K models with per-model hyperparameters in a handful
of in-place kernels. Best-epoch metrics come from a copy of each model's weights
taken when its primary validation metric improves (one indexed copy per epoch) and
evaluated once at the end, rather than evaluating train/test every epoch; at the end
only what is not already known is evaluated (the final validation outputs are the
last epoch's curve pass; a model whose best epoch is the last has its final metrics).

Two seams make it general: the task head (:mod:`lionsweep.train.heads`: output width,
loss gradient, metrics) and the optimizer registry (:mod:`lionsweep.optim.registry`: state,
batched step, reference). The training loop itself is in :mod:`lionsweep.train.trainer`.

Why results do not depend on K, chunking or order (common random numbers): the
initial weights, the batch order and the dropout masks are drawn from generators
seeded by ``seed`` alone (one model's init is copied to all K; one [B, H] dropout
mask per step is shared by all K, drawn once per epoch with the same numbers), and
every GEMM has the same fixed shape for any K, so on CPU a configuration trains to
the same numbers alone or among 5,000.

Divergence is a result: a model whose outputs or weights become non-finite is
frozen (grads, optimizer state, lr and weight decay zeroed), flagged with its epoch
and gets NaN metrics; the other models are unaffected.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from lionsweep import ENGINE_VERSION
from lionsweep.errors import LionSweepError
from lionsweep.optim import registry as optim
from lionsweep.sweep.halving import Halving
from lionsweep.train.heads import SPLITS, Head, Task, make_head, result_columns
from lionsweep.train.memory import model_bytes
from lionsweep.train.model import (
    DROPOUT,
    ORDER,
    BatchedMLP,
    epoch_batches,
    generator,
    init_single,
)
from lionsweep.train.trainer import (
    Buffers,
    ChunkState,
    KeepStream,
    Split,
    assemble,
    end_of_epoch,
    load_batch,
    new_state,
    to_host,
    train_step,
)

OPTIMIZERS = optim.names()
REQUIRED_HPARAMS = {name: tuple(spec.hparams) for name, spec in optim.REGISTRY.items()}
__all__ = [
    "ENGINE_VERSION",
    "SPLITS",
    "Task",
    "TrainSettings",
    "result_columns",
    "train_chunk",
    "train_grid",
]
# Chunks are also capped for speed: a step touches ~(optimizer copies x params +
# 2 x batch x hidden) values per model, and keeping that working set within the
# last-level cache beat one big chunk by ~30% (K=250 vs 1000 on Spambase, 2-core
# EPYC with 32 MiB L3); MIN_CHUNK keeps the per-step Python overhead amortised.
CACHE_BYTES = 32 * 2**20
MIN_CHUNK, MAX_CHUNK = 128, 2048
# On CUDA the cache cap does not apply (bigger chunks fill the GPU better): a chunk is
# limited by the budget and this share of the device's free memory (the rest: the
# caching allocator's fragmentation, cuBLAS workspaces, estimate error).
DEVICE_SHARE = 0.8


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


def device_name(name: str) -> str:
    """``auto`` resolved: the ``device`` a result reports (``cuda``, ``cpu``, ``cuda:1``)."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(torch.device(name))


def resolve_device(name: str) -> torch.device:
    """The device to train on; CUDA with its index (the current device when none is
    given), which also lets the simulated tier run where torch has no CUDA."""
    dev = torch.device(device_name(name))
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device() if torch.cuda.is_available() else 0)
    return dev


def _n_params(d: int, h: int, c: int) -> int:
    return (d + 1) * h + c * h + c


def bytes_per_model(
    n_max: int,
    d: int,
    settings: TrainSettings,
    optimizer: str,
    rows: int | None = None,
    width: int = 1,
    averaged: bool = False,
) -> int:
    """Estimated peak bytes one configuration needs (params, state, buffers, metrics):
    :func:`lionsweep.train.memory.model_bytes`, which the rules' memory requests use too;
    ``averaged``: its chunk keeps a weight EMA (one more copy)."""
    optim.spec(optimizer)  # a one-line error for an unknown optimizer
    training = {"hidden": settings.hidden, "batch_size": rows or settings.batch_size}
    training = {**training, "dtype": settings.dtype}
    return model_bytes(n_max, d, training, optimizer, width, averaged)


def step_bytes_per_model(
    d: int, settings: TrainSettings, optimizer: str, width: int = 1, averaged: bool = False
) -> int:
    """Bytes one model touches per training step (its cache footprint)."""
    elem = torch.empty(0, dtype=getattr(torch, settings.dtype)).element_size()
    h = settings.hidden
    # params, grads, scratch, state (+ the weight EMA)
    copies = 3 + len(optim.spec(optimizer).state) + int(averaged)
    return elem * (copies * _n_params(d, h, width) + 2 * settings.batch_size * h)


def plan_chunks(
    k: int, per_model: int, budget_mb: int, step_bytes: int = 0, device_free: int | None = None
) -> list[slice]:
    """Split K configurations into equal-ish contiguous chunks.

    A chunk fits ``budget_mb`` (hard limit) and, on CPU, where possible the cache
    (speed); on a GPU (``device_free``: its free bytes) it fits :data:`DEVICE_SHARE` of
    the free memory instead of the cache. The split never changes results (common
    random numbers), only speed and memory.
    """
    limit = budget_mb * 2**20
    if device_free is not None:
        cap = k
        limit = min(limit, int(device_free * DEVICE_SHARE))
    else:
        cache_fit = CACHE_BYTES // step_bytes if step_bytes else MAX_CHUNK
        cap = min(MAX_CHUNK, max(MIN_CHUNK, cache_fit))
    fit = max(1, min(cap, limit // max(per_model, 1)))
    n_chunks = max(1, math.ceil(k / fit))
    size = math.ceil(k / n_chunks)
    return [slice(i, min(i + size, k)) for i in range(0, k, size)]


def device_free_bytes(dev: torch.device) -> int | None:
    """A CUDA device's free memory now (after the job's data is on it); None elsewhere."""
    if dev.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(dev)
    return int(free)


def chunk_plan(
    k: int,
    data: dict[str, Split],
    settings: TrainSettings,
    optimizer: str,
    head: Head,
    averaged: bool = False,
) -> list[slice]:
    """The chunks :func:`train_grid` trains ``k`` configurations in, on ``data``'s device
    (``averaged``: some configuration keeps a weight EMA)."""
    d = data["train"].x.shape[1]
    n_max = max(data[s].n for s in SPLITS)
    per_model = bytes_per_model(n_max, d, settings, optimizer, width=head.width, averaged=averaged)
    step_bytes = step_bytes_per_model(d, settings, optimizer, head.width, averaged)
    free = device_free_bytes(data["train"].x.device)
    return plan_chunks(k, per_model, settings.memory_budget_mb, step_bytes, free)


def check_splits(splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """One-line errors for missing, empty, mis-shaped or non-finite splits."""
    missing = [s for s in SPLITS if s not in splits]
    if missing:
        raise LionSweepError(f"splits lack {missing}")
    d = np.shape(splits["train"][0])[1:]
    for s in SPLITS:
        x, y = (np.asarray(a) for a in splits[s])
        if x.ndim != 2 or x.shape[1:] != d or y.shape != (x.shape[0],):
            raise LionSweepError(f"split {s!r}: X {x.shape} / y {y.shape} do not match")
        if x.shape[0] == 0:
            raise LionSweepError(f"split {s!r} has no rows")
        if x.dtype.kind not in "biuf" or not _all_finite(x):
            raise LionSweepError(f"split {s!r}: X must be finite numbers")


def _all_finite(x: np.ndarray, rows: int = 2**16) -> bool:
    """Whether every value of X is finite, in blocks of rows: no float64 copy of X
    (a cast keeps inf and NaN, so a float array is checked as it is; ints are finite)."""
    if x.dtype.kind != "f":
        return True
    return all(np.isfinite(x[i : i + rows]).all() for i in range(0, len(x), rows))


def _check_inputs(
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    optimizer: str,
    hparams: dict[str, np.ndarray],
) -> int:
    """K, after one-line errors for unknown optimizers, bad hyperparameters or splits."""
    optim.spec(optimizer)
    check_splits(splits)
    return optim.check_hparams(optimizer, hparams)


def device_data(
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    settings: TrainSettings,
    head: Head | None = None,
) -> dict[str, Split]:
    """The three splits as device tensors in the training dtype, targets as ``head`` needs."""
    dev = resolve_device(settings.device)
    dtype = getattr(torch, settings.dtype)
    head = head or make_head()
    return {s: Split(*splits[s], s, head, dtype, dev) for s in SPLITS}


def start_chunk(
    data: dict[str, Split],
    optimizer: str,
    hp: dict[str, Tensor],
    seed: int,
    settings: TrainSettings,
    head: Head,
) -> tuple[ChunkState, Buffers]:
    """A chunk of k configurations at epoch 0: every model the seed's init, its buffers."""
    train = data["train"]
    dtype, dev = train.x.dtype, train.x.device
    k, h, d1 = len(hp["lr"]), settings.hidden, train.x.shape[1] + 1
    init = init_single(d1 - 1, h, seed, head.width)
    model = BatchedMLP.from_single(init, k, dtype, dev)
    st = new_state(model, optim.spec(optimizer), hp, head, settings.epochs)
    return st, Buffers.new(settings.batch_size, k, h, d1, head, dtype, dev)


def train_epochs(
    st: ChunkState,
    buf: Buffers,
    data: dict[str, Split],
    opt: optim.OptimizerSpec,
    head: Head,
    settings: TrainSettings,
    gens: tuple[torch.Generator, torch.Generator],
    epochs: range,
    progress: bool = False,
) -> None:
    """Train ``epochs`` (1-based) with the seed's (batch order, dropout) generators, which
    must stand where those epochs begin (successive halving resumes at a rung)."""
    train, b, p = data["train"], settings.batch_size, float(settings.dropout)
    g_order, g_drop = gens
    bar = tqdm(epochs, desc="epochs", leave=False, file=sys.stderr, disable=not progress)
    for epoch in bar:
        # Drawn on the host generators (common random numbers on every device): two
        # host-to-device copies per epoch, no read.
        batches = torch.cat(epoch_batches(train.n, b, g_order)).to(train.x.device).split(b)
        keep = KeepStream(train.n, b, buf, p, g_drop)
        for idx in batches:
            load_batch(buf, train, idx, keep.take(len(idx)))
            train_step(st, buf, len(idx), head, opt, p)
        end_of_epoch(st, data["val"], buf, head, epoch)
    bar.close()


def train_chunk(
    data: dict[str, Split],
    optimizer: str,
    hp: dict[str, Tensor],
    seed: int,
    settings: TrainSettings,
    progress: bool,
    head: Head | None = None,
) -> tuple[dict[str, np.ndarray], BatchedMLP]:
    """Train one chunk of k configurations: (per-configuration results, final weights).

    ``hp``: [k] tensors in the training dtype, on the host (which are zero is decided
    there). A dead model's final weights are whatever training left (no result)."""
    head = head or make_head()
    st, buf = start_chunk(data, optimizer, hp, seed, settings, head)
    gens = generator(seed, ORDER), generator(seed, DROPOUT)
    epochs = range(1, settings.epochs + 1)
    train_epochs(st, buf, data, optim.spec(optimizer), head, settings, gens, epochs, progress)
    return to_host(assemble(st, data, buf, head)), st.model


def _train_chunks(
    data: dict[str, Split],
    optimizer: str,
    hp_all: dict[str, Tensor],
    seed: int,
    settings: TrainSettings,
    progress: bool,
    head: Head,
) -> dict[str, np.ndarray]:
    """All K configurations of ``hp_all``, chunk by chunk, as arrays in input order."""
    k = len(hp_all["lr"])
    results: dict[str, np.ndarray] = {}
    averaged = bool((hp_all["ema_decay"] > 0).any())
    chunks = chunk_plan(k, data, settings, optimizer, head, averaged)
    for sl in tqdm(chunks, desc="chunks", file=sys.stderr, disable=not progress):
        part, _ = train_chunk(
            data,
            optimizer,
            {n: v[sl] for n, v in hp_all.items()},
            seed,
            settings,
            progress,
            head,
        )
        for key, val in part.items():
            if key not in results:
                results[key] = np.empty((k, *val.shape[1:]), dtype=val.dtype)
            results[key][sl] = val
    return results


def train_grid(
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    optimizer: str,
    hparams: dict[str, np.ndarray],
    seed: int,
    settings: TrainSettings,
    progress: bool = True,
    task: Task | str = "binary",
    data: dict[str, Split] | None = None,
    halving: Halving | None = None,
    metric: str | None = None,
) -> dict[str, np.ndarray]:
    """Train every configuration in ``hparams`` (arrays of length K) on ``splits``.

    ``optimizer`` is any :data:`lionsweep.optim.registry.REGISTRY` name; ``task`` a
    :class:`lionsweep.train.heads.Task` (or its name). ``data``: ``splits`` already on the
    device (:func:`device_data`), so that a job calling this per epochs budget copies
    them once. Returns arrays of length K in input order (curves [K, epochs]) under
    :func:`lionsweep.train.heads.result_columns` (see docs/schema.md). ``best_epoch`` is -1
    for diverged models (their best-epoch metrics are NaN). ``device`` is returned as a
    plain string. ``halving``: successive halving over all K (:mod:`lionsweep.sweep.halving`;
    ``metric``: the validation metric its rungs rank by, None = the head's primary),
    which adds ``stopped_epoch``. The weight averaging's hyperparameters (``ema_decay``)
    are optional: absent, the optimizer's default (0, off, but for the ``_ema`` entries).
    """
    head = make_head(task)
    k = _check_inputs(splits, optimizer, hparams)
    averaging = {h: r.default for h, r in optim.spec(optimizer).averaging.items()}
    dtype = getattr(torch, settings.dtype)
    old_threads = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    try:
        data = data or device_data(splits, settings, head)
        given = {**{h: np.full(k, v) for h, v in averaging.items()}, **hparams}
        hp_all = {  # on the host: see train_chunk
            n: torch.as_tensor(np.atleast_1d(np.asarray(given[n], dtype=np.float64)))
            .ravel()
            .to(dtype)
            for n in (*REQUIRED_HPARAMS[optimizer], *averaging)
        }
        if halving is None:
            results = _train_chunks(data, optimizer, hp_all, seed, settings, progress, head)
        else:
            from lionsweep.train.halving_engine import train_halving  # imports this module

            results = train_halving(data, optimizer, hp_all, seed, settings, head, halving, metric)
    finally:
        torch.set_num_threads(old_threads)
    out: dict[str, np.ndarray] = dict(results)
    out["device"] = device_name(settings.device)  # type: ignore[assignment]
    return out
