"""Benchmark the batched engine against naive one-model-at-a-time training.

Both ways train the same configurations (the paper's 10x10x10 Lion grid for
Mushroom/Spambase, 20x20x20 for Titanic) with the same epochs, batch size, data
and per-epoch validation. Naive = one nn.Sequential + the optimizer's reference
(``lion_pytorch.Lion`` for Lion) per configuration, plain tensor batching. The
machine is shared, so only the ratio measured within one run is meaningful. Every
other registry optimizer gets one line ``<name>: <ratio>x naive (...)``, on the
study's grid for it when config/config.yaml has one, else its defaults with lr
log-spaced. Ends with exactly one line, for Lion:
``speedup: <ratio>x naive; <achieved> GFLOP/s of <peak> GFLOP/s GEMM peak``.

    .venv/bin/python bench/engine_bench.py --dataset spambase --k 1000 --out bench.json
    .venv/bin/python bench/engine_bench.py --optimizers lion  # Lion only (faster)
    .venv/bin/python bench/engine_bench.py --variants      # forward/backward alternatives
    .venv/bin/python bench/engine_bench.py --full-grid     # the paper's three Lion grids
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from lionsweep import layout
from lionsweep.data.fetch import resolve_mirror
from lionsweep.data.prepare import load_splits, prepare
from lionsweep.optim import registry as optim
from lionsweep.sweep.grid import expand, grid_spec
from lionsweep.train.engine import TrainSettings, train_grid

ROOT = Path(__file__).resolve().parents[1]
STUDY = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def load(dataset: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The workflow's prepared splits (results/data), or the same prepared in a temp dir."""
    spec = STUDY["datasets"][dataset]
    prepared = ROOT / layout.data_dir(dataset, spec, STUDY["split"])
    if (prepared / "test.parquet").is_file():
        return load_splits(prepared)
    mirror = resolve_mirror(STUDY.get("data_mirror")) or ROOT.parent / "shared" / "datasets"
    with tempfile.TemporaryDirectory() as tmp:
        prepare(mirror / spec["file"], spec, STUDY["split"], Path(tmp), dataset)
        return load_splits(tmp)


def grid(dataset: str, k: int, optimizer: str = "lion") -> dict[str, np.ndarray]:
    """The study's grid for ``dataset`` (config/config.yaml), cycled/truncated to k; an
    optimizer the study does not sweep gets its defaults with lr log-spaced over 3 decades."""
    names = optim.REGISTRY[optimizer].hparams
    if optimizer not in STUDY["optimizers"]:
        hp = {h: np.full(k, p.default) for h, p in names.items()}
        hp["lr"] = np.geomspace(hp["lr"][0] / 10, hp["lr"][0] * 100, k)
        return hp
    points = expand(grid_spec(STUDY, dataset, optimizer))
    points = points[~points.is_default]
    points = points.iloc[np.arange(k) % len(points)]
    return {h: points[h].to_numpy() for h in names}


def naive(splits, hp, n, args, optimizer: str = "lion") -> float:
    """Seconds per configuration for one-model-at-a-time training (first n configs)."""
    xtr, ytr = (torch.as_tensor(a) for a in splits["train"])
    xva, yva = (torch.as_tensor(a) for a in splits["val"])
    ytr = ytr.float()
    t0 = time.perf_counter()
    for i in range(n):
        torch.manual_seed(i)
        net = torch.nn.Sequential(
            torch.nn.Linear(xtr.shape[1], args.hidden),
            torch.nn.ReLU(),
            torch.nn.Dropout(args.dropout),
            torch.nn.Linear(args.hidden, 1),
        )
        opt = optim.REGISTRY[optimizer].reference(
            net.parameters(), {h: float(v[i]) for h, v in hp.items()}
        )
        loss_fn = torch.nn.BCEWithLogitsLoss()
        for _ in range(args.epochs):
            net.train()
            for idx in torch.randperm(len(xtr)).split(args.batch_size):
                opt.zero_grad()
                loss_fn(net(xtr[idx]).squeeze(1), ytr[idx]).backward()
                opt.step()
            net.eval()
            with torch.no_grad():
                (net(xva).squeeze(1) > 0).eq(yva).float().mean()
    return (time.perf_counter() - t0) / n


def gemm_peak(size: int = 3072, reps: int = 5, onednn: bool = False) -> float:
    """Best-of-reps GFLOP/s of one large square GEMM (the same threads).

    ``torch.mm`` (MKL) is the reported peak; ``onednn`` times the oneDNN kernel
    the engine uses, whose AVX-512 path is faster on this AMD CPU.
    """
    a, b = torch.randn(size, size), torch.randn(size, size)
    if onednn:
        from lionsweep.train.model import gemm_nt

        def run():
            return gemm_nt(a, b)
    else:

        def run():
            return torch.mm(a, b)

    run()
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9


def engine_flops(splits, k: int, args) -> float:
    """Analytic FLOPs of the engine's matrix products (padded rows count: they are computed).

    Per training row: layer-1 forward + weight-gradient GEMMs 2 x 2(D+1)KH, layer-2
    forward, dW2 and dA products 3 x 2KH. Per evaluated row: 2(D+1)KH + 2KH.
    """
    b, h, e = args.batch_size, args.hidden, args.epochs
    d1 = splits["train"][0].shape[1] + 1
    n = {s: len(splits[s][1]) for s in splits}
    pad = {s: math.ceil(n[s] / b) * b for s in n}
    train_rows = e * pad["train"]
    eval_rows = e * pad["val"] + 2 * sum(pad.values())
    per_train = 4 * d1 * k * h + 6 * k * h
    per_eval = 2 * d1 * k * h + 2 * k * h
    return train_rows * per_train + eval_rows * per_eval


def variants(args) -> None:
    """Time one training step's forward+backward (K models) by several formulations."""
    from lionsweep.train.heads import make_head
    from lionsweep.train.model import BatchedMLP, Workspace, backward, forward, init_single

    torch.set_num_threads(args.threads)
    b, d, h, k = args.batch_size, 57, args.hidden, args.k
    x = torch.randn(b, d)
    y = (torch.rand(b) > 0.5).float()[None, :]
    keep = (torch.rand(b, h) > 0.2).float() / 0.8

    cpu = torch.device("cpu")
    model = BatchedMLP.from_single(init_single(d, h, 0), k, torch.float32, cpu)
    grads = model.zeros_like()
    ws = Workspace(b, k, h, torch.float32, cpu)
    xa = torch.cat([x, torch.ones(b, 1)], 1)
    xa_t = xa.t().contiguous()
    w = torch.full((b,), 1 / b)
    keep_t = keep.t().contiguous()
    head = make_head("binary")

    def hand():
        out = forward(model, xa, ws, keep_t)
        head.loss_grad(out, y, w, ws.dlogit)
        backward(model, xa_t, ws, grads, 1 / 0.8)

    # Same hand-written step, GEMMs forced through torch.mm (MKL): the tested fallback.
    import lionsweep.train.model as lm

    def hand_mkl():
        saved = lm.onednn_linear
        lm.onednn_linear = lambda: None
        try:
            hand()
        finally:
            lm.onednn_linear = saved

    res = {"hand_written_onednn_ms": timeit(hand), "hand_written_mkl_mm_ms": timeit(hand_mkl)}
    res.update(autograd_variants(x, y[0], keep, k))
    print(
        json.dumps({"k": k, "batch": b, "d": d, "h": h, "threads": args.threads, **res}, indent=1)
    )


def timeit(f, reps: int = 10) -> float:
    """Best-of-3 milliseconds per call."""
    f()
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            f()
        best = min(best, (time.perf_counter() - t0) / reps * 1e3)
    return best


def autograd_variants(x, y, keep, k: int) -> dict[str, float]:
    """The same step through autograd: K models as baddbmm, or as one wide GEMM."""
    (b, d), h = x.shape, keep.shape[1]
    w1 = torch.randn(k, d, h, requires_grad=True)
    b1 = torch.randn(k, 1, h, requires_grad=True)
    w2 = torch.randn(k, h, 1, requires_grad=True)
    b2 = torch.randn(k, 1, 1, requires_grad=True)
    w1f = torch.randn(d, k * h, requires_grad=True)
    b1f = torch.randn(k * h, requires_grad=True)
    w2f = torch.randn(k, h, requires_grad=True)
    b2f = torch.randn(k, requires_grad=True)
    yk = y[None, :, None].expand(k, b, 1)

    def autograd_baddbmm():
        a = torch.baddbmm(b1, x.expand(k, b, d), w1).relu() * keep
        z = torch.baddbmm(b2, a, w2)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, yk, reduction="sum")
        loss.div(b).backward()

    def autograd_gemm():
        a = (torch.addmm(b1f, x, w1f).relu().view(b, k, h)) * keep[:, None, :]
        z = torch.einsum("bkh,kh->bk", a, w2f) + b2f
        yb = y[:, None].expand(b, k)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, yb, reduction="sum")
        loss.div(b).backward()

    return {
        "autograd_one_gemm_einsum_ms": timeit(autograd_gemm),
        "autograd_baddbmm_ms": timeit(autograd_baddbmm),
    }


def compare(splits, optimizer: str, settings: TrainSettings, args) -> dict[str, float]:
    """Naive vs batched seconds per configuration for one registry optimizer."""
    hp = grid(args.dataset, args.k, optimizer)
    t_naive = naive(splits, hp, args.n_naive, args, optimizer)
    t0 = time.perf_counter()
    train_grid(splits, optimizer, hp, seed=0, settings=settings, progress=False)
    t_batched = (time.perf_counter() - t0) / args.k
    return {
        "naive_s_per_config": t_naive,
        "batched_s_per_config": t_batched,
        "speedup": t_naive / t_batched,
    }


def train_settings(args) -> TrainSettings:
    """The model/training settings both benchmark modes use (from the command line)."""
    return TrainSettings(
        hidden=args.hidden,
        dropout=args.dropout,
        epochs=args.epochs,
        batch_size=args.batch_size,
        threads=args.threads,
    )


def full_grid(args) -> None:
    """Time the paper's full Lion grids (8000 Titanic, 1000 Mushroom, 1000 Spambase)."""
    settings = train_settings(args)
    times = {}
    for ds in ("titanic", "mushroom", "spambase"):
        splits = load(ds)
        k = len(expand(grid_spec(STUDY, ds, "lion"))) - 1  # grid points, not the default
        t0 = time.perf_counter()
        train_grid(splits, "lion", grid(ds, k), seed=0, settings=settings, progress=False)
        times[ds] = time.perf_counter() - t0
        print(f"{ds}: {k} configs in {times[ds]:.1f} s", flush=True)
    if args.out:
        args.out.write_text(json.dumps({"seconds": times, "threads": args.threads}) + "\n")
    print(f"full grid: {sum(times.values()):.1f} s")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="spambase", choices=sorted(STUDY["datasets"]))
    ap.add_argument("--n-naive", type=int, default=20)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--optimizers",
        nargs="+",
        default=list(optim.names()),
        choices=optim.names(),
        help="registry optimizers to time (Lion's line is always last)",
    )
    ap.add_argument("--variants", action="store_true", help="time forward/backward variants")
    ap.add_argument("--full-grid", action="store_true", help="time the paper's three grids")
    return ap.parse_args()


def lion_report(splits, settings: TrainSettings, args) -> dict:
    """Lion on the study's grid: naive vs batched, achieved vs peak GEMM throughput."""
    hp = grid(args.dataset, args.k)
    peak = gemm_peak()
    t_naive = naive(splits, hp, args.n_naive, args)
    t0 = time.perf_counter()
    res = train_grid(splits, "lion", hp, seed=0, settings=settings, progress=False)
    t_batched = (time.perf_counter() - t0) / args.k
    return {
        "dataset": args.dataset,
        "rows": {s: len(splits[s][1]) for s in splits},
        "features": int(splits["train"][0].shape[1]),
        "k": args.k,
        "n_naive": args.n_naive,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "hidden": args.hidden,
        "threads": args.threads,
        "naive_s_per_config": t_naive,
        "batched_s_per_config": t_batched,
        "batched_total_s": t_batched * args.k,
        "speedup": t_naive / t_batched,
        "achieved_gflops": engine_flops(splits, args.k, args) / (t_batched * args.k) / 1e9,
        # best of before/after: the machine is shared
        "gemm_peak_gflops": max(peak, gemm_peak()),
        "onednn_gemm_peak_gflops": gemm_peak(onednn=True),
        "diverged": int(res["diverged"].sum()),
        "mean_test_acc": float(np.nanmean(res["test_acc"])),
    }


def main() -> None:
    args = parse_args()
    if args.variants:
        variants(args)
        return
    if args.full_grid:
        full_grid(args)
        return
    torch.set_num_threads(args.threads)
    splits = load(args.dataset)
    settings = train_settings(args)
    others = {o: compare(splits, o, settings, args) for o in args.optimizers if o != "lion"}
    report = {**lion_report(splits, settings, args), "optimizers": others}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    for name, r in others.items():
        print(
            f"{name}: {r['speedup']:.1f}x naive (batched {1e3 * r['batched_s_per_config']:.1f} ms,"
            f" naive {1e3 * r['naive_s_per_config']:.0f} ms per configuration)"
        )
    speedup, achieved, peak = (
        report[k] for k in ("speedup", "achieved_gflops", "gemm_peak_gflops")
    )
    print(f"speedup: {speedup:.1f}x naive; {achieved:.1f} GFLOP/s of {peak:.1f} GFLOP/s GEMM peak")


if __name__ == "__main__":
    main()
