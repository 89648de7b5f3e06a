"""Snakemake's own cost at 1x-100x the default study (issue 19): the DAG that `report`
(and every run) builds. In a copy of the workflow, with the three datasets prepared from
the mirror first, ``snakemake -n`` plans the whole study with each grid's lr axis
multiplied by the scale (as bench/scale_bench.py's synthetic sweeps), in a fresh process::

    plan <factor>x: <jobs> jobs planned in <seconds> s, <MiB> MiB peak

``lionsweep report`` runs ``snakemake --report`` over that same DAG and packages the tables
and figures, whose number and size do not grow with the grids.

    .venv/bin/python bench/plan_scale.py --scales 1 10 100
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WRAPPER = (
    "import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
    "sys.exit(rc)"
)


def scaled(scale: int) -> dict:
    """config.yaml's grids with each lr axis ``scale`` times finer; fixed shards of 1,000."""
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    out: dict = {
        "study": {"name": f"plan{scale}x"},
        "sweep": {"shard_seconds": None, "shard_size": 1000},
    }
    out["optimizers"] = {}
    for name in cfg["study"]["optimizers"]:
        entry = cfg["optimizers"][name]
        grids = {
            "grid": entry["grid"],
            **{f"o:{k}": v for k, v in entry.get("grid_overrides", {}).items()},
        }
        new = {}
        for key, axes in grids.items():
            axes = [dict(a) for a in axes]
            for a in axes:
                if a["param"] == "lr" and "num" in a:
                    a["num"] *= scale
            new[key] = axes
        over = {k[2:]: v for k, v in new.items() if k.startswith("o:")}
        out["optimizers"][name] = {
            "grid": new["grid"],
            **({"grid_overrides": over} if over else {}),
        }
    return out


def run(work: Path, args: list[str]) -> tuple[float, float, str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env["LIONSWEEP_DATA_MIRROR"] = env.get(
        "LIONSWEEP_DATA_MIRROR", str(ROOT.parent / "shared" / "datasets")
    )
    start = time.perf_counter()
    snakemake = str(Path(sys.executable).parent / "snakemake")
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, snakemake, *args], cwd=work, env=env,
        capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    *_, peak = proc.stderr.strip().splitlines() or ["0"]
    if proc.returncode:
        raise SystemExit(f"snakemake {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return seconds, int(peak) / 1024, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="plan-scale-"))
    try:
        (work / "Snakefile").write_bytes((ROOT / "Snakefile").read_bytes())
        for sub in ("workflow", "config", "envs", "profiles"):
            if (ROOT / sub).exists():
                shutil.copytree(
                    ROOT / sub, work / sub, ignore=shutil.ignore_patterns("__pycache__")
                )
        run(work, ["data", "--cores", "2", "--quiet", "all"])  # prepared once, untimed
        for scale in args.scales:
            path = work / "config" / f"plan{scale}.yaml"
            path.write_text(yaml.safe_dump(scaled(scale), sort_keys=False))
            seconds, peak, out = run(work, ["-n", "--quiet", "rules", "--configfile", str(path)])
            jobs = sum(int(n) for n in re.findall(r"^\S+\s+(\d+)$", out, re.MULTILINE)[:-1])
            total = re.search(r"^total\s+(\d+)$", out, re.MULTILINE)
            jobs = int(total.group(1)) if total else jobs
            print(
                f"plan {scale}x: {jobs:,} jobs planned in {seconds:.1f} s, {peak:.0f} MiB peak",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
