"""The 2026 field (issue 20) through the engine, and what the registry tests cannot
show: Muon against the unmodified (bfloat16) torch.optim.Muon, Schedule-Free's
evaluation point, and the parameter roles."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from helpers import linear_splits
from test_registry import TEST_HP

from lionsweep.optim import references
from lionsweep.optim import registry as optim
from lionsweep.optim.kernels_matrix import newton_schulz
from lionsweep.optim.kernels_momentum import schedulefree_x
from lionsweep.optim.roles import HIDDEN, HIDDEN_BIAS, OTHER, ROLES, default_roles, parts
from lionsweep.train import engine
from lionsweep.train.engine import TrainSettings, train_chunk
from lionsweep.train.model import BatchedMLP

FIELD = optim.names()[4:]  # after lion, adamw, adam, sgd
SETTINGS = TrainSettings(hidden=8, dropout=0.2, epochs=4, batch_size=16)
SEED = 3


def _splits():
    return linear_splits(120, 40)


def _defaults(name: str, k: int) -> dict[str, np.ndarray]:
    """Each optimizer's defaults, lr spread over a decade around its default."""
    spec = optim.spec(name)
    hp = {h: np.full(k, p.default) for h, p in spec.hparams.items()}
    for h in ("lr", "muon_lr"):
        if h in hp:
            hp[h] = hp[h] * np.geomspace(0.3, 3.0, k)
    return hp


def _chunk(name: str, hp: dict[str, np.ndarray], settings: TrainSettings):
    data = engine.device_data(_splits(), settings)
    dtype = getattr(torch, settings.dtype)
    hpt = {h: torch.as_tensor(v, dtype=torch.float64).to(dtype) for h, v in hp.items()}
    return train_chunk(data, name, hpt, SEED, settings, progress=False)


@pytest.mark.parametrize("name", FIELD)
def test_trains_through_the_engine(name):
    """float32, defaults: finite results, nothing diverges, the weights moved and the
    validation loss fell for most configurations."""
    res, model = _chunk(name, _defaults(name, 4), SETTINGS)
    assert not res["diverged"].any()
    for key in ("test_logloss", "val_logloss", "best_val_auc"):
        assert np.isfinite(res[key]).all(), key
    assert all(torch.isfinite(t).all() for t in model.params())
    curve = res["curve_val_loss"]
    assert (curve[:, -1] < curve[:, 0]).sum() >= 2 or (curve[:, -1] < 0.69).all()


@pytest.mark.parametrize("name", FIELD)
def test_diverged_model_is_frozen(name):
    """An absurd lr overflows one model; from then on its weights do not change
    (every field step leaves a frozen model, lr = weight decay = 0, unchanged)."""
    hp = _defaults(name, 3)
    for h in ("lr", "muon_lr"):
        if h in hp:
            hp[h][1] = 1e30
    hp["weight_decay"][1] = 0.0 if name == "adan" else 1e-3  # Adan's p/(1+lr*wd) tames it
    r2, m2 = _chunk(name, hp, dataclasses.replace(SETTINGS, epochs=2))
    r3, m3 = _chunk(name, hp, dataclasses.replace(SETTINGS, epochs=3))
    assert r2["diverged"].tolist() == [False, True, False]
    assert r2["diverged_epoch"][1] == r3["diverged_epoch"][1]
    for key, t in m2.model_state(1).items():
        torch.testing.assert_close(m3.model_state(1)[key], t, rtol=0, atol=0, equal_nan=True)


def test_muon_is_torch_muon_up_to_its_bfloat16():
    """Our Newton-Schulz runs in the parameter's dtype; torch.optim.Muon's in bfloat16.
    One step from the same point differs by bfloat16 rounding of the orthogonalised
    update only: |delta| <= 2% of the largest update entry (bf16 has 8 bits)."""
    g = torch.Generator().manual_seed(0)
    w, grad = torch.randn(16, 12, generator=g), torch.randn(16, 12, generator=g)
    hp = {h: v[0] for h, v in TEST_HP["muon"].items()} | {"muon_lr": 1.0, "weight_decay": 0.0}
    ref_w = w.clone().requires_grad_(True)
    ref = references.MuonAdamW([ref_w], muon_lr=1.0, weight_decay=0.0, roles=[HIDDEN])
    ref.exact_muon = False
    ref_w.grad = grad.clone()
    ref.step()
    ours = w[None].clone()
    states = [[torch.zeros_like(ours)], [torch.zeros_like(ours)]]
    hpt = {h: torch.tensor([v]) for h, v in hp.items()}
    optim.batched_step("muon", [ours], [grad[None].clone()], states, hpt, 1, roles=[HIDDEN])
    step_ours, step_ref = w - ours[0], w - ref_w.detach()
    assert 0 < (step_ours - step_ref).abs().max() <= 0.02 * step_ours.abs().max()


def test_newton_schulz_orthogonalises_each_model_alone():
    """Per model: the same as that model alone, and near-orthogonal rows (the quintic
    iteration leaves singular values in roughly [0.5, 1.5])."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 7, 4, generator=g, dtype=torch.float64)
    x[2] *= 1e6  # scale does not leak across models
    y = newton_schulz(x)
    for k in range(5):
        torch.testing.assert_close(newton_schulz(x[k : k + 1])[0], y[k], rtol=0, atol=1e-14)
        s = torch.linalg.svdvals(y[k])
        assert ((s > 0.5) & (s < 1.5)).all()


def test_schedulefree_x_is_the_reference_eval_point():
    """schedulefree_x(y, z, beta1) is the parameter the reference's eval() sets."""
    k, steps = 3, 7
    hp = {h: v[:k] for h, v in TEST_HP["schedulefree"].items()}
    g = torch.Generator().manual_seed(2)
    p = torch.randn(k, 4, 3, generator=g, dtype=torch.float64)
    grads = [torch.randn(k, 4, 3, generator=g, dtype=torch.float64) for _ in range(steps)]
    y, states = p.clone(), [[torch.zeros_like(p)], [torch.zeros_like(p)]]
    hpt = {h: torch.tensor(v, dtype=torch.float64) for h, v in hp.items()}
    for step, gr in enumerate(grads, 1):
        optim.batched_step("schedulefree", [y], [gr.clone()], states, hpt, step)
    x = schedulefree_x(y, states[0][0], hpt["beta1"])
    for j in range(k):
        w = p[j].clone().requires_grad_(True)
        ref = references.schedulefree([w], {h: v[j] for h, v in hp.items()})
        for gr in grads:
            w.grad = gr[j].clone()
            ref.step()
        torch.testing.assert_close(y[j], w.detach(), rtol=0, atol=1e-12)
        ref.eval()
        torch.testing.assert_close(x[j], w.detach(), rtol=0, atol=1e-12)


def test_roles():
    assert set(BatchedMLP.ROLES) <= set(ROLES)
    w1 = torch.arange(2 * 3 * 4.0).view(2, 3, 4)
    (w, r1), (b, r2) = parts(w1, HIDDEN_BIAS)
    assert (r1, r2) == (HIDDEN, OTHER) and w.shape == (2, 3, 3) and b.shape == (2, 3, 1)
    net = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    assert default_roles(list(net.parameters())) == [HIDDEN, OTHER, OTHER, OTHER]
    with pytest.raises(ValueError, match="unknown parameter role"):
        parts(w1, "embedding")
