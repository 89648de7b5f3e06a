"""The engine's peer: the same K Lion trainings written the idiomatic way with
``torch.func`` (vmap over stacked parameters, ``grad`` of the BCE loss), optionally
``torch.compile``'d. Same data, batch order, epochs and per-epoch validation pass as
the engine; used by bench/study_bench.py only (a benchmark, not a reference)."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.func import functional_call, grad, vmap

from lionsweep.train.engine import TrainSettings
from lionsweep.train.model import ORDER, epoch_batches, generator, init_single


def _net(d: int, h: int, p: float) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(d, h), torch.nn.ReLU(), torch.nn.Dropout(p), torch.nn.Linear(h, 1)
    )


def vmap_peer(
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    hp: dict[str, np.ndarray],
    settings: TrainSettings,
    device: torch.device,
    compiled: bool,
) -> tuple[float, float]:
    """(seconds per configuration excluding compilation, compile seconds)."""
    x, y = (torch.as_tensor(a).to(device) for a in splits["train"])
    xv, yv = (torch.as_tensor(a).to(device) for a in splits["val"])
    y, k = y.float(), len(hp["lr"])
    net = _net(x.shape[1], settings.hidden, settings.dropout).to(device)
    init = init_single(x.shape[1], settings.hidden, 0)
    params = {n: t.to(device)[None].repeat(k, *([1] * t.ndim)) for n, t in init.items()}
    moms = {n: torch.zeros_like(t) for n, t in params.items()}
    h = {n: torch.as_tensor(hp[n], dtype=torch.float32, device=device) for n in hp}

    def loss(p, xb, yb):
        out = functional_call(net, p, (xb,)).squeeze(-1)
        return torch.nn.functional.binary_cross_entropy_with_logits(out, yb)

    # one dropout mask per step shared by the K models, as the engine (common random numbers)
    grads = vmap(grad(loss), in_dims=(0, None, None), randomness="same")

    def step(p, m, xb, yb):
        g = grads(p, xb, yb)
        new_p, new_m = {}, {}
        for n in p:
            shape = (k,) + (1,) * (p[n].ndim - 1)
            lr, b1 = h["lr"].view(shape), h["beta1"].view(shape)
            b2, wd = h["beta2"].view(shape), h["weight_decay"].view(shape)
            upd = torch.sign(b1 * m[n] + (1 - b1) * g[n])
            new_p[n] = p[n] * (1 - lr * wd) - lr * upd
            new_m[n] = b2 * m[n] + (1 - b2) * g[n]
        return new_p, new_m

    evaluate = vmap(lambda p, xb: functional_call(net, p, (xb,)).squeeze(-1), in_dims=(0, None))
    compile_s = 0.0
    if compiled:
        step, evaluate = torch.compile(step), torch.compile(evaluate)
        t0 = time.perf_counter()
        net.train()
        step(params, moms, x[: settings.batch_size], y[: settings.batch_size])
        net.eval()
        evaluate(params, xv)
        compile_s = time.perf_counter() - t0
    gen = generator(0, ORDER)
    t0 = time.perf_counter()
    for _ in range(settings.epochs):
        net.train()
        for idx in epoch_batches(len(x), settings.batch_size, gen):
            idx = idx.to(device)
            params, moms = step(params, moms, x[idx], y[idx])
        net.eval()
        with torch.no_grad():
            (evaluate(params, xv) > 0).eq(yv[None].bool()).float().mean(dim=1).cpu()
    return (time.perf_counter() - t0) / k, compile_s
