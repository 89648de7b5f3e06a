"""Tasks beyond binary (issue 9, data side): multiclass class codes and regression targets,
checked on scikit-learn's wine and diabetes data written to CSV."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_wine

from conftest import ROOT
from lionsweep.config import validate
from lionsweep.data.datasets import load_raw
from lionsweep.data.prepare import load_splits, prepare
from lionsweep.errors import LionSweepError

SPLIT = {"seed": 42, "test_fraction": 0.2, "val_fraction": 0.2}
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def _csv(frame: pd.DataFrame, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def wine(tmp_path: Path) -> Path:
    """Wine with labels 10, 9, 2: sorted by meaning (2 < 9 < 10), not as text."""
    frame = load_wine(as_frame=True).frame
    frame["target"] = frame["target"].map({0: 10, 1: 9, 2: 2})
    return _csv(frame, tmp_path, "wine.csv")


@pytest.fixture
def diabetes(tmp_path: Path) -> Path:
    return _csv(load_diabetes(as_frame=True, scaled=False).frame, tmp_path, "diabetes.csv")


def _spec(task: str | None, **extra) -> dict:
    spec = {"read": {"header": True}, "target": "target", "features": None, **extra}
    return spec if task is None else {**spec, "task": task}


def test_multiclass_codes_follow_the_order_of_meaning(wine: Path, tmp_path: Path) -> None:
    meta = prepare(wine, _spec("multiclass"), SPLIT, tmp_path / "out", "wine")
    assert meta["task"] == "multiclass"
    assert meta["classes"] == ["2", "9", "10"]
    assert "positives" not in meta
    labels = pd.read_csv(wine)["target"].to_numpy()
    expected_codes = np.searchsorted([2, 9, 10], labels)
    splits = load_splits(tmp_path / "out")
    y_all = np.concatenate([y for _, y in splits.values()])
    assert all(y.dtype == np.int64 for _, y in splits.values())
    assert sorted(y_all.tolist()) == sorted(expected_codes.tolist())
    # stratified: each split's class shares within one row of the whole file's
    totals = np.bincount(expected_codes)
    for split, (_, y) in splits.items():
        counts = np.bincount(y, minlength=3)
        assert counts.tolist() == meta["class_counts"][split]
        assert np.all(np.abs(counts - totals * len(y) / len(labels)) <= 1.0)


def test_multiclass_labels_as_text_sort_as_text(tmp_path: Path) -> None:
    frame = load_wine(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "red", 1: "white", 2: "rose"})
    meta = prepare(_csv(frame, tmp_path, "w.csv"), _spec("multiclass"), SPLIT, tmp_path / "o", "w")
    assert meta["classes"] == ["red", "rose", "white"]


def test_regression_target_is_float_with_train_statistics(diabetes: Path, tmp_path: Path) -> None:
    meta = prepare(diabetes, _spec("regression"), SPLIT, tmp_path / "out", "diabetes")
    assert meta["task"] == "regression"
    assert "positives" not in meta and "classes" not in meta
    splits = load_splits(tmp_path / "out")
    y_train = splits["train"][1]
    assert y_train.dtype == np.float64
    assert meta["target_mean"] == pytest.approx(float(np.mean(y_train)), rel=1e-12)
    assert meta["target_std"] == pytest.approx(float(np.std(y_train)), rel=1e-12)
    # raw values, not standardized: they are the file's target values
    raw = np.sort(pd.read_csv(diabetes)["target"].to_numpy())
    y_all = np.sort(np.concatenate([y for _, y in splits.values()]))
    np.testing.assert_array_equal(y_all, raw)
    assert sum(meta["rows"].values()) == 442


def test_regression_split_is_not_stratified(diabetes: Path, tmp_path: Path) -> None:
    """A continuous target has ~one row per value: stratifying would fail."""
    frame = pd.read_csv(diabetes)
    frame["target"] = np.arange(len(frame)) + 0.5  # every value unique
    path = _csv(frame, tmp_path, "unique.csv")
    meta = prepare(path, _spec("regression"), SPLIT, tmp_path / "out", "unique")
    assert meta["rows"] == {"train": 282, "val": 71, "test": 89}


def test_binary_is_inferred_from_two_values(tmp_path: Path) -> None:
    frame = load_wine(as_frame=True).frame
    frame["target"] = (frame["target"] == 0).astype(int)
    meta = prepare(
        _csv(frame, tmp_path, "b.csv"), _spec(None, positive=1), SPLIT, tmp_path / "o", "b"
    )
    assert meta["task"] == "binary" and sum(meta["positives"].values()) == 59
    assert load_splits(tmp_path / "o")["train"][1].dtype == np.int64


def test_no_task_and_three_values_names_the_choices(wine: Path) -> None:
    with pytest.raises(LionSweepError) as err:
        load_raw(wine, _spec(None, positive=2), "wine")
    assert str(err.value) == (
        "wine: target 'target' must take exactly two values (a binary task); found 3: "
        "['2', '9', '10'] (or set datasets.wine.task: multiclass or regression)"
    )


def test_non_numeric_regression_target_is_named(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("x,target\n1,2.5\n2,high\n")
    with pytest.raises(LionSweepError, match=r"target 'target' of a regression task has the "):
        load_raw(path, _spec("regression"), "r")


@pytest.mark.parametrize(
    "entry,message",
    [
        ({"positive": None}, "datasets.titanic.positive is required for a binary task"),
        (
            {"task": "binary", "positive": None},
            "datasets.titanic.positive is required for a binary task: the target value "
            "counted as 1",
        ),
        ({"task": "regression"}, "datasets.titanic.positive applies to task: binary only"),
        ({"task": "ordinal"}, "datasets.titanic.task: 'ordinal' is not one of the allowed"),
    ],
)
def test_task_and_positive_at_config_time(config: dict, entry: dict, message: str) -> None:
    config = copy.deepcopy(config)
    titanic = config["datasets"]["titanic"]
    for key, value in entry.items():
        if value is None:
            titanic.pop(key, None)
        else:
            titanic[key] = value
    with pytest.raises(LionSweepError) as err:
        validate(config, SCHEMA)
    assert str(err.value).startswith(message)


def test_multiclass_without_positive_is_valid(config: dict) -> None:
    config = copy.deepcopy(config)
    del config["datasets"]["mushroom"]["positive"]
    config["datasets"]["mushroom"]["task"] = "multiclass"
    validate(config, SCHEMA)


def test_meta_json_records_the_task(wine: Path, tmp_path: Path) -> None:
    prepare(wine, _spec("multiclass"), SPLIT, tmp_path / "out", "wine")
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["task"] == "multiclass" and meta["classes"] == ["2", "9", "10"]


# ---------------------------------------------------------------- through the sweep
SETTINGS = {"hidden": 8, "dropout": 0.0, "epochs": 3, "batch_size": 32, "dtype": "float64"}


def _train(data: Path, tmp_path: Path, optimizer: str, grid: list[dict], seed: int = 0):
    """One shard of ``optimizer``'s grid on prepared ``data``, the task read from meta.json
    (as `lionsweep train` does): the shard table as pandas."""
    from lionsweep.sweep.grid import expand, grid_spec
    from lionsweep.sweep.shards import ShardJob, train_shard

    config = {"optimizers": {optimizer: {"grid": grid}}}
    frame = expand(grid_spec(config, "d", optimizer))
    grid_path = tmp_path / f"grid_{optimizer}.parquet"
    frame.to_parquet(grid_path)
    out = tmp_path / f"shard_{optimizer}_{seed}.parquet"
    rows = (0, len(frame))
    job = ShardJob(grid_path, data, "d", optimizer, seed, 0, rows, SETTINGS, out, threads=1)
    train_shard(job, progress=False)
    return pd.read_parquet(out)


def test_a_shard_trains_the_task_of_its_prepared_data(wine: Path, tmp_path: Path) -> None:
    """Wine (3 classes) through `train`: the multiclass head's columns, a task and a
    primary-metric column, and accuracy well above chance (1/3) for a sane lr."""
    from lionsweep.train.heads import Task, result_columns

    prepare(wine, _spec("multiclass"), SPLIT, tmp_path / "data", "wine")
    grid = [{"param": "lr", "values": [1e-2, 3e-2]}, {"param": "momentum", "values": [0.9]}]
    shard = _train(tmp_path / "data", tmp_path, "sgd", grid)
    task = "multiclass"
    assert set(result_columns(Task(task, n_classes=3))) <= set(shard.columns)
    assert not {"train_auc", "test_r2"} & set(shard.columns)  # binary / regression only
    assert shard.task.tolist() == [task] * 3 and shard.primary_metric.tolist() == ["acc"] * 3
    assert shard.curve_val_acc.map(len).eq(3).all()
    assert (shard.momentum.tolist(), shard.nesterov.tolist()) == ([0.9, 0.9, 0.0], [0, 0, 0])
    assert shard.beta1.isna().all()  # not an SGD hyperparameter
    assert (shard.test_acc.iloc[:2] > 0.6).all()


def test_a_regression_shard_reports_r2_in_target_units(diabetes: Path, tmp_path: Path) -> None:
    """Diabetes through `train`: r2 finite and positive for Adam at lr 1e-2, RMSE in the
    target's units (tens, not the standardized ~1)."""
    from lionsweep.train.heads import metric_columns

    prepare(diabetes, _spec("regression"), SPLIT, tmp_path / "data", "diabetes")
    shard = _train(tmp_path / "data", tmp_path, "adam", [{"param": "lr", "values": [1e-2]}])
    assert set(metric_columns("regression")) <= set(shard.columns)
    assert shard.task.tolist() == ["regression"] * 2
    assert shard.primary_metric.tolist() == ["r2"] * 2
    assert "curve_val_r2" in shard.columns and "test_acc" not in shard.columns
    assert np.isfinite(shard.test_r2).all() and shard.test_r2.iloc[0] > 0.2
    assert (shard.test_rmse > 20).all()


def test_a_damaged_meta_json_is_one_line_naming_the_file(wine: Path, tmp_path: Path) -> None:
    from lionsweep.data.prepare import load_task

    prepare(wine, _spec("multiclass"), SPLIT, tmp_path / "data", "wine")
    meta = tmp_path / "data" / "meta.json"
    assert load_task(tmp_path / "data").n_classes == 3
    meta.write_text(json.dumps({"task": "multiclass"}))
    with pytest.raises(LionSweepError) as err:
        load_task(tmp_path / "data")
    assert str(err.value) == (
        f"{meta}: not readable as the prepared data's meta (no key 'classes'); prepare it again"
    )
    meta.write_text("{")
    with pytest.raises(LionSweepError, match=r"meta\.json: not readable .*JSONDecodeError"):
        load_task(tmp_path / "data")
    meta.unlink()
    with pytest.raises(LionSweepError, match="FileNotFoundError"):
        load_task(tmp_path / "data")
