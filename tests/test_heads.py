"""Task heads: metrics equal sklearn, loss gradients equal autograd, and batched
training of every (task, optimizer) equals the same models trained one by one."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from helpers import reference_loss, train_alone, train_batched, train_reference

from lionsweep.errors import LionSweepError
from lionsweep.optim import registry as optim
from lionsweep.train import engine, heads
from lionsweep.train.engine import TrainSettings, train_grid
from lionsweep.train.heads import Task, make_head

sk = pytest.importorskip("sklearn.metrics")
SEED = 11
SETTINGS = TrainSettings(hidden=8, dropout=0.25, epochs=3, batch_size=16)
C = 4


def _splits(task: str, seed: int = 0, n: int = 90, d: int = 5):
    """Small noisy data for ``task``; n % batch_size != 0 (padded last batch)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(d, C))

    def make(m: int):
        x = rng.normal(size=(m, d)).astype(np.float32)
        z = x @ w + rng.normal(size=(m, C))
        if task == "binary":
            return x, (z[:, 0] > 0).astype(np.int64)
        if task == "multiclass":
            return x, z.argmax(axis=1).astype(np.int64)
        return x, 50.0 + 20.0 * z[:, 0]  # far from standardized units

    return {"train": make(n), "val": make(30), "test": make(31)}


def _task(name: str, splits) -> Task:
    if name == "regression":
        y = splits["train"][1]
        return Task("regression", target_mean=float(y.mean()), target_std=float(y.std()))
    return Task(name, n_classes=C if name == "multiclass" else 2)


def _hp(name: str, k: int) -> dict[str, np.ndarray]:
    from test_registry import TEST_HP

    scale = {"sgd": 3.0, "lion": 0.3}.get(name, 1.0)  # lr in each one's useful range
    hp = {h: np.array([v[i % len(v)] for i in range(k)]) for h, v in TEST_HP[name].items()}
    hp["lr"] = hp["lr"] * scale
    return hp


@pytest.mark.parametrize("optimizer", optim.names())
@pytest.mark.parametrize("task_name", heads.TASKS)
def test_batched_equals_one_by_one_float64(task_name, optimizer):
    if optimizer == "soap":
        pytest.skip(
            "ill-posed here: SOAP's eigenbasis of the output layer's rank-deficient Gram "
            "matrix (C < hidden) is rounding noise; tests/test_soap.py compares where it is not"
        )
    settings = dataclasses.replace(SETTINGS, dtype="float64")
    splits = _splits(task_name)
    task = _task(task_name, splits)
    hp = _hp(optimizer, 5)
    res, model = train_batched(splits, optimizer, hp, settings, SEED, task)
    head = make_head(task)
    xte, yte = torch.as_tensor(splits["test"][0]).double(), splits["test"][1]
    for k in range(len(hp["lr"])):
        net, evaluated = train_reference(splits, optimizer, hp, k, settings, SEED, task)
        for name, ref in net.state_dict().items():
            torch.testing.assert_close(model.model_state(k)[name], ref, rtol=0, atol=1e-10)
        with torch.no_grad():  # the model the reference evaluates (EMA, Schedule-Free's x)
            out = evaluated(xte).t()[None]  # [1, C, n]
        ref_metrics = head.evaluate(out, head.encode(yte, "test", torch.float64)[0])
        for metric in head.metrics:
            got, want = res[f"test_{metric}"][k], ref_metrics[metric][0].item()
            assert got == pytest.approx(want, rel=1e-9, abs=1e-9), metric
    assert not res["diverged"].any()


@pytest.mark.parametrize("task_name", ["multiclass", "regression"])
def test_batched_equals_one_by_one_float32(task_name):
    """float32: rounding differs from nn.Linear's (fused bias column, hand-written
    backward, lerp), by ~1e-7 relative per step; AdamW's normalised steps keep it from
    growing. So weights agree to 1e-4 (1000x the rounding, well under the lr-sized
    steps a real difference would make) and the primary test metric to one example."""
    settings = dataclasses.replace(SETTINGS, epochs=4)
    splits = _splits(task_name, n=150)
    task = _task(task_name, splits)
    hp = _hp("adamw", 4)
    res, model = train_batched(splits, "adamw", hp, settings, SEED, task)
    head = make_head(task)
    xte, yte = torch.as_tensor(splits["test"][0]), splits["test"][1]
    for k in range(len(hp["lr"])):
        net = train_alone(splits, "adamw", hp, k, settings, SEED, task)
        for name, ref in net.state_dict().items():
            torch.testing.assert_close(model.model_state(k)[name], ref, rtol=1e-4, atol=1e-4)
        with torch.no_grad():
            ref_metrics = head.evaluate(net(xte).t()[None], torch.as_tensor(yte))
        got, want = res[f"test_{head.primary}"][k], ref_metrics[head.primary][0].item()
        tol = 1 / len(xte) if task_name == "multiclass" else 1e-4
        assert abs(got - want) <= tol + 1e-12


@pytest.mark.parametrize("task_name", heads.TASKS)
def test_loss_gradient_equals_autograd(task_name):
    splits = _splits(task_name)
    task = _task(task_name, splits)
    head = make_head(task)
    k, rows, nb = 3, 8, 6  # two padded rows
    out = torch.randn(k, head.width, rows, dtype=torch.float64, requires_grad=True)
    y_eval, y_train = head.encode(splits["train"][1][:rows], "train", torch.float64)
    y_train[:, nb:] = 0
    w = torch.tensor([1 / nb] * nb + [0.0] * (rows - nb), dtype=torch.float64)
    dout = torch.empty_like(out)
    head.loss_grad(out.detach(), y_train, w, dout)
    loss = sum(reference_loss(task, out[j, :, :nb].t(), y_eval[:nb]) for j in range(k))
    (grad,) = torch.autograd.grad(loss, out)
    torch.testing.assert_close(dout, grad, rtol=0, atol=1e-15)


def test_regression_metrics_are_in_target_units():
    """Predictions are made in standardized units; metrics undo the scaling."""
    splits = _splits("regression")
    task = _task("regression", splits)
    res = train_grid(splits, "adam", _hp("adam", 3), SEED, SETTINGS, progress=False, task=task)
    naive_rmse = float(np.std(splits["test"][1]))  # predicting the mean
    assert (res["test_rmse"] > 1.0).all()  # target std is ~40: not standardized units
    assert (res["test_rmse"] < 3 * naive_rmse).all()
    np.testing.assert_allclose(res["val_r2"], res["curve_val_r2"][:, -1], rtol=1e-5)


@pytest.mark.parametrize("task_name", heads.TASKS)
def test_result_columns_are_what_the_engine_returns(task_name):
    splits = _splits(task_name)
    task = _task(task_name, splits)
    res = train_grid(splits, "sgd", _hp("sgd", 2), SEED, SETTINGS, progress=False, task=task)
    assert tuple(k for k in res if k != "device") == heads.result_columns(task)
    primary = make_head(task).primary
    curve = f"curve_val_{primary}"
    assert heads.curve_columns(task) == ("curve_val_loss", curve)
    best = res["best_epoch"]
    np.testing.assert_array_equal(best, np.nanargmax(res[curve], axis=1) + 1)
    np.testing.assert_allclose(res[f"best_val_{primary}"], res[curve][[0, 1], best - 1], rtol=1e-5)
    assert heads.result_columns("binary")[:3] == ("train_acc", "train_balanced_acc", "train_f1")


@pytest.mark.parametrize(
    ("task", "y", "message"),
    [
        (Task("multiclass", n_classes=2), None, "multiclass needs n_classes >= 3, got 2"),
        (Task("binary", n_classes=3), None, "task binary has 2 classes"),
        (Task("ordinal"), None, "unknown task 'ordinal'"),
        (Task("regression", target_std=0.0), None, "target_std > 0"),
        (Task("regression", target_mean=math.nan), None, "target_mean=nan"),
        (Task("multiclass", n_classes=3), "label5", "split 'val': multiclass target has label 5"),
        (Task("binary"), "label2", "split 'val': binary target has label 2 outside 0..1"),
        (Task("binary"), "fraction", "split 'val': binary target must hold class numbers"),
        (Task("binary"), "text", "split 'val': binary target has dtype <U1"),
        (Task("regression"), "nan", "split 'val': regression target must be finite"),
    ],
)
def test_bad_tasks_and_targets_are_one_line_errors(task, y, message):
    splits = _splits("binary")
    x, labels = splits["val"]
    bad = {
        "label5": np.where(labels == 1, 5, 0),
        "label2": labels * 2,
        "fraction": labels + 0.5,
        "text": np.array(["a"] * len(labels)),
        "nan": np.where(labels == 1, np.nan, 1.0),
    }
    if y is not None:
        splits["val"] = (x, bad[y])
    with pytest.raises(LionSweepError) as err:
        train_grid(splits, "lion", _hp("lion", 2), SEED, SETTINGS, progress=False, task=task)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x_nan": True}, "split 'train': X must be finite numbers"),
        ({"empty": "val"}, "split 'val' has no rows"),
        ({"hp": {"beta1": [0.9, 1.5]}}, "lion hyperparameter beta1=1.5 (configuration 1)"),
        ({"optimizer": "sgd_nesterov"}, "unknown optimizer 'sgd_nesterov'"),
        ({"hp": {"lr": ["fast", "slow"]}}, "lion hyperparameter lr must be numbers"),
        ({"hp": {h: [] for h in optim.REGISTRY["lion"].hparams}}, "no configurations"),
        ({"task": 3}, "task must be a task name or a lionsweep.train.heads.Task, got 3"),
    ],
)
def test_bad_inputs_name_the_culprit(change, message):
    splits, hp, name = _splits("binary"), _hp("lion", 2), change.get("optimizer", "lion")
    if "x_nan" in change:
        x, y = splits["train"]
        x = x.copy()
        x[3, 1] = np.nan
        splits["train"] = (x, y)
    if "empty" in change:
        x, y = splits[change["empty"]]
        splits[change["empty"]] = (x[:0], y[:0])
    hp.update({h: np.array(v) for h, v in change.get("hp", {}).items()})
    with pytest.raises(LionSweepError) as err:
        train_grid(splits, name, hp, SEED, SETTINGS, False, task=change.get("task", "binary"))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_scalar_hyperparameters_are_one_configuration():
    splits, hp = _splits("binary"), _hp("lion", 1)
    one = train_grid(splits, "lion", hp, SEED, SETTINGS, progress=False)
    scalar = {h: float(v[0]) for h, v in hp.items()}
    res = train_grid(splits, "lion", scalar, SEED, SETTINGS, progress=False)
    for key, value in one.items():
        np.testing.assert_array_equal(res[key], value, err_msg=key)


@pytest.mark.parametrize("optimizer", optim.names())
def test_divergence_is_masked_for_every_optimizer(optimizer):
    """A diverging model (huge lr with decay) is flagged in the epoch it diverges, under
    every optimizer, whatever the run's length; the others are unaffected."""
    splits = _splits("multiclass")
    task = _task("multiclass", splits)
    hp = _hp(optimizer, 4)
    # Adan decays as p / (1 + lr * wd): a huge lr with decay shrinks the weights instead
    hp["weight_decay"][2] = 0.0 if optimizer == "adan" else 0.1
    hp["lr"][2] = 1e30
    short, _ = train_batched(
        splits, optimizer, hp, dataclasses.replace(SETTINGS, epochs=2), SEED, task
    )
    res, _ = train_batched(splits, optimizer, hp, SETTINGS, SEED, task)
    assert res["diverged"].tolist() == [False, False, True, False]
    assert res["diverged_epoch"][2] == short["diverged_epoch"][2] == 1
    assert np.isnan(res["test_acc"][2]) and res["best_epoch"][2] == -1
    assert np.isnan(res["curve_val_loss"][2]).all()
    if optimizer == "soap":
        return  # its others move with the chunk's rounding: docs/optimizers.md, soap row
    keep = [0, 1, 3]
    ref, _ = train_batched(
        splits, optimizer, {h: v[keep] for h, v in hp.items()}, SETTINGS, SEED, task
    )
    for key in ref:
        if key not in ("diverged", "diverged_epoch"):
            np.testing.assert_allclose(res[key][keep], ref[key], rtol=0, atol=1e-6, err_msg=key)


def test_memory_plan_counts_each_optimizers_state_and_outputs():
    s = TrainSettings()
    d, n = 12, 455
    elem, n_params = 4, (d + 1) * s.hidden + s.hidden + 1
    lion, adam = (engine.bytes_per_model(n, d, s, o) for o in ("lion", "adam"))
    assert adam - lion == elem * n_params  # one state tensor more
    assert engine.bytes_per_model(n, d, s, "sgd") == lion  # one state tensor each
    wide = engine.bytes_per_model(n, d, s, "lion", width=C)
    assert wide > lion + 6 * elem * (C - 1) * (s.hidden + 1)  # 6 copies of the wider layer 2


@pytest.mark.parametrize("task_name", ["multiclass", "regression"])
def test_common_random_numbers_for_every_task(task_name):
    """A configuration's numbers do not depend on the others trained beside it."""
    splits = _splits(task_name)
    task = _task(task_name, splits)
    hp = _hp("adam", 6)
    full, model = train_batched(splits, "adam", hp, SETTINGS, SEED, task)
    for k in (0, 4):
        alone, m1 = train_batched(
            splits, "adam", {h: v[k : k + 1] for h, v in hp.items()}, SETTINGS, SEED, task
        )
        for name, t in m1.model_state(0).items():
            torch.testing.assert_close(t, model.model_state(k)[name], rtol=0, atol=1e-6)
        for key, value in alone.items():
            np.testing.assert_allclose(value[0], full[key][k], rtol=1e-6, atol=1e-9, err_msg=key)
