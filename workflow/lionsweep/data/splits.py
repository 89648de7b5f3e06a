"""Dividing the rows into train/val/test: seeded, stratified, and aware of duplicates.

The split is seeded and stratified by class (classification), test first, then
validation from the rest (``split_sizes``). Exact duplicate feature rows need care: a
row whose features repeat another row's is, for the model, the same example: split
across train and test, it is memorised, not generalised to (200 random-label rows,
each written 5 times, scored 0.8 test accuracy on noise). ``split.duplicates`` says what
to do with them:

- ``group`` (default): every group of identical feature rows lies in one split. The
  test set, then the validation set, is filled with whole groups and single rows in a
  seeded random order, each class up to its proportional share of the split's
  ``split_sizes`` rows, skipping a group whose rows of some class would overshoot;
  single rows fill the rest, so sizes and class shares are exact unless a class is
  made of large groups alone.
- ``drop``: the first row of each group (file order) is kept, the others dropped; a
  group whose rows disagree on the target keeps its first row's target.
- ``keep``: the rows are split as if unique (the behaviour before this option): a
  group may straddle train and test, and the prepare log warns.

sklearn has no splitter for this: ``StratifiedGroupKFold`` gives folds of 1/k of the
groups (not a 20% test set of 143 rows) and ``GroupShuffleSplit`` does not stratify.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lionsweep.data.stratify import train_test_split
from lionsweep.errors import LionSweepError
from lionsweep.layout import SPLITS

# `split.duplicates`: the schema's enum, in this order (the first is the default).
HANDLING = ("group", "drop", "keep")


@dataclass(frozen=True)
class Duplicates:
    """Row ``i`` belongs to group ``group[i]``; a group of one row is a unique row."""

    group: np.ndarray  # [n] int64 group id of each row
    size: np.ndarray  # [groups] rows per group

    @property
    def rows(self) -> int:
        """Rows that repeat an earlier row's features (pandas' ``duplicated()``)."""
        return int(len(self.group) - len(self.size))

    @property
    def groups(self) -> int:
        """Groups of two or more identical feature rows."""
        return int((self.size > 1).sum())

    def first_rows(self) -> np.ndarray:
        """Sorted index of each group's first row (what ``drop`` keeps)."""
        return np.sort(pd.Series(np.arange(len(self.group))).groupby(self.group).first().to_numpy())

    def conflicting(self, y: np.ndarray) -> int:
        """Groups whose rows disagree on the target."""
        return int((pd.Series(y).groupby(self.group).nunique() > 1).sum())


def find_duplicates(x: pd.DataFrame) -> Duplicates:
    """Exact duplicates among the rows of the encoded, unscaled feature matrix (numbers by
    value: "1" and "1.0" are one value; -0.0 is 0.0), compared as bytes. Groups are
    numbered in file order of their first row, so that the split depends on which rows
    are equal, never on their values (changing test rows' values must not move others)."""
    values = np.ascontiguousarray(x.to_numpy(dtype=np.float64) + 0.0)
    rows = values.view(np.dtype((np.void, values.dtype.itemsize * max(values.shape[1], 1))))
    _, first, inverse, size = np.unique(
        rows.ravel(), return_index=True, return_inverse=True, return_counts=True
    )
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return Duplicates(rank[inverse.ravel()].astype(np.int64), size[order])


def _quotas(counts: np.ndarray, total: int) -> np.ndarray:
    """``total`` rows shared among strata in proportion to ``counts`` (largest remainder;
    ties to the earlier stratum)."""
    exact = total * counts / counts.sum()
    quota = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[: total - int(quota.sum())]] += 1
    return quota


def _take(units: np.ndarray, rows: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    """Units (groups) holding about ``total`` rows, each class in proportion: in a seeded
    random order, every unit whose rows of each class still fit that class's quota.
    ``rows``: [units, classes] row counts (one column without stratification)."""
    left = _quotas(rows.sum(axis=0), total)
    taken = []
    for i in rng.permutation(len(units)):
        if (rows[i] <= left).all():
            taken.append(units[i])
            left -= rows[i]
            if not left.any():
                break
    return np.asarray(taken, dtype=np.int64)


def _class_rows(y: np.ndarray, dups: Duplicates, labels: list[str] | None) -> np.ndarray:
    """[groups, classes] rows of each class in each group. A class must appear in three
    groups (one per split): else one line naming its label."""
    table = pd.crosstab(dups.group, y)
    spread = (table > 0).sum(axis=0)
    for code, n in spread.items():
        if n < len(SPLITS):
            label = labels[int(code)] if labels else str(code)
            raise LionSweepError(
                f"class {label!r} has {int((y == code).sum())} row(s) but {n} distinct feature "
                "row(s) (groups of duplicates): too few for one in each of train, val, test "
                "with split.duplicates: group (keep allows it)"
            )
    return table.to_numpy(dtype=np.int64)


def group_split(
    y: np.ndarray,
    dups: Duplicates,
    sizes: tuple[int, int, int],
    seed: int,
    labels: list[str] | None,
    stratify: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) row indices, sorted, each group of duplicates in one split; the
    test set is drawn first, then validation from the rest, as ``split_indices`` does.
    ``labels`` name the classes in errors."""
    one = dups.size[:, None].astype(np.int64)  # regression: one stratum
    rows = _class_rows(y, dups, labels) if stratify else one
    rng = np.random.default_rng(seed)
    units = np.arange(len(dups.size))
    test = _take(units, rows, sizes[2], rng)
    rest = np.setdiff1d(units, test)
    val = _take(rest, rows[rest], sizes[1], rng)
    in_test, in_val = np.isin(dups.group, test), np.isin(dups.group, val)
    index = np.arange(len(y))
    return index[~in_test & ~in_val], index[in_val], index[in_test]


def split_sizes(n: int, test_fraction: float, val_fraction: float) -> tuple[int, int, int]:
    """(train, val, test) row counts; test and val are rounded up, as the paper's test set."""
    n_test = math.ceil(test_fraction * n)
    n_val = math.ceil(val_fraction * (n - n_test))
    return n - n_test - n_val, n_val, n_test


def checked_sizes(n: int, split: dict[str, Any]) -> tuple[int, int, int]:
    """``split_sizes`` of ``n`` rows, each at least 2 rows."""
    sizes = split_sizes(n, split["test_fraction"], split["val_fraction"])
    if min(sizes) < 2:
        raise LionSweepError(f"{n} rows are too few for a train/val/test split")
    return sizes


def split_indices(
    y: np.ndarray,
    split: dict[str, Any],
    stratify: bool = True,
    labels: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """Seeded split, stratified by class (classification); indices sorted so outputs keep
    the file's row order. ``labels``: the class codes' labels, for the error messages."""
    _, n_val, n_test = checked_sizes(len(y), split)
    classes, counts = np.unique(y, return_counts=True)
    if stratify and counts.min() < len(SPLITS):
        rare = int(classes[counts.argmin()])
        label = labels[rare] if labels else str(rare)
        raise LionSweepError(
            f"class {label!r} has {counts.min()} row(s): too few for a stratified split "
            f"(each of {', '.join(SPLITS)} needs one)"
        )
    index = np.arange(len(y))
    try:  # sklearn's train_test_split, bit for bit, without its slow import (stratify.py)
        rest, test = train_test_split(index, n_test, y if stratify else None, split["seed"])
        train, val = train_test_split(rest, n_val, y[rest] if stratify else None, split["seed"])
    except ValueError as err:  # e.g. a class with a single member
        raise LionSweepError(f"cannot split stratified: {err}") from None
    return dict(zip(SPLITS, (np.sort(train), np.sort(val), np.sort(test)), strict=True))


def split_rows(
    x: pd.DataFrame, y: np.ndarray, split: dict[str, Any], stratify: bool, labels: list[str] | None
) -> tuple[pd.DataFrame, np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    """The rows kept (all but ``drop``'s), their targets, their split and what was found:
    ``{"handling", "rows", "groups", "conflicting_groups", "removed"}`` (meta.json's
    ``duplicates``). Without duplicates every handling is ``split_indices``: the same
    bytes as before ``split.duplicates`` existed."""
    handling = split.get("duplicates", HANDLING[0])
    if handling not in HANDLING:
        raise LionSweepError(f"split.duplicates: {handling!r} is not one of {', '.join(HANDLING)}")
    dups = find_duplicates(x)
    about = {"handling": handling, "rows": dups.rows, "groups": dups.groups,
             "conflicting_groups": dups.conflicting(y), "removed": 0}  # fmt: skip
    if handling == "drop" and dups.rows:
        keep = dups.first_rows()
        x, y = x.iloc[keep].reset_index(drop=True), y[keep]
        about["removed"] = dups.rows
    if handling == "group" and dups.rows:
        sizes = checked_sizes(len(y), split)
        parts = group_split(y, dups, sizes, split["seed"], labels, stratify)
        return x, y, dict(zip(SPLITS, parts, strict=True)), about
    return x, y, split_indices(y, split, stratify, labels), about
