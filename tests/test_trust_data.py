"""Issue 16, the data side: inputs that silently changed numbers or ended in a traceback.

Names colliding with the prepared data's own (`target`, one-hot `column=value`),
duplicate feature rows across splits, a column that dropna empties the file with, a
rare class named by its code, a url without a scheme, class imbalance and the
configurable primary metric. Each case fails on the code before the fix.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_sweep import make_sweep

from lionsweep.config import check
from lionsweep.data.fetch import fetch
from lionsweep.data.prepare import prepare
from lionsweep.errors import LionSweepError
from lionsweep.results.scoring import with_primary
from lionsweep.results.selection import check_sweep, config_table, select_honest, select_paper

SPLIT = {"seed": 42, "test_fraction": 0.2, "val_fraction": 0.2}
SPEC = {"read": {"header": True}, "target": "y", "positive": 1, "features": None}


def noise_csv(path: Path, rows: int = 200, copies: int = 5, seed: int = 0) -> Path:
    """``rows`` distinct random feature rows with random labels, each written ``copies``
    times: pure noise that a leaky split scores well above chance on."""
    rng = np.random.default_rng(seed)
    base = pd.DataFrame(rng.normal(size=(rows, 4)).round(6), columns=list("abcd"))
    base["y"] = rng.integers(0, 2, rows)
    pd.concat([base] * copies, ignore_index=True).to_csv(path, index=False)
    return path


def split_features(outdir: Path) -> dict[str, set[tuple[float, ...]]]:
    out = {}
    for split in ("train", "val", "test"):
        frame = pd.read_parquet(outdir / f"{split}.parquet").drop(columns="target")
        out[split] = set(map(tuple, frame.to_numpy()))
    return out


# ---------------------------------------------------------------- 1, 9: names that collide


def test_a_feature_named_like_the_label_column_is_refused(tmp_path: Path) -> None:
    """Before: `target` (a feature) was silently replaced by the label `y`."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"target": rng.normal(size=60), "b": rng.normal(size=60)})
    frame["y"] = (frame["target"] > 0).astype(int)
    frame.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(LionSweepError) as err:
        prepare(tmp_path / "d.csv", SPEC, SPLIT, tmp_path / "out", "mydata")
    assert str(err.value) == (
        "mydata: feature column 'target' would be stored as 'target', the prepared data's "
        "name for the label: rename it in the file (or in read.columns)"
    )
    assert not (tmp_path / "out").exists()


def test_a_categorical_named_target_is_no_collision(tmp_path: Path) -> None:
    """`target=a` is not `target`: a categorical column named target is a feature."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"target": rng.choice(["a", "b"], 60), "x": rng.normal(size=60)})
    frame["y"] = np.tile([0, 1], 30)
    frame.to_csv(tmp_path / "d.csv", index=False)
    spec = {**SPEC, "categorical": ["target"]}
    meta = prepare(tmp_path / "d.csv", spec, SPLIT, tmp_path / "out", "mydata")
    assert meta["features"] == ["x", "target=a", "target=b"]


def test_a_one_hot_name_collision_names_both_columns(tmp_path: Path) -> None:
    """Before: `ValueError: The truth value of a Series is ambiguous` from encode."""
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"a": rng.choice(["b", "c"], 60), "a=b": rng.normal(size=60)})
    frame["y"] = np.tile([0, 1], 30)
    frame.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(LionSweepError) as err:
        prepare(tmp_path / "d.csv", {**SPEC, "categorical": ["a"]}, SPLIT, tmp_path / "o", "d")
    assert str(err.value) == (
        "d: feature columns 'a=b' and 'a' both encode to the column 'a=b' (one-hot names are "
        "column=value): rename one of them in the file"
    )


# ---------------------------------------------------------------- 14, 15: what went wrong


def test_a_column_that_dropna_empties_the_file_with_is_named(tmp_path: Path) -> None:
    """Before: "target must take exactly two values ... found 0"."""
    rows = "".join(f"{i},,{i % 2}\n" for i in range(40))
    (tmp_path / "d.csv").write_text("x,empty,y\n" + rows)
    with pytest.raises(LionSweepError) as err:
        prepare(tmp_path / "d.csv", {**SPEC, "dropna": True}, SPLIT, tmp_path / "o", "d")
    assert str(err.value) == (
        "d: dropna removed every one of the 40 rows: column 'empty' is empty (missing in "
        "every row); leave it out of `features`"
    )


def test_dropna_emptying_the_file_without_an_empty_column_gives_counts(tmp_path: Path) -> None:
    rows = "".join(f"{i if i % 2 else ''},{'' if i % 2 else i},{i % 2}\n" for i in range(40))
    (tmp_path / "d.csv").write_text("u,v,y\n" + rows)
    with pytest.raises(LionSweepError, match=r"each has a missing value in some column "
                       r"\(rows missing per column: u 20, v 20\)"):  # fmt: skip
        prepare(tmp_path / "d.csv", {**SPEC, "dropna": True}, SPLIT, tmp_path / "o", "d")


def test_a_rare_class_is_named_by_its_label(tmp_path: Path) -> None:
    """Before: "class 0 has 1 row(s)" for the label c00."""
    labels = ["c00"] + [f"c{1 + i % 3:02d}" for i in range(59)]
    frame = pd.DataFrame({"x": np.arange(60.0), "y": labels})
    frame.to_csv(tmp_path / "d.csv", index=False)
    spec = {"read": {"header": True}, "target": "y", "task": "multiclass", "features": None}
    with pytest.raises(LionSweepError, match=r"^d: class 'c00' has 1 row\(s\): too few"):
        prepare(tmp_path / "d.csv", spec, SPLIT, tmp_path / "o", "d")


def test_a_rare_binary_class_is_named_by_its_label(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(40.0), "y": ["no"] * 39 + ["yes"]})
    frame.to_csv(tmp_path / "d.csv", index=False)
    spec = {**SPEC, "positive": "yes"}
    with pytest.raises(LionSweepError, match=r"^d: class 'yes' has 1 row\(s\)"):
        prepare(tmp_path / "d.csv", spec, {**SPLIT, "duplicates": "keep"}, tmp_path / "o", "d")


# ---------------------------------------------------------------- 10: a url without scheme


@pytest.mark.parametrize(
    "url,message",
    [
        ("example.com/titanic.csv", "has no scheme (write https://example.com/titanic.csv)"),
        ("c:/data/titanic.csv", "has the scheme 'c', which urllib cannot open"),
        ("http://[bad/titanic.csv", "is malformed (Invalid IPv6 URL)"),
    ],
)
def test_a_url_urllib_cannot_open_is_one_line(tmp_path: Path, url: str, message: str) -> None:
    """Before: a 29-line traceback ending in `ValueError: unknown url type`."""
    with pytest.raises(LionSweepError) as err:
        fetch("titanic.csv", "0" * 64, tmp_path / "t.csv", url=url, retries=0)
    assert f"cannot download titanic.csv: the url {url!r} {message}" in str(err.value)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- 3: duplicate feature rows


def test_duplicate_rows_never_straddle_splits_by_default(tmp_path: Path) -> None:
    """Before: each of 200 noise rows written 5 times lay in train and test alike."""
    path = noise_csv(tmp_path / "noise.csv")
    meta = prepare(path, SPEC, SPLIT, tmp_path / "out", "noise")
    seen = split_features(tmp_path / "out")
    assert not seen["train"] & seen["test"] and not seen["train"] & seen["val"]
    assert not seen["val"] & seen["test"]
    # split_sizes(1000) is 640/160/200; whole groups of 5: each class's share of the test
    # and val sets is short by less than one group, never over
    assert 200 - 2 * 4 <= meta["rows"]["test"] <= 200 and 160 - 2 * 4 <= meta["rows"]["val"] <= 160
    assert meta["duplicates"] == {
        "handling": "group", "rows": 800, "groups": 200, "conflicting_groups": 0, "removed": 0
    }  # fmt: skip
    assert meta["warnings"] == []


def test_keep_is_the_old_split_and_warns(tmp_path: Path, capsys) -> None:
    path = noise_csv(tmp_path / "noise.csv")
    meta = prepare(path, SPEC, {**SPLIT, "duplicates": "keep"}, tmp_path / "out", "noise")
    seen = split_features(tmp_path / "out")
    assert len(seen["train"] & seen["test"]) > 100
    assert "800 row(s) repeat another row's features" in capsys.readouterr().err
    assert meta["warnings"] and "split.duplicates: keep" in meta["warnings"][0]


def test_drop_keeps_one_row_per_group(tmp_path: Path) -> None:
    path = noise_csv(tmp_path / "noise.csv")
    meta = prepare(path, SPEC, {**SPLIT, "duplicates": "drop"}, tmp_path / "out", "noise")
    assert sum(meta["rows"].values()) == 200 and meta["duplicates"]["removed"] == 800
    assert meta["rows"]["test"] == 40


def test_group_split_keeps_sizes_and_class_counts(mirror: Path, config: dict, tmp_path: Path):
    """Spambase (394 duplicate rows): the same split sizes and positives per split as a
    plain stratified split, no feature row in two splits, and the same bytes again."""
    spec = config["datasets"]["spambase"]
    group = prepare(mirror / spec["file"], spec, SPLIT, tmp_path / "g", "spambase")
    plain = prepare(
        mirror / spec["file"], spec, {**SPLIT, "duplicates": "keep"}, tmp_path / "k", "spambase"
    )
    assert group["duplicates"]["rows"] == 394 and group["duplicates"]["groups"] == 183
    assert group["rows"] == plain["rows"] and group["positives"] == plain["positives"]
    seen = split_features(tmp_path / "g")
    assert not seen["train"] & seen["test"] and not seen["val"] & seen["test"]
    prepare(mirror / spec["file"], spec, SPLIT, tmp_path / "again", "spambase")
    for name in ("train.parquet", "val.parquet", "test.parquet", "meta.json"):
        assert (tmp_path / "g" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()


def test_mushroom_without_duplicates_is_unchanged(mirror: Path, config: dict, tmp_path: Path):
    """No duplicate feature rows: every handling gives the bytes of the plain split."""
    spec = config["datasets"]["mushroom"]
    for handling in ("group", "drop", "keep"):
        split = {**SPLIT, "duplicates": handling}
        meta = prepare(mirror / spec["file"], spec, split, tmp_path / handling, "mushroom")
        assert meta["duplicates"]["rows"] == 0
    for name in ("train.parquet", "val.parquet", "test.parquet"):
        first = (tmp_path / "group" / name).read_bytes()
        assert first == (tmp_path / "keep" / name).read_bytes()
        assert first == (tmp_path / "drop" / name).read_bytes()


@pytest.mark.parametrize(
    "labels,message",
    [
        # every row of class 1 is one feature row: no group for val and test
        ([0, 1, 0, 0, 0], "class '1' has 200 row(s) but 1 distinct feature row(s)"),
    ],
)
def test_a_class_made_of_one_group_is_refused(tmp_path: Path, labels, message: str) -> None:
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0] * 200, "y": labels * 200})
    frame.loc[frame.y == 0, "x"] = np.arange(int((frame.y == 0).sum())) + 10.0
    frame.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(LionSweepError, match=re.escape(message)):
        prepare(tmp_path / "d.csv", SPEC, SPLIT, tmp_path / "o", "d")


def test_all_rows_identical_features_is_refused(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.0] * 30 + [2.0] * 30, "y": [0, 1] * 30})
    frame.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(LionSweepError, match="distinct feature row"):
        prepare(tmp_path / "d.csv", SPEC, SPLIT, tmp_path / "o", "d")


def test_unknown_duplicates_handling_is_one_line(tmp_path: Path) -> None:
    path = noise_csv(tmp_path / "noise.csv", rows=30, copies=1)
    with pytest.raises(LionSweepError, match=r"split\.duplicates: 'merge' is not one of group"):
        prepare(path, SPEC, {**SPLIT, "duplicates": "merge"}, tmp_path / "o", "noise")


# ---------------------------------------------------------------- 5: imbalance, primary metric


def test_a_majority_class_above_the_threshold_warns(tmp_path: Path, capsys) -> None:
    """Before: 99.5% of one class prepared without a word."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=1000), "y": [1] * 5 + [0] * 995})
    frame.to_csv(tmp_path / "d.csv", index=False)
    spec = {**SPEC, "max_majority_share": 0.9}
    meta = prepare(tmp_path / "d.csv", spec, SPLIT, tmp_path / "o", "d")
    assert meta["majority_class"] == "0" and meta["majority_share"] == 0.995
    assert meta["warnings"] == [
        "d: class '0' holds 99.5% of the rows (more than max_majority_share 0.9): always "
        "predicting it scores 0.995 accuracy; consider datasets.d.primary_metric: balanced_acc"
    ]
    assert "lionsweep prepare: warning: d: class '0' holds 99.5%" in capsys.readouterr().err
    meta = prepare(
        tmp_path / "d.csv", {**spec, "max_majority_share": 1}, SPLIT, tmp_path / "p", "d"
    )
    assert meta["warnings"] == []


def _config(config: dict, **entry) -> dict:
    config = copy.deepcopy(config)
    config["datasets"]["titanic"].update(entry)
    return config


@pytest.mark.parametrize(
    "entry,message",
    [
        ({"primary_metric": "r2"}, "'r2' is not a metric of task binary: use one of acc, "),
        ({"primary_metric": "f1_macro"}, "'f1_macro' is not a metric of task binary"),
        (
            {"task": "regression", "primary_metric": "acc", "positive": None},
            "'acc' is not a metric of task regression: use one of rmse, mae, r2",
        ),
    ],
)
def test_a_primary_metric_of_another_task_is_refused(config: dict, entry, message) -> None:
    config = _config(config, **entry)
    if config["datasets"]["titanic"].get("positive") is None:
        config["datasets"]["titanic"].pop("positive")
    with pytest.raises(LionSweepError) as err:
        check(config)
    assert str(err.value).startswith(f"datasets.titanic.primary_metric: {message}")


def test_selection_follows_the_primary_metric_lower_is_better() -> None:
    """logloss is minimised: the honest choice and the paper's are the lowest-loss points."""
    frame = check_sweep(make_sweep(datasets=("titanic",), optimizers=("lion",), task="binary"))
    configs = config_table(with_primary(frame, {"titanic": "logloss"}), _final())
    chosen = select_honest(configs).iloc[0]
    grid = configs[~configs.is_default]
    assert chosen["metric"] == "logloss"
    assert chosen["val_mean"] == grid["val_mean"].min() == grid["val_logloss_mean"].min()
    paper = select_paper(with_primary(frame, {"titanic": "logloss"}))
    for seed, row in paper.set_index("seed").iterrows():
        rows = frame[(frame.seed == seed) & ~frame.is_default]
        assert row["test_score"] == rows["test_logloss"].min()
    balanced = select_honest(
        config_table(with_primary(frame, {"titanic": "balanced_acc"}), _final())
    )
    assert balanced.iloc[0]["metric"] == "balanced_acc"


def test_a_primary_metric_the_sweep_lacks_is_one_line() -> None:
    frame = make_sweep(datasets=("titanic",), optimizers=("lion",), task="binary")
    with pytest.raises(
        LionSweepError, match=r"datasets.titanic.primary_metric: the sweep has no 'r2'"
    ):
        with_primary(frame, {"titanic": "r2"})


def _final():
    from lionsweep.results.scoring import FINAL

    return FINAL


def test_meta_json_is_json(tmp_path: Path) -> None:
    """meta.json's new keys are plain JSON types (no numpy integers)."""
    path = noise_csv(tmp_path / "noise.csv", rows=40, copies=2)
    prepare(path, SPEC, SPLIT, tmp_path / "o", "noise")
    meta = json.loads((tmp_path / "o" / "meta.json").read_text())
    assert meta["duplicates"]["rows"] == 40
