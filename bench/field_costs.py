"""What each registry optimizer costs the engine, all measured in one run (issue 20).

Per optimizer: batched milliseconds per configuration on the same data, grid size
and settings as Lion's, the share of training time spent in the optimizer's update,
and for the optimizers whose update is matrix work the share of that update spent in
it: Muon's Newton-Schulz iteration (``kernels_matrix.newton_schulz``), SOAP's
rotations, Gram-matrix updates and eigh/QR refreshes (``kernels_soap``). Timed by
wrapping those functions for the run (CPU: synchronous, so wall time is theirs).
The machine is shared, so compare only numbers from one run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any
from unittest import mock

import numpy as np

from lionsweep.optim import kernels_matrix, kernels_soap
from lionsweep.optim import registry as optim
from lionsweep.train.engine import TrainSettings, train_grid
from lionsweep.train.model import BatchedMLP

# The functions that are an optimizer's matrix work (not nested in one another).
MATRIX_WORK: dict[str, list[tuple[ModuleType, str]]] = {
    "muon": [(kernels_matrix, "newton_schulz")],
    "soap": [
        (kernels_soap, f)
        for f in ("_rotate", "_unrotate", "_accumulate", "_eigenbases", "_refresh")
    ],
}


class Clock:
    """Seconds accumulated by the functions it wraps."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def wrap(self, f: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            self.calls += 1
            try:
                return f(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        return timed


@contextlib.contextmanager
def timing(optimizer: str, update: Clock, matrix: Clock) -> Iterator[None]:
    """The registry entry's update and its matrix work, timed while inside."""
    spec = optim.REGISTRY[optimizer]
    entry = dataclasses.replace(spec, update=update.wrap(spec.update))
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.dict(optim.REGISTRY, {optimizer: entry}))
        for module, name in MATRIX_WORK.get(optimizer, []):
            wrapped = matrix.wrap(getattr(module, name))
            stack.enter_context(mock.patch.object(module, name, wrapped))
        yield


def cost(splits: dict, optimizer: str, hp: dict[str, np.ndarray], settings: TrainSettings):
    """ms/configuration, the update's share of training, matrix work's share of the update."""
    update, matrix = Clock(), Clock()
    with timing(optimizer, update, matrix):
        t0 = time.perf_counter()
        train_grid(splits, optimizer, hp, seed=0, settings=settings, progress=False)
        total = time.perf_counter() - t0
    k = len(next(iter(hp.values())))
    out = {"k": k, "ms_per_config": 1e3 * total / k, "update_share": update.seconds / total}
    if optimizer in MATRIX_WORK:
        steps = update.calls / len(BatchedMLP.ROLES)  # one update call per parameter
        out["matrix_share_of_update"] = matrix.seconds / update.seconds
        out["matrix_share_of_training"] = matrix.seconds / total
        out["matrix_ms_per_step"] = 1e3 * matrix.seconds / steps
    return out


def line(name: str, c: dict, lion: dict) -> str:
    """One ``make bench`` line: ms/configuration beside Lion's, and the shares."""
    text = (
        f"cost {name}: {c['ms_per_config']:.1f} ms/configuration at K={c['k']}"
        f" ({c['ms_per_config'] / lion['ms_per_config']:.2f}x Lion's"
        f" {lion['ms_per_config']:.1f}); update {100 * c['update_share']:.0f}% of training"
    )
    if "matrix_share_of_update" in c:
        text += (
            f"; matrix work {100 * c['matrix_share_of_update']:.0f}% of the update"
            f" ({100 * c['matrix_share_of_training']:.0f}% of training,"
            f" {c['matrix_ms_per_step']:.2f} ms per step for all K)"
        )
    return text
