"""Preparing many datasets (issue 19: 200 datasets in under 5 minutes on 2 cores).

Writes ``--datasets`` synthetic CSV files (400 rows, 6 numeric features, one categorical,
a binary target) to a mirror folder, registers them in a study config as
docs/own-study.md describes, and times ``snakemake data --cores <n>`` in a copy of the
workflow (what a user clones), so the repository's results/ are never touched::

    datasets <n>: <wall> s wall, <cpu> s CPU (snakemake and its jobs), <jobs> jobs

    .venv/bin/python bench/many_datasets.py --datasets 200 [--cores 2]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
ROWS = 400


def write_dataset(folder: Path, i: int) -> dict:
    """One CSV in ``folder`` and its config entry."""
    rng = np.random.default_rng(i)
    x = rng.normal(size=(ROWS, 6))
    colour = rng.choice(["red", "green", "blue"], ROWS)
    label = np.where(x[:, 0] + 0.5 * rng.normal(size=ROWS) > 0, "yes", "no")
    lines = ["f0,f1,f2,f3,f4,f5,colour,label"]
    lines += [
        ",".join([*(f"{v:.6f}" for v in row), c, y])
        for row, c, y in zip(x, colour, label, strict=True)
    ]
    path = folder / f"set{i:03d}.csv"
    path.write_text("\n".join(lines) + "\n")
    return {
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "read": {"header": True},
        "target": "label",
        "task": "binary",
        "positive": "yes",
        "features": None,
        "categorical": ["colour"],
        "dropna": True,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="many-datasets-"))
    try:
        mirror = work / "mirror"
        mirror.mkdir()
        entries = {f"set{i:03d}": write_dataset(mirror, i) for i in range(args.datasets)}
        (work / "Snakefile").write_bytes((ROOT / "Snakefile").read_bytes())
        for sub in ("workflow", "config", "envs", "profiles"):
            if (ROOT / sub).exists():
                shutil.copytree(
                    ROOT / sub, work / sub, ignore=shutil.ignore_patterns("__pycache__")
                )
        study = {
            "study": {"name": "many", "datasets": list(entries), "optimizers": ["lion"]},
            "data_mirror": str(mirror),
            "datasets": entries,
        }
        (work / "config" / "many.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        command = [
            str(Path(sys.executable).parent / "snakemake"),
            "data",
            "--cores",
            str(args.cores),
        ]
        command += ["--configfile", "config/many.yaml", "--quiet", "all"]
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode:
            raise SystemExit(f"snakemake failed:\n{proc.stderr[-3000:]}")
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        prepared = len(list(work.glob("results/data/*/*/meta.json")))
        print(
            f"datasets {args.datasets}: {wall:.1f} s wall, {usage.ru_utime + usage.ru_stime:.1f} s "
            f"CPU (snakemake and its jobs), {prepared} prepared, {args.cores} cores"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
