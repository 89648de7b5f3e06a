"""Study-level benchmark: the whole study against its FLOP floor, and the engine beside
its ``torch.func`` peers, each measured within one run (shared machines are noisy).

``--study`` times ``snakemake`` from prepared data to tables (the data is prepared
first, untimed) for a study named ``bench`` (results/bench/, deleted before each
repeat), measures ``torch.mm``'s GEMM peak before and after in the same process,
and prints one line per repeat and then the median and spread::

    study: <s> s for <n> trainings = <r>x the FLOP floor
        (<tflop> TFLOP at <peak> GFLOP/s torch.mm peak) on <device>   [one line]

The FLOP floor counts 4(D+1)H + 6H FLOPs per training row and 2(D+1)H + 2H per
evaluated row (each epoch's validation curve, then every split twice: the last and
the best epoch's weights), from sweep.parquet's trainings and each dataset's
meta.json. ``--engine`` prints, per dataset, the engine's ms per configuration
beside a ``torch.func`` vmap peer (and the same compiled, with ``--compile``).

    .venv/bin/python bench/study_bench.py --study --repeats 3 [--configfile extra.yaml]
    .venv/bin/python bench/study_bench.py --engine --k 1000 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_bench import gemm_peak, grid, load
from peers import vmap_peer

from lionsweep import layout
from lionsweep.config import validate
from lionsweep.train.engine import TrainSettings, train_grid

ROOT = Path(__file__).resolve().parents[1]
STUDY = "bench"


def flops_per_training(meta: dict, h: int, epochs: int) -> float:
    """The FLOP floor of one configuration (see the module docstring)."""
    d1 = len(meta["features"]) + 1
    rows = meta["rows"]
    evaluated = epochs * rows["val"] + 2 * (rows["train"] + rows["val"] + rows["test"])
    return epochs * rows["train"] * (4 * d1 * h + 6 * h) + evaluated * (2 * d1 * h + 2 * h)


def merge(base: dict, extra: dict) -> dict:
    """Mappings merged key by key, lists and scalars replaced: as ``--configfile`` does."""
    out = dict(base)
    for key, value in extra.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge(out[key], value) if both else value
    return out


def load_config(extra: list[str]) -> dict:
    """config/config.yaml with the extra files merged in and the schema's defaults filled
    in, as the workflow sees it (the prepared data's folder is a digest of it)."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for path in extra:
        config = merge(config, yaml.safe_load(Path(path).read_text()) or {})
    validate(config, ROOT / "workflow" / "schemas" / "config.schema.yaml")
    return config


def floor_tflop(config: dict, sweep: pd.DataFrame) -> float:
    """Total FLOP floor (TFLOP) of the trainings listed in sweep.parquet."""
    h, epochs = config["model"]["hidden"], config["training"]["epochs"]
    total = 0.0
    for dataset, n in sweep.groupby("dataset").size().items():
        folder = ROOT / layout.data_dir(dataset, config["datasets"][dataset], config["split"])
        meta = json.loads((folder / "meta.json").read_text())
        total += n * flops_per_training(meta, h, epochs)
    return total / 1e12


def mm_peak(device: torch.device, size: int = 3072, reps: int = 5) -> float:
    """``torch.mm``'s float32 GFLOP/s on ``device`` (on CPU: engine_bench.gemm_peak)."""
    if device.type == "cpu":
        return gemm_peak(size, reps)
    a, b = (torch.randn(size, size, device=device) for _ in range(2))
    torch.mm(a, b)
    sync(device)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9


def snakemake(args: argparse.Namespace, *targets: str) -> None:
    files = ["config/config.yaml", *args.configfile, str(args.study_file)]
    cmd = [sys.executable, "-m", "snakemake", *targets, "--cores", args.cores]
    subprocess.run([*cmd, "--quiet", "all", "--configfile", *files], cwd=ROOT, check=True)


def study(args: argparse.Namespace) -> None:
    """Time the whole study ``args.repeats`` times; one line each, then median and spread."""
    args.study_file = Path(ROOT / "results" / "bench-study.yaml")
    args.study_file.parent.mkdir(parents=True, exist_ok=True)
    bench = {"study": {"name": STUDY}, "training": {"device": args.device}}
    args.study_file.write_text(yaml.safe_dump(bench))
    device = torch.device(args.device)
    config = load_config(args.configfile)
    snakemake(args, "data")  # prepared data is shared and untimed
    ratios = []
    for _ in range(args.repeats):
        for folder in (layout.study_dir(STUDY), layout.study_logs(STUDY)):
            shutil.rmtree(ROOT / folder, ignore_errors=True)
        peak = mm_peak(device)
        t0 = time.perf_counter()
        snakemake(args)
        seconds = time.perf_counter() - t0
        peak = max(peak, mm_peak(device))
        sweep = pd.read_parquet(ROOT / layout.study_dir(STUDY) / "sweep.parquet")
        tflop = floor_tflop(config, sweep)
        ratios.append(seconds / (tflop * 1e3 / peak))
        print(
            f"study: {seconds:.1f} s for {len(sweep)} trainings = {ratios[-1]:.2f}x the FLOP "
            f"floor ({tflop:.1f} TFLOP at {peak:.0f} GFLOP/s torch.mm peak) on {device.type}",
            flush=True,
        )
    spread = max(ratios) - min(ratios)
    print(f"study median: {statistics.median(ratios):.2f}x the FLOP floor (spread {spread:.2f})")


def engine(args: argparse.Namespace) -> None:
    """Per dataset: the engine's ms per configuration beside the torch.func peers."""
    device = torch.device(args.device)
    settings = TrainSettings(epochs=args.epochs, device=args.device, threads=args.threads)
    for dataset in args.datasets:
        splits, hp = load(dataset), grid(dataset, args.k, "lion")
        times: dict[str, list[float]] = {"engine": [], "vmap": []}
        if args.compile:
            times["vmap+compile"] = []
        for _ in range(args.repeats):  # alternate, so load changes hit every variant
            t0 = time.perf_counter()
            train_grid(splits, "lion", hp, 0, settings, progress=False)
            sync(device)
            times["engine"].append((time.perf_counter() - t0) / args.k * 1e3)
            for name in times.keys() - {"engine"}:
                per, compile_s = vmap_peer(splits, hp, settings, device, "compile" in name)
                times[name].append(per * 1e3)
                if compile_s:
                    print(f"{dataset}: {name} compile time {compile_s:.1f} s", flush=True)
        med = {name: statistics.median(v) for name, v in times.items()}
        best_peer = min(v for name, v in med.items() if name != "engine")
        peers = ", ".join(f"{name} {v:.2f}" for name, v in med.items() if name != "engine")
        print(
            f"engine {dataset} K={args.k} on {device.type}: {med['engine']:.2f} ms/config; "
            f"{peers} ms/config; {best_peer / med['engine']:.1f}x the best peer",
            flush=True,
        )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", action="store_true", help="time the whole study (snakemake)")
    ap.add_argument("--engine", action="store_true", help="engine vs torch.func peers")
    ap.add_argument("--configfile", nargs="*", default=[], help="extra config files")
    ap.add_argument("--cores", default="all")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--datasets", nargs="+", default=["titanic", "mushroom", "spambase"])
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--compile", action="store_true", help="also the torch.compile'd peer")
    return ap.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.study:
        study(arguments)
    if arguments.engine:
        engine(arguments)
