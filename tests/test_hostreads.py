"""No host read in the training loop (issue 17): a dispatch-level counter on the CPU
float64 path, which takes ``torch.mm`` and the eager optimizer kernels as CUDA does.

Each host read would stall a GPU until the host catches up. Counting them on CPU needs
no GPU: 40 more training steps at an equal number of epochs, or one more epoch, must not
add a single read (the old loop read once per step: ``bool(isfinite(out).all())``)."""

from __future__ import annotations

import pytest
import torch

from lionsweep.train.engine import TrainSettings
from lionsweep.train.gpucheck import B, measure
from lionsweep.train.hostreads import HostReads
from lionsweep.train.model import onednn_linear

SETTINGS = TrainSettings(hidden=8, dropout=0.25, batch_size=B, dtype="float64", device="cpu")


def per_step_and_epoch(optimizer: str, task: str) -> tuple[float, float]:
    """Three runs, one chunk each, a configuration diverging in each (lionsweep.train.gpucheck):
    40 more steps at equal epochs, and one more epoch, than a 2-epoch run."""
    reads = measure(optimizer, task, SETTINGS, simulate=False)
    assert reads.chunks == 1
    return reads.per_step, reads.per_epoch


def test_the_cpu_float64_path_is_the_mm_path():
    """The counted path must be the one CUDA takes: oneDNN only serves float32 on CPU."""
    from lionsweep.train.model import _onednn_ok

    assert not _onednn_ok(torch.zeros(2, 2, dtype=torch.float64))
    assert onednn_linear() is None or _onednn_ok(torch.zeros(2, 2))


@pytest.mark.parametrize(
    ("optimizer", "task"),
    [
        ("lion", "binary"),
        ("adamw", "multiclass"),
        ("adam", "regression"),
        ("sgd", "binary"),
        ("soap", "binary"),  # its per-model refresh schedule is decided on the host
        ("adamw_ema", "binary"),  # the weight EMA's update and evaluation
        ("schedulefree", "binary"),  # evaluated at x (its eval_point)
    ],
)
def test_no_host_read_per_step_or_epoch(optimizer, task):
    """Every optimizer and every head once (the simulated tier runs all 12 pairs)."""
    assert per_step_and_epoch(optimizer, task) == (0.0, 0.0)


def test_the_counter_sees_each_kind_of_read():
    """The counter is what the tests above rely on: every kind of read is counted once."""
    t = torch.ones(4, dtype=torch.float64)
    with HostReads() as counter:
        bool(t.any())
        t.sum().item()
        t.nonzero()
        torch.equal(t, t)
        t.numpy()
        t.tolist()
        t[t > 0]
    assert counter.count == 7, counter.ops


def _simulated(*args: str) -> str:
    """`lionsweep gpu-check --simulate ARGS`: its last line (the summary)."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "lionsweep", "gpu-check", "--simulate", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip().splitlines()[-1]


CLEAN = "chunks, 0 device mismatches, 0 host reads per step, 0 per epoch"


def test_simulated_cuda_tier_passes():
    """`lionsweep gpu-check --simulate` on fake CUDA tensors: every registry optimizer on
    the binary head, and the other two heads with Lion (the heads' code is shared by all
    optimizers). `make gpu-check` runs every optimizer x head; in CI that took minutes."""
    from lionsweep.optim import registry as optim

    every = _simulated("--tasks", "binary")
    assert every.startswith(f"simulated cuda: {2 * len(optim.names())} {CLEAN}"), every
    heads = _simulated("--optimizers", "lion", "--tasks", "multiclass", "regression")
    assert heads.startswith(f"simulated cuda: 4 {CLEAN}"), heads


def test_simulation_catches_a_device_mismatch(monkeypatch):
    """A CPU tensor slipped into the loop fails the simulated tier (checked on purpose)."""
    from lionsweep.train import gpucheck, trainer

    plain = trainer.load_batch

    def leaky(buf, train, idx, keep):
        nb = plain(buf, train, idx, keep)
        buf.w[:nb] += torch.zeros(nb)  # a host tensor: a mismatch on any GPU
        return nb

    monkeypatch.setattr(trainer, "load_batch", leaky)
    monkeypatch.setattr("lionsweep.train.engine.load_batch", leaky)
    settings = TrainSettings(hidden=8, batch_size=B, device="cuda")
    with pytest.raises(Exception, match="device"):
        gpucheck.loop_reads("lion", "binary", 5 * B, 1, settings, simulate=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_without_cuda_gpu_check_says_so_in_one_line_and_succeeds():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for cmd in (["-m", "lionsweep", "gpu-check"], [str(root / "bench" / "gpu_check.py")]):
        proc = subprocess.run([sys.executable, *cmd], capture_output=True, text=True, cwd=root)
        assert proc.returncode == 0, proc.stderr
        assert len(proc.stdout.strip().splitlines()) == 1 and "no CUDA device" in proc.stdout
