"""Bit-identity check for engine changes: save every result column and the final
weights of a set of chunks on one version of the code, compare on another.

The chunks cover the three datasets with every registry optimizer on the study's
grids (plus configurations that diverge at once, late, or only in their logits),
synthetic multiclass and regression tasks, float64 and no-dropout runs, so a speed
change that moves any number by one ulp is caught. NaNs compare equal.

    .venv/bin/python bench/golden.py --save /tmp/before.npz   # old code
    .venv/bin/python bench/golden.py --compare /tmp/before.npz  # new code
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_bench import grid, load

from lionsweep.optim import registry as optim
from lionsweep.train import engine
from lionsweep.train.engine import TrainSettings, train_chunk
from lionsweep.train.heads import Task, make_head

BASE = TrainSettings(threads=2)


def _with_divergent(hp: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Append configurations that overflow in epoch 1 (weights), and only in the logits."""
    out = {n: np.concatenate([v, v[:3]]) for n, v in hp.items()}
    out["lr"][-3:] = (1e6, 1e30, 30.0)
    out["weight_decay"][-3:] = (0.1, 1e-3, 0.0)
    return out


def _synthetic(task: str, n: int = 700, d: int = 9, c: int = 4, seed: int = 3):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(d, c))

    def make(m: int):
        x = rng.normal(size=(m, d)).astype(np.float32)
        z = x @ w + rng.normal(size=(m, c))
        return x, (z.argmax(1) if task == "multiclass" else 10.0 + 3.0 * z[:, 0])

    splits = {"train": make(n), "val": make(150), "test": make(151)}
    if task == "multiclass":
        return splits, Task("multiclass", n_classes=c)
    y = splits["train"][1]
    return splits, Task("regression", target_mean=float(y.mean()), target_std=float(y.std()))


def cases(k: int):
    """(name, splits, optimizer, hparams, settings, task) for every checked chunk."""
    for ds in ("spambase", "titanic", "mushroom"):
        splits = load(ds)
        for opt in ("lion", "adamw", "adam", "sgd"):
            yield f"{ds}/{opt}", splits, opt, _with_divergent(grid(ds, k, opt)), BASE, "binary"
    splits = load("titanic")
    no_drop = dataclasses.replace(BASE, dropout=0.0)
    yield "titanic/lion/nodrop", splits, "lion", grid("titanic", k), no_drop, "binary"
    f64 = dataclasses.replace(BASE, dtype="float64", epochs=5)
    yield "titanic/lion/f64", splits, "lion", _with_divergent(grid("titanic", 50)), f64, "binary"
    yield "titanic/adamw/f64", splits, "adamw", grid("titanic", 50, "adamw"), f64, "binary"
    # Evaluated away from the raw weights: Schedule-Free at x, weight EMA (absent before v3).
    for opt in ("schedulefree", "adamw_ema"):
        if opt in optim.names():
            yield f"titanic/{opt}", splits, opt, grid("titanic", k, opt), BASE, "binary"
    for task in ("multiclass", "regression"):
        splits, t = _synthetic(task)
        for opt in ("lion", "adamw"):
            hp = _with_divergent(grid("spambase", k, opt))
            yield f"{task}/{opt}", splits, opt, hp, BASE, t


def run(k: int) -> dict[str, np.ndarray]:
    torch.set_num_threads(2)
    out: dict[str, np.ndarray] = {}
    for name, splits, opt, hp, settings, task in cases(k):
        head = make_head(task)
        data = engine.device_data(splits, settings, head)
        dtype = getattr(torch, settings.dtype)
        hpt = {n: torch.as_tensor(np.asarray(v, dtype=np.float64)).to(dtype) for n, v in hp.items()}
        res, model = train_chunk(data, opt, hpt, 0, settings, False, head)
        for key, val in res.items():
            out[f"{name}:{key}"] = np.asarray(val)
        for i, t in enumerate(model.params()):
            out[f"{name}:param{i}"] = t.cpu().numpy()
        print(name, "diverged", int(res["diverged"].sum()), flush=True)
    return out


def compare(new: dict[str, np.ndarray], path: Path) -> int:
    old = dict(np.load(path))
    bad = 0
    for key in sorted(old.keys() | new.keys()):
        if key not in old or key not in new:
            print(f"MISSING {key}")
            bad += 1
        elif not np.array_equal(old[key], new[key], equal_nan=old[key].dtype.kind == "f"):
            diff = np.nanmax(np.abs(old[key].astype(np.float64) - new[key].astype(np.float64)))
            print(f"DIFFERS {key}: max |diff| {diff:g}")
            bad += 1
    print(f"{len(old)} arrays compared, {bad} differ")
    return bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=120)
    ap.add_argument("--save", type=Path)
    ap.add_argument("--compare", type=Path)
    args = ap.parse_args()
    res = run(args.k)
    if args.save:
        np.savez_compressed(args.save, **res)
    if args.compare:
        sys.exit(1 if compare(res, args.compare) else 0)


if __name__ == "__main__":
    main()
