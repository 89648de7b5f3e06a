"""Scale benchmark of the results stages (issue 19): synthetic shards with the exact
schema of real binary shards at 1x, 10x, 100x the default study, then each stage run
as its rule runs it (the same `python -m lionsweep ...` command, in a fresh process),
one line per stage and scale, then each stage's growth exponent (log-log slope of
time and of peak RSS against rows)::

    scale <factor>x <stage>: <seconds> s, <MiB> MiB peak, <rows> rows

The default study is config/config.yaml's: titanic's 20^3 grid, spambase's and
mushroom's 10^3, lion and adamw, 3 seeds, 20 epochs, shards of 1,000 configurations
(60,018 rows). A scale multiplies each grid's lr axis (finer grids: the datasets and so
the number of figures stay those of the study). ``confirm`` trains; its measured part
is what it does before training (import, read, select:
``lionsweep.confirm.retrain.from_summary``), named ``confirm-plan``. Peak RSS is
``getrusage(RUSAGE_CHILDREN)`` of a wrapper process that runs the one command.

    .venv/bin/python bench/scale_bench.py --scales 1 10 [--stages aggregate tables]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
GRIDS = {"titanic": (20, 20, 20), "spambase": (10, 10, 10), "mushroom": (10, 10, 10)}
OPTIMIZERS = ("lion", "adamw")
SEEDS = (0, 1, 2)
EPOCHS, SHARD, N_TEST = 20, 1000, 143
METRICS = ("acc", "balanced_acc", "f1", "logloss", "auc")
HPARAMS = ("lr", "beta1", "beta2", "weight_decay", "eps", "momentum", "nesterov")
DEFAULTS = {
    "lion": (1e-4, 0.9, 0.99, 0.0, np.nan, np.nan, np.nan),
    "adamw": (1e-3, 0.9, 0.999, 0.01, 1e-8, np.nan, np.nan),
}
STAGES = ("aggregate", "confirm-plan", "tables", "figures")
WRAPPER = (
    "import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
    "sys.exit(rc)"
)


def grid_block(dataset: str, optimizer: str, seed: int, scale: int) -> pa.Table:
    """One (dataset, optimizer, seed)'s rows: the grid, then the default (last id)."""
    n_lr, n_b, n_wd = GRIDS[dataset]
    lr = np.geomspace(1e-5, 1e-2, n_lr * scale)
    beta1, wd = np.linspace(0.8, 0.99, n_b), np.linspace(0.0, 0.1, n_wd)
    g = np.stack(np.meshgrid(lr, beta1, wd, indexing="ij"), -1).reshape(-1, 3)
    k = len(g) + 1
    rng = np.random.default_rng(zlib.crc32(f"{dataset}/{optimizer}/{seed}/{scale}".encode()))
    d = DEFAULTS[optimizer]
    hp = {h: np.full(k, d[i], dtype=np.float64) for i, h in enumerate(HPARAMS)}
    hp["lr"][:-1], hp["beta1"][:-1], hp["weight_decay"][:-1] = g.T
    base = 0.75 - 0.05 * np.abs(np.log10(hp["lr"]) + 3.0)
    cols = {"dataset": [dataset] * k, "task": ["binary"] * k, "primary_metric": ["acc"] * k}
    cols |= {"optimizer": [optimizer] * k, "seed": np.full(k, seed, np.int64)}
    cols |= {"config_id": np.arange(k, dtype=np.int64), "is_default": np.arange(k) == k - 1}
    cols |= hp | {"hidden": np.full(k, 64, np.int64), "batch_size": np.full(k, 64, np.int64)}
    cols |= {"epochs": np.full(k, EPOCHS, np.int64), "dropout": np.full(k, 0.2)}
    for prefix in ("", "best_"):
        for split in ("train", "val", "test"):
            acc = np.round((base + rng.normal(0, 0.02, k)) * N_TEST) / N_TEST
            values = (acc, acc - 0.01, acc - 0.02, 1.2 - acc, np.minimum(acc + 0.05, 1.0))
            cols |= {f"{prefix}{split}_{m}": v for m, v in zip(METRICS, values, strict=True)}
    cols["best_epoch"] = pa.array(rng.integers(1, EPOCHS + 1, k), pa.int64())
    cols["diverged"] = np.zeros(k, dtype=bool)
    cols["diverged_epoch"] = pa.nulls(k, pa.int64())
    cols |= {"device": ["cpu"] * k, "lionsweep_version": ["0.1.0"] * k}
    cols |= {"shard": np.arange(k, dtype=np.int64) // SHARD, "wall_time_s": np.full(k, 0.05)}
    curve = np.linspace(0.5, 1.0, EPOCHS, dtype=np.float32)[None, :] * cols["val_acc"][:, None]
    offsets = pa.array(np.arange(k + 1, dtype=np.int32) * EPOCHS)
    for name, values in (("curve_val_loss", 1.2 - curve), ("curve_val_acc", curve)):
        cols[name] = pa.ListArray.from_arrays(offsets, pa.array(values.astype(np.float32).ravel()))
    return pa.table(cols)


def write_study(folder: Path, scale: int) -> tuple[list[Path], list[Path]]:
    """Shards of 1,000 configurations and each dataset's meta.json; returns both lists."""
    shards, metas = [], []
    for dataset in GRIDS:
        for optimizer in OPTIMIZERS:
            for seed in SEEDS:
                block = grid_block(dataset, optimizer, seed, scale)
                where = folder / "shards" / dataset / optimizer / f"seed{seed}"
                where.mkdir(parents=True, exist_ok=True)
                for i, start in enumerate(range(0, block.num_rows, SHARD)):
                    shards.append(where / f"shard{i:04d}.parquet")
                    pq.write_table(block.slice(start, SHARD), shards[-1], compression="zstd")
    return shards, metas


def commands(folder: Path, shards: list[Path]) -> dict[str, list[str]]:
    """Each stage's command as its rule runs it (results.smk, sweep.smk, confirm.smk)."""
    listing = folder / "shards" / "list.txt"
    listing.write_text("".join(f"{p}\n" for p in shards))
    sweep, summary = str(folder / "sweep.parquet"), str(folder / "summary.parquet")
    py, common = sys.executable, ["--datasets", *GRIDS, "--optimizers", *OPTIMIZERS]
    plan = (  # the rule's path: the sweep's seeds, then a grid of the summary at a time
        "import argparse, sys; from pathlib import Path; "
        "from lionsweep.confirm.retrain import from_summary; "
        "from lionsweep.results.scoring import Metrics; "
        "a = argparse.Namespace(sweep=Path(sys.argv[1]), summary=Path(sys.argv[2]), "
        "datasets=sys.argv[3:6], optimizers=sys.argv[6:]); "
        "print(len(from_summary(a, Metrics('final'))[0]))"
    )
    ls = [py, "-m", "lionsweep"]
    out = {"tables": ["--summary", summary, "--outdir", str(folder / "tables")]}
    out["aggregate"] = ["--shard-list", str(listing), "--output", sweep, "--summary", summary]
    out["figures"] = ["--summary", summary, "--outdir", str(folder / "figures")]
    return {
        "aggregate": [*ls, "aggregate", *out["aggregate"]],
        "confirm-plan": [py, "-c", plan, sweep, summary, *GRIDS, *OPTIMIZERS],
        "tables": [*ls, "tables", "--sweep", sweep, *out["tables"], *common],
        "figures": [*ls, "figures", "--sweep", sweep, *out["figures"], *common],
    }


def measure(cmd: list[str], log: Path) -> tuple[float, float]:
    """(seconds, peak MiB) of one command in a fresh process; its output goes to ``log``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "workflow"), "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run(
            [sys.executable, "-c", WRAPPER, *cmd],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    seconds = time.perf_counter() - start
    *text, peak = proc.stderr.strip().splitlines() or ["0"]
    if proc.returncode:
        raise SystemExit(f"{cmd[3] if len(cmd) > 3 else cmd}: failed: {' '.join(text)[-500:]}")
    return seconds, int(peak) / 1024


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y against log x."""
    lx, ly = np.log(xs), np.log(ys)
    return float(np.polyfit(lx, ly, 1)[0]) if len(set(xs)) > 1 else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--workdir", type=Path, default=ROOT / "results" / "bench-scale")
    parser.add_argument("--keep", action="store_true", help="keep each scale's files")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept scale's shards")
    args = parser.parse_args()
    results: dict[str, list[tuple[int, float, float]]] = {s: [] for s in args.stages}
    for scale in args.scales:
        folder = args.workdir / f"{scale}x"
        listing = folder / "shards" / "list.txt"
        if args.reuse and listing.exists():  # a kept study (--keep): its shards as written
            shards = [Path(line) for line in listing.read_text().splitlines()]
        else:
            shutil.rmtree(folder, ignore_errors=True)
            shards, _ = write_study(folder, scale)
        cmds = commands(folder, shards)
        rows = 0
        reused = (
            args.reuse and (folder / "sweep.parquet").exists() and "aggregate" not in args.stages
        )
        for stage in ([] if reused else ["aggregate"]) + [
            s for s in args.stages if s != "aggregate"
        ]:
            seconds, peak = measure(cmds[stage], folder / f"{stage}.log")
            rows = rows or pq.read_metadata(folder / "sweep.parquet").num_rows
            if stage in results:
                results[stage].append((rows, seconds, peak))
                print(
                    f"scale {scale}x {stage}: {seconds:.1f} s, {peak:.0f} MiB peak, "
                    f"{rows:,} rows ({len(shards):,} shards)",
                    flush=True,
                )
        if not args.keep:
            shutil.rmtree(folder)
    for stage, got in results.items():
        rows = [r for r, _, _ in got]
        print(
            f"growth {stage}: time ~ rows^{slope(rows, [s for _, s, _ in got]):.2f}, "
            f"peak ~ rows^{slope(rows, [m for _, _, m in got]):.2f}"
        )


if __name__ == "__main__":
    main()
