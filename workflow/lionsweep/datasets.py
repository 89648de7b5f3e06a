"""Read a raw dataset file as its config entry describes it, and check it is what we expect.

Everything that can be wrong with a raw file (wrong column count, garbled row,
missing column, truncation, unexpected target values) is reported here as one
readable ``LionSweepError`` naming the file, before any model sees the data.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lionsweep.errors import LionSweepError


@dataclass(frozen=True)
class RawData:
    """Validated raw data: the used feature columns (as read) and a 0/1 target."""

    features: pd.DataFrame
    target: np.ndarray  # int8, 1 = positive class
    categorical: list[str]
    numeric: list[str]
    dropped_rows: int


def _check_field_counts(path: Path, sep: str, expected: int | None, header: bool) -> None:
    """Find the first line whose field count differs (pandas would pad or fail obscurely).

    ``expected`` None means: as many fields as the first line has. One pass over the
    file also finds non-UTF-8 bytes and an empty file.
    """
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for lineno, fields in enumerate(csv.reader(fh, delimiter=sep), start=1):
                if not fields:
                    continue
                expected = expected or len(fields)
                if len(fields) != expected:
                    kind = "header" if header and lineno == 1 else "line"
                    raise LionSweepError(
                        f"{path.name}: {kind} {lineno} has {len(fields)} fields, "
                        f"expected {expected} (garbled or truncated row?)"
                    )
    except UnicodeDecodeError as err:
        raise LionSweepError(f"{path.name}: not a UTF-8 text file ({err.reason})") from None
    if expected is None:
        raise LionSweepError(f"{path.name}: the file is empty")


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


def _to_numeric(frame: pd.DataFrame, column: str, name: str) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise LionSweepError(
            f"{name}: column {column!r} has a non-numeric value {frame[column].iloc[row]!r} "
            f"in data row {row + 1}"
        )
    return values


def load_raw(path: Path, spec: dict[str, Any], name: str | None = None) -> RawData:
    """Read and validate one dataset; returns its used features and binary target."""
    name = name or path.name
    frame = read_table(path, spec)
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
        data[column] = _to_numeric(frame, column, name)
    y_raw = frame[target]
    if y_raw.isna().any():
        row = int(np.flatnonzero(y_raw.isna().to_numpy())[0])
        raise LionSweepError(f"{name}: target {target!r} is missing in data row {row + 1}")

    dropped = 0
    incomplete = data.isna().any(axis=1).to_numpy()
    if incomplete.any():
        if not spec.get("dropna", False):
            row = int(np.flatnonzero(incomplete)[0])
            cols = [c for c in features if pd.isna(data[c].iloc[row])]
            raise LionSweepError(
                f"{name}: data row {row + 1} has missing values in {cols} "
                "(set `dropna: true` to drop such rows)"
            )
        dropped = int(incomplete.sum())
        data = data.loc[~incomplete].reset_index(drop=True)
        y_raw = y_raw.loc[~incomplete].reset_index(drop=True)

    positive = str(spec["positive"])
    values = sorted(set(y_raw.astype(str)))
    if positive not in values or len(values) != 2:
        raise LionSweepError(
            f"{name}: target {target!r} must take exactly two values including the positive "
            f"class {positive!r}; found {values[:10]}"
        )
    y = (y_raw.astype(str) == positive).to_numpy(dtype=np.int8)
    return RawData(data, y, categorical, numeric, dropped)
