"""The torch half of the 2026 field's registry entries (issue 20): ``(coefs, update,
reference)`` per name, merged into :data:`lionsweep.optim.registry.KERNELS` after the four
original optimizers. Kernels: :mod:`lionsweep.optim.kernels_adam_family`,
:mod:`lionsweep.optim.kernels_momentum`, :mod:`lionsweep.optim.kernels_matrix`; references:
:mod:`lionsweep.optim.references`. ``role`` is the parameter's :mod:`lionsweep.optim.roles` role.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lionsweep.optim import references as ref
from lionsweep.optim.kernels_adam_family import (
    AdamLike,
    adabelief_update,
    adopt_update,
    cadamw_update,
    nadamw_update,
    radam_update,
)
from lionsweep.optim.kernels_matrix import MuonCoefs, muon_update
from lionsweep.optim.kernels_momentum import (
    SignumCoefs,
    adan_update,
    ademamix_update,
    schedulefree_update,
    schedulefree_x,
    signum_update,
)
from lionsweep.optim.kernels_soap import SoapCoefs, soap_state, soap_update


def _adam_like(update: Callable[..., None]) -> tuple[Callable[..., Any], Callable[..., None]]:
    """coefs/update lambdas of an optimizer with two state tensors and AdamLike coefs."""
    return (
        lambda p, hp, role: AdamLike(p, hp, role),
        lambda p, g, s, c, step, buf: update(p, g, s[0], s[1], c, step, buf),
    )


# (coefs, update, reference[, extra_state]): extra_state(p, role) is state that is not
# shaped like p (SOAP's [K, A, A] Gram matrices and bases), passed after the others.
FIELD_KERNELS: dict[str, tuple[Any, ...]] = {
    "nadamw": (*_adam_like(nadamw_update), ref.nadamw),
    "radam": (*_adam_like(radam_update), ref.radam),
    "signum": (
        lambda p, hp, role: SignumCoefs(p, hp),
        lambda p, g, s, c, step, buf: signum_update(p, g, s[0], c, buf),
        ref.signum,
    ),
    "cadamw": (*_adam_like(cadamw_update), ref.cadamw),
    "adabelief": (*_adam_like(adabelief_update), ref.adabelief),
    "adopt": (*_adam_like(adopt_update), ref.adopt),
    "adan": (
        lambda p, hp, role: AdamLike(p, hp, role),
        lambda p, g, s, c, step, buf: adan_update(p, g, s, c, step, buf),
        ref.adan,
    ),
    "ademamix": (
        lambda p, hp, role: AdamLike(p, hp, role),
        lambda p, g, s, c, step, buf: ademamix_update(p, g, s, c, step, buf),
        ref.ademamix,
    ),
    "schedulefree": (
        lambda p, hp, role: AdamLike(p, hp, role),
        lambda p, g, s, c, step, buf: schedulefree_update(p, g, s, c, step, buf),
        ref.schedulefree,
    ),
    "muon": (
        lambda p, hp, role: MuonCoefs(p, hp, role),
        lambda p, g, s, c, step, buf: muon_update(p, g, s[0], s[1], c, step, buf),
        ref.muon,
    ),
    "soap": (
        lambda p, hp, role: SoapCoefs(p, hp, role),
        lambda p, g, s, c, step, buf: soap_update(p, g, s[0], s[1], s[2], c, step),
        ref.soap,
        soap_state,
    ),
}

# Where an optimizer's model to evaluate is not its parameters: (p, states, coefs, out) ->
# the point, written into ``out`` (the engine evaluates it; the weight EMA averages it).
EVAL_POINTS: dict[str, Callable[..., Any]] = {
    "schedulefree": lambda p, s, c, out: schedulefree_x(p, s[0], c.f["beta1"], out),
}
