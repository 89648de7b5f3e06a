"""The training-budget axis: `epochs` as a grid axis every optimizer accepts, trained per
budget, with curves NaN-padded to the grid's longest budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from lionsweep.data.prepare import prepare
from lionsweep.errors import LionSweepError
from lionsweep.sweep.grid import check_grids, expand, grid_size, grid_spec, grid_summary

SETTINGS = {"hidden": 8, "dropout": 0.2, "epochs": 4, "batch_size": 32, "dtype": "float32"}
LR = {"param": "lr", "values": [1e-3, 3e-2]}


def _config(grid: list[dict], optimizer: str = "lion", epochs: int = 4) -> dict:
    return {"optimizers": {optimizer: {"grid": grid}}, "training": {"epochs": epochs}}


def test_epochs_axis_expands_like_any_axis() -> None:
    config = _config([LR, {"param": "epochs", "values": [3, 5]}], epochs=4)
    spec = grid_spec(config, "d", "lion")
    frame = expand(spec)
    assert len(frame) == grid_size(spec) == 5
    assert frame.epochs.tolist() == [3, 5, 3, 5, 4]  # last axis fastest; default: training
    assert frame.lr.tolist() == [1e-3, 1e-3, 3e-2, 3e-2, 1e-4]
    assert grid_summary({**config, "study": {"datasets": ["d"], "optimizers": ["lion"]}}) == [
        "grid d/lion: 5 configurations (lr: 2, epochs: 2; + the default) from optimizers.lion.grid"
    ]


@pytest.mark.parametrize("optimizer", ["lion", "adamw", "adam", "sgd"])
def test_every_optimizer_accepts_epochs_and_defaults_to_training_epochs(optimizer: str) -> None:
    frame = expand(grid_spec(_config([LR], optimizer, epochs=7), "d", optimizer))
    assert frame.epochs.tolist() == [7, 7, 7]
    with_axis = expand(grid_spec(_config([{"param": "epochs", "values": [2]}], optimizer), "d",
                                 optimizer))  # fmt: skip
    assert with_axis.epochs.tolist() == [2, 4]


@pytest.mark.parametrize(
    ("values", "shown"),
    [([0], "0.0"), ([20, 2.5], "2.5"), ([-3], "-3.0"), ([10, 0.5], "0.5"), ([1e20], "1e+20")],
)
def test_bad_epochs_axis_is_one_line_naming_the_key(values: list, shown: str) -> None:
    grid = [LR, {"param": "epochs", "values": values}]
    with pytest.raises(LionSweepError) as err:
        check_grids(_config(grid, "adamw"))
    message = str(err.value)
    assert "\n" not in message
    assert message == (
        f"optimizers.adamw.grid[1] (epochs): {shown} is not a whole number in [1, 1e+09]"
    )


def test_epochs_axis_on_a_log_range_must_give_whole_numbers() -> None:
    grid = [{"param": "epochs", "start": 20, "stop": 100, "num": 3, "scale": "log"}]
    with pytest.raises(LionSweepError, match=r"grid\[0\] \(epochs\): 44\.72.* whole number"):
        check_grids(_config(grid))


def test_epochs_is_not_an_optimizer_default() -> None:
    config = _config([LR])
    config["optimizers"]["lion"]["defaults"] = {"epochs": 3}
    with pytest.raises(LionSweepError, match=r"defaults\.epochs: epochs is a training axis"):
        expand({**grid_spec(config, "d", "lion"), "defaults": {"epochs": 3}})


# ---------------------------------------------------------------- through the sweep


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """scikit-learn's breast cancer set (569 rows, binary), prepared as a study would."""
    tmp = tmp_path_factory.mktemp("cancer")
    raw = tmp / "cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(raw, index=False)
    spec = {
        "read": {"header": True},
        "target": "target",
        "features": None,
        "task": "binary",
        "positive": 1,
    }
    split = {"seed": 42, "test_fraction": 0.2, "val_fraction": 0.2}
    prepare(raw, spec, split, tmp / "data", "cancer")
    return tmp / "data"


def _shard(data: Path, tmp: Path, grid: list[dict], epochs: int, name: str) -> pd.DataFrame:
    from lionsweep.sweep.shards import ShardJob, train_shard

    frame = expand(grid_spec(_config(grid, epochs=epochs), "d", "lion"))
    path = tmp / f"grid_{name}.parquet"
    frame.to_parquet(path)
    out = tmp / f"shard_{name}.parquet"
    settings = {**SETTINGS, "epochs": epochs}
    job = ShardJob(path, data, "d", "lion", 1, 0, (0, len(frame)), settings, out, threads=1)
    table = train_shard(job, progress=False)
    return table.to_pandas()


def _metrics(frame: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in frame.columns if c.startswith(("train_", "val_", "test_", "best_"))]
    return frame[[*keep, "diverged", "epochs"]].reset_index(drop=True)


def test_a_grid_of_budgets_equals_separate_runs(data: Path, tmp_path: Path) -> None:
    """lr x epochs [3, 5] in one shard: every number of a 3-epoch row is that of a plain
    3-epoch run (5 likewise), bit for bit; curves are 5 wide, NaN after a row's budget;
    and a 3-epoch run's val curve is the first 3 epochs of the 5-epoch run's."""
    both = _shard(data, tmp_path, [LR, {"param": "epochs", "values": [3, 5]}], 4, "both")
    three = _shard(data, tmp_path, [LR], 3, "three")
    five = _shard(data, tmp_path, [LR], 5, "five")
    assert both.epochs.tolist() == [3, 5, 3, 5, 4] and both.epochs.dtype == np.int64
    for runs, budget in ((three, 3), (five, 5)):
        rows = both[(both.epochs == budget) & ~both.is_default]
        expected = runs[~runs.is_default]
        pd.testing.assert_frame_equal(_metrics(rows), _metrics(expected), check_exact=True)
        for col in ("curve_val_loss", "curve_val_acc"):
            for got, want in zip(rows[col], expected[col], strict=True):
                assert len(got) == 5  # the grid's longest budget
                np.testing.assert_array_equal(got[:budget], want)
                assert np.isnan(got[budget:]).all()
    for col in ("curve_val_loss", "curve_val_acc"):
        for short, long in zip(three[col], five[col], strict=True):
            np.testing.assert_array_equal(short, long[:3])  # a budget is a prefix
    default = both[both.is_default].iloc[0]
    assert default.epochs == 4 and np.isnan(default.curve_val_acc[4])
    assert np.isfinite(default.curve_val_acc[:4]).all()  # trained 4 epochs, padded to 5


# ---------------------------------------------------------------- through the tables


def _budget_sweep() -> pd.DataFrame:
    """Lion and AdamW on `toy` over lr x weight decay x epochs [20, 50, 100]; every
    configuration scores 0.6 but the planted ones (see the tests)."""
    from synthetic_sweep import make_sweep

    grids = {
        "lion": {"lr": [1e-4, 1e-3, 1e-2], "beta1": [0.9], "weight_decay": [0.0, 0.1, 1.0]},
        "adamw": {"lr": [1e-3, 1e-2, 1e-1], "beta1": [0.9], "weight_decay": [0.0, 0.01, 0.1]},
    }
    frame = make_sweep(datasets=("toy",), grids=grids)
    # each grid point three times, once per budget: config_id 3 * point + budget index
    frame = pd.concat(
        [
            frame.assign(epochs=e, config_id=frame["config_id"] * 3 + i)
            for i, e in enumerate((20, 50, 100))
        ]
    )
    frame = frame[~frame["is_default"] | (frame["epochs"] == 20)]
    frame.loc[~frame["is_default"], ["val_acc", "test_acc"]] = 0.6
    return frame.reset_index(drop=True)


def _plant(frame: pd.DataFrame, optimizer: str, value: float, **where: float) -> None:
    rows = (frame["optimizer"] == optimizer) & ~frame["is_default"]
    for col, v in where.items():
        rows &= np.isclose(frame[col], v)
    assert rows.sum() == 3, where  # one configuration, three seeds
    frame.loc[rows, ["val_acc", "test_acc"]] = value


def test_tables_select_and_flag_the_epochs_axis() -> None:
    from lionsweep.results.selection import check_sweep
    from lionsweep.results.tables import run_tables

    frame = _budget_sweep()
    _plant(frame, "lion", 0.9, lr=1e-3, weight_decay=1.0, epochs=100)
    _plant(frame, "lion", 0.8, lr=1e-3, weight_decay=0.0, epochs=50)
    _plant(frame, "adamw", 0.85, lr=1e-2, weight_decay=0.0, epochs=50)
    _plant(frame, "adamw", 0.7, lr=1e-1, weight_decay=0.01, epochs=20)
    out = run_tables(check_sweep(frame), {})
    honest = out["honest_table"].set_index("optimizer")
    assert honest.loc["lion", "epochs"] == 100 and honest.loc["adamw", "epochs"] == 50
    assert honest.loc["lion", "at_grid_edge"] == "weight_decay=max, epochs=max"
    assert honest.loc["adamw", "at_grid_edge"] == "weight_decay=min"
    best = out["best_configs"]
    assert list(best.columns[5:9]) == ["lr", "beta1", "weight_decay", "epochs"]
    decay = out["decay_product"].set_index("optimizer")
    assert decay.loc["lion", "lr_x_wd"] == pytest.approx(1e-3)
    assert decay.loc["lion", "decayed_lr_x_wd"] == pytest.approx(1e-3)
    assert decay.loc["lion", "decay_points"] == pytest.approx(10.0)  # 0.9 - 0.8
    assert decay.loc["lion", "epochs"] == 100
    assert decay.loc["adamw", "lr_x_wd"] == 0.0  # the pick has no decay
    assert decay.loc["adamw", "decayed_lr_x_wd"] == pytest.approx(1e-3)  # 0.1 x 0.01
    assert decay.loc["adamw", "decay_points"] == pytest.approx(-15.0)  # 0.7 - 0.85
    assert decay.loc["adamw", "val_acc_mean"] == pytest.approx(0.85)


def test_without_an_epochs_axis_the_tables_keep_their_columns() -> None:
    """The paper's study (one budget): no `epochs` column in any table but the new one."""
    from synthetic_sweep import make_sweep

    from lionsweep.results.selection import check_sweep
    from lionsweep.results.tables import run_tables

    out = run_tables(check_sweep(make_sweep()), {})
    for name, table in out.items():
        assert ("epochs" in table.columns) == (name == "decay_product"), name
    assert out["decay_product"]["epochs"].tolist() == [5] * 6  # the synthetic sweep's budget


def test_every_shard_pads_its_curves_to_the_grid_s_longest_budget(
    data: Path, tmp_path: Path
) -> None:
    """A shard holding only 3-epoch rows of a [3, 5] grid still stores 5-epoch curves, so
    that the shards of one grid aggregate into columns of one width."""
    from lionsweep.sweep.shards import ShardJob, train_shard

    grid = [{"param": "epochs", "values": [3, 5]}, LR]
    frame = expand(grid_spec(_config(grid), "d", "lion"))
    path = tmp_path / "grid.parquet"
    frame.to_parquet(path)
    out = tmp_path / "shard.parquet"
    job = ShardJob(path, data, "d", "lion", 1, 0, (0, 2), SETTINGS, out, threads=1)
    table = train_shard(job, progress=False)
    shard = table.to_pandas()
    assert shard.epochs.tolist() == [3, 3]
    for curve in shard.curve_val_acc:
        assert len(curve) == 5 and np.isfinite(curve[:3]).all() and np.isnan(curve[3:]).all()
