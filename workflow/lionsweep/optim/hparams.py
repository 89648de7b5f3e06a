"""What each registry optimizer *is*, without torch: its hyperparameters (default and
valid range) and its state tensors.

Why a module of its own: the workflow's rules check the config, expand the grids and
size the shards from these descriptions every time Snakemake parses the workflow
(every invocation, every dry run, every cluster job). Importing torch for that cost
seconds each time. :mod:`lionsweep.optim.registry` adds the batched step and the reference
implementation to each entry here (its ``REGISTRY``), and is the only place torch
enters; see docs/optimizers.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from lionsweep.errors import LionSweepError

INF = math.inf


class HParam(NamedTuple):
    """A hyperparameter's default and valid range (``inclusive``: are low/high allowed)."""

    default: float
    low: float
    high: float
    inclusive: tuple[bool, bool] = (True, False)
    integer: bool = False  # a 0/1 switch or a count: whole numbers only

    def contains(self, value: float) -> bool:
        lo_ok = value >= self.low if self.inclusive[0] else value > self.low
        hi_ok = value <= self.high if self.inclusive[1] else value < self.high
        return lo_ok and hi_ok and (not self.integer or float(value).is_integer())

    def describe(self) -> str:
        lo, hi = "[("[not self.inclusive[0]], "])"[not self.inclusive[1]]
        kind = "a whole number in " if self.integer else "in "
        return f"{kind}{lo}{self.low:g}, {self.high:g}{hi}"


class Description(NamedTuple):
    """An optimizer's hyperparameters (name -> HParam) and state tensors (names).

    ``hparams`` are its step's (the kernels and the reference take exactly these);
    ``averaging`` overrides :data:`AVERAGING` (the weight averaging every optimizer
    accepts) for this entry: an ``_ema`` entry is its base with EMA required on."""

    hparams: dict[str, HParam]
    state: tuple[str, ...]
    averaging: Mapping[str, HParam] = MappingProxyType({})


LR = HParam(1e-3, 0.0, INF, (False, False))
BETA = HParam(0.9, 0.0, 1.0)
EPS = HParam(1e-8, 0.0, INF, (False, False))
DECAY = HParam(0.0, 0.0, INF)
ADAM_HPARAMS = {"lr": LR, "beta1": BETA, "beta2": BETA._replace(default=0.999), "eps": EPS}
ADAM_STATE = ("exp_avg", "exp_avg_sq")
NESTEROV = HParam(1.0, 0.0, 1.0, (True, True), integer=True)  # a 0/1 switch
# Weight averaging, applied by the engine around any optimizer's step (not the step's
# hyperparameters, so no kernel or reference sees them): an EMA of the weights after
# every step, as torch.optim.swa_utils.get_ema_multi_avg_fn; 0 = off (the default),
# then a model evaluates its own weights. The evaluation uses the average.
AVERAGING: dict[str, HParam] = {"ema_decay": HParam(0.0, 0.0, 1.0)}
# The `_ema` entries' range: on (> 0); default torch's get_ema_multi_avg_fn(decay=0.999).
EMA_ON = HParam(0.999, 0.0, 1.0, (False, False))

# Registration order is the order of `names()`, of the grid's columns and of the tests.
DESCRIPTIONS: dict[str, Description] = {
    "lion": Description(
        {
            "lr": LR._replace(default=1e-4),
            "beta1": BETA,
            "beta2": BETA._replace(default=0.99),
            "weight_decay": DECAY,
        },
        ("exp_avg",),
    ),
    "adamw": Description(
        {**ADAM_HPARAMS, "weight_decay": DECAY._replace(default=1e-2)}, ADAM_STATE
    ),
    "adam": Description({**ADAM_HPARAMS, "weight_decay": DECAY}, ADAM_STATE),
    "sgd": Description(
        {
            "lr": LR,
            "momentum": HParam(0.0, 0.0, 1.0),
            "weight_decay": DECAY,
            "nesterov": NESTEROV._replace(default=0.0),
            # torch.optim.SGD's dampening; 0 is the update the study always ran, bit for bit.
            "dampening": HParam(0.0, 0.0, 1.0, (True, True)),
        },
        ("momentum_buffer",),
    ),
    # The 2026 field (issue 20): the tabular-MLP optimizer benchmark's list.
    "nadamw": Description(
        {
            **ADAM_HPARAMS,
            "lr": LR._replace(default=2e-3),
            "weight_decay": DECAY,
            "momentum_decay": HParam(4e-3, 0.0, INF),
        },
        ADAM_STATE,
    ),
    "radam": Description({**ADAM_HPARAMS, "weight_decay": DECAY}, ADAM_STATE),
    "signum": Description(
        {"lr": LR, "momentum": BETA, "weight_decay": DECAY},
        ("momentum_buffer",),
    ),
    "cadamw": Description(
        {**ADAM_HPARAMS, "eps": EPS._replace(default=1e-6), "weight_decay": DECAY}, ADAM_STATE
    ),
    "adabelief": Description(
        {**ADAM_HPARAMS, "eps": EPS._replace(default=1e-16), "weight_decay": DECAY},
        ("exp_avg", "exp_avg_var"),
    ),
    "adopt": Description(
        {
            **ADAM_HPARAMS,
            "beta2": BETA._replace(default=0.9999),
            "eps": EPS._replace(default=1e-6),
            "weight_decay": DECAY,
        },
        ADAM_STATE,
    ),
    "adan": Description(
        {
            "lr": LR,
            "beta1": BETA._replace(default=0.98),
            "beta2": BETA._replace(default=0.92),
            "beta3": BETA._replace(default=0.99),
            "eps": EPS,
            "weight_decay": DECAY,
        },
        ("exp_avg", "exp_avg_sq", "exp_avg_diff", "previous_grad"),
    ),
    "ademamix": Description(
        {
            **ADAM_HPARAMS,
            "beta3": BETA._replace(default=0.9999),
            "alpha": HParam(5.0, 0.0, INF),
            "weight_decay": DECAY,
        },
        ("exp_avg", "exp_avg_sq", "exp_avg_slow"),
    ),
    # Trains y; the model to evaluate is x (kernels_momentum.schedulefree_x).
    "schedulefree": Description(
        {
            **ADAM_HPARAMS,
            "lr": LR._replace(default=2.5e-3),
            "beta1": BETA._replace(inclusive=(False, False)),  # x divides by beta1
            "weight_decay": DECAY,
        },
        ("z", "exp_avg_sq"),
    ),
    # Muon on the hidden weight matrix, AdamW (lr, betas, eps) on the rest; one decay.
    "muon": Description(
        {
            **ADAM_HPARAMS,
            "weight_decay": DECAY._replace(default=1e-2),
            "muon_lr": LR,
            "momentum": BETA._replace(default=0.95),
            "nesterov": NESTEROV,
        },
        ADAM_STATE,
    ),
    # pytorch_optimizer.SOAP's defaults; shampoo_beta = beta2 (its None). Its Gram
    # matrices and eigenbases are extra state ([K, A, A], kernels_soap.Preconditioner).
    "soap": Description(
        {
            **ADAM_HPARAMS,
            "lr": LR._replace(default=3e-3),
            "beta1": BETA._replace(default=0.95),
            "beta2": BETA._replace(default=0.95),
            "weight_decay": DECAY._replace(default=1e-2),
            "precondition_frequency": HParam(10.0, 1.0, INF, (True, False), integer=True),
        },
        ADAM_STATE,
    ),
}
# The benchmark ranks "AdamW + EMA" and "Muon + EMA" as optimizers of their own (tuned
# separately), so they are entries of their own: the base's step, state and reference,
# with EMA on (ema_decay in (0, 1), swept like any hyperparameter). A study lists them
# like any optimizer; every other optimizer takes an ema_decay axis too (docs/optimizers.md).
EMA_VARIANTS = {"adamw_ema": "adamw", "muon_ema": "muon"}
DESCRIPTIONS.update(
    {
        name: DESCRIPTIONS[base]._replace(averaging={"ema_decay": EMA_ON})
        for name, base in EMA_VARIANTS.items()
    }
)
# Every optimizer has these: the tables' selection reads them (selection.REQUIRED).
FROZEN_HPARAMS = ("lr", "weight_decay")
assert all(set(FROZEN_HPARAMS) <= set(d.hparams) for d in DESCRIPTIONS.values())


def names() -> tuple[str, ...]:
    """Registered optimizer names, in registration order."""
    return tuple(DESCRIPTIONS)


def hparam_names() -> tuple[str, ...]:
    """Every optimizer's hyperparameters, first appearance first, then the weight
    averaging's (which every optimizer accepts): the grid's columns."""
    return tuple(
        dict.fromkeys([*(h for d in DESCRIPTIONS.values() for h in d.hparams), *AVERAGING])
    )


def accepted(name: str) -> dict[str, HParam]:
    """What a grid, a study's defaults and the engine accept for optimizer ``name``: its
    step's hyperparameters, then the weight averaging's (with the entry's own range)."""
    described = describe(name)
    return {**described.hparams, **AVERAGING, **described.averaging}


# Grid axes every optimizer accepts: training settings swept like hyperparameters. Not
# the optimizer's (the engine never sees them): the sweep trains each value as its own
# budget. Their default is the study's `training` section (training.epochs), not a
# library's, hence NaN here. A billion epochs bounds it only so that a typo (1e20) is an
# error, not an integer overflow.
TRAINING_AXES: dict[str, HParam] = {
    "epochs": HParam(math.nan, 1.0, 1e9, (True, True), integer=True),
}


def grid_columns() -> tuple[str, ...]:
    """The grid table's axis columns: every optimizer's hyperparameters, then the
    training axes (the one list that selection, tables and figures iterate over)."""
    return (*hparam_names(), *TRAINING_AXES)


def describe(name: str) -> Description:
    """The description of ``name``, or a user error listing the known ones."""
    if name not in DESCRIPTIONS:
        raise LionSweepError(f"unknown optimizer {name!r}; expected one of {names()}")
    return DESCRIPTIONS[name]
