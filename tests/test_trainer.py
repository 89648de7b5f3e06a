"""The training loop's cost-saving paths give exactly the numbers of the plain ones:
reused evaluations (issue 10), the per-step divergence check, the optimizer kernels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lionsweep import engine, trainer
from lionsweep.engine import TrainSettings, train_chunk
from lionsweep.heads import SPLITS

SEED = 5
SETTINGS = TrainSettings(hidden=8, dropout=0.25, epochs=4, batch_size=16)


def _splits(n: int = 90, d: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d)

    def make(m: int):
        x = rng.normal(size=(m, d)).astype(np.float32)
        return x, (x @ w + rng.normal(size=m) > 0).astype(np.int64)

    return {"train": make(n), "val": make(30), "test": make(31)}


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
    plain = trainer.outputs

    def counting(model, data, *args, **kwargs):
        calls.append((model.k, data.n))
        return plain(model, data, *args, **kwargs)

    monkeypatch.setattr(trainer, "outputs", counting)
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
