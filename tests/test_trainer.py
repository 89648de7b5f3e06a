"""The training loop's cost-saving paths give exactly the numbers of the plain ones:
reused evaluations (issue 10), the per-step divergence check, the optimizer kernels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from helpers import linear_splits

from lionsweep.train import engine, trainer
from lionsweep.train.engine import TrainSettings, train_chunk
from lionsweep.train.heads import SPLITS, make_head

SEED = 5
SETTINGS = TrainSettings(hidden=8, dropout=0.25, epochs=4, batch_size=16)


def _splits():
    return linear_splits(90, 30)


def _hp(k: int = 8) -> dict[str, np.ndarray]:
    """Lion configurations whose best epochs differ (some last, some earlier), one diverging."""
    rng = np.random.default_rng(2)
    hp = {
        "lr": np.append(np.geomspace(3e-3, 1.0, k - 1), 1e6),
        "beta1": rng.uniform(0.5, 0.99, k),
        "beta2": np.full(k, 0.99),
        "weight_decay": np.linspace(0, 0.3, k),
    }
    hp["weight_decay"][-1] = 0.1
    return hp


def _chunk(splits, hp, settings):
    data = engine.device_data(splits, settings)
    hpt = {n: torch.as_tensor(v, dtype=torch.float64).float() for n, v in hp.items()}
    return train_chunk(data, "lion", hpt, SEED, settings, progress=False)


def _count_outputs(monkeypatch) -> list[tuple[int, int]]:
    """Record (models, rows) of every evaluation pass."""
    calls: list[tuple[int, int]] = []
    plain = trainer.predict

    def counting(model, data, *args, **kwargs):
        calls.append((model.k, data.n))
        return plain(model, data, *args, **kwargs)

    monkeypatch.setattr(trainer, "predict", counting)
    return calls


def test_assemble_evaluates_only_what_is_not_known(monkeypatch):
    """After the epochs' validation passes, assemble evaluates the final weights on
    train and test only (val: the last epoch's pass), and the best weights only of the
    models whose best epoch is not the last; the old code made 6 full passes."""
    splits, hp = _splits(), _hp()
    calls = _count_outputs(monkeypatch)
    res, _ = _chunk(splits, hp, SETTINGS)
    k, n = len(hp["lr"]), {s: len(splits[s][1]) for s in SPLITS}
    epochs = SETTINGS.epochs
    assert calls[:epochs] == [(k, n["val"])] * epochs
    stale = int(((res["best_epoch"] != epochs) & ~res["diverged"]).sum())
    assert 0 < stale < k - 1  # both kinds of model are present
    expected = [(k, n["train"]), (stale, n["train"]), (stale, n["val"])]
    assert calls[epochs:] == [*expected, (k, n["test"]), (stale, n["test"])]


@pytest.mark.parametrize("epochs", [1, 2, 3])
def test_best_metrics_equal_training_stopped_at_the_best_epoch(epochs):
    """Independent check of the reused best-epoch metrics: a model's best_* numbers are
    bitwise those of the same chunk trained for exactly its best epoch (common random
    numbers make a shorter run the prefix of a longer one)."""
    splits, hp = _splits(), _hp()
    full, _ = _chunk(splits, hp, dataclasses.replace(SETTINGS, epochs=4))
    short, _ = _chunk(splits, hp, dataclasses.replace(SETTINGS, epochs=epochs))
    last, _ = _chunk(splits, hp, SETTINGS)
    rows = np.flatnonzero(full["best_epoch"] == epochs)
    at_last = np.flatnonzero(full["best_epoch"] == SETTINGS.epochs)
    assert len(rows) > 0 and len(at_last) > 0
    for split in SPLITS:
        for metric in ("acc", "logloss", "auc", "f1", "balanced_acc"):
            key = f"{split}_{metric}"
            np.testing.assert_array_equal(full[f"best_{key}"][rows], short[key][rows])
            np.testing.assert_array_equal(full[f"best_{key}"][at_last], last[key][at_last])
    assert np.isnan(full["best_test_acc"][full["diverged"]]).all()


def test_dropout_masks_are_drawn_per_block_of_batches_with_the_same_numbers(monkeypatch):
    """Blocks of whole batches (no host-side draw or copy per step, no [H, n] mask of a
    whole epoch) that equal, column for column, the per-step masks the reference
    trainings use (common random numbers), whatever the block size."""
    from lionsweep.train.model import DROPOUT, ORDER, dropout_mask, epoch_batches, generator

    draws: list[int] = []
    plain = trainer.dropout_mask

    def counting(rows, *args):
        draws.append(rows)
        return plain(rows, *args)

    monkeypatch.setattr(trainer, "dropout_mask", counting)
    splits = _splits()
    _chunk(splits, _hp(), SETTINGS)
    assert draws == [len(splits["train"][1])] * SETTINGS.epochs  # small data: one block
    monkeypatch.setattr(trainer, "dropout_mask", plain)
    h, b, p = SETTINGS.hidden, SETTINGS.batch_size, SETTINGS.dropout
    monkeypatch.setattr(trainer, "KEEP_BLOCK_ELEMENTS", 2 * b * h + 1)  # two batches a block
    buf = trainer.Buffers.new(b, 2, h, 7, make_head(), torch.float32, torch.device("cpu"))
    g_block, g_step, g_order = (generator(SEED, s) for s in (DROPOUT, DROPOUT, ORDER))
    for _ in range(2):
        stream = trainer.KeepStream(90, b, buf, p, g_block)
        for idx in epoch_batches(90, b, g_order):
            step = dropout_mask(len(idx), h, p, g_step).t() * (1.0 / (1.0 - p))
            torch.testing.assert_close(stream.take(len(idx)), step, rtol=0, atol=0)
        assert stream.left == 0


def test_adam_update_is_bitwise_the_unfused_sequence():
    """The fused ``addcdiv`` denominator gives the very bits of sqrt(v) / bc2 + eps
    computed in two passes (the kernel's previous form), for per-model tensors."""
    from lionsweep.optim.kernels import adam_coefs, adam_update

    g = torch.Generator().manual_seed(0)
    k = 7
    p, grad = (torch.randn(k, 5, 9, generator=g) for _ in range(2))
    hp = {
        "lr": torch.rand(k, generator=g) * 1e-2,
        "beta1": torch.full((k,), 0.9),
        "beta2": torch.rand(k, generator=g) * 0.1 + 0.89,
        "eps": torch.rand(k, generator=g) * 1e-6,
        "weight_decay": torch.rand(k, generator=g) * 0.1,
    }
    c = adam_coefs(p, **hp, decoupled=True)
    m, v, p1 = torch.zeros_like(p), torch.zeros_like(p), p.clone()
    for step in (1, 2, 3):
        adam_update(p1, grad.clone(), m, v, c, step, torch.empty_like(p))
    m, v, p2 = torch.zeros_like(p), torch.zeros_like(p), p.clone()
    lrd, b1d, b2d = c.f64
    for step in (1, 2, 3):  # the unfused reference sequence
        p2.mul_(c.decay)
        m.lerp_(grad, 1.0 - c.beta1)
        v.mul_(c.beta2).addcmul_(grad * (1.0 - c.beta2), grad)
        size = (lrd / (1 - b1d**step)).to(p.dtype).view(-1, 1, 1)
        bc2 = torch.sqrt(1 - b2d**step).to(p.dtype).view(-1, 1, 1)
        denom = torch.sqrt(v).div_(bc2).add_(c.eps).div_(size)
        p2.addcdiv_(m, denom, value=-1.0)
    torch.testing.assert_close(p1, p2, rtol=0, atol=0)
