"""Turn a validated raw dataset into model-ready train/val/test Parquet files.

Order of operations matters for honesty: one-hot levels come from the whole file
(they carry no label information), the split is stratified and seeded, and the
scaler is fitted on the training split only, so nothing of val/test leaks in.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lionsweep.datasets import RawData, load_raw
from lionsweep.errors import LionSweepError
from lionsweep.fetch import sha256_of
from lionsweep.io import write_json, write_parquet
from lionsweep.layout import SPLITS
from lionsweep.tasks import TASKS, Task

TARGET = "target"


def encode(raw: RawData) -> pd.DataFrame:
    """Numeric columns as float, categoricals one-hot (sorted levels); drop constant columns."""
    parts = [raw.features[raw.numeric].astype("float64")]
    for column in raw.categorical:
        values = raw.features[column].astype(str)
        for level in sorted(values.unique()):
            parts.append((values == level).astype("float64").rename(f"{column}={level}"))
    encoded = pd.concat(parts, axis=1)
    constant = [c for c in encoded.columns if encoded[c].nunique(dropna=False) <= 1]
    return encoded.drop(columns=constant)


def split_sizes(n: int, test_fraction: float, val_fraction: float) -> tuple[int, int, int]:
    """(train, val, test) row counts; test and val are rounded up, as the paper's test set."""
    n_test = math.ceil(test_fraction * n)
    n_val = math.ceil(val_fraction * (n - n_test))
    return n - n_test - n_val, n_val, n_test


def split_indices(
    y: np.ndarray, split: dict[str, Any], stratify: bool = True
) -> dict[str, np.ndarray]:
    """Seeded split, stratified by class (classification); indices sorted so outputs keep
    the file's row order."""
    n_train, n_val, n_test = split_sizes(len(y), split["test_fraction"], split["val_fraction"])
    if min(n_train, n_val, n_test) < 2:
        raise LionSweepError(f"{len(y)} rows are too few for a train/val/test split")
    classes, counts = np.unique(y, return_counts=True)
    if stratify and counts.min() < len(SPLITS):
        rare = int(classes[counts.argmin()])
        raise LionSweepError(
            f"class {rare} has {counts.min()} row(s): too few for a stratified split "
            f"(each of {', '.join(SPLITS)} needs one)"
        )
    from sklearn.model_selection import train_test_split  # slow import: only here

    index = np.arange(len(y))
    try:
        rest, test = train_test_split(
            index, test_size=n_test, stratify=y if stratify else None, random_state=split["seed"]
        )
        train, val = train_test_split(
            rest,
            test_size=n_val,
            stratify=y[rest] if stratify else None,
            random_state=split["seed"],
        )
    except ValueError as err:  # e.g. a class with a single member
        raise LionSweepError(f"cannot split stratified: {err}") from None
    return dict(zip(SPLITS, (np.sort(train), np.sort(val), np.sort(test)), strict=True))


def standardize(
    x: pd.DataFrame, columns: list[str], train: np.ndarray
) -> tuple[pd.DataFrame, dict[str, list[float]]]:
    """Scale ``columns`` with mean/std of the training rows only (std 0 -> 1)."""
    x = x.copy()
    stats = x.iloc[train][columns]
    mean = stats.mean()
    std = stats.std(ddof=0).replace(0.0, 1.0)
    x[columns] = (x[columns] - mean) / std
    return x, {"mean": mean.tolist(), "std": std.tolist()}


def verify_digest(raw_path: Path, expected: str | None, name: str) -> str:
    """The raw file's sha256, checked against ``expected`` (when given): a raw file edited
    after it was fetched must not be prepared under the digest the config promises."""
    if not raw_path.is_file():
        raise LionSweepError(f"{raw_path}: raw file not found")
    actual = sha256_of(raw_path)
    if expected is not None and actual != expected.lower():
        raise LionSweepError(
            f"{raw_path}: sha256 is {actual}, expected {expected} (datasets.{name}.sha256): "
            f"the raw file changed after it was fetched. Delete {raw_path} and rerun to fetch "
            f"it again, or, if the new content is intended, set datasets.{name}.sha256 to {actual}"
        )
    return actual


def warn_dropped(raw: RawData, spec: dict[str, Any], name: str) -> None:
    """One stderr line when dropna removed more than ``max_dropped_fraction`` of the rows
    (the workflow passes the schema default; a spec without it reports any drop)."""
    total = len(raw.features) + raw.dropped_rows
    limit = spec.get("max_dropped_fraction") or 0.0
    if raw.dropped_rows == 0 or raw.dropped_rows <= limit * total:
        return
    counts = ", ".join(f"{c} {n}" for c, n in raw.missing_by_column.items())
    print(
        f"lionsweep prepare: warning: {name}: dropped {raw.dropped_rows} of {total} rows "
        f"({raw.dropped_rows / total:.1%}, more than max_dropped_fraction {limit:g}) with a "
        f"missing value; rows missing per column: {counts}",
        file=sys.stderr,
    )


# Parquet type of the stored target, per task.
TARGET_TYPES = {"binary": pa.int8(), "multiclass": pa.int64(), "regression": pa.float64()}


def model_matrix(
    raw: RawData, spec: dict[str, Any], train: np.ndarray, name: str
) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """Encoded (and standardized, from training rows) features as float32, their names
    and the scaler; a constant or overflowing matrix is refused here, not in training."""
    x = encode(raw)
    scaler: dict[str, Any] = {}
    if spec.get("scale", "standard") == "standard":
        numeric = [c for c in raw.numeric if c in x.columns]
        with np.errstate(over="ignore", invalid="ignore"):
            x, scaler = standardize(x, numeric, train)
        overflow = [c for c, sd in zip(numeric, scaler["std"], strict=True) if not np.isfinite(sd)]
        if overflow:
            raise LionSweepError(
                f"{name}: column {overflow[0]!r} has values too large to standardize: "
                "rescale it in the file"
            )
    features = list(x.columns)
    if not features:
        raise LionSweepError(f"{name}: no feature column varies: every feature is constant")
    values = x.to_numpy(dtype=np.float32)
    finite = np.isfinite(values).all(axis=0)
    if not finite.all():
        raise LionSweepError(
            f"{name}: column {features[int(np.argmin(finite))]!r} has values too large for "
            "float32 (or to standardize): rescale it in the file"
        )
    return values, features, scaler


def target_meta(raw: RawData, parts: dict[str, np.ndarray], name: str) -> dict[str, Any]:
    """What meta.json says about the target: class balance per split, the class labels
    (multiclass), or the training split's mean and std (regression: the engine
    standardizes the target with them)."""
    y = raw.target
    if raw.task == "binary":
        return {"positives": {s: int(y[parts[s]].sum()) for s in SPLITS}}
    if raw.task == "multiclass":
        n = len(raw.classes or [])
        counts = {s: np.bincount(y[parts[s]], minlength=n).tolist() for s in SPLITS}
        return {"classes": raw.classes, "class_counts": counts}
    train = y[parts["train"]]
    std = float(train.std())
    if not std > 0:
        raise LionSweepError(f"{name}: the target is constant on the training split")
    return {"target_mean": float(train.mean()), "target_std": std}


def prepare(
    raw_path: Path,
    spec: dict[str, Any],
    split: dict[str, Any],
    outdir: Path,
    name: str,
    sha256: str | None = None,
) -> dict[str, Any]:
    """Write ``{train,val,test}.parquet`` and ``meta.json`` for one dataset; return the meta.

    ``sha256``: the digest the raw file must still have (the CLI always passes it).
    """
    digest = verify_digest(raw_path, sha256, name)
    raw = load_raw(raw_path, spec, name)
    warn_dropped(raw, spec, name)
    y = raw.target
    try:
        parts = split_indices(y, split, stratify=raw.task != "regression")
    except LionSweepError as err:
        raise LionSweepError(f"{name}: {err}") from None
    values, features, scaler = model_matrix(raw, spec, parts["train"], name)
    about_target = target_meta(raw, parts, name)
    for split_name, rows in parts.items():
        columns = {f: pa.array(values[rows, j]) for j, f in enumerate(features)}
        columns[TARGET] = pa.array(y[rows], type=TARGET_TYPES[raw.task])
        write_parquet(pa.table(columns), outdir / f"{split_name}.parquet")
    meta = {
        "dataset": name,
        "task": raw.task,
        "raw_file": raw_path.name,
        "raw_sha256": digest,
        "rows_raw": int(len(raw.features) + raw.dropped_rows),
        "rows_dropped": raw.dropped_rows,
        "missing_by_column": raw.missing_by_column,
        "rows": {s: len(parts[s]) for s in SPLITS},
        **about_target,
        "features": features,
        "numeric_features": [c for c in raw.numeric if c in features],
        "scaler": scaler,
        "split": split,
    }
    write_json(meta, outdir / "meta.json")
    return meta


def load_splits(directory: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read prepared splits as ``{split: (X float32 [N, D], y [N])}``; y is int64 for
    classification (0/1 or class codes) and float64 for regression."""
    directory = Path(directory)
    out = {}
    for split_name in SPLITS:
        table = pq.read_table(directory / f"{split_name}.parquet")
        target = table.column(TARGET)
        kind = np.float64 if pa.types.is_floating(target.type) else np.int64
        y = target.to_numpy().astype(kind)
        features = [c for c in table.column_names if c != TARGET]
        x = np.column_stack([table.column(c).to_numpy() for c in features]).astype(np.float32)
        out[split_name] = (x, y)
    return out


def load_task(directory: str | Path) -> Task:
    """The prepared data's task, from its meta.json: what the engine's head needs (classes
    of a multiclass target, the training split's mean/std of a regression target)."""
    path = Path(directory) / "meta.json"
    try:
        meta = json.loads(path.read_text())
        name = meta.get("task", "binary")  # data prepared before tasks existed: binary
        if name == "multiclass":
            return Task(name, n_classes=len(meta["classes"]))
        if name == "regression":
            return Task(name, target_mean=meta["target_mean"], target_std=meta["target_std"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        why = f"no key {err}" if isinstance(err, KeyError) else type(err).__name__
        raise LionSweepError(
            f"{path}: not readable as the prepared data's meta ({why}); prepare it again"
        ) from None
    if name not in TASKS:
        raise LionSweepError(f"{path}: task {name!r} is not one of {', '.join(TASKS)}")
    return Task(name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="dataset name (config key)")
    parser.add_argument("--spec", required=True, help="the dataset's config entry, as JSON")
    parser.add_argument("--split", required=True, help="the `split` config section, as JSON")
    parser.add_argument("--raw", required=True, type=Path)
    parser.add_argument(
        "--sha256", required=True, help="the raw file's expected digest (verified again)"
    )
    parser.add_argument("--outdir", required=True, type=Path)


def run(args: argparse.Namespace) -> None:
    meta = prepare(
        args.raw,
        json.loads(args.spec),
        json.loads(args.split),
        args.outdir,
        args.dataset,
        sha256=args.sha256,
    )
    balance = {k: meta[k] for k in ("positives", "class_counts", "target_mean") if k in meta}
    print(
        f"{args.dataset}: {meta['task']}, {meta['rows']} rows, {len(meta['features'])} "
        f"features, {balance}"
    )
