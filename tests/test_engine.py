"""The batched engine: equivalence with one-by-one training, CRN invariance, divergence."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
import torch
from helpers import train_alone, train_batched

from lionsweep.optim import registry as optim
from lionsweep.train import engine
from lionsweep.train.engine import TrainSettings, train_grid
from lionsweep.train.metrics import METRICS, binary_metrics

SEED = 7
SETTINGS = TrainSettings(hidden=8, dropout=0.3, epochs=3, batch_size=16)


def _splits(seed: int = 0, n: int = 90, d: int = 6) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Small noisy data; n % batch_size != 0 so the padded last batch is exercised."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d)

    def make(m: int):
        x = rng.normal(size=(m, d)).astype(np.float32)
        y = (x @ w + rng.normal(size=m) > 0).astype(np.int64)
        return x, y

    return {"train": make(n), "val": make(30), "test": make(31)}


def _lion_hp(k: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "lr": np.geomspace(1e-3, 3e-2, k),
        "beta1": rng.uniform(0.7, 0.99, k),
        "beta2": np.full(k, 0.99),
        "weight_decay": np.linspace(0, 0.2, k),
    }


def _adamw_hp(k: int = 4) -> dict[str, np.ndarray]:
    return {
        "lr": np.geomspace(1e-3, 3e-2, k),
        "beta1": np.linspace(0.8, 0.95, k),
        "beta2": np.linspace(0.99, 0.999, k),
        "weight_decay": np.linspace(0, 0.1, k),
        "eps": np.full(k, 1e-8),
    }


# The shared reference and batched training (tests/helpers.py), at this file's seed.
_reference = functools.partial(train_alone, seed=SEED)
_chunk = functools.partial(train_batched, seed=SEED)


@pytest.mark.parametrize("optimizer", ["lion", "adamw"])
def test_batched_equals_one_by_one_float64(optimizer):
    settings = dataclasses.replace(SETTINGS, dtype="float64")
    splits = _splits()
    hp = _lion_hp() if optimizer == "lion" else _adamw_hp()
    res, model = _chunk(splits, optimizer, hp, settings)
    xte = torch.as_tensor(splits["test"][0]).double()
    for k in range(len(hp["lr"])):
        net = _reference(splits, optimizer, hp, k, settings)
        for name, ref in net.state_dict().items():
            torch.testing.assert_close(model.model_state(k)[name], ref, rtol=0, atol=1e-10)
        with torch.no_grad():
            z = net(xte)
        ref_metrics = binary_metrics(z, torch.as_tensor(splits["test"][1]))
        for metric in METRICS:
            assert res[f"test_{metric}"][k] == pytest.approx(
                ref_metrics[metric][0].item(), abs=1e-9
            )


def test_batched_equals_one_by_one_float32():
    """float32: rounding differs (lerp vs mul+add, fused bias), and a Lion coordinate
    whose interpolation is within rounding of 0 can flip sign, moving by 2*lr. So we
    require: >= 99% of weights within 1e-5 (no flip), all within a few lr-steps, and
    test accuracy within one example. (Observed on CPU: bitwise equal.)"""
    settings = dataclasses.replace(SETTINGS, epochs=4)
    splits = _splits(n=150)
    hp = _lion_hp()
    res, model = _chunk(splits, "lion", hp, settings)
    xte = torch.as_tensor(splits["test"][0])
    for k in range(len(hp["lr"])):
        net = _reference(splits, "lion", hp, k, settings)
        diffs = torch.cat(
            [(model.model_state(k)[n] - t).abs().flatten() for n, t in net.state_dict().items()]
        )
        assert (diffs <= 1e-5).float().mean() >= 0.99
        assert diffs.max() <= 10 * hp["lr"][k]
        with torch.no_grad():
            ref_acc = binary_metrics(net(xte), torch.as_tensor(splits["test"][1]))["acc"][0]
        assert abs(res["test_acc"][k] - ref_acc.item()) <= 1 / len(xte) + 1e-12


def test_common_random_numbers_invariance(monkeypatch):
    """A configuration's result does not depend on K, its position or the chunking."""
    splits = _splits()
    hp = _lion_hp(6)
    full, model = _chunk(splits, "lion", hp, SETTINGS)
    for k in (0, 4):
        alone, m1 = _chunk(splits, "lion", {n: v[k : k + 1] for n, v in hp.items()}, SETTINGS)
        for name, t in m1.model_state(0).items():
            torch.testing.assert_close(t, model.model_state(k)[name], rtol=0, atol=1e-6)
        for split in engine.SPLITS:
            assert alone[f"{split}_acc"][0] == full[f"{split}_acc"][k]
    # reversed order and chunks of 2 (via train_grid)
    monkeypatch.setattr(engine, "MIN_CHUNK", 1)
    monkeypatch.setattr(engine, "MAX_CHUNK", 2)
    rev = {n: v[::-1].copy() for n, v in hp.items()}
    chunked = train_grid(splits, "lion", rev, SEED, SETTINGS, progress=False)
    for key in ("test_acc", "val_acc", "train_acc", "best_epoch", "best_test_acc"):
        np.testing.assert_array_equal(chunked[key][::-1], full[key])
    for key, value in full.items():  # (observed on CPU: bitwise equal)
        np.testing.assert_allclose(chunked[key][::-1], value, rtol=0, atol=1e-6, err_msg=key)


def test_deterministic_and_result_layout():
    splits = _splits()
    hp = _lion_hp(3)
    a = train_grid(splits, "lion", hp, SEED, SETTINGS, progress=False)
    b = train_grid(splits, "lion", hp, SEED, SETTINGS, progress=False)
    assert a.keys() == b.keys()
    for key, v in a.items():
        if key == "device":
            assert v == "cpu"
            continue
        np.testing.assert_array_equal(v, b[key])  # bitwise
        assert len(v) == 3
    for split in engine.SPLITS:
        for metric in METRICS:
            assert a[f"{split}_{metric}"].dtype == np.float64
            assert f"best_{split}_{metric}" in a
    assert a["curve_val_acc"].shape == (3, SETTINGS.epochs)
    assert a["curve_val_acc"].dtype == np.float32
    # best epoch = earliest argmax of the validation accuracy curve
    np.testing.assert_array_equal(a["best_epoch"], a["curve_val_acc"].argmax(axis=1) + 1)
    rows = np.arange(3)
    np.testing.assert_allclose(
        a["best_val_acc"], a["curve_val_acc"][rows, a["best_epoch"] - 1], atol=1e-6
    )
    np.testing.assert_allclose(a["val_acc"], a["curve_val_acc"][:, -1], atol=1e-6)
    np.testing.assert_allclose(a["val_logloss"], a["curve_val_loss"][:, -1], rtol=1e-6)
    assert not a["diverged"].any() and (a["diverged_epoch"] == -1).all()
    c = train_grid(splits, "lion", hp, SEED + 1, SETTINGS, progress=False)
    assert not np.array_equal(a["test_logloss"], c["test_logloss"])  # the seed matters


@pytest.mark.parametrize("optimizer", ["lion", "adamw"])
def test_divergence_is_a_result(optimizer):
    splits = _splits()
    hp = _lion_hp(4) if optimizer == "lion" else _adamw_hp(4)
    bad = {n: v.copy() for n, v in hp.items()}
    bad["lr"][2], bad["weight_decay"][2] = 1e6, 0.1  # |1 - lr*wd| = 1e5 per step: overflow
    settings = dataclasses.replace(SETTINGS, epochs=4)
    res, model = _chunk(splits, optimizer, bad, settings)
    assert res["diverged"].tolist() == [False, False, True, False]
    epoch = res["diverged_epoch"][2]
    assert epoch == 1
    assert res["best_epoch"][2] == -1
    for key, v in res.items():
        if key.startswith(("train_", "val_", "test_", "best_")) and key != "best_epoch":
            assert np.isnan(v[2]), key
    assert np.isnan(res["curve_val_loss"][2, epoch - 1 :]).all()
    # the others equal a run without the absurd configuration
    keep = [0, 1, 3]
    ref, ref_model = _chunk(splits, optimizer, {n: v[keep] for n, v in hp.items()}, settings)
    for key in res:
        if key not in ("diverged", "diverged_epoch"):
            np.testing.assert_allclose(res[key][keep], ref[key], rtol=0, atol=1e-6, err_msg=key)
    for i, k in enumerate(keep):
        for name, t in model.model_state(k).items():
            torch.testing.assert_close(t, ref_model.model_state(i)[name], rtol=0, atol=1e-6)


@pytest.mark.parametrize("optimizer", ["lion", "adamw"])
def test_diverged_model_is_masked_whatever_the_run_length(optimizer):
    """lr=1e30 makes the logits overflow in the first steps: the model is marked dead on
    the device at that step, flagged with that epoch in a 2- and a 3-epoch run alike, and
    masked out of every later result (it is not frozen: its weights are no result)."""
    splits = _splits()
    hp = _lion_hp(3) if optimizer == "lion" else _adamw_hp(3)
    hp["lr"][1], hp["weight_decay"][1] = 1e30, 1e-3
    for epochs in (2, 3):
        res, _ = _chunk(splits, optimizer, hp, dataclasses.replace(SETTINGS, epochs=epochs))
        assert res["diverged"].tolist() == [False, True, False]
        assert res["diverged_epoch"].tolist() == [-1, 1, -1]
        assert res["best_epoch"][1] == -1 and np.isnan(res["test_auc"][1])
        assert (
            np.isnan(res["curve_val_acc"][1]).all() and not np.isnan(res["curve_val_acc"][0]).any()
        )


def test_memory_plan():
    """8,000 Titanic-sized configurations fit a few GB; chunks respect the budget."""
    s = TrainSettings()
    per = engine.bytes_per_model(455, 12, s, "lion")
    assert per * 8000 < 3 * 2**30
    chunks = engine.plan_chunks(8000, per, budget_mb=100)
    assert sum(c.stop - c.start for c in chunks) == 8000
    assert max(c.stop - c.start for c in chunks) * per <= 100 * 2**20
    assert engine.plan_chunks(1, per, budget_mb=1) == [slice(0, 1)]


def test_bad_inputs_are_user_errors():
    from lionsweep.errors import LionSweepError

    splits = _splits()
    with pytest.raises(LionSweepError):
        train_grid(splits, "sgd", _lion_hp(2), SEED, SETTINGS, progress=False)
    with pytest.raises(LionSweepError):
        train_grid(splits, "adamw", _lion_hp(2), SEED, SETTINGS, progress=False)


def test_thread_count_does_not_change_results():
    """Threads are a job resource, kept out of the rule's params: a shard trained with
    1 or 2 threads must give the same numbers, or a resumed sweep could mix them."""
    splits, hp = _splits(n=400, d=12), _lion_hp(k=16)
    base = TrainSettings(hidden=32, epochs=3, batch_size=32, dropout=0.2)
    one = train_grid(splits, "lion", hp, SEED, dataclasses.replace(base, threads=1), False)
    two = train_grid(splits, "lion", hp, SEED, dataclasses.replace(base, threads=2), False)
    for key in ("test_acc", "val_logloss", "curve_val_loss", "best_epoch"):
        np.testing.assert_array_equal(one[key], two[key])


def test_chunks_on_cuda_follow_the_devices_free_memory(monkeypatch):
    """On CUDA the chunk fits the device's free memory (mem_get_info, mocked) and the
    budget, not the CPU cache cap; elsewhere the cache cap still applies."""
    per, step = 10**6, 10**6  # a model needs 1 MB; its step touches 1 MB (cache: 32)
    free = 500 * 10**6
    cpu = engine.plan_chunks(3000, per, budget_mb=4000, step_bytes=step)
    assert len(cpu) == 24  # cache-capped: chunks of at most MIN_CHUNK = 128
    gpu = engine.plan_chunks(3000, per, budget_mb=4000, step_bytes=step, device_free=free)
    assert max(c.stop - c.start for c in gpu) <= free * engine.DEVICE_SHARE // per
    assert len(gpu) == 8  # 3000 / 400 per chunk
    tight = engine.plan_chunks(3000, per, budget_mb=100, step_bytes=step, device_free=free)
    assert max(c.stop - c.start for c in tight) * per <= 100 * 2**20  # the budget binds
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda dev: (free, 8 * free))
    assert engine.device_free_bytes(torch.device("cuda", 0)) == free
    assert engine.device_free_bytes(torch.device("cpu")) is None


def test_a_jobs_data_goes_to_the_device_once(monkeypatch):
    """train_budgets copies the splits to the device once, whatever the budgets."""
    import pandas as pd

    from lionsweep.sweep import shards as sweep

    calls = []
    plain = engine.device_data
    monkeypatch.setattr(engine, "device_data", lambda *a, **k: calls.append(1) or plain(*a, **k))
    hp = _lion_hp(4)
    configs = pd.DataFrame({h: hp.get(h, np.full(4, np.nan)) for h in optim.hparam_names()})
    configs["epochs"] = [1.0, 2.0, 1.0, 2.0]
    out = sweep.train_budgets(_splits(), "lion", configs, SEED, SETTINGS, 2, progress=False)
    assert calls == [1] and out["test_acc"].shape == (4,)


def test_the_engine_version_is_a_job_parameter_and_a_column():
    """Snakemake reruns a job whose params changed: the version is one of train_shard's
    (and of the sweep digest); the job refuses a version its code does not train."""
    from pathlib import Path

    from lionsweep import ENGINE_VERSION
    from lionsweep.errors import LionSweepError
    from lionsweep.sweep import shards as sweep

    rules = Path(__file__).resolve().parents[1] / "workflow" / "rules"
    assert "engine=ENGINE_VERSION," in (rules / "sweep.smk").read_text()
    assert '"engine": ENGINE_VERSION,' in (rules / "common.smk").read_text()
    sweep.check_engine(ENGINE_VERSION)
    sweep.check_engine(None)
    with pytest.raises(LionSweepError, match="engine version 1, but"):
        sweep.check_engine(1)
