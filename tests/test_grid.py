"""Grid expansion and sharding: grids as written (lists of axes), the paper's grids,
the defaults as their own rows, stable shards."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lionsweep.errors import LionSweepError
from lionsweep.sweep.grid import (
    axis_values,
    check_grids,
    expand,
    grid_size,
    grid_source,
    grid_spec,
    grid_summary,
    shard_bounds,
)

LION_DEFAULTS = {"lr": 1e-4, "beta1": 0.9, "beta2": 0.99, "weight_decay": 0.0}


def spec(grid: list[dict]) -> dict:
    return {"optimizer": "lion", "defaults": LION_DEFAULTS, "grid": grid}


def test_paper_grids(config: dict) -> None:
    titanic = expand(grid_spec(config, "titanic", "lion"))
    spambase = expand(grid_spec(config, "spambase", "lion"))
    assert (len(titanic), len(spambase)) == (8001, 1001)
    assert len(titanic) == grid_size(grid_spec(config, "titanic", "lion"))
    grid = titanic[~titanic.is_default]
    assert grid.lr.nunique() == grid.beta1.nunique() == grid.weight_decay.nunique() == 20
    assert (grid.lr.min(), grid.lr.max()) == (5e-5, 1e-2)
    assert (grid.beta1.min(), grid.beta1.max()) == (0.8, 0.98)
    lrs = np.sort(grid.lr.unique())
    np.testing.assert_allclose(np.diff(np.log(lrs)), np.log(lrs[1] / lrs[0]), rtol=1e-9)  # log
    assert np.allclose(np.diff(np.sort(grid.beta1.unique())), 0.18 / 19)  # linear
    assert (grid.beta2 == 0.99).all()  # not in the grid: the default
    default = titanic[titanic.is_default]
    assert len(default) == 1 and default.index[0] == 8000
    assert default[["lr", "beta1", "beta2", "weight_decay"]].iloc[0].tolist() == [
        1e-4,
        0.9,
        0.99,
        0.0,
    ]
    assert titanic.config_id.tolist() == list(range(8001))
    adamw = expand(grid_spec(config, "mushroom", "adamw"))
    assert adamw[adamw.is_default].iloc[0][["lr", "weight_decay", "eps"]].tolist() == [
        1e-3,
        0.01,
        1e-8,
    ]


def test_paper_config_ids_keep_their_order(config: dict) -> None:
    """The paper's grids list lr, beta1, weight decay in that order: config ids are those of
    an independent lr-major product (as before grids became lists), so results stay comparable."""
    got = expand(grid_spec(config, "spambase", "lion"))
    lr = np.geomspace(1e-5, 1e-2, 10)
    beta1 = np.linspace(0.8, 0.99, 10)
    wd = np.linspace(0.0, 0.1, 10)
    want = np.array(list(itertools.product(lr, beta1, wd)))
    grid = got[~got.is_default]
    np.testing.assert_allclose(grid[["lr", "beta1", "weight_decay"]].to_numpy(), want, rtol=1e-11)


def test_axes_expand_in_the_order_written_last_fastest() -> None:
    grid = [
        {"param": "weight_decay", "values": [0.0, 0.1]},
        {"param": "lr", "values": [1e-3, 1e-2, 1e-1]},
    ]
    frame = expand(spec(grid))
    points = frame[~frame.is_default]
    assert list(zip(points.weight_decay, points.lr, strict=True)) == [
        (0.0, 1e-3),
        (0.0, 1e-2),
        (0.0, 1e-1),
        (0.1, 1e-3),
        (0.1, 1e-2),
        (0.1, 1e-1),
    ]
    # hyperparameters without an axis stay at the default; eps (not a Lion default) is NaN
    assert (points.beta1 == 0.9).all() and (points.beta2 == 0.99).all()
    assert points.eps.isna().all()
    assert len(frame) == grid_size(spec(grid)) == 7


def test_one_axis_grid_is_that_axis_and_the_default() -> None:
    frame = expand(spec([{"param": "lr", "values": [1e-3, 1e-2]}]))
    assert frame.lr.tolist() == [1e-3, 1e-2, 1e-4]
    assert frame.is_default.tolist() == [False, False, True]
    assert frame.beta1.tolist() == [0.9] * 3 and frame.weight_decay.tolist() == [0.0] * 3


def test_axis_forms() -> None:
    assert axis_values({"param": "lr", "values": [0.1, 0.3]}) == [0.1, 0.3]
    assert axis_values({"param": "beta1", "start": 0.8, "stop": 0.99, "num": 3}) == [
        0.8,
        0.895,
        0.99,
    ]
    log = {"param": "lr", "start": 1e-4, "stop": 1e-2, "num": 3, "scale": "log"}
    assert axis_values(log) == [1e-4, 1e-3, 1e-2]
    with pytest.raises(LionSweepError, match="log scale needs start and stop > 0"):
        axis_values({**log, "start": 0.0}, "lr")
    with pytest.raises(LionSweepError, match="wd: `values` must be a non-empty list"):
        axis_values({"param": "weight_decay", "values": []}, "wd")


def config_with(lion: dict) -> dict:
    return {"optimizers": {"lion": {"defaults": LION_DEFAULTS, **lion}}}


def test_duplicated_param_is_an_error() -> None:
    grid = [{"param": "lr", "values": [1e-3]}, {"param": "lr", "values": [1e-2]}]
    with pytest.raises(LionSweepError, match=r"optimizers\.lion\.grid: param 'lr' appears twice"):
        check_grids(config_with({"grid": grid}))


def test_unknown_param_is_an_error() -> None:
    with pytest.raises(LionSweepError, match=r"optimizers\.lion\.grid\[0\]: `param` must be"):
        check_grids(config_with({"grid": [{"param": "momentum", "values": [0.9]}]}))


def test_old_mapping_shape_says_how_to_write_the_list() -> None:
    old = {"lr": [1e-3, 1e-2], "beta1": {"start": 0.8, "stop": 0.9, "num": 2}}
    with pytest.raises(LionSweepError) as err:
        check_grids(
            config_with({"grid": [{"param": "lr", "values": [1]}], "grid_overrides": {"x": old}})
        )
    message = str(err.value)
    assert message.startswith("optimizers.lion.grid_overrides.x is a mapping")
    assert (
        "x: [{param: lr, values: [0.001, 0.01]}, {param: beta1, start: 0.8, stop: 0.9, num: 2}]"
        in message
    )
    assert "\n" not in message


def test_override_null_means_the_common_grid() -> None:
    common = [{"param": "lr", "values": [1e-3, 1e-2]}]
    own = [{"param": "beta1", "values": [0.5]}]
    cfg = config_with({"grid": common, "grid_overrides": {"titanic": own, "mushroom": None}})
    cfg["study"] = {"datasets": ["titanic", "mushroom"], "optimizers": ["lion"]}
    check_grids(cfg)
    assert grid_source(cfg, "titanic", "lion") == "grid_overrides.titanic"
    assert grid_source(cfg, "mushroom", "lion") == "grid"
    assert grid_spec(cfg, "mushroom", "lion")["grid"] == common
    assert grid_summary(cfg) == [
        "grid titanic/lion: 2 configurations (beta1: 1; + the default) "
        "from optimizers.lion.grid_overrides.titanic",
        "grid mushroom/lion: 3 configurations (lr: 2; + the default) from optimizers.lion.grid",
    ]


@pytest.mark.parametrize("rows,size", [(1001, 1000), (8001, 1000), (13, 6), (5, 6), (12, 6)])
def test_shards_cover_every_row_once(rows: int, size: int) -> None:
    bounds = shard_bounds(rows, size)
    covered = [i for start, stop in bounds for i in range(start, stop)]
    assert covered == list(range(rows))
    assert all(stop - start == size for start, stop in bounds[:-1])
    last = bounds[-1][1] - bounds[-1][0]
    assert last < 2 * size and (last >= size or len(bounds) == 1)  # remainder joins the last
    assert shard_bounds(rows, size) == bounds  # stable
    assert len(bounds) == max(1, rows // size)


# ---------------------------------------------------- config/optimizers.yaml (all four)
def _merged(config: dict, *files: str) -> dict:
    """config.yaml with ``files`` merged as `snakemake --configfile` merges them."""
    import copy

    import yaml
    from snakemake.utils import update_config

    from conftest import ROOT
    from lionsweep.config import validate

    merged = copy.deepcopy(config)
    for name in files:
        update_config(merged, yaml.safe_load((ROOT / "config" / name).read_text()))
    validate(merged, ROOT / "workflow" / "schemas" / "config.schema.yaml")
    return merged


def test_optimizers_study_grids_are_what_the_file_says(config: dict) -> None:
    """Every optimizer on every dataset: 10 lr x 10 weight decays + the default; the
    rest at the registry's defaults (SGD's momentum at 0.9 on the grid, 0 at the default)."""
    from lionsweep.optim.registry import REGISTRY

    merged = _merged(config, "optimizers.yaml")
    study = merged["study"]
    assert study["name"] == "optimizers" and study["optimizers"] == ["lion", "adamw", "adam", "sgd"]
    lr_low = {"lion": 1e-5, "adamw": 1e-4, "adam": 1e-4, "sgd": 1e-3}
    wd_high = {"lion": 0.1, "adamw": 0.1, "adam": 0.01, "sgd": 0.1}
    for dataset in ["titanic", "spambase", "mushroom"]:
        for opt, low in lr_low.items():
            frame = expand(grid_spec(merged, dataset, opt))
            points, default = frame[~frame.is_default], frame[frame.is_default].iloc[0]
            assert len(points) == 100, (dataset, opt)
            lrs = np.geomspace(low, low * 1000, 10)
            np.testing.assert_allclose(sorted(set(points.lr)), lrs, rtol=1e-11)
            np.testing.assert_allclose(
                sorted(set(points.weight_decay)), np.linspace(0, wd_high[opt], 10), rtol=1e-11
            )
            hparams = REGISTRY[opt].hparams
            for h, p in hparams.items():
                assert default[h] == p.default, (opt, h)
                if h not in ("lr", "weight_decay"):
                    expected = 0.9 if h == "momentum" else p.default
                    assert set(points[h]) == {expected}, (opt, h)
            others = [h for h in frame.columns[2:] if h not in hparams]
            others = [h for h in others if h not in ("epochs", "ema_decay")]
            assert frame[others].isna().all().all(), (opt, others)
            assert (frame.ema_decay == 0).all()  # every optimizer's: the weight EMA, off
            assert (frame.epochs == 20).all()  # no epochs axis: training.epochs
    lines = grid_summary(merged)
    assert len(lines) == 12
    assert (
        "grid titanic/lion: 101 configurations (lr: 10, weight_decay: 10; + the default) "
        "from optimizers.lion.grid"
    ) in lines
    assert all(" 101 configurations " in line for line in lines)


def test_default_study_keeps_the_paper_pair_with_sgd_and_adam_grids(config: dict) -> None:
    merged = _merged(config)
    assert merged["study"]["optimizers"] == ["lion", "adamw"]
    sgd = expand(grid_spec(merged, "spambase", "sgd"))
    assert len(sgd) == 10 * 4 * 2 * 10 + 1
    assert sorted(set(sgd.momentum)) == [0.0, 0.5, 0.9, 0.99]
    assert sorted(set(sgd.nesterov)) == [0.0, 1.0]
    assert sgd.lr.min() == pytest.approx(1e-3) and sgd.lr.max() == pytest.approx(1.0)
    adam = expand(grid_spec(merged, "spambase", "adam"))
    assert len(adam) == 1001 and adam.weight_decay.max() == pytest.approx(0.01)


def test_grid_axes_are_per_optimizer(config: dict) -> None:
    """momentum is a registry hyperparameter (SGD's) but not Lion's; nesterov is whole."""
    sgd = {"optimizers": {"sgd": {"grid": [{"param": "momentum", "values": [0.9]}]}}}
    check_grids(sgd)
    with pytest.raises(LionSweepError, match=r"optimizers\.adamw\.grid\[0\]: `param` must be"):
        check_grids({"optimizers": {"adamw": sgd["optimizers"]["sgd"]}})
    bad = [{"param": "nesterov", "start": 0, "stop": 1, "num": 3}]
    with pytest.raises(LionSweepError) as err:
        check_grids({"optimizers": {"sgd": {"grid": bad}}})
    assert (
        str(err.value) == "optimizers.sgd.grid[0] (nesterov): 0.5 is not a whole number in [0, 1]"
    )


@pytest.mark.parametrize(
    "axis,message",
    [
        ({"param": "lr", "values": ["a"]}, "(lr): 'a' in `values` is not a number"),
        ({"param": "lr", "start": "x", "stop": 1, "num": 2}, "(lr): 'x' in `start` is not a"),
        ({"param": "lr", "start": 0.1, "stop": 1, "num": 2.5}, "num must be a whole number"),
        ({"param": ["lr"], "values": [1]}, "[0]: `param` must be one of ['lr', 'beta1', "),
        ({"param": "weight_decay", "values": [float("nan")]}, "nan is not in [0, inf)"),
        ({"param": "lr", "values": [float("inf")]}, "inf is not in (0, inf)"),
    ],
)
def test_garbled_axes_are_one_line_before_the_schema(axis: dict, message: str) -> None:
    """check_grids runs before the schema: odd YAML must be a message, not a traceback."""
    with pytest.raises(LionSweepError) as err:
        check_grids({"optimizers": {"lion": {"grid": [axis]}}})
    assert message in str(err.value) and str(err.value).startswith("optimizers.lion.grid[0]")


# ---------------------------------------------------- config/extended.yaml


def test_extended_study_grids_are_what_its_comment_says(config: dict) -> None:
    """config/extended.yaml validates (schema and registry) and expands to the sizes and
    ranges its comment states: lr 1e-5..1e-1 for both, Lion's decay up to 10, AdamW's up
    to 1, beta2 {0.98, 0.99} for Lion, epochs [20, 50, 100], one grid for every dataset."""
    from conftest import ROOT

    merged = _merged(config, "extended.yaml")
    check_grids(merged)
    assert merged["study"]["name"] == "extended" and merged["sweep"]["seeds"] == [0, 1, 2]
    text = (ROOT / "config" / "extended.yaml").read_text()
    assert "648 points + the default" in text and "324 points + the default" in text
    assert "8,766 trainings in 18 jobs" in text
    sizes = {"lion": 649, "adamw": 325}
    total = 0
    for dataset in ["titanic", "spambase", "mushroom"]:
        for opt, size in sizes.items():
            frame = expand(grid_spec(merged, dataset, opt))
            points = frame[~frame.is_default]
            assert len(frame) == size, (dataset, opt)
            assert grid_source(merged, dataset, opt) == "grid"
            assert (points.lr.min(), points.lr.max()) == (1e-5, 1e-1)
            assert points.lr.nunique() == 9
            assert sorted(set(points.beta1)) == [0.8, 0.99]
            assert sorted(set(points.epochs)) == [20, 50, 100]
            assert frame[frame.is_default].epochs.tolist() == [20]  # training.epochs
            wd_top = {"lion": 10.0, "adamw": 1.0}[opt]
            assert points.weight_decay.max() == wd_top and points.weight_decay.min() == 0.0
            total += len(frame) * len(merged["sweep"]["seeds"])
        assert sorted(set(expand(grid_spec(merged, dataset, "lion")).beta2)) == [0.98, 0.99]
    assert total == 8766
    shards = {o: len(shard_bounds(s, merged["sweep"]["shard_size"])) for o, s in sizes.items()}
    assert sum(shards.values()) * 3 * 3 == 18  # jobs


# ---------------------------------------------------- config/field.yaml (issue 20)
FIELD_LR = {  # the tabular-MLP benchmark's lr ranges, as config/field.yaml's comment states
    **dict.fromkeys(["lion", "signum"], (1e-5, 1e-3)),
    **dict.fromkeys(
        [
            "adamw",
            "adam",
            "nadamw",
            "radam",
            "cadamw",
            "adabelief",
            "adopt",
            "ademamix",
            "muon",
            "soap",
        ],
        (3e-5, 1e-3),
    ),
    "adan": (1e-4, 1e-2),
    "schedulefree": (1e-4, 3e-2),
    "sgd": (1e-3, 1e-1),
}


def _within(values, low: float, high: float, log: bool = True) -> None:
    """Sampled values lie in [low, high) and spread over it (Sobol: every quarter of the
    range, in its scale, holds some of 32 points)."""
    v = np.log(np.asarray(values)) if log else np.asarray(values)
    lo, hi = (np.log(low), np.log(high)) if log else (low, high)
    assert v.min() >= lo - 1e-12 and v.max() < hi
    assert len(np.unique(np.floor(4 * (v - lo) / (hi - lo)))) == 4


def test_field_study_samples_the_whole_registry_with_equal_effort(config: dict) -> None:
    """Every registered optimizer, the same 32 Sobol points over its own ranges (+ the
    default) on every dataset: equal search effort is what the ranks compare."""
    from lionsweep.optim.hparams import names

    merged = _merged(config, "field.yaml")
    check_grids(merged)
    study = merged["study"]
    assert study["name"] == "field" and merged["sweep"]["seeds"] == [0, 1, 2]
    assert merged["confirm"]["seeds"] == 16
    missing = sorted(set(names()) - set(study["optimizers"]))
    assert not missing, f"add {missing} to config/field.yaml (the field sweeps the registry)"
    for dataset in ["titanic", "spambase", "mushroom"]:
        for opt in study["optimizers"]:
            frame = expand(grid_spec(merged, dataset, opt))
            points = frame[~frame.is_default]
            assert len(points) == 32 and frame.is_default.sum() == 1, (dataset, opt)
            _within(points.lr, *FIELD_LR[opt.removesuffix("_ema")])
            _within(points.weight_decay, 5e-3, 5.0)
            if opt.endswith("_ema"):
                _within(points.ema_decay, 0.9, 0.999)
            if opt.startswith("muon"):
                _within(points.muon_lr, 1e-4, 3e-2)
    ademamix = expand(grid_spec(merged, "titanic", "ademamix"))
    _within(ademamix[~ademamix.is_default].alpha, 1.0, 8.0, log=False)
    sgd = expand(grid_spec(merged, "titanic", "sgd"))
    grid = sgd[~sgd.is_default]
    assert set(grid.momentum) == {0.9} and set(grid.dampening) == {0.9}
