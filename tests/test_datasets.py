"""Reading and validating raw files: the facts of SOURCES.md, and clear errors on bad files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lionsweep.data.datasets import load_raw, read_table
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


# Small hand-written files: how a careless user's data is read or refused.

TINY = {"read": {"header": True}, "target": "y", "positive": 1, "features": None}


def _tiny(tmp_path: Path, text: str | bytes, name: str = "tiny.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    return path


@pytest.mark.parametrize(
    "column",
    ["1\n0\n1\n0", "1.0\n0.0\n1.0\n0.0", " 1\n0\n1 \n0", '"1"\n"0"\n1\n0', "1\n0.0\n1.00\n0"],
)
def test_numeric_positive_matches_by_value(tmp_path: Path, column: str) -> None:
    x = ["0.5", "1.5", "2.5", "3.5"]
    lines = [f"{a},{b}" for a, b in zip(x, column.split("\n"), strict=True)]
    path = _tiny(tmp_path, "x,y\n" + "\n".join(lines) + "\n")
    raw = load_raw(path, TINY)
    assert raw.target.tolist() == [1, 0, 1, 0]


def test_string_positive_matches_exactly_after_stripping(tmp_path: Path) -> None:
    path = _tiny(tmp_path, "x,y\n1,yes\n2, no\n3,yes \n4,no\n")
    raw = load_raw(path, {**TINY, "positive": "yes"})
    assert raw.target.tolist() == [1, 0, 1, 0]
    # a string positive is text: "1" does not match "1.0"
    path = _tiny(tmp_path, "x,y\n1,1.0\n2,0.0\n", name="f.csv")
    with pytest.raises(
        LionSweepError,
        match=r"f.csv: positive class '1' does not occur in target 'y', which takes the "
        r"values \['0.0', '1.0'\] \(write positive without quotes to match numbers by value\)",
    ):
        load_raw(path, {**TINY, "positive": "1"})


def test_numeric_positive_against_text_target(tmp_path: Path) -> None:
    path = _tiny(tmp_path, "x,y\n1,yes\n2,no\n")
    with pytest.raises(
        LionSweepError,
        match=r"target 'y' has the non-numeric value 'yes' in data row 1, but positive is "
        r"the number 1 \(quote positive",
    ):
        load_raw(path, TINY)


@pytest.mark.parametrize(
    "body,message",
    [
        ("1,0\n2,0\n3,0\n", r"must take exactly two values \(a binary task\); found 1: \['0'\]"),
        (
            "1,0\n2,2\n3,0\n",
            r"positive class 1 does not occur in target 'y', which takes the "
            r"values \['0', '2'\]$",
        ),
        ("1,0\n2,1\n3,2\n", r"found 3: \['0', '1', '2'\]"),
    ],
)
def test_bad_target_values_are_named(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(LionSweepError, match=message):
        load_raw(_tiny(tmp_path, "x,y\n" + body), TINY)


def test_bom_crlf_and_trailing_empty_line_are_read(tmp_path: Path) -> None:
    text = "y,x\r\n1,0.5\r\n0,1.5\r\n\r\n"
    path = _tiny(tmp_path, b"\xef\xbb\xbf" + text.encode())
    raw = load_raw(path, {**TINY, "rows": 2})
    assert raw.target.tolist() == [1, 0]
    assert raw.features["x"].tolist() == [0.5, 1.5]


@pytest.mark.parametrize(
    "text,spec,message",
    [
        ("x,y,x\n1,1,2\n3,0,4\n", {}, r"tiny.csv: the header repeats the column names \['x'\]"),
        (
            "x;y\n1;1\n2;0\n",
            {},
            r"tiny.csv: the header has a single column 'x;y': is read.sep ',' the file's",
        ),
        (
            "1;1\n2;0\n",
            {"read": {"header": False, "columns": ["x", "y"]}},
            r"tiny.csv: line 1 has 1 fields, expected 2 .* \(is read.sep ',' right\?\)",
        ),
        (
            "x;y\n1,5;1\n2,5;0\n",
            {"read": {"header": True, "sep": ";"}},
            r"column 'x' has a non-numeric value '1,5' in data row 1 \(a decimal comma\?",
        ),
        ("x,y\n1,1\n2,0\n", {"rows": 3}, "tiny.csv: 2 data rows, expected 3"),
        ("x,y\n1,1\n2\n", {}, "tiny.csv: line 3 has 1 fields, expected 2"),
    ],
)
def test_careless_files_give_one_readable_line(
    tmp_path: Path, text: str, spec: dict, message: str
) -> None:
    with pytest.raises(LionSweepError, match=message):
        load_raw(_tiny(tmp_path, text), {**TINY, **spec})


def test_missing_by_column_counts_rows(tmp_path: Path) -> None:
    path = _tiny(tmp_path, "a,b,y\n1,,1\n,,0\n3,4,1\n5,6,0\n7,8,1\n")
    raw = load_raw(path, {**TINY, "dropna": True})
    assert raw.dropped_rows == 2
    assert raw.missing_by_column == {"a": 1, "b": 2}
    assert raw.target.tolist() == [1, 0, 1]
