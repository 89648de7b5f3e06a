"""`make gpu-check`: the CUDA path on the first GPU that is lent, in one command.

Runs (a) `pytest -m gpu` (CUDA float32 vs the CPU float64 reference for every optimizer
and head, common random numbers on CUDA, divergence, no host read per step), (b) the
test study end to end on CUDA through Snakemake (config/test.yaml with training.device
cuda, as study `gpu-check`), (c) the `make bench-gpu` lines with one repeat; then a
one-screen summary. Without CUDA it says so in one line and exits 0.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def cuda() -> str | None:
    """The GPU's name, or None without CUDA (torch decides, as the engine does)."""
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else None


def step(name: str, cmd: list[str], keep: int) -> tuple[str, bool, float, list[str]]:
    """Run ``cmd`` in the repository: (name, ok, seconds, its last ``keep`` lines)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return name, proc.returncode == 0, time.perf_counter() - start, lines[-keep:]


def main() -> int:
    gpu = cuda()
    if gpu is None:
        print("gpu-check: torch sees no CUDA device here: the gpu tests skip, nothing measured")
        return 0
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as extra:
        extra.write("study: {name: gpu-check}\ntraining: {device: cuda}\n")
    smk = [str(BIN / "snakemake"), "--cores", "4", "--forceall"]
    bench = [sys.executable, "bench/study_bench.py", "--repeats", "1", "--device", "cuda"]
    results = [
        step("simulated tier", [sys.executable, "-m", "lionsweep", "gpu-check", "--simulate"], 1),
        step("device reads", [sys.executable, "-m", "lionsweep", "gpu-check"], 1),
        step("pytest -m gpu", [str(BIN / "pytest"), "-m", "gpu", "-q", "tests/test_gpu.py"], 1),
        step("test study", [*smk, "--configfile", "config/test.yaml", extra.name], 1),
        step("bench engine", [*bench, "--engine", "--k", "1000", "--compile"], 6),
        step("bench study", [*bench, "--study"], 2),
    ]
    print(f"gpu-check on {gpu} ({time.strftime('%Y-%m-%d')}):")
    for name, ok, seconds, lines in results:
        print(f"  {'ok  ' if ok else 'FAIL'} {name} ({seconds:.0f} s)")
        for line in lines:
            print(f"       {line}")
    return 0 if all(ok for _, ok, _, _ in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
