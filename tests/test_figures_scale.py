"""All-dataset figures at 100 datasets: no wider than results.figure_width_px, every dataset
drawn, panels of a readable size; a 3-dataset study keeps its single-row layout (issue 19)."""

from __future__ import annotations

import io
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image
from synthetic_sweep import make_sweep

from lionsweep.errors import LionSweepError
from lionsweep.results.overview import DPI, WIDTH_PX, plot_decay, plot_importance, plot_sensitivity
from lionsweep.results.scoring import Metrics
from lionsweep.results.selection import check_sweep, config_table, settings

OPTS = ["lion", "adamw"]
MANY = [f"set{i:03d}" for i in range(100)]
GRID = {"lr": [1e-4, 1e-3, 1e-2], "beta1": [0.9], "weight_decay": [0.0, 0.1]}


def configs_of(datasets: list[str]) -> pd.DataFrame:
    grids = {"lion": GRID, "adamw": {**GRID, "lr": [1e-3, 1e-2, 1e-1]}}
    sweep = make_sweep(datasets=tuple(datasets), seeds=(0, 1), grids=grids)
    return config_table(check_sweep(sweep), Metrics("final"))


@pytest.fixture(scope="module")
def many() -> pd.DataFrame:
    return configs_of(MANY)


@pytest.fixture(autouse=True)
def _close() -> None:
    yield
    plt.close("all")


def png_size(fig: Figure) -> tuple[int, int]:
    """(width, height) of the PNG as figures.save writes it, read back from the file."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return Image.open(io.BytesIO(buf.getvalue())).size


def draw(configs: pd.DataFrame, datasets: list[str], width: int = WIDTH_PX) -> dict[str, Figure]:
    return {
        "sensitivity": plot_sensitivity(configs, 1.0, datasets, OPTS, width)[0],
        "importance": plot_importance(configs, datasets, OPTS, width)[0],
        "effective_decay": plot_decay(configs, datasets, OPTS, width)[0],
    }


def labels(fig: Figure, which: str) -> list[str]:
    ticks = {"x": "get_xticklabels", "y": "get_yticklabels"}[which]
    return [t.get_text() for ax in fig.axes if ax.axison for t in getattr(ax, ticks)()]


def test_100_datasets_wrap_into_a_grid_no_wider_than_the_setting(many) -> None:
    figs = draw(many, MANY)
    sizes = {name: png_size(fig) for name, fig in figs.items()}
    for name, (width, height) in sizes.items():
        assert width <= WIDTH_PX, (name, width)
        assert height <= 12_500, (name, height)  # 20 rows of effective-decay panels at most
    # every dataset is drawn once, in order
    assert labels(figs["sensitivity"], "x") == MANY
    assert labels(figs["importance"], "y") == [f"{d}, {o}" for d in MANY for o in OPTS]
    decay = [ax for ax in figs["effective_decay"].axes if ax.axison]
    assert [ax.get_title() for ax in decay] == MANY
    assert [ax.get_legend() is not None for ax in decay] == [True] + [False] * 99  # one key
    # panels keep the size they have in a small study (readable, not squeezed)
    fig_w, fig_h = figs["effective_decay"].get_size_inches() * DPI
    for ax in decay:
        box = ax.get_position()  # figure fractions -> PNG pixels
        assert box.width * fig_w > 500 and box.height * fig_h > 350  # of a 750 x 600 px cell
    bars = [ax.patches[0].get_width() for ax in figs["sensitivity"].axes]
    assert len(bars) == 8 and max(bars) == min(bars)  # 14 datasets a row; equal bar widths
    xlims = {ax.get_xlim() for ax in figs["sensitivity"].axes}
    assert len(xlims) == 1  # the last, shorter row on the same scale
    assert len([ax for ax in figs["importance"].axes if ax.axison]) == 5  # 40 bars a panel


def test_three_datasets_keep_the_single_row_layout() -> None:
    datasets = ["titanic", "spambase", "toy"]
    figs = draw(configs_of(datasets), datasets)
    # the sizes these figures had before wrapping existed (150 dpi)
    expected = {
        "sensitivity": (990, 600),
        "importance": (1350, 660),
        "effective_decay": (2250, 600),
    }
    assert {name: png_size(fig) for name, fig in figs.items()} == expected
    assert [len(fig.axes) for fig in figs.values()] == [1, 1, 3]
    narrow = draw(configs_of(datasets), datasets, width=800)["effective_decay"]
    assert png_size(narrow) == (750, 1800)  # one 5 x 4 in panel a row below 5.3 in


def test_the_width_setting_is_checked() -> None:
    with pytest.raises(
        LionSweepError, match=r"results\.figure_width_px must be a whole number >= 800"
    ):
        settings({"figure_width_px": 640})


def test_the_figures_command_honours_figure_width_px(tmp_path) -> None:
    """results.figure_width_px reached the all-dataset figures only through the functions'
    default: the command ignored a user's setting. Through the command (from the summary,
    as the rule runs it), 800 px wraps four datasets that the default draws in one row."""
    import json

    import pyarrow.parquet as pq
    from synthetic_sweep import to_parquet

    from lionsweep.cli import main
    from lionsweep.sweep.summary import summarize, summary_table

    names = [f"set{i}" for i in range(4)]
    grids = {"lion": GRID, "adamw": {**GRID, "lr": [1e-3, 1e-2, 1e-1]}}
    sweep = check_sweep(make_sweep(datasets=tuple(names), seeds=(0, 1), grids=grids))
    to_parquet(sweep, tmp_path / "sweep.parquet")
    pq.write_table(summary_table(summarize(sweep)), tmp_path / "summary.parquet")
    widths = {}
    for width in (800, WIDTH_PX):
        out = tmp_path / str(width)
        argv = ["figures", "--sweep", str(tmp_path / "sweep.parquet"), "--outdir", str(out)]
        argv += ["--summary", str(tmp_path / "summary.parquet")]
        assert main([*argv, "--settings", json.dumps({"figure_width_px": width})]) == 0
        widths[width] = {
            stem: Image.open(out / f"{stem}.png").size[0]
            for stem in ("sensitivity", "importance", "effective_decay")
        }
    # one importance group (a dataset's optimizers) is wider than 800 px: it cannot wrap
    assert widths[800]["sensitivity"] <= 800 < widths[WIDTH_PX]["sensitivity"], widths
    assert widths[800]["effective_decay"] <= 800 < widths[WIDTH_PX]["effective_decay"], widths
