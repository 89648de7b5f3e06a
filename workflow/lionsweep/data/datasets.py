"""Read a raw dataset file as its config entry describes it, and check it is what we expect.

Everything that can be wrong with a raw file (wrong column count, garbled row,
missing column, truncation, unexpected target values) is reported here as one
readable ``LionSweepError`` naming the file, before any model sees the data.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lionsweep.errors import LionSweepError

# What a target can be, `datasets.<name>.task`, is lionsweep.train.tasks' list (absent: binary
# when the target takes two values, else an error naming these).
from lionsweep.train.tasks import TASKS


@dataclass(frozen=True)
class RawData:
    """Validated raw data: the used feature columns (as read) and the encoded target."""

    features: pd.DataFrame
    # binary: int8, 1 = positive class; multiclass: int64 codes into `classes`;
    # regression: float64 values as read
    target: np.ndarray
    categorical: list[str]
    numeric: list[str]
    dropped_rows: int
    # rows with a missing value, per used feature column (only columns with any)
    missing_by_column: dict[str, int] = field(default_factory=dict)
    task: str = "binary"
    # the label of each code, in order (binary: the other value, then `positive`);
    # regression: None
    classes: list[str] | None = None


# utf-8-sig: a byte-order mark (as Excel writes) is not part of the first column's name.
ENCODING = "utf-8-sig"
DECIMAL_COMMA = re.compile(r"^[-+]?\d*,\d+$")


def _check_field_counts(path: Path, sep: str, expected: int | None, header: bool) -> None:
    """Find the first line whose field count differs (pandas would pad or fail obscurely).

    ``expected`` None means: as many fields as the first line has. One pass over the
    file also finds non-UTF-8 bytes, an empty file and duplicate header names.
    """
    try:
        with open(path, newline="", encoding=ENCODING) as fh:
            for lineno, fields in enumerate(csv.reader(fh, delimiter=sep), start=1):
                if not fields:
                    continue
                if header and lineno == 1:
                    _check_header(path, fields, sep)
                expected = expected or len(fields)
                if len(fields) != expected:
                    kind = "header" if header and lineno == 1 else "line"
                    one = len(fields) == 1 and lineno == 1
                    hint = f" (is read.sep {sep!r} right?)" if one else ""
                    raise LionSweepError(
                        f"{path.name}: {kind} {lineno} has {len(fields)} fields, "
                        f"expected {expected} (garbled or truncated row?){hint}"
                    )
    except UnicodeDecodeError as err:
        raise LionSweepError(f"{path.name}: not a UTF-8 text file ({err.reason})") from None
    except csv.Error as err:
        raise LionSweepError(f"{path.name}: cannot be parsed: {err}") from None
    if expected is None:
        raise LionSweepError(f"{path.name}: the file is empty")


def _check_header(path: Path, names: list[str], sep: str) -> None:
    """pandas would silently rename a repeated column to `x.1`, or read a file whose
    separator never occurs as one column named after the whole header line."""
    repeated = sorted(n for n, count in Counter(names).items() if count > 1)
    if repeated:
        raise LionSweepError(f"{path.name}: the header repeats the column names {repeated}")
    if len(names) == 1:
        raise LionSweepError(
            f"{path.name}: the header has a single column {names[0][:60]!r}: is read.sep "
            f"{sep!r} the file's separator?"
        )


def read_table(path: Path, spec: dict[str, Any]) -> pd.DataFrame:
    """Read the raw file with the reader options of its config entry."""
    read = spec["read"]
    sep = read.get("sep", ",")
    header = read["header"]
    columns = read.get("columns")
    if not header and not columns:
        raise LionSweepError(f"{path.name}: `read.columns` is required when `read.header` is false")
    na_values = read.get("na_values")
    kwargs: dict[str, Any] = {"sep": sep, "dtype": str, "keep_default_na": False}
    kwargs["encoding"] = ENCODING
    kwargs["na_values"] = na_values if na_values is not None else [""]
    if header:
        kwargs["header"] = 0
    else:
        kwargs["header"] = None
        kwargs["names"] = columns
    _check_field_counts(path, sep, len(columns) if columns else None, header)
    try:
        frame = pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise LionSweepError(f"{path.name}: cannot be parsed: {err}") from None
    if header and columns:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise LionSweepError(f"{path.name}: missing columns {missing}")
    return frame


def _to_numeric(frame: pd.DataFrame, column: str, name: str, header: bool) -> pd.Series:
    """The column as floats; a non-numeric or non-finite value is named with its row."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = (values.isna() & frame[column].notna()) | np.isinf(values)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        value = frame[column].iloc[row]
        hint = ""
        if DECIMAL_COMMA.match(value.strip()):
            hint = " (a decimal comma? numbers must use '.' as the decimal point)"
        elif row == 0 and not header and value.strip() == column:
            hint = " (the first line is a header: set read.header: true)"
        kind = "non-finite" if np.isinf(values.iloc[row]) else "non-numeric"
        raise LionSweepError(
            f"{name}: column {column!r} has a {kind} value {value!r} in data row {row + 1}{hint}"
        )
    return values


def load_raw(path: Path, spec: dict[str, Any], name: str | None = None) -> RawData:
    """Read and validate one dataset; returns its used features and binary target."""
    name = name or path.name
    frame = read_table(path, spec)
    if frame.empty:
        raise LionSweepError(f"{name}: the file has no data rows")
    expected_rows = spec.get("rows")
    if expected_rows is not None and len(frame) != expected_rows:
        raise LionSweepError(
            f"{name}: {len(frame)} data rows, expected {expected_rows} (truncated or wrong file?)"
        )
    target = spec["target"]
    if target not in frame.columns:
        raise LionSweepError(
            f"{name}: target column {target!r} not found; has {list(frame.columns)}"
        )
    features = spec.get("features") or [c for c in frame.columns if c != target]
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise LionSweepError(f"{name}: feature columns {missing} not found")
    categorical_spec = spec.get("categorical", [])
    categorical = list(features) if categorical_spec == "all" else list(categorical_spec)
    unknown = [c for c in categorical if c not in features]
    if unknown:
        raise LionSweepError(f"{name}: categorical columns {unknown} are not among the features")
    numeric = [c for c in features if c not in categorical]

    data = frame[features].copy()
    for column in numeric:
        data[column] = _to_numeric(frame, column, name, spec["read"]["header"])
    y_raw = frame[target]
    if y_raw.isna().any():
        row = int(np.flatnonzero(y_raw.isna().to_numpy())[0])
        raise LionSweepError(f"{name}: target {target!r} is missing in data row {row + 1}")

    dropped = 0
    missing = data.isna()
    missing_by_column = {c: int(n) for c, n in missing.sum().items() if n}
    incomplete = missing.any(axis=1).to_numpy()
    if incomplete.any():
        if not spec.get("dropna", False):
            row = int(np.flatnonzero(incomplete)[0])
            cols = [c for c in features if pd.isna(data[c].iloc[row])]
            raise LionSweepError(
                f"{name}: data row {row + 1} has missing values in {cols} "
                "(set `dropna: true` to drop such rows)"
            )
        dropped = int(incomplete.sum())
        if incomplete.all():
            raise LionSweepError(f"{name}: {_all_dropped(missing_by_column, len(data))}")
        data = data.loc[~incomplete].reset_index(drop=True)
        y_raw = y_raw.loc[~incomplete].reset_index(drop=True)

    task, y, classes = encode_target(y_raw, spec, target, name)
    return RawData(data, y, categorical, numeric, dropped, missing_by_column, task, classes)


def _all_dropped(missing_by_column: dict[str, int], rows: int) -> str:
    """Why dropna left nothing: the columns missing in every row, else the counts (then
    every row misses some column, none all of them)."""
    empty = [c for c, n in missing_by_column.items() if n == rows]
    if empty:
        culprit = (
            f"columns {empty} are empty" if len(empty) > 1 else f"column {empty[0]!r} is empty"
        )
        return (
            f"dropna removed every one of the {rows} rows: {culprit} (missing in every row); "
            "leave it out of `features`"
        )
    counts = ", ".join(f"{c} {n}" for c, n in missing_by_column.items())
    return (
        f"dropna removed every one of the {rows} rows: each has a missing value in some "
        f"column (rows missing per column: {counts})"
    )


def encode_target(
    y_raw: pd.Series, spec: dict[str, Any], target: str, name: str
) -> tuple[str, np.ndarray, list[str] | None]:
    """(task, encoded target, class labels) as `task` asks; without `task`, binary (the
    config check then requires `positive`), and a target that is not two-valued is an
    error naming the tasks."""
    task = spec.get("task")
    if task == "regression":
        return task, _regression_target(y_raw, target, name), None
    if task == "multiclass":
        values = _meaning(y_raw)
        classes = _classes(values)
        if len(classes) < 2:
            raise LionSweepError(f"{name}: target {target!r} takes a single value {classes}")
        codes = np.searchsorted(np.sort(values.unique()), values.to_numpy())
        return task, codes.astype(np.int64), classes
    y = positive_mask(y_raw, spec.get("positive"), target, name, explicit=task is not None)
    labels = [", ".join(_classes(_meaning(y_raw[y == code]))) for code in (0, 1)]
    return "binary", y, labels


def _meaning(y_raw: pd.Series) -> pd.Series:
    """Target values by meaning: numbers when every value is one ("1" = "1.0"), else
    the stripped strings."""
    text = y_raw.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    return text if numbers.isna().any() else numbers.astype("float64")


def _regression_target(y_raw: pd.Series, target: str, name: str) -> np.ndarray:
    text = y_raw.astype(str).str.strip()
    values = pd.to_numeric(text, errors="coerce")
    bad = values.isna() | np.isinf(values)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise LionSweepError(
            f"{name}: target {target!r} of a regression task has the value "
            f"{text.iloc[row]!r} in data row {row + 1}; it must be a finite number"
        )
    return values.to_numpy(dtype=np.float64)


def _classes(values: pd.Series) -> list[str]:
    return [f"{v:g}" if isinstance(v, float) else str(v) for v in sorted(values.unique())]


def positive_mask(
    y_raw: pd.Series, positive: Any, target: str, name: str, explicit: bool = True
) -> np.ndarray:
    """1 where the target is the positive class, matched by meaning: a number by value
    (``1`` matches "1", "1.0" and " 1"), a string exactly after stripping spaces.
    ``explicit``: the config says `task: binary` (else binary was inferred)."""
    text = y_raw.astype(str).str.strip()
    by_value = isinstance(positive, int | float) and not isinstance(positive, bool)
    if by_value:
        values = pd.to_numeric(text, errors="coerce")
        if values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise LionSweepError(
                f"{name}: target {target!r} has the non-numeric value {text.iloc[row]!r} in "
                f"data row {row + 1}, but positive is the number {positive!r} (quote positive "
                "to match the target as text)"
            )
        is_positive = values == float(positive)
    else:
        values = text
        is_positive = values == str(positive).strip()
    classes = _classes(values)
    if len(classes) != 2:
        hint = "" if explicit else f" (or set datasets.{name}.task: {' or '.join(TASKS[1:])})"
        raise LionSweepError(
            f"{name}: target {target!r} must take exactly two values (a binary task); "
            f"found {len(classes)}: {classes[:10]}{hint}"
        )
    if not is_positive.any():
        hint = ""
        if not by_value and not pd.to_numeric(values, errors="coerce").isna().any():
            hint = " (write positive without quotes to match numbers by value)"
        raise LionSweepError(
            f"{name}: positive class {positive!r} does not occur in target {target!r}, "
            f"which takes the values {classes}{hint}"
        )
    return is_positive.to_numpy(dtype=np.int8)
