"""Reading and validating raw files: the facts of SOURCES.md, and clear errors on bad files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lionsweep.datasets import load_raw, read_table
from lionsweep.errors import LionSweepError


def test_titanic_facts(mirror: Path, config: dict) -> None:
    spec = config["datasets"]["titanic"]
    frame = read_table(mirror / "titanic.csv", spec)
    assert len(frame) == 891
    assert frame["Survived"].value_counts().to_dict() == {"0": 549, "1": 342}
    assert frame["Age"].isna().sum() == 177
    assert frame["Embarked"].isna().sum() == 2
    assert frame["Cabin"].isna().sum() == 687
    raw = load_raw(mirror / "titanic.csv", spec)
    assert len(raw.features) == 712 and raw.dropped_rows == 179
    assert raw.target.sum() == 288  # survivors among the 712 complete rows


def test_spambase_facts(mirror: Path, config: dict) -> None:
    raw = load_raw(mirror / "spambase.data", config["datasets"]["spambase"])
    assert raw.features.shape == (4601, 57)
    assert raw.numeric == list(raw.features.columns) and raw.categorical == []
    assert (int(raw.target.sum()), int((raw.target == 0).sum())) == (1813, 2788)
    assert not raw.features.isna().any().any()


def test_mushroom_facts(mirror: Path, config: dict) -> None:
    raw = load_raw(mirror / "agaricus-lepiota.data", config["datasets"]["mushroom"])
    assert raw.features.shape == (8124, 22)
    assert (int(raw.target.sum()), int((raw.target == 0).sum())) == (3916, 4208)
    assert (raw.features["stalk-root"] == "?").sum() == 2480  # kept as a category
    assert raw.features["veil-type"].nunique() == 1


def _copy_lines(src: Path, dest: Path, edit) -> Path:
    lines = src.read_text().splitlines(keepends=True)
    dest.write_text("".join(edit(lines)))
    return dest


def test_truncated_file_fails_clearly(mirror: Path, config: dict, tmp_path: Path) -> None:
    spec = config["datasets"]["spambase"]
    text = (mirror / "spambase.data").read_text()
    cut = tmp_path / "spambase.data"
    cut.write_text(text[: len(text) // 2])  # cut mid-line
    with pytest.raises(
        LionSweepError, match=r"spambase.data: line 2\d\d\d has \d+ fields, expected 58"
    ):
        load_raw(cut, spec)
    whole_lines = tmp_path / "short.data"
    _copy_lines(mirror / "spambase.data", whole_lines, lambda ls: ls[:3000])
    with pytest.raises(LionSweepError, match="3000 data rows, expected 4601"):
        load_raw(whole_lines, spec)


def test_missing_column_is_named(mirror: Path, config: dict, tmp_path: Path) -> None:
    frame = pd.read_csv(mirror / "titanic.csv")
    path = tmp_path / "titanic.csv"
    frame.drop(columns=["Fare"]).to_csv(path, index=False)
    with pytest.raises(LionSweepError, match=r"titanic.csv: feature columns \['Fare'\] not found"):
        load_raw(path, config["datasets"]["titanic"])


def _set_field(line: int, field: int, value: str):
    """An edit for _copy_lines: replace one comma-separated field of one (0-based) line."""

    def edit(lines: list[str]) -> list[str]:
        fields = lines[line].split(",")
        fields[field] = value
        lines[line] = ",".join(fields)
        return lines

    return edit


def test_garbled_row_is_located(mirror: Path, config: dict, tmp_path: Path) -> None:
    garble = _set_field(99, 3, "x7!")
    path = _copy_lines(mirror / "spambase.data", tmp_path / "spambase.data", garble)
    with pytest.raises(
        LionSweepError, match=r"column 'word_freq_3d' has a non-numeric value 'x7!' in data row 100"
    ):
        load_raw(path, config["datasets"]["spambase"])


def test_extra_field_is_located(mirror: Path, config: dict, tmp_path: Path) -> None:
    def extra(lines: list[str]) -> list[str]:
        lines[9] = lines[9].rstrip("\n") + ",1\n"
        return lines

    path = _copy_lines(mirror / "agaricus-lepiota.data", tmp_path / "m.data", extra)
    with pytest.raises(LionSweepError, match=r"m\.data: line 10 has 24 fields, expected 23"):
        load_raw(path, config["datasets"]["mushroom"])


def test_unexpected_target_value(mirror: Path, config: dict, tmp_path: Path) -> None:
    def third_class(lines: list[str]) -> list[str]:
        lines[5] = "x" + lines[5][1:]
        return lines

    path = _copy_lines(mirror / "agaricus-lepiota.data", tmp_path / "m.data", third_class)
    with pytest.raises(LionSweepError, match="exactly two values"):
        load_raw(path, config["datasets"]["mushroom"])


def test_missing_value_without_dropna(mirror: Path, config: dict, tmp_path: Path) -> None:
    path = _copy_lines(mirror / "spambase.data", tmp_path / "s.data", _set_field(41, 0, ""))
    with pytest.raises(
        LionSweepError, match=r"data row 42 has missing values in \['word_freq_make'\]"
    ):
        load_raw(path, config["datasets"]["spambase"])


@pytest.mark.parametrize(
    "content,message",
    [(b"", "the file is empty"), (b"PassengerId,Survived\n\xff\xfe,1\n", "not a UTF-8 text file")],
)
def test_empty_or_binary_file(config: dict, tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "titanic.csv"
    path.write_bytes(content)
    with pytest.raises(LionSweepError, match=f"titanic.csv: {message}"):
        load_raw(path, config["datasets"]["titanic"])
