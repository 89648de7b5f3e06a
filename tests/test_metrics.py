"""Batched metrics equal sklearn.metrics column by column."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lionsweep.metrics import binary_metrics

sk = pytest.importorskip("sklearn.metrics")


def _reference(z: np.ndarray, y: np.ndarray) -> dict[str, float]:
    p = 1 / (1 + np.exp(-z.astype(np.float64)))
    pred = (z > 0).astype(int)
    out = {
        "acc": sk.accuracy_score(y, pred),
        "balanced_acc": sk.balanced_accuracy_score(y, pred),
        "f1": sk.f1_score(y, pred, zero_division=0.0),
        "logloss": sk.log_loss(y, p, labels=[0, 1]),
    }
    out["auc"] = sk.roc_auc_score(y, z) if 0 < y.sum() < len(y) else math.nan
    return out


@pytest.mark.parametrize("ties", [False, True])
def test_matches_sklearn_on_random_data(ties):
    rng = np.random.default_rng(3)
    n, k = 257, 9
    y = rng.integers(0, 2, n)
    z = rng.normal(scale=3.0, size=(n, k)) + y[:, None]
    if ties:  # coarse scores: many tied values, some exactly 0
        z = np.round(z)
    z[:, 0] = -z[:, 0]  # a worse-than-random column
    got = binary_metrics(torch.as_tensor(z), torch.as_tensor(y))
    for j in range(k):
        ref = _reference(z[:, j], y)
        for name, value in ref.items():
            assert got[name][j].item() == pytest.approx(value, rel=1e-9, abs=1e-12), (name, j)


def test_float32_logits_and_extremes():
    """Saturated logits: the clipped log-loss equals sklearn's within its own rounding."""
    y = np.array([0, 1, 1, 0, 1])
    z = np.array([[-50.0, 40.0, 3.0, 2.0, -1.0]], dtype=np.float32).T
    got = binary_metrics(torch.as_tensor(z), torch.as_tensor(y))
    ref = _reference(z[:, 0], y)
    for name, value in ref.items():
        assert got[name][0].item() == pytest.approx(value, rel=1e-6), name


def test_degenerate_cases():
    y = np.ones(6, dtype=np.int64)  # one class only
    z = np.array([[1.0, -1.0, 2.0, -3.0, 0.0, 0.5], [-1.0] * 6]).T
    got = binary_metrics(torch.as_tensor(z), torch.as_tensor(y))
    assert math.isnan(got["auc"][0].item())
    # balanced accuracy = recall of the one present class, as sklearn
    assert got["balanced_acc"][0].item() == pytest.approx(3 / 6)
    assert got["f1"][1].item() == 0.0  # nothing predicted positive: zero_division=0
    assert got["f1"][1].item() == sk.f1_score(y, np.zeros(6, int), zero_division=0.0)


def test_non_finite_logits_give_nan():
    y = np.array([0, 1, 0, 1])
    z = np.array([[0.1, -0.2, 0.3, 0.4], [0.1, math.nan, 0.3, 0.4], [0.1, math.inf, 0.3, 0.4]]).T
    got = binary_metrics(torch.as_tensor(z), torch.as_tensor(y))
    for v in got.values():
        assert not math.isnan(v[0].item())
        assert math.isnan(v[1].item()) and math.isnan(v[2].item())
