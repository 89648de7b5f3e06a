"""Successive halving's saving in wall time: ms per configuration with and without it.

The same K configurations of the study's grid on one dataset, trained by
``train_grid`` without halving and with ``training.halving``-style rungs, alternated
``--repeats`` times in one process (the machine is shared: only the ratio within one
run means something). Prints the model-epochs ratio (the ideal) beside the measured
wall-time ratio, and checks that the survivors' numbers equal the unhalved run's.

    .venv/bin/python bench/halving_bench.py --dataset spambase --k 500
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_bench import grid, load

from lionsweep.sweep.halving import Halving, model_epochs
from lionsweep.train.engine import TrainSettings, train_grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="spambase")
    ap.add_argument("--optimizer", default="lion")
    ap.add_argument("--k", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--min-epochs", type=int, default=5)
    ap.add_argument("--eta", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(2)
    splits, hp = load(args.dataset), grid(args.dataset, args.k, args.optimizer)
    settings = TrainSettings(epochs=args.epochs, threads=2)
    halving = Halving(args.min_epochs, args.eta)
    times: dict[str, list[float]] = {"full": [], "halving": []}
    results = {}
    for _ in range(args.repeats):
        for name, h in (("full", None), ("halving", halving)):
            start = time.perf_counter()
            results[name] = train_grid(
                splits, args.optimizer, hp, 0, settings, progress=False, halving=h
            )
            times[name].append(time.perf_counter() - start)
    full, half = results["full"], results["halving"]
    done = half["stopped_epoch"] == -1
    same = all(
        np.array_equal(full[c][done], half[c][done], equal_nan=True)
        for c in full
        if c != "device" and full[c].dtype.kind == "f"
    )
    ms = {n: 1000 * min(t) / args.k for n, t in times.items()}
    ideal = model_epochs(args.k, args.epochs, halving) / (args.k * args.epochs)
    print(
        f"{args.dataset}/{args.optimizer} K={args.k} epochs={args.epochs} "
        f"halving(min_epochs={args.min_epochs}, eta={args.eta}): "
        f"{ms['full']:.2f} ms/config full, {ms['halving']:.2f} ms/config halving, "
        f"ratio {ms['halving'] / ms['full']:.3f} (model-epochs ratio {ideal:.3f}); "
        f"survivors identical: {same}"
    )


if __name__ == "__main__":
    main()
