"""Grid expansion and sharding: the paper's grids, the defaults as their own rows, stable shards."""

from __future__ import annotations

import numpy as np
import pytest

from lionsweep.errors import LionSweepError
from lionsweep.grid import axis_values, expand, grid_size, grid_spec, shard_bounds


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


def test_axis_forms() -> None:
    assert axis_values([0.1, 0.3]) == [0.1, 0.3]
    assert axis_values({"start": 0.8, "stop": 0.99, "num": 3}) == [0.8, 0.895, 0.99]
    assert axis_values({"start": 1e-4, "stop": 1e-2, "num": 3, "scale": "log"}) == [
        1e-4,
        1e-3,
        1e-2,
    ]
    with pytest.raises(LionSweepError, match="log scale needs start and stop > 0"):
        axis_values({"start": 0.0, "stop": 1e-2, "num": 3, "scale": "log"}, "lr")
    with pytest.raises(LionSweepError, match="'wd' is empty"):
        axis_values([], "wd")


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
