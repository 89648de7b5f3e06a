"""The private oneDNN GEMM is a guarded fast path; torch.mm is the tested fallback."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lionsweep.train import model
from lionsweep.train.engine import TrainSettings, train_grid

needs_onednn = pytest.mark.skipif(
    model.onednn_linear() is None, reason="this torch build has no usable oneDNN linear"
)


@pytest.fixture
def probe():
    """Re-probe inside the test, and again afterwards, so patches never leak."""
    model.onednn_linear.cache_clear()
    yield model.onednn_linear
    model.onednn_linear.cache_clear()


def _mats(m: int = 512, n: int = 96, k: int = 65):
    g = torch.Generator().manual_seed(0)
    return torch.randn(m, k, generator=g), torch.randn(n, k, generator=g)


@needs_onednn
@pytest.mark.parametrize("relu", [False, True])
def test_both_paths_agree(monkeypatch, relu):
    a, b = _mats()
    fast = model.gemm_nt(a, b, relu=relu)
    monkeypatch.setattr(model, "onednn_linear", lambda: None)
    slow = model.gemm_nt(a, b, out=torch.empty(512, 96), relu=relu)
    ref = (a.double() @ b.double().t()).clamp(min=0 if relu else -np.inf)
    # float32 sums of 65 products ~N(0, 65): both within a few ulp of |sum| ~ 10
    for got in (fast, slow):
        torch.testing.assert_close(got.double(), ref, rtol=0, atol=1e-4)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-4)


def test_missing_op_selects_mm(monkeypatch, probe):
    monkeypatch.setattr(model, "ONEDNN_OP", "_no_such_linear_op")
    assert probe() is None
    a, b = _mats()
    out = torch.empty(512, 96)
    res = model.gemm_nt(a, b, out=out, relu=True)
    assert res.data_ptr() == out.data_ptr()  # torch.mm wrote into the buffer
    torch.testing.assert_close(res, torch.mm(a, b.t()).relu(), rtol=0, atol=0)


@pytest.mark.parametrize(
    "broken",
    [
        lambda a, b, bias, attr: a @ b.t(),  # signature changed: TypeError
        lambda a, b, *rest: torch.zeros(len(a), len(b)),  # runs, wrong numbers
        lambda *args: (_ for _ in ()).throw(RuntimeError("no kernel")),  # fails at run time
    ],
)
def test_changed_op_selects_mm(monkeypatch, probe, broken):
    monkeypatch.setattr(model, "_load_onednn_op", lambda: broken)
    assert probe() is None
    assert not model._onednn_ok(torch.zeros(2, 2))


def test_probed_once(monkeypatch, probe):
    calls = []
    real = model._load_onednn_op
    monkeypatch.setattr(model, "_load_onednn_op", lambda: calls.append(1) or real())
    a, b = _mats(32, 8, 5)
    for _ in range(5):
        model.gemm_nt(a, b)
    assert len(calls) == 1


@needs_onednn
def test_engine_on_either_path(monkeypatch):
    """The whole engine on the fallback gives the same models to float32 rounding."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 7)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(np.int64)
    splits = {"train": (x[:120], y[:120]), "val": (x[120:160], y[120:160])}
    splits["test"] = (x[160:], y[160:])
    hp = {
        "lr": np.array([1e-3, 1e-2]),
        "beta1": np.array([0.9, 0.8]),
        "beta2": np.array([0.999, 0.99]),
        "weight_decay": np.array([0.0, 0.01]),
        "eps": np.array([1e-8, 1e-8]),
    }
    settings = TrainSettings(hidden=16, epochs=3, batch_size=32, threads=1)
    fast = train_grid(splits, "adamw", hp, 0, settings, progress=False)
    monkeypatch.setattr(model, "onednn_linear", lambda: None)
    slow = train_grid(splits, "adamw", hp, 0, dataclasses.replace(settings), progress=False)
    for key in ("val_logloss", "test_logloss", "train_auc"):
        np.testing.assert_allclose(fast[key], slow[key], rtol=1e-4, err_msg=key)
    assert np.abs(fast["test_acc"] - slow["test_acc"]).max() <= 1 / 40
