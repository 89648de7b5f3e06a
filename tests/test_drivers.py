"""The ``torch.optim`` drivers (lionsweep.optim.drivers) are drop-in optimizers: with
scalars they train a real model as their references do, share their defaults, and
refuse the hyperparameters ``torch.optim`` refuses, with the same message.

That [K]-tensor drivers equal the functional core is tests/test_registry.py's."""

from __future__ import annotations

import math

import pytest
import torch
from lion_pytorch import Lion as RefLion

from lionsweep.optim import registry as optim
from lionsweep.optim.drivers import SGD, Adam, AdamW, Lion

DRIVERS = {"lion": Lion, "adamw": AdamW, "adam": Adam, "sgd": SGD}
REFERENCES = {
    "lion": RefLion,
    "adamw": torch.optim.AdamW,
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
}
# Scalars away from the defaults, so a driver that ignored one would differ.
SCALARS = {
    "lion": {"lr": 1e-2, "betas": (0.8, 0.95), "weight_decay": 0.1},
    "adamw": {"lr": 1e-2, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1},
    "adam": {"lr": 1e-2, "betas": (0.7, 0.9), "eps": 1e-3, "weight_decay": 0.3},
    "sgd": {"lr": 5e-2, "momentum": 0.9, "weight_decay": 0.05, "nesterov": True},
}


def _params() -> list[torch.Tensor]:
    return [torch.zeros(2, requires_grad=True)]


def _outcome(build) -> str:
    """The constructor's ValueError message, or "accepted"."""
    try:
        build()
    except ValueError as err:
        return str(err)
    return "accepted"


def test_every_driver_is_a_registry_optimizer():
    """The paper's four have drivers; the 2026 field's entries train through the engine
    only (issue 20) and get one when a user asks for it."""
    assert set(DRIVERS) <= set(optim.names())
    assert all(DRIVERS[n].name == n for n in DRIVERS)


@pytest.mark.parametrize("name", list(DRIVERS))
def test_scalar_hyperparameters_are_a_drop_in(name):
    """With Python scalars they train a real model as the reference does (float64)."""
    torch.manual_seed(0)
    x, y = torch.randn(32, 4, dtype=torch.float64), torch.randn(32, 1, dtype=torch.float64)
    nets = []
    for _ in range(2):
        torch.manual_seed(1)
        net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1))
        nets.append(net.double())
    start = [p.detach().clone() for p in nets[0].parameters()]
    ours = DRIVERS[name](nets[0].parameters(), **SCALARS[name])
    ref = REFERENCES[name](nets[1].parameters(), **SCALARS[name])
    for net, opt in ((nets[0], ours), (nets[1], ref)):
        for _ in range(5):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            opt.step()
    for a, b, p0 in zip(nets[0].parameters(), nets[1].parameters(), start, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
        assert not torch.equal(a, p0)  # it did move


@pytest.mark.parametrize("name", list(DRIVERS))
def test_defaults_are_the_references(name):
    ours, ref = DRIVERS[name](_params()).defaults, REFERENCES[name](_params()).defaults
    assert set(ours) <= set(ref)
    for key, value in ours.items():
        assert value == ref[key], key


# (keyword arguments, what torch.optim.AdamW and Adam do with them)
ADAM_CASES = [
    {"lr": -1},
    {"lr": 0.0},
    {"lr": math.nan},
    {"eps": -1e-8},
    {"eps": 0.0},
    {"betas": (1.0, 0.9)},
    {"betas": (0.9, 1.0)},
    {"betas": (-0.1, 0.999)},
    {"betas": (0.0, 0.0)},
    {"weight_decay": -0.1},
    {"weight_decay": 0.0},
    {"lr": -1, "eps": -1},  # the first check wins, as in torch
    {"eps": -1, "betas": (2.0, 0.9)},
]
SGD_CASES = [
    {"lr": -1},
    {"lr": 0.0},
    {"lr": math.nan},
    {"momentum": -0.5},
    {"momentum": 0.0},
    {"weight_decay": -1e-4},
    {"nesterov": True},
    {"nesterov": True, "momentum": 0.9},
    {"momentum": -1, "weight_decay": -1},
]


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [(n, c) for n in ("adamw", "adam") for c in ADAM_CASES] + [("sgd", c) for c in SGD_CASES],
)
def test_refuses_what_torch_optim_refuses(name, kwargs):
    expected = _outcome(lambda: REFERENCES[name](_params(), **kwargs))
    assert _outcome(lambda: DRIVERS[name](_params(), **kwargs)) == expected
    if kwargs in ({"lr": -1}, {"nesterov": True}):
        assert expected != "accepted"  # the comparison is not vacuous


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": -1}, "Invalid learning rate: -1"),
        ({"betas": (0.9, 1.0)}, "Invalid beta parameter at index 1: 1.0"),
        ({"betas": (-0.5, 0.99)}, "Invalid beta parameter at index 0: -0.5"),
        ({"weight_decay": -0.1}, "Invalid weight_decay value: -0.1"),
        ({"lr": 0.0, "betas": (0.0, 0.0)}, "accepted"),
    ],
)
def test_lion_refuses_like_adamw(kwargs, message):
    """lion-pytorch only asserts; the driver takes torch.optim.AdamW's ranges and words."""
    assert _outcome(lambda: Lion(_params(), **kwargs)) == message


def _k(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("adamw", {"lr": _k(1e-3, -1.0)}, "Invalid learning rate: -1.0"),
        ("adam", {"eps": _k(1e-8, 1e-8, -2.0)}, "Invalid epsilon value: -2.0"),
        (
            "lion",
            {"betas": (_k(0.9, 0.9), _k(0.99, 1.5))},
            "Invalid beta parameter at index 1: 1.5",
        ),
        ("sgd", {"momentum": _k(0.9, -0.1)}, "Invalid momentum value: -0.1"),
        (
            "sgd",
            {"momentum": _k(0.0, 0.9), "nesterov": _k(1, 0)},
            "Nesterov momentum requires a momentum and zero dampening",
        ),
        ("sgd", {"momentum": _k(0.0, 0.9), "nesterov": _k(0, 1)}, "accepted"),
        ("sgd", {"momentum": 0.9, "nesterov": _k(0, 1)}, "accepted"),
    ],
)
def test_each_model_of_a_k_tensor_is_checked(name, kwargs, message):
    """[K] tensors: one bad model refuses the lot, as K scalar optimizers would."""
    assert _outcome(lambda: DRIVERS[name](_params(), **kwargs)) == message
