"""Every registry optimizer equals its reference, model slice by model slice.

Adding an optimizer = one REGISTRY entry + its row in ``TEST_HP`` below (values
spanning its range); ``test_every_optimizer_has_test_values`` enforces the row.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from lionsweep.errors import LionSweepError
from lionsweep.optim import drivers, hparams
from lionsweep.optim import registry as optim
from lionsweep.optim.roles import HIDDEN, HIDDEN_BIAS, OTHER

# Per-model values, cycled to K: extremes of each range on purpose (beta 0, wd 0,
# momentum 0 with nesterov 1, large decay), so no branch of a kernel is skipped.
TEST_HP: dict[str, dict[str, list[float]]] = {
    "lion": {
        "lr": [1e-3, 3e-2, 1e-4, 5e-3, 1e-2],
        "beta1": [0.9, 0.8, 0.95, 0.0, 0.5],
        "beta2": [0.99, 0.999, 0.9, 0.98, 0.0],
        "weight_decay": [0.0, 0.1, 0.05, 1.0, 0.3],
    },
    "adamw": {
        "lr": [1e-3, 3e-2, 1e-4, 5e-3, 1e-2],
        "beta1": [0.9, 0.8, 0.95, 0.5, 0.0],
        "beta2": [0.99, 0.999, 0.9, 0.98, 0.5],
        "weight_decay": [0.0, 0.1, 0.05, 1.0, 0.01],
        "eps": [1e-8, 1e-6, 1e-3, 1e-8, 1e-1],
    },
    # Not adamw's row: coupled L2 decay goes through the moments (wd up to 2, beta1 0
    # so it is not averaged away), beta2 below beta1, and eps large enough to matter.
    "adam": {
        "lr": [1e-2, 1e-3, 3e-2, 1e-4, 5e-3],
        "beta1": [0.0, 0.9, 0.5, 0.99, 0.8],
        "beta2": [0.9, 0.999, 0.99, 0.5, 0.95],
        "weight_decay": [0.5, 0.0, 1e-3, 2.0, 0.1],
        "eps": [1e-3, 1e-8, 1e-1, 1e-6, 1e-8],
    },
    "sgd": {
        "lr": [1e-2, 3e-2, 1e-1, 5e-3, 2e-2],
        "momentum": [0.9, 0.0, 0.5, 0.99, 0.0],
        "weight_decay": [0.0, 0.1, 0.05, 1.0, 0.01],
        "nesterov": [1, 0, 0, 1, 1],
        "dampening": [0.0, 0.9, 0.5, 0.0, 0.0],  # torch refuses nesterov with dampening
    },
    "nadamw": {
        "lr": [2e-3, 3e-2, 1e-4, 5e-3, 1e-2],
        "beta1": [0.9, 0.8, 0.95, 0.5, 0.0],
        "beta2": [0.999, 0.99, 0.9, 0.98, 0.5],
        "eps": [1e-8, 1e-6, 1e-3, 1e-8, 1e-1],
        "weight_decay": [0.0, 0.1, 0.05, 1.0, 0.01],
        "momentum_decay": [4e-3, 0.0, 1e-2, 0.1, 4e-3],
    },
    "radam": {
        "lr": [1e-3, 3e-2, 1e-4, 5e-3, 1e-2],
        "beta1": [0.9, 0.8, 0.95, 0.5, 0.0],
        # rho_t > 5 from step 6 (0.999), step 3 (0.9), never (0.5): both branches, per model
        "beta2": [0.999, 0.99, 0.9, 0.98, 0.5],
        "eps": [1e-8, 1e-6, 1e-3, 1e-8, 1e-1],
        "weight_decay": [0.0, 0.1, 0.05, 1.0, 0.01],
    },
    "signum": {
        "lr": [1e-3, 3e-2, 1e-4, 5e-3, 1e-2],
        "momentum": [0.9, 0.0, 0.5, 0.99, 0.95],
        "weight_decay": [0.0, 0.1, 0.05, 1.0, 0.01],
    },
    "cadamw": {
        "lr": [1e-3, 3e-2, 1e-4, 5e-3, 1e-2],
        "beta1": [0.9, 0.8, 0.95, 0.5, 0.0],
        "beta2": [0.999, 0.99, 0.9, 0.98, 0.5],
        "eps": [1e-6, 1e-8, 1e-3, 1e-8, 1e-1],
        "weight_decay": [0.0, 0.1, 0.05, 1.0, 0.01],
    },
    "adabelief": {
        "lr": [1e-3, 3e-2, 1e-4, 5e-3, 1e-2],
        "beta1": [0.9, 0.8, 0.95, 0.5, 0.0],
        "beta2": [0.999, 0.99, 0.9, 0.98, 0.5],
        "eps": [1e-16, 1e-8, 1e-3, 1e-12, 1e-1],
        "weight_decay": [0.0, 0.1, 0.05, 1.0, 0.01],
    },
    "adopt": {
        "lr": [1e-3, 3e-2, 1e-4, 5e-3, 1e-2],
        "beta1": [0.9, 0.8, 0.95, 0.5, 0.0],
        "beta2": [0.9999, 0.99, 0.9, 0.98, 0.5],
        "eps": [1e-6, 1e-8, 1e-3, 1e-8, 1e-1],
        "weight_decay": [0.0, 0.1, 0.05, 1.0, 0.01],
    },
    "adan": {
        "lr": [1e-3, 3e-2, 1e-4, 5e-3, 1e-2],
        "beta1": [0.98, 0.8, 0.95, 0.5, 0.0],
        "beta2": [0.92, 0.99, 0.0, 0.5, 0.9],
        "beta3": [0.99, 0.999, 0.9, 0.98, 0.5],
        "eps": [1e-8, 1e-6, 1e-3, 1e-8, 1e-1],
        "weight_decay": [0.0, 0.1, 0.05, 1.0, 0.01],
    },
    "ademamix": {
        "lr": [1e-3, 3e-2, 1e-4, 5e-3, 1e-2],
        "beta1": [0.9, 0.8, 0.95, 0.5, 0.0],
        "beta2": [0.999, 0.99, 0.9, 0.98, 0.5],
        "beta3": [0.9999, 0.999, 0.0, 0.98, 0.9],
        "alpha": [5.0, 1.0, 8.0, 0.0, 2.0],
        "eps": [1e-8, 1e-6, 1e-3, 1e-8, 1e-1],
        "weight_decay": [0.0, 0.1, 0.05, 1.0, 0.01],
    },
    "schedulefree": {
        "lr": [2.5e-3, 3e-2, 1e-4, 5e-3, 1e-2],
        "beta1": [0.9, 0.8, 0.95, 0.5, 0.98],
        "beta2": [0.999, 0.99, 0.9, 0.98, 0.5],
        "eps": [1e-8, 1e-6, 1e-3, 1e-8, 1e-1],
        "weight_decay": [0.0, 0.1, 0.05, 1.0, 0.01],
    },
    "muon": {
        "lr": [1e-3, 3e-2, 1e-4, 5e-3, 1e-2],
        "beta1": [0.9, 0.8, 0.95, 0.5, 0.0],
        "beta2": [0.999, 0.99, 0.9, 0.98, 0.5],
        "eps": [1e-8, 1e-6, 1e-3, 1e-8, 1e-1],
        "weight_decay": [0.0, 0.1, 0.05, 1.0, 0.01],
        "muon_lr": [1e-3, 3e-2, 1e-4, 2e-2, 1e-2],
        "momentum": [0.95, 0.9, 0.0, 0.5, 0.99],
        "nesterov": [1, 0, 1, 0, 1],
    },
    # frequency 1 refreshes every step, 3 and 10 within the 25 steps, 30 never.
    "soap": {
        "lr": [3e-3, 3e-2, 1e-4, 5e-3, 1e-2],
        "beta1": [0.95, 0.8, 0.9, 0.5, 0.0],
        "beta2": [0.95, 0.99, 0.999, 0.5, 0.9],
        "eps": [1e-8, 1e-6, 1e-3, 1e-8, 1e-1],
        "weight_decay": [1e-2, 0.1, 0.0, 1.0, 0.01],
        "precondition_frequency": [10, 3, 1, 30, 10],
    },
}
# The EMA entries step as their base; their EMA decays span (0, 1) (the engine's tests
# compare the evaluated EMA with torch's AveragedModel, tests/helpers.py).
EMA_TEST_DECAYS = [0.9, 0.99, 0.5, 0.999, 0.95]
TEST_HP.update(
    {v: {**TEST_HP[b], "ema_decay": EMA_TEST_DECAYS} for v, b in hparams.EMA_VARIANTS.items()}
)
# Per-model shapes, stacked as [K, ...], and what each is (lionsweep.optim.roles): a weight
# with its bias folded in as last column (the engine's w1), a tall hidden matrix,
# a vector and a scalar. The reference gets the folded one as two tensors.
PARAMS = [((3, 5), HIDDEN_BIAS), ((6, 2), HIDDEN), ((5,), OTHER), ((), OTHER)]
SHAPES = [s for s, _ in PARAMS]
ROLES = [r for _, r in PARAMS]
# SOAP's eigenbasis is not unique where a Gram matrix is rank-deficient (the tall
# matrix's G G^T at step 1): LAPACK fills that null space from rounding noise, so a
# last-bit difference in G G^T changes the update by O(lr) (tests/test_soap.py shows
# it on the reference alone). Square matrices with full-rank gradients are well posed.
PARAMS_OF = {"soap": [((4, 5), HIDDEN_BIAS), ((3, 3), HIDDEN), ((5,), OTHER), ((), OTHER)]}


def _roles(name: str) -> list[str]:
    return [r for _, r in PARAMS_OF.get(name, PARAMS)]


STEPS = 25
DRIVERS = {
    "lion": drivers.Lion,
    "adamw": drivers.AdamW,
    "adam": drivers.Adam,
    "sgd": drivers.SGD,
}


def _hp(name: str, k: int) -> dict[str, list[float]]:
    return {h: [v[i % len(v)] for i in range(k)] for h, v in TEST_HP[name].items()}


def _run(name: str, k: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shapes, roles = [s for s, _ in PARAMS_OF.get(name, PARAMS)], _roles(name)
    params = [torch.randn((k, *s), generator=g, dtype=torch.float64) for s in shapes]
    grads = [
        [torch.randn((k, *s), generator=g, dtype=torch.float64) for s in shapes]
        for _ in range(STEPS)
    ]
    hp = _hp(name, k)
    batched = [p.clone() for p in params]
    states = optim.new_states(name, batched, roles)
    hpt = {h: torch.tensor(v, dtype=torch.float64) for h, v in hp.items()}
    for step, gs in enumerate(grads, 1):
        gs = [x.clone() for x in gs]
        optim.batched_step(name, batched, gs, states, hpt, step, roles=roles)
    return params, grads, hp, batched


def _separate(ts: list[torch.Tensor], j: int, roles: list[str] = ROLES) -> list[torch.Tensor]:
    """Model j's tensors as the reference sees them: a folded bias column apart."""
    out = []
    for t, role in zip(ts, roles, strict=True):
        out += [t[j][..., :-1], t[j][..., -1]] if role == HIDDEN_BIAS else [t[j]]
    return out


def _ref_roles(roles: list[str]) -> list[str]:
    return [r for role in roles for r in ((HIDDEN, OTHER) if role == HIDDEN_BIAS else (role,))]


REF_ROLES = _ref_roles(ROLES)


@pytest.mark.parametrize("k", [1, 3, 7])
@pytest.mark.parametrize("name", optim.names())
def test_slices_match_reference(name, k):
    params, grads, hp, batched = _run(name, k)
    roles = _roles(name)
    for j in range(k):
        ps = [p.clone().requires_grad_(True) for p in _separate(params, j, roles)]
        hp_j = {h: v[j] for h, v in hp.items()}
        ref = optim.REGISTRY[name].reference(ps, hp_j, _ref_roles(roles))
        for gs in grads:
            for p, g in zip(ps, _separate(gs, j, roles), strict=True):
                p.grad = g.clone()
            ref.step()
        ours_j, start_j = _separate(batched, j, roles), _separate(params, j, roles)
        for ours, theirs, start in zip(ours_j, ps, start_j, strict=True):
            torch.testing.assert_close(ours, theirs.detach(), rtol=0, atol=1e-12)
            assert not torch.equal(ours, start)  # it did move


@pytest.mark.parametrize("name", list(DRIVERS))
def test_drivers_match_reference(name):
    """The torch.optim drivers with [K] tensors give the same as the functional core."""
    params, grads, hp, batched = _run(name, 4)
    hpt = {h: torch.tensor(v, dtype=torch.float64) for h, v in hp.items()}
    if "beta1" in hpt:
        hpt["betas"] = (hpt.pop("beta1"), hpt.pop("beta2"))
    ps = [p.clone().requires_grad_(True) for p in params]
    opt = DRIVERS[name](ps, **hpt)
    for gs in grads:
        for p, g in zip(ps, gs, strict=True):
            p.grad = g.clone()
        opt.step()
        assert all(torch.equal(p.grad, g) for p, g in zip(ps, gs, strict=True))  # untouched
    for ours, core in zip(ps, batched, strict=True):
        torch.testing.assert_close(ours.detach(), core, rtol=0, atol=0)


@pytest.mark.parametrize("name", optim.names())
def test_defaults_are_the_references(name):
    """Registry defaults equal the reference constructors' defaults."""
    spec = optim.REGISTRY[name]
    defaults = {h: p.default for h, p in spec.hparams.items()}
    cls = type(spec.reference([torch.zeros(2, requires_grad=True)], defaults))
    sig = inspect.signature(cls.__init__).parameters
    for h, p in spec.hparams.items():
        if h in ("beta1", "beta2", "beta3"):
            assert sig["betas"].default[("beta1", "beta2", "beta3").index(h)] == p.default, h
        else:
            assert float(sig[h].default) == p.default, h


def test_every_optimizer_has_test_values():
    for name, spec in optim.REGISTRY.items():
        assert name in TEST_HP, f"add {name!r} to TEST_HP"
        ranges = {**spec.hparams, **spec.averaging}
        assert set(spec.hparams) <= set(TEST_HP[name]) <= set(ranges), name
        for h, values in TEST_HP[name].items():
            assert all(ranges[h].contains(v) for v in values), (name, h)


def test_hparam_names_and_ranges():
    assert optim.hparam_names() == (
        "lr",
        "beta1",
        "beta2",
        "weight_decay",
        "eps",
        "momentum",
        "nesterov",
        "dampening",
        "momentum_decay",
        "beta3",
        "alpha",
        "muon_lr",
        "precondition_frequency",
        "ema_decay",
    )
    freq = optim.REGISTRY["soap"].hparams["precondition_frequency"]
    assert freq.contains(1.0) and not freq.contains(0.0) and not freq.contains(2.5)
    assert optim.names()[:4] == ("lion", "adamw", "adam", "sgd")
    beta = optim.REGISTRY["lion"].hparams["beta1"]
    assert beta.contains(0.0) and not beta.contains(1.0) and not beta.contains(-0.1)
    assert beta.describe() == "in [0, 1)"
    nest = optim.REGISTRY["sgd"].hparams["nesterov"]
    assert nest.contains(1.0) and not nest.contains(0.5)


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        (
            "lion",
            {"beta1": [0.9, 1.0]},
            "beta1=1.0 (configuration 1) is not in [0, 1)",
        ),
        (
            "sgd",
            {"nesterov": [0.5, 1]},
            "nesterov=0.5 (configuration 0) is not a whole number",
        ),
        (
            "adamw",
            {"lr": [np.nan, 1e-3]},
            "adamw hyperparameter lr=nan (configuration 0)",
        ),
        ("adam", {"eps": [0.0, 1e-8]}, "eps=0.0"),
        ("sgd", {"lr": [1e-3]}, "differ in length"),
        ("lion", {"ema_decay": [0.9, 1.0]}, "lion hyperparameter ema_decay=1.0 (configuration 1)"),
        (
            "adamw_ema",
            {"ema_decay": [0.0, 0.9]},
            "ema_decay=0.0 (configuration 0) is not in (0, 1)",
        ),
        ("rmsprop", {}, "unknown optimizer 'rmsprop'"),
    ],
)
def test_bad_hyperparameters_are_one_line_errors(name, change, message):
    base = _hp(name if name in TEST_HP else "lion", 2)
    base.update(change)
    with pytest.raises(LionSweepError) as err:
        optim.check_hparams(name, base)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_study_defaults_are_the_registry_defaults(config):
    """config/config.yaml restates each swept optimizer's defaults (the paper's table
    row); they must be the registry's, which are the reference implementations'."""
    for name, section in config["optimizers"].items():
        spec = optim.spec(name)
        assert set(section["defaults"]) == set(spec.hparams), name
        for h, value in section["defaults"].items():
            assert float(value) == spec.hparams[h].default, (name, h)


def test_functional_core_on_noncontiguous_views_and_buffers():
    """The engine passes permuted views and scratch buffers; results must not change."""
    k = 4
    g = torch.Generator().manual_seed(2)
    grads = [torch.randn((k, 3, 5), generator=g, dtype=torch.float64) for _ in range(6)]
    base = torch.randn(3, k, 5, dtype=torch.float64)  # stored [D, K, H]
    hp = {h: torch.tensor(v[:k], dtype=torch.float64) for h, v in TEST_HP["adamw"].items()}
    lion_hp = {h: v for h, v in hp.items() if h != "eps"}
    for name, kw in (("lion", lion_hp), ("adamw", hp)):
        view = base.clone().permute(1, 0, 2)  # [K, D, H], non-contiguous
        dense = view.contiguous()
        states = [[torch.zeros_like(dense)] for _ in range(2)]
        dense_states = [[torch.zeros_like(dense)] for _ in range(2)]
        for step, grad in enumerate(grads, 1):
            if name == "lion":
                optim.lion_step([view], [grad], states[0], **kw, buffers=[torch.empty_like(dense)])
                optim.lion_step([dense], [grad], dense_states[0], **kw)
                continue
            scratch = [torch.empty_like(dense)]
            optim.adamw_step([view], [grad], *states, step=step, **kw, buffers=scratch)
            optim.adamw_step([dense], [grad], *dense_states, step=step, **kw)
        torch.testing.assert_close(view, dense, rtol=0, atol=0)
        assert not torch.equal(dense, base.permute(1, 0, 2)), name  # it did move
