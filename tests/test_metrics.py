"""Batched metrics (binary, multiclass, regression) equal sklearn.metrics column by column."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lionsweep.train.metrics import binary_metrics, multiclass_metrics, regression_metrics

sk = pytest.importorskip("sklearn.metrics")
C = 4  # classes in the multiclass tests


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


def _probs(z: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.as_tensor(z), dim=1).numpy()


@pytest.mark.parametrize("ties", [False, True])
def test_multiclass_metrics_match_sklearn(ties):
    rng = np.random.default_rng(5)
    n, k = 200, 6
    y = rng.integers(0, C, n)
    z = rng.normal(scale=2.0, size=(k, C, n)) + 1.5 * np.eye(C)[y].T[None]
    if ties:
        z = np.round(z)
    z[1] = -z[1]  # worse than random
    z[2, 3] = -50  # never predicts class 3: macro F1 drops it only if also absent in y
    got = multiclass_metrics(torch.as_tensor(z), torch.as_tensor(y))
    # The same softmax call (layout) as the metrics: equal scores must tie in both.
    probs = torch.softmax(torch.as_tensor(z), dim=1).numpy()
    for j in range(k):
        p, pred = probs[j].T, z[j].argmax(axis=0)
        ref = {
            "acc": sk.accuracy_score(y, pred),
            "balanced_acc": sk.balanced_accuracy_score(y, pred),
            "f1_macro": sk.f1_score(y, pred, average="macro", zero_division=0.0),
            "logloss": sk.log_loss(y, p, labels=list(range(C))),
            "auc_ovr": sk.roc_auc_score(y, p, multi_class="ovr", average="macro"),
        }
        for name, value in ref.items():
            assert got[name][j].item() == pytest.approx(value, rel=1e-9, abs=1e-12), (name, j)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_multiclass_metrics_absent_class_and_non_finite():
    """A class absent from y: balanced accuracy and AUC skip it (sklearn refuses
    roc_auc there; we average the others), macro F1 counts it only if predicted."""
    y = np.array([0, 1, 1, 0, 1, 0, 2, 2])
    z = np.random.default_rng(0).normal(size=(3, C, len(y)))
    z[0, 3, 0] = 9.0  # model 0 predicts the absent class 3 once
    z[1, 0, 0] = math.nan
    z[2, 3] = -50.0  # model 2 never predicts it: macro F1 over 3 classes, not 4
    got = multiclass_metrics(torch.as_tensor(z), torch.as_tensor(y))
    for j in (0, 2):
        pred = z[j].argmax(axis=0)
        assert got["balanced_acc"][j].item() == pytest.approx(sk.balanced_accuracy_score(y, pred))
        f1 = sk.f1_score(y, pred, average="macro", zero_division=0.0)
        assert got["f1_macro"][j].item() == pytest.approx(f1, rel=1e-12)
    p = _probs(z[0].T)
    aucs = [sk.roc_auc_score(y == c, p[:, c]) for c in range(3)]
    assert got["auc_ovr"][0].item() == pytest.approx(np.mean(aucs))
    assert all(math.isnan(v[1].item()) for v in got.values())
    assert not any(math.isnan(v[2].item()) for v in got.values())


def test_regression_metrics_match_sklearn():
    rng = np.random.default_rng(2)
    y = rng.normal(100.0, 15.0, 120)
    pred = y[None, :] + rng.normal(scale=[[1.0], [10.0], [40.0]], size=(3, 120))
    got = regression_metrics(torch.as_tensor(pred[:, None, :]), torch.as_tensor(y))
    for j in range(3):
        assert got["rmse"][j].item() == pytest.approx(
            sk.root_mean_squared_error(y, pred[j]), rel=1e-12
        )
        assert got["mae"][j].item() == pytest.approx(sk.mean_absolute_error(y, pred[j]), rel=1e-12)
        assert got["r2"][j].item() == pytest.approx(sk.r2_score(y, pred[j]), rel=1e-12)
    const = np.full(5, 3.0)
    got = regression_metrics(
        torch.as_tensor(np.stack([const, const + 1])[:, None]), torch.as_tensor(const)
    )
    assert got["r2"].tolist() == [sk.r2_score(const, const), sk.r2_score(const, const + 1)]
