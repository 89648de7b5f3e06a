"""Successive halving in the engine (lionsweep.sweep.halving, lionsweep.train.halving_engine).

The equivalence tests are the point: with common random numbers a survivor's numbers
are those of the same configuration trained alone for the full budget, and a stopped
model's those of its solo run cut at its stopped epoch, bit for bit."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import linear_splits, train_batched

from lionsweep.config import validate
from lionsweep.errors import LionSweepError
from lionsweep.optim.hparams import accepted
from lionsweep.sweep.halving import Halving, compute_saved, model_epochs, parse, survivors
from lionsweep.train import halving_engine
from lionsweep.train.engine import TrainSettings, train_grid

SETTINGS = TrainSettings(hidden=8, epochs=9, batch_size=16, threads=1)
HALVING = Halving(min_epochs=1, eta=3)  # rungs end at epochs 1, 3 and 9


@pytest.fixture(scope="module")
def splits():
    return linear_splits(96, 40)


def lion_grid(k: int = 14) -> dict[str, np.ndarray]:
    """Spread learning rates (some too large: they diverge) and weight decays."""
    lr = np.geomspace(1e-4, 3.0, k)
    lr[-1] = 1e30  # diverges in epoch 1: never survives
    return {
        "lr": lr,
        "beta1": np.linspace(0.8, 0.95, k),
        "beta2": np.full(k, 0.99),
        "weight_decay": np.tile([0.0, 0.1], k)[:k],
    }


@pytest.fixture(scope="module")
def halved(splits):
    return train_grid(splits, "lion", lion_grid(), 0, SETTINGS, progress=False, halving=HALVING)


def assert_same(got: dict, want: dict, row: int, epochs: int) -> None:
    """Row ``row`` of ``got`` equals ``want``'s only row; curves on the first ``epochs``
    epochs, NaN after them."""
    for key, val in want.items():
        a, b = np.asarray(got[key])[row], np.asarray(val)[0]
        if a.ndim == 1:  # curves
            assert np.array_equal(a[:epochs], b[:epochs], equal_nan=True), key
            assert np.isnan(a[epochs:]).all(), key
        else:
            assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), key


def test_every_model_equals_its_solo_run_cut_at_its_stopped_epoch(splits, halved):
    hp = lion_grid()
    stopped = halved["stopped_epoch"]
    assert set(stopped.tolist()) == {1, 3, -1}  # some stopped at each rung, some finished
    assert (stopped == -1).sum() == 2  # ceil(ceil(14 / 3) / 3)
    for i in range(len(stopped)):
        epochs = SETTINGS.epochs if stopped[i] == -1 else int(stopped[i])
        solo, _ = train_batched(
            splits,
            "lion",
            {n: v[[i]] for n, v in hp.items()},
            dataclasses.replace(SETTINGS, epochs=epochs),
            0,
        )
        assert_same(halved, solo, i, epochs)


def test_survivors_are_the_best_by_validation_metric_at_each_rung(halved):
    curve, loss = halved["curve_val_acc"], halved["curve_val_loss"]
    stopped = halved["stopped_epoch"]
    first = survivors(curve[:, 0], loss[:, 0], 3)
    assert len(first) == 5 and set(np.flatnonzero(stopped != 1)) == set(first)
    second = first[survivors(curve[first, 2], loss[first, 2], 3)]
    assert set(np.flatnonzero(stopped == -1)) == set(second)
    # the diverged model stops at the first rung, its metrics NaN
    assert stopped[-1] == 1 and halved["diverged"][-1] and np.isnan(halved["val_acc"][-1])


def test_chunking_changes_no_number(splits, halved, monkeypatch):
    """Halving selects across chunks: chunks of 4 give the one-chunk numbers."""

    def small(k, *args):
        return [slice(i, min(i + 4, k)) for i in range(0, k, 4)]

    monkeypatch.setattr(halving_engine, "chunk_plan", small)
    hp = lion_grid()
    # a second halving in train_grid's chunks is the same function: call it directly
    chunked = train_grid(splits, "lion", hp, 0, SETTINGS, progress=False, halving=HALVING)
    for key, val in halved.items():
        if key != "device":
            assert np.array_equal(val, chunked[key], equal_nan=val.dtype.kind == "f"), key


def test_survivors_carry_their_weight_ema_across_chunks(splits, monkeypatch):
    """Models with and without a weight EMA, regrouped from chunks of 4 at each rung:
    each still equals its solo run (EMA included) cut at its stopped epoch."""
    monkeypatch.setattr(
        halving_engine,
        "chunk_plan",
        lambda k, *a: [slice(i, min(i + 4, k)) for i in range(0, k, 4)],
    )
    hp = {**lion_grid(10), "ema_decay": np.tile([0.0, 0.9, 0.5], 4)[:10]}
    got = train_grid(splits, "lion", hp, 0, SETTINGS, progress=False, halving=HALVING)
    stopped = got["stopped_epoch"]
    assert (stopped == -1).sum() == 2 and set(stopped.tolist()) == {1, 3, -1}
    assert hp["ema_decay"][stopped == -1].any()  # an averaging model survives to the end
    for i in range(10):
        epochs = SETTINGS.epochs if stopped[i] == -1 else int(stopped[i])
        short = dataclasses.replace(SETTINGS, epochs=epochs)
        solo = train_grid(splits, "lion", {n: v[[i]] for n, v in hp.items()}, 0, short, False)
        assert_same(got, {k: v for k, v in solo.items() if k != "device"}, i, epochs)


def test_soap_refuses_halving_in_one_line(splits):
    hp = {h: np.full(2, d.default) for h, d in accepted("soap").items()}
    with pytest.raises(LionSweepError, match=r"soap's extra state .* without halving"):
        train_grid(splits, "soap", hp, 0, SETTINGS, progress=False, halving=HALVING)


def test_a_lower_is_better_metric_ranks_the_other_way(splits):
    hp = lion_grid(6)
    got = train_grid(
        splits, "lion", hp, 0, SETTINGS, progress=False, halving=HALVING, metric="logloss"
    )
    loss = got["curve_val_loss"][:, 0]  # binary: the curve loss is the validation logloss
    finite = np.flatnonzero(np.isfinite(loss))
    best = finite[np.argsort(loss[finite], kind="stable")[:2]]
    assert set(np.flatnonzero(got["stopped_epoch"] != 1)) == set(best)


def test_off_adds_nothing(splits):
    hp = lion_grid(4)
    got = train_grid(splits, "lion", hp, 0, SETTINGS, progress=False)
    assert "stopped_epoch" not in got


def test_survivors_rank_ties_and_nan():
    score = np.array([0.5, 0.7, 0.7, np.nan, 0.7, 0.1])
    loss = np.array([0.1, 0.3, 0.2, 0.0, 0.2, 0.0])
    # ceil(6/3) = 2: the 0.7s, the two of lower loss; of those tied, the earlier first
    assert survivors(score, loss, 3).tolist() == [2, 4]
    assert survivors(score, loss, 2).tolist() == [1, 2, 4]
    assert survivors(np.full(3, np.nan), np.zeros(3), 2).tolist() == []


def test_rungs_and_compute():
    h = Halving(min_epochs=5, eta=3)
    assert h.rungs(20) == [5, 15, 20] and h.rungs(5) == [5] and h.rungs(45) == [5, 15, 45]
    assert model_epochs(1000, 20, h) == 1000 * 5 + 334 * 10 + 112 * 5
    assert model_epochs(10, 20, None) == 200


def test_compute_saved_reads_stopped_epochs(halved):
    frame = pd.DataFrame(
        {
            "dataset": "d",
            "optimizer": "lion",
            "seed": 0,
            "epochs": SETTINGS.epochs,
            "stopped_epoch": pd.array(
                np.where(halved["stopped_epoch"] < 0, None, halved["stopped_epoch"]), "Int64"
            ),
        }
    )
    row = compute_saved(frame).iloc[0]
    # what the engine trained: 14 x 1 + 5 x 2 + 2 x 6 (the last rung's survivors)
    assert row.model_epochs == model_epochs(14, 9, HALVING) == 14 + 5 * 2 + 2 * 6
    assert row.full_model_epochs == 14 * 9
    assert row.saved_fraction == pytest.approx(1 - 36 / 126)
    assert compute_saved(frame.drop(columns="stopped_epoch")).iloc[0].saved_fraction == 0


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"min_epochs": 5, "eta": 1}, "eta must be >= 2"),
        ({"min_epochs": 0, "eta": 3}, "min_epochs must be >= 1"),
        ({"min_epochs": 21, "eta": 3}, r"min_epochs \(21\) exceeds training.epochs \(20\)"),
        ({"min_epochs": 5.5, "eta": 3}, "min_epochs must be an integer"),
        ({"min_epochs": 5, "eta": True}, "eta must be an integer"),
        ({"min_epochs": 5}, "eta must be an integer, got None"),
        ({"min_epochs": 5, "eta": 3, "rate": 2}, "unknown key 'rate'"),
        ([5, 3], "must be a mapping"),
    ],
)
def test_bad_sections_are_one_line_errors(section, message):
    with pytest.raises(LionSweepError, match=message):
        parse(section, 20)


def test_parse_off_and_on():
    assert parse(None, 20) is None
    assert parse({"min_epochs": 5, "eta": 3}, 20) == Halving(5, 3)


SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


@pytest.mark.parametrize(
    ("halving", "message"),
    [
        ({"min_epochs": 5, "eta": 1}, "training.halving.eta"),
        ({"min_epochs": 0, "eta": 3}, "training.halving.min_epochs"),
        ({"min_epochs": 2.5, "eta": 3}, "training.halving.min_epochs"),
        ({"min_epochs": 5, "eta": 3, "rate": 2}, "training.halving"),
        ({"min_epochs": 21, "eta": 3}, r"min_epochs \(21\) exceeds training.epochs \(20\)"),
    ],
)
def test_config_errors_are_one_line(config, halving, message):
    cfg = copy.deepcopy(config)
    cfg["training"]["halving"] = halving
    with pytest.raises(LionSweepError, match=message) as err:
        validate(cfg, SCHEMA)
    assert "\n" not in str(err.value)


def test_config_rejects_an_epochs_axis_beside_halving(config):
    cfg = copy.deepcopy(config)
    cfg["training"]["halving"] = {"min_epochs": 5, "eta": 3}
    validate(copy.deepcopy(cfg), SCHEMA)  # the default study halves
    cfg["optimizers"]["lion"]["grid"].append({"param": "epochs", "values": [10, 20]})
    with pytest.raises(LionSweepError, match=r"optimizers\.lion: an `epochs` grid axis"):
        validate(cfg, SCHEMA)
