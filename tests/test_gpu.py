"""The CUDA path on a real GPU (`pytest -m gpu`, run by `make gpu-check`); skipped with
the reason where torch sees no CUDA device, so the default run (CI) never fails on it.

Bounds: CUDA float32 against the CPU float64 reference after 3 epochs, for every
optimizer and head: the last epoch's validation loss within ABS (CPU float32 is within
5e-7 of the reference on these problems; 1e-4 leaves room for other GEMM and reduction
orders, not for a bug). Lion's sign update is the loosest (a near-zero momentum can take
the other sign in float32), hence its own bound. Common random numbers: bit for bit on
one device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lionsweep.optim import registry as optim
from lionsweep.train.engine import TrainSettings, train_grid
from lionsweep.train.gpucheck import hparams_for, splits_for
from lionsweep.train.heads import TASKS

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device"),
]
SETTINGS = TrainSettings(hidden=16, dropout=0.2, epochs=3, batch_size=16, device="cuda")
ABS = {"lion": 1e-3, "adamw": 1e-4, "adam": 1e-4, "sgd": 1e-4}


def reference_gap(device: str, optimizer: str, task: str) -> float:
    """Largest |float32 on ``device`` - float64 on CPU| of the final validation loss
    (the configurations that do not diverge; the last one does, on both)."""
    splits, t = splits_for(task, 160)
    hp = hparams_for(optimizer, 4)
    f32 = TrainSettings(**{**SETTINGS.__dict__, "device": device})
    f64 = TrainSettings(**{**SETTINGS.__dict__, "device": "cpu", "dtype": "float64"})
    got = train_grid(splits, optimizer, hp, 0, f32, False, t)
    ref = train_grid(splits, optimizer, hp, 0, f64, False, t)
    assert got["diverged"].tolist() == ref["diverged"].tolist() == [False] * 3 + [True]
    last = np.abs(got["curve_val_loss"][:3, -1] - ref["curve_val_loss"][:3, -1])
    return float(last.max())


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("optimizer", optim.names())
def test_cuda_float32_matches_the_cpu_float64_reference(optimizer, task):
    assert reference_gap("cuda", optimizer, task) <= ABS[optimizer]


@pytest.mark.parametrize("task", TASKS)
def test_common_random_numbers_on_cuda(task):
    """A configuration alone equals the same configuration inside a chunk of 1,000."""
    splits, t = splits_for(task, 160)
    hp = hparams_for("adamw", 1000)
    hp["lr"] = np.geomspace(1e-4, 1e-1, 1000)
    many = train_grid(splits, "adamw", hp, 0, SETTINGS, False, t)
    for k in (0, 517, 999):
        alone = train_grid(
            splits, "adamw", {h: v[k : k + 1] for h, v in hp.items()}, 0, SETTINGS, False, t
        )
        for key, value in alone.items():
            if key != "device":
                np.testing.assert_array_equal(value[0], many[key][k], err_msg=f"{key} #{k}")


def test_divergence_on_cuda():
    """The last configuration overflows: flagged in epoch 1, NaN, the others unaffected."""
    splits, t = splits_for("binary", 160)
    hp = hparams_for("lion", 4)
    res = train_grid(splits, "lion", hp, 0, SETTINGS, False, t)
    assert res["diverged"].tolist() == [False] * 3 + [True]
    assert res["diverged_epoch"][3] == 1 and res["best_epoch"][3] == -1
    assert np.isnan(res["test_auc"][3]) and np.isnan(res["curve_val_loss"][3]).all()
    ref = train_grid(splits, "lion", {h: v[:3] for h, v in hp.items()}, 0, SETTINGS, False, t)
    for key in ref:
        if key != "device":
            np.testing.assert_array_equal(res[key][:3], ref[key], err_msg=key)


def test_no_host_read_per_step_on_cuda():
    from lionsweep.train.gpucheck import check_all

    failures, worst = check_all("cuda", simulate=False)
    assert not failures and worst.per_step == 0 and worst.per_epoch == 0
