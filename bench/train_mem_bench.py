"""Peak RSS of one training job against its memory request (issue 19): a synthetic
prepared dataset of ``--rows`` x ``--features`` (binary task, the exact files `prepare`
writes: float64 feature columns, int8 target, meta.json), one grid of ``--configs``
Lion configurations, then `python -m lionsweep train` as the `train_shard` rule runs
it, in a fresh process, one line::

    train <rows> x <features>: <seconds> s, <MiB> MiB peak, request <MB> MB

The request is what the rule asks the scheduler for (lionsweep.train.memory.train_request_mb,
from the same meta.json and the study's settings); peak RSS is
``getrusage(RUSAGE_CHILDREN)`` of a wrapper process.

    .venv/bin/python bench/train_mem_bench.py --rows 1000000 --features 100
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))
WRAPPER = (
    "import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
    "sys.exit(rc)"
)
SPLIT = {"train": 0.7, "val": 0.15, "test": 0.15}


def write_dataset(folder: Path, rows: int, features: int, seed: int = 0) -> dict:
    """train/val/test.parquet and meta.json as `prepare` writes them."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"x{j}" for j in range(features)]
    counts = {"train": int(rows * SPLIT["train"]), "val": int(rows * SPLIT["val"])}
    counts["test"] = rows - counts["train"] - counts["val"]
    w = rng.standard_normal(features)
    for split, n in counts.items():
        x = rng.standard_normal((n, features))
        y = (x @ w + rng.standard_normal(n) > 0).astype(np.int8)
        columns = {f: pa.array(x[:, j]) for j, f in enumerate(names)}
        columns["target"] = pa.array(y, type=pa.int8())
        pq.write_table(pa.table(columns), folder / f"{split}.parquet")
    meta = {"dataset": "synthetic", "task": "binary", "rows": counts, "features": names}
    (folder / "meta.json").write_text(json.dumps(meta))
    return meta


def settings(epochs: int, batch_size: int) -> dict:
    return {
        "hidden": 64,
        "dropout": 0.2,
        "epochs": epochs,
        "batch_size": batch_size,
        "dtype": "float32",
        "device": "cpu",
        "memory_budget_mb": 2048,
        "threads": 2,
        "runtime_min": 120,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--configs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64, help="fewer steps: same memory")
    parser.add_argument("--job-mem-mb", type=int, default=None, help="default: the request")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        meta = write_dataset(folder / "data", args.rows, args.features)
        spec = {
            "optimizer": "lion",
            "defaults": {},
            "grid": [{"param": "lr", "start": 1e-4, "stop": 1e-2, "num": args.configs - 1}],
            "training": {},
        }
        grid = folder / "grid.parquet"
        run = [sys.executable, "-m", "lionsweep"]
        subprocess.run(
            [*run, "grid", "--spec", json.dumps(spec), "--output", str(grid)], check=True
        )
        study = settings(args.epochs, args.batch_size)
        try:
            from lionsweep.train.memory import train_request_mb

            request = train_request_mb(meta, study, "lion")
        except ImportError:  # the code before lionsweep.train.memory: the rule's old request
            request = study["memory_budget_mb"] + 1024
        cmd = [
            *run, "train", "--dataset", "synthetic", "--optimizer", "lion", "--seed", "0",
            "--shard", "0", "--rows", f"0:{args.configs}", "--settings", json.dumps(study),
            "--grid", str(grid), "--data", str(folder / "data"), "--threads", "2",
            "--job-mem-mb", str(args.job_mem_mb or request), "--no-progress",
            "--output", str(folder / "shard.parquet"),
        ]  # fmt: skip
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode:
            sys.exit(done.stderr)
        peak_mib = int(done.stderr.strip().splitlines()[-1]) / 1024
        print(
            f"train {args.rows} x {args.features}: {seconds:.1f} s, {peak_mib:.0f} MiB peak, "
            f"request {request} MB"
        )


if __name__ == "__main__":
    main()
