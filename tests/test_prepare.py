"""Preparing splits: the paper's sizes, stratification, no leakage, byte-identical reruns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lionsweep.data.datasets import load_raw
from lionsweep.data.fetch import sha256_of
from lionsweep.data.prepare import encode, load_splits, prepare, split_sizes
from lionsweep.data.splits import split_rows
from lionsweep.errors import LionSweepError

PAPER_TEST_ROWS = {"titanic": 143, "spambase": 921, "mushroom": 1625}


@pytest.fixture(scope="module")
def prepared(mirror: Path, config: dict, tmp_path_factory) -> dict[str, Path]:
    out = {}
    for name in PAPER_TEST_ROWS:
        spec = config["datasets"][name]
        outdir = tmp_path_factory.mktemp(name)
        prepare(mirror / spec["file"], spec, config["split"], outdir, name)
        out[name] = outdir
    return out


def test_split_sizes_round_up() -> None:
    assert split_sizes(712, 0.2, 0.2) == (455, 114, 143)
    assert split_sizes(4601, 0.2, 0.2)[2] == 921
    assert split_sizes(8124, 0.2, 0.2)[2] == 1625


@pytest.mark.parametrize("name", list(PAPER_TEST_ROWS))
def test_default_splits_match_the_paper(prepared, name: str) -> None:
    meta = json.loads((prepared[name] / "meta.json").read_text())
    assert meta["rows"]["test"] == PAPER_TEST_ROWS[name]
    splits = load_splits(prepared[name])
    total = sum(len(y) for _, y in splits.values())
    assert total == {"titanic": 712, "spambase": 4601, "mushroom": 8124}[name]
    rate = sum(int(y.sum()) for _, y in splits.values()) / total
    for split, (x, y) in splits.items():
        assert x.shape == (meta["rows"][split], len(meta["features"]))
        assert x.dtype == np.float32 and np.isfinite(x).all()
        assert int(y.sum()) == meta["positives"][split]
        # stratified: each split's positive rate within one row of the overall rate
        assert abs(y.sum() - rate * len(y)) <= 1.0


def test_splits_are_disjoint_and_cover_the_rows(mirror: Path, config: dict, tmp_path: Path) -> None:
    spec = dict(config["datasets"]["spambase"])
    # Add a row identifier as a feature to trace rows through the split.
    frame = pd.read_csv(mirror / "spambase.data", header=None)
    frame.insert(0, "row_id", np.arange(len(frame)))
    path = tmp_path / "spambase.data"
    frame.to_csv(path, header=False, index=False)
    spec["read"] = dict(spec["read"], columns=["row_id", *spec["read"]["columns"]])
    prepare(path, {**spec, "scale": "none"}, config["split"], tmp_path / "out", "spambase")
    ids = [
        pd.read_parquet(tmp_path / "out" / f"{s}.parquet")["row_id"]
        for s in ("train", "val", "test")
    ]
    joined = np.concatenate([i.to_numpy() for i in ids])
    assert sorted(joined.astype(int)) == list(range(4601))


def test_scaler_is_fitted_on_train_only(prepared, mirror: Path, config: dict) -> None:
    meta = json.loads((prepared["titanic"] / "meta.json").read_text())
    numeric = meta["numeric_features"]
    assert numeric == ["Age", "SibSp", "Parch", "Fare"]
    train = pd.read_parquet(prepared["titanic"] / "train.parquet")
    test = pd.read_parquet(prepared["titanic"] / "test.parquet")
    np.testing.assert_allclose(train[numeric].mean(), 0, atol=1e-5)
    np.testing.assert_allclose(train[numeric].std(ddof=0), 1, atol=1e-5)
    assert abs(test["Fare"].mean()) > 1e-3  # test is scaled with train statistics, not its own
    # one-hot columns stay 0/1
    assert set(np.unique(train["Sex=female"])) == {0.0, 1.0}


def test_no_leakage_from_test_rows(mirror: Path, config: dict, tmp_path: Path) -> None:
    """Changing the features of test rows must not change a single byte of train or val."""
    spec = config["datasets"]["titanic"]
    base = tmp_path / "base"
    prepare(mirror / "titanic.csv", spec, config["split"], base, "titanic")
    frame = pd.read_csv(mirror / "titanic.csv")
    complete = frame.dropna(subset=["Age", "Embarked"]).reset_index(drop=True)
    raw = load_raw(mirror / "titanic.csv", spec)
    parts = split_rows(encode(raw), raw.target, config["split"], True, raw.classes)[2]
    test_ids = set(complete.PassengerId.iloc[parts["test"]])
    changed = frame.copy()
    rows = changed.PassengerId.isin(test_ids)
    changed.loc[rows, "Fare"] = changed.loc[rows, "Fare"] * 100 + 1000
    path = tmp_path / "titanic.csv"
    changed.to_csv(path, index=False)
    other = tmp_path / "changed"
    prepare(path, {**spec, "rows": None}, config["split"], other, "titanic")
    for split in ("train", "val"):
        assert (base / f"{split}.parquet").read_bytes() == (other / f"{split}.parquet").read_bytes()
    assert (base / "test.parquet").read_bytes() != (other / "test.parquet").read_bytes()


def test_same_seed_same_bytes_other_seed_other_split(
    mirror: Path, config: dict, tmp_path: Path
) -> None:
    spec = config["datasets"]["mushroom"]
    for run in ("a", "b"):
        prepare(mirror / spec["file"], spec, config["split"], tmp_path / run, "mushroom")
    for name in ("train.parquet", "val.parquet", "test.parquet", "meta.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    prepare(mirror / spec["file"], spec, {**config["split"], "seed": 7}, tmp_path / "c", "mushroom")
    assert (tmp_path / "a" / "test.parquet").read_bytes() != (
        tmp_path / "c" / "test.parquet"
    ).read_bytes()


def test_mushroom_encoding(prepared) -> None:
    meta = json.loads((prepared["mushroom"] / "meta.json").read_text())
    features = meta["features"]
    assert "stalk-root=?" in features  # missing is a category of its own
    assert not any(f.startswith("veil-type=") for f in features)  # constant, dropped
    assert len(features) == 116
    x, _ = load_splits(prepared["mushroom"])["train"]
    assert set(np.unique(x)) == {0.0, 1.0}
    # every attribute's one-hot block sums to one per row
    blocks = {}
    for j, f in enumerate(features):
        blocks.setdefault(f.split("=")[0], []).append(j)
    assert len(blocks) == 21
    for cols in blocks.values():
        assert (x[:, cols].sum(axis=1) == 1).all()


def test_raw_file_edited_after_fetch_is_refused(mirror: Path, config: dict, tmp_path: Path) -> None:
    spec = config["datasets"]["titanic"]
    raw = tmp_path / "raw" / "titanic.csv"
    raw.parent.mkdir()
    raw.write_bytes((mirror / "titanic.csv").read_bytes().replace(b"Braund", b"Brown"))
    actual = sha256_of(raw)
    with pytest.raises(LionSweepError) as err:
        prepare(raw, spec, config["split"], tmp_path / "out", "titanic", sha256=spec["sha256"])
    assert str(err.value) == (
        f"{raw}: sha256 is {actual}, expected {spec['sha256']} (datasets.titanic.sha256): "
        f"the raw file changed after it was fetched. Delete {raw} and rerun to fetch it again, "
        f"or, if the new content is intended, set datasets.titanic.sha256 to {actual}"
    )
    assert not (tmp_path / "out").exists()
    meta = prepare(
        mirror / "titanic.csv", spec, config["split"], tmp_path / "ok", "titanic", spec["sha256"]
    )
    assert meta["raw_sha256"] == spec["sha256"]


def test_many_dropped_rows_warn_on_stderr_and_meta_counts_them(
    mirror: Path, config: dict, tmp_path: Path, capsys
) -> None:
    spec = {**config["datasets"]["titanic"], "max_dropped_fraction": 0.1}
    meta = prepare(mirror / "titanic.csv", spec, config["split"], tmp_path / "a", "titanic")
    captured = capsys.readouterr()
    assert captured.err == (
        "lionsweep prepare: warning: titanic: dropped 179 of 891 rows (20.1%, more than "
        "max_dropped_fraction 0.1) with a missing value; rows missing per column: "
        "Age 177, Embarked 2\n"
    )
    assert "warning" not in captured.out
    assert meta["rows_dropped"] == 179 and meta["rows_raw"] == 891
    assert meta["missing_by_column"] == {"Age": 177, "Embarked": 2}
    on_disk = json.loads((tmp_path / "a" / "meta.json").read_text())
    assert on_disk["missing_by_column"] == {"Age": 177, "Embarked": 2}
    # at or under the limit (the paper's config allows 25% for Titanic): silent
    spec["max_dropped_fraction"] = 0.25
    prepare(mirror / "titanic.csv", spec, config["split"], tmp_path / "b", "titanic")
    assert capsys.readouterr().err == ""


def test_numeric_target_read_as_floats_prepares(tmp_path: Path, config: dict) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "y": np.tile([0.0, 1.0], 30)})
    path = tmp_path / "floats.csv"
    frame.to_csv(path, index=False, float_format="%.1f")
    assert "1.0" in path.read_text()
    spec = {"read": {"header": True}, "target": "y", "positive": 1, "features": None}
    meta = prepare(path, spec, config["split"], tmp_path / "out", "floats")
    assert sum(meta["positives"].values()) == 30
    assert meta["missing_by_column"] == {}


def _rows(n: int, x=lambda i: i * 0.5, y=lambda i: i % 2) -> str:
    return "".join(f"{x(i)},{y(i)}\n" for i in range(n))


@pytest.mark.parametrize(
    "text,read,message",
    [
        ("x,y\n", None, "mydata: the file has no data rows"),
        (
            "x,y\n" + _rows(30, y=lambda i: 0) + "5,1\n",
            None,
            # x = 5 also in a class-0 row: a duplicate group, so the group-aware message
            r"mydata: class '1' has 1 row\(s\) but 1 distinct feature row\(s\) .*too few "
            r"for one in each of train, val, test",
        ),
        (
            "x,y\n" + _rows(40, x=lambda i: 1),
            None,
            "mydata: no feature column varies: every feature is constant",
        ),
        (
            "x,y\n" + _rows(40) + "inf,1\n",
            None,
            "mydata: column 'x' has a non-finite value 'inf' in data row 41",
        ),
        (
            "x,y\n" + _rows(40, x=lambda i: 10**300 * i),
            None,
            "mydata: column 'x' has values too large to standardize",
        ),
        (
            "x,y\n" + _rows(40),
            {"header": False, "columns": ["x", "y"]},
            r"column 'x' has a non-numeric value 'x' in data row 1 \(the first line is a "
            r"header: set read.header: true\)",
        ),
    ],
)
def test_careless_data_is_refused_with_one_line(
    tmp_path: Path, config: dict, text: str, read: dict | None, message: str
) -> None:
    path = tmp_path / "data.csv"
    path.write_text(text)
    spec = {"read": read or {"header": True}, "target": "y", "positive": 1, "features": None}
    with pytest.raises(LionSweepError, match=message):
        prepare(path, spec, config["split"], tmp_path / "out", "mydata")
    assert not (tmp_path / "out").exists()
