"""aggregate over many tiny shards (issue 19: 100,000 shards through --shard-list).

Writes at least ``--shards`` one-row shards with the exact schema of real binary shards
(whole grids of bench/scale_bench.py's study, in order), lists them in a file and runs
``python -m lionsweep aggregate --shard-list ...`` as its rule does, in a fresh process;
prints ``shards <n>: write <s> s, aggregate <s> s, <MiB> MiB peak, <rows> rows``.

    .venv/bin/python bench/many_shards.py --shards 100000 [--workdir /tmp/many]
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_bench import GRIDS, OPTIMIZERS, SEEDS, grid_block, measure


def write_shards(folder: Path, n: int) -> list[Path]:
    """At least ``n`` one-row shards: whole grids of the scale bench's study (aggregate
    checks that shards cover each grid), at the scale whose study has >= n rows."""
    scale = max(1, math.ceil(n / 60_018))  # rows of the 1x study
    paths: list[Path] = []
    for dataset in GRIDS:
        for optimizer in OPTIMIZERS:
            for seed in SEEDS:
                block = grid_block(dataset, optimizer, seed, scale)
                where = folder / dataset / optimizer / f"seed{seed}"
                where.mkdir(parents=True, exist_ok=True)
                for i in range(block.num_rows):
                    paths.append(where / f"shard{i:06d}.parquet")
                    pq.write_table(block.slice(i, 1), paths[-1])
                if len(paths) >= n:
                    return paths
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path("results/bench-shards"))
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    start = time.perf_counter()
    shards = write_shards(args.workdir / "shards", args.shards)
    written = time.perf_counter() - start
    listing = args.workdir / "list.txt"
    listing.write_text("".join(f"{p}\n" for p in shards))
    sweep = args.workdir / "sweep.parquet"
    cmd = [sys.executable, "-m", "lionsweep", "aggregate", "--shard-list", str(listing)]
    cmd += ["--output", str(sweep), "--summary", str(args.workdir / "summary.parquet")]
    seconds, peak = measure(cmd, args.workdir / "aggregate.log")
    rows = pq.read_metadata(sweep).num_rows
    print(f"shards {len(shards):,}: write {written:.1f} s, aggregate {seconds:.1f} s, "
          f"{peak:.0f} MiB peak, {rows:,} rows")  # fmt: skip
    shutil.rmtree(args.workdir)


if __name__ == "__main__":
    main()
