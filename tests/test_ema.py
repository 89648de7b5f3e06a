"""What the engine evaluates (issue 20, deliverable 3): the weight EMA of any optimizer
(``ema_decay``, as ``torch.optim.swa_utils.get_ema_multi_avg_fn``) and Schedule-Free
at its averaged point x (``schedulefree``'s ``optimizer.eval()``), per epoch (curves,
best epoch) and at the end, each model slice checked against the references."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import linear_splits, train_batched, train_reference
from test_registry import TEST_HP
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lionsweep.errors import LionSweepError
from lionsweep.optim import registry as optim
from lionsweep.sweep import grid
from lionsweep.sweep import shards as sweep
from lionsweep.train import engine
from lionsweep.train.engine import TrainSettings
from lionsweep.train.heads import make_head
from lionsweep.train.model import BatchedMLP
from lionsweep.train.trainer import Averaging

SETTINGS = TrainSettings(hidden=8, dropout=0.2, epochs=5, batch_size=16, dtype="float64")
SEED = 5
K = 4


def _splits():
    return linear_splits(96, 40)


def _hp(name: str, k: int = K, **extra: list[float]) -> dict[str, np.ndarray]:
    """TEST_HP's row of ``name`` cycled to k (lr scaled to learn in a few epochs)."""
    row = {**TEST_HP[name], **extra}
    hp = {h: np.array([v[i % len(v)] for i in range(k)], dtype=np.float64) for h, v in row.items()}
    hp["lr"] = hp["lr"] * 3.0
    return hp


def test_ema_slices_match_averaged_model():
    """Each model's EMA is torch's AveragedModel(get_ema_multi_avg_fn(decay)) updated
    after every step (the first update copies), in float64 to 1e-12; decay 0 is exactly
    the weights (those models evaluate their own)."""
    decay = torch.tensor([0.0, 0.9, 0.5, 0.999, 0.99], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    shapes = [(3, 4), (1, 3), (1,)]
    steps = [
        BatchedMLP(*(torch.randn(len(decay), *s, generator=g, dtype=torch.float64) for s in shapes))
        for _ in range(9)
    ]
    avg = Averaging.new(steps[0].clone(), decay)
    assert avg is not None
    for step, weights in enumerate(steps, 1):
        avg.update(weights, step)
    for j, d in enumerate(decay.tolist()):
        mine = [t[j] for t in avg.ema.params()]
        if d == 0:
            assert all(torch.equal(a, w[j]) for a, w in zip(mine, steps[-1].params(), strict=True))
            continue
        module = torch.nn.ParameterList(
            [torch.nn.Parameter(t[j].clone()) for t in steps[0].params()]
        )
        ref = AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(d))
        for weights in steps:
            for p, w in zip(module, weights.params(), strict=True):
                p.data.copy_(w[j])
            ref.update_parameters(module)
        for a, r in zip(mine, ref.module, strict=True):
            torch.testing.assert_close(a, r.detach(), rtol=0, atol=1e-12)


def test_no_model_averages_no_copy():
    """Without EMA a chunk keeps no average (no copy, no kernel per step)."""
    model = BatchedMLP(*(torch.zeros(3, *s) for s in [(2, 4), (1, 2), (1,)]))
    assert Averaging.new(model, torch.zeros(3)) is None
    assert Averaging.new(model, torch.tensor([0.0, 0.5, 0.0])) is not None


CASES = [
    ("adamw", {"ema_decay": [0.0, 0.9, 0.5, 0.99]}),  # an EMA axis on a plain optimizer
    ("lion", {"ema_decay": [0.8, 0.0, 0.95, 0.6]}),
    ("schedulefree", {}),  # evaluated at x
    ("schedulefree", {"ema_decay": [0.9, 0.0, 0.7, 0.0]}),  # the EMA of x
    ("muon_ema", {}),  # the entry's own decays (TEST_HP)
]


def _reference_run(
    name: str, hp: dict[str, np.ndarray], k: int, settings: TrainSettings = SETTINGS
):
    """Per-epoch (val loss, val score) and the evaluated models of the reference."""
    splits, head = _splits(), make_head()
    xva = torch.as_tensor(splits["val"][0]).double()
    yva = head.encode(splits["val"][1], "val", torch.float64)[0]
    curve, models = [], []

    def on_epoch(model: torch.nn.Module) -> None:
        with torch.no_grad():
            loss, score = head.curve(model(xva).t()[None], yva)
        curve.append((loss.item(), score.item()))
        weights = {n: t.clone() for n, t in model.state_dict().items()}  # not views
        models.append(BatchedMLP.from_single(weights, 1, torch.float64, "cpu"))

    ref = train_reference(splits, name, hp, k, settings, SEED, on_epoch=on_epoch)
    return np.array(curve), models, ref


def _test_metrics(model: torch.nn.Module) -> dict[str, float]:
    head, splits = make_head(), _splits()
    xte = torch.as_tensor(splits["test"][0]).double()
    with torch.no_grad():
        out = model(xte).t()[None]
    metrics = head.evaluate(out, head.encode(splits["test"][1], "test", torch.float64)[0])
    return {m: v[0].item() for m, v in metrics.items()}


@pytest.mark.parametrize(("name", "extra"), CASES)
def test_engine_evaluates_what_the_reference_evaluates(name, extra):
    """float64: every model's validation curves, best epoch, best-epoch and final test
    metrics are those of the reference's evaluated model (EMA / Schedule-Free's x),
    and its trained weights are the reference's."""
    hp = _hp(name, **extra)
    res, model = train_batched(_splits(), name, hp, SETTINGS, SEED)
    head = make_head()
    for k in range(K):
        curve, _, ref = _reference_run(name, hp, k)
        for key, value in ref.net.state_dict().items():
            torch.testing.assert_close(model.model_state(k)[key], value, rtol=0, atol=1e-10)
        # curves are stored in float32 (the sweep table's): equal up to that rounding
        np.testing.assert_allclose(res["curve_val_loss"][k], curve[:, 0], rtol=1e-7)
        np.testing.assert_allclose(res[f"curve_val_{head.primary}"][k], curve[:, 1], rtol=1e-7)
        best = int(np.argmax(curve[:, 1])) + 1  # the first epoch with the best score
        assert res["best_epoch"][k] == best
        final = _test_metrics(ref.evaluated)
        for metric in head.metrics:
            assert res[f"test_{metric}"][k] == pytest.approx(final[metric], abs=1e-9), metric


def _evaluate_single(model: BatchedMLP) -> dict[str, float]:
    net = torch.nn.Sequential(
        torch.nn.Linear(model.w1.shape[2] - 1, model.hidden),
        torch.nn.ReLU(),
        torch.nn.Identity(),
        torch.nn.Linear(model.hidden, model.width),
    ).double()
    net.load_state_dict(model.model_state(0))
    return _test_metrics(net)


@pytest.mark.parametrize(("name", "extra"), CASES[:3])
def test_best_epoch_metrics_are_the_evaluated_models(name, extra):
    """Best-epoch test metrics come from the evaluated model of the best epoch."""
    hp = _hp(name, **extra)
    settings = dataclasses.replace(SETTINGS, epochs=6)
    res, _ = train_batched(_splits(), name, hp, settings, SEED)
    for k in range(K):
        best = int(res["best_epoch"][k])
        _, models, _ = _reference_run(name, hp, k, settings)
        want = _evaluate_single(models[best - 1])
        assert res["best_test_auc"][k] == pytest.approx(want["auc"], abs=1e-9)
        assert res["best_test_logloss"][k] == pytest.approx(want["logloss"], abs=1e-9)


def test_schedulefree_is_not_evaluated_at_y():
    """The fix is visible: x's metrics differ from the trained y's."""
    hp = _hp("schedulefree")
    res, _ = train_batched(_splits(), "schedulefree", hp, SETTINGS, SEED)
    ref = train_reference(_splits(), "schedulefree", hp, 0, SETTINGS, SEED)
    at_y, at_x = _test_metrics(ref.net), _test_metrics(ref.evaluated)
    assert abs(at_x["logloss"] - at_y["logloss"]) > 1e-6
    assert res["test_logloss"][0] == pytest.approx(at_x["logloss"], abs=1e-9)


def test_ema_off_moves_nothing():
    """ema_decay 0 (given or absent) trains and evaluates exactly as before; a model
    without EMA in a chunk where others have one gets exactly the same numbers."""
    settings = dataclasses.replace(SETTINGS, dtype="float32", epochs=3)
    hp = _hp("adamw")
    absent, _ = train_batched(_splits(), "adamw", hp, settings, SEED)
    zeros, _ = train_batched(_splits(), "adamw", {**hp, "ema_decay": np.zeros(K)}, settings, SEED)
    mixed, _ = train_batched(
        _splits(), "adamw", {**hp, "ema_decay": np.array([0.0, 0.9, 0.0, 0.5])}, settings, SEED
    )
    for key, value in absent.items():
        np.testing.assert_array_equal(zeros[key], value, err_msg=key)
        np.testing.assert_array_equal(mixed[key][[0, 2]], value[[0, 2]], err_msg=key)
    assert not np.array_equal(mixed["curve_val_loss"][1], absent["curve_val_loss"][1])


@pytest.mark.parametrize(("entry", "base"), [("adamw_ema", "adamw"), ("muon_ema", "muon")])
def test_ema_entries_are_their_base_with_ema(entry, base):
    """An ``_ema`` entry trains through the engine as its base with an ema_decay axis,
    number for number; without one it takes its default (torch's 0.999)."""
    settings = dataclasses.replace(SETTINGS, dtype="float32", epochs=3)
    hp = _hp(entry)
    ours, _ = train_batched(_splits(), entry, hp, settings, SEED)
    theirs, _ = train_batched(_splits(), base, hp, settings, SEED)
    for key, value in ours.items():
        np.testing.assert_array_equal(theirs[key], value, err_msg=key)
    assert optim.spec(entry).averaging["ema_decay"].default == 0.999
    data = engine.device_data(_splits(), settings)
    kw = {h: v for h, v in hp.items() if h != "ema_decay"}
    default = engine.train_grid(_splits(), entry, kw, SEED, settings, False, data=data)
    at_999 = engine.train_grid(
        _splits(), base, {**kw, "ema_decay": np.full(K, 0.999)}, SEED, settings, False, data=data
    )
    np.testing.assert_array_equal(default["curve_val_loss"], at_999["curve_val_loss"])


def test_memory_plan_counts_the_average():
    plain = engine.bytes_per_model(100, 6, SETTINGS, "adamw")
    averaged = engine.bytes_per_model(100, 6, SETTINGS, "adamw", averaged=True)
    n_params = (6 + 1) * SETTINGS.hidden + SETTINGS.hidden + 1
    assert averaged - plain == 8 * n_params  # one float64 copy of the weights


def test_ema_decay_is_a_grid_axis_of_every_optimizer():
    """Any optimizer takes an ema_decay axis (default 0: off); the _ema entries require
    it on; a bad value is one line naming the key."""
    spec = {
        "optimizer": "lion",
        "defaults": {},
        "grid": [{"param": "ema_decay", "values": [0, 0.9]}],
    }
    frame = grid.expand(spec)
    assert frame["ema_decay"].tolist() == [0.0, 0.9, 0.0]  # the default row: off
    plain = grid.expand({**spec, "grid": [{"param": "lr", "values": [1e-3]}]})
    assert plain["ema_decay"].tolist() == [0.0, 0.0]
    ema = grid.expand(
        {**spec, "optimizer": "adamw_ema", "grid": [{"param": "lr", "values": [1e-3]}]}
    )
    assert ema["ema_decay"].tolist() == [0.999, 0.999]
    for optimizer, value, message in [
        ("sgd", 1.0, "is not in [0, 1)"),
        ("adamw_ema", 0.0, "is not in (0, 1)"),
    ]:
        bad = [{"param": "ema_decay", "values": [value]}]
        with pytest.raises(LionSweepError, match="ema_decay") as err:
            grid.check_grid(bad, f"optimizers.{optimizer}.grid", optimizer)
        assert message in str(err.value) and "\n" not in str(err.value)


def test_grid_tables_without_the_column_train_without_ema():
    """A grid table written before ema_decay existed (no column, or NaN) means off, or
    the _ema entry's default."""
    rows = pd.DataFrame({"lr": [1e-3, 1e-2]})
    assert sweep.grid_hparams(rows, "lion")["ema_decay"].tolist() == [0.0, 0.0]
    rows["ema_decay"] = [np.nan, 0.5]
    assert sweep.grid_hparams(rows, "adamw_ema")["ema_decay"].tolist() == [0.999, 0.5]
