"""Turn a validated raw dataset into model-ready train/val/test Parquet files.

Order of operations matters for honesty: one-hot levels come from the whole file
(they carry no label information), the split is stratified and seeded, and the
scaler is fitted on the training split only, so nothing of val/test leaks in.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lionsweep.atomic import write_json, write_parquet
from lionsweep.data.datasets import RawData, load_raw
from lionsweep.data.fetch import sha256_of
from lionsweep.data.splits import (  # noqa: F401  (split_indices, split_sizes: re-exported)
    split_indices,
    split_rows,
    split_sizes,
)
from lionsweep.errors import LionSweepError
from lionsweep.layout import SPLITS
from lionsweep.train.tasks import TASKS, Task

TARGET = "target"


def encode(raw: RawData, name: str = "data") -> pd.DataFrame:
    """Numeric columns as float, categoricals one-hot (sorted levels); drop constant columns.

    A feature's encoded name must be its own: not the label's column (``target``) and
    not another feature's (numeric ``a=b`` beside categorical ``a`` with level ``b``),
    else one line naming the columns.
    """
    parts = [raw.features[raw.numeric].astype("float64")]
    source = {c: c for c in raw.numeric}
    for column in raw.categorical:
        values = raw.features[column].astype(str)
        for level in sorted(values.unique()):
            encoded_name = f"{column}={level}"
            if encoded_name in source:
                raise LionSweepError(
                    f"{name}: feature columns {source[encoded_name]!r} and {column!r} both "
                    f"encode to the column {encoded_name!r} (one-hot names are "
                    "column=value): rename one of them in the file"
                )
            source[encoded_name] = column
            parts.append((values == level).astype("float64").rename(encoded_name))
    if TARGET in source:
        raise LionSweepError(
            f"{name}: feature column {source[TARGET]!r} would be stored as {TARGET!r}, the "
            "prepared data's name for the label: rename it in the file (or in read.columns)"
        )
    encoded = pd.concat(parts, axis=1)
    constant = [c for c in encoded.columns if encoded[c].nunique(dropna=False) <= 1]
    encoded = encoded.drop(columns=constant)
    if encoded.columns.empty:
        raise LionSweepError(f"{name}: no feature column varies: every feature is constant")
    return encoded


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


def dropped_warning(raw: RawData, spec: dict[str, Any], name: str) -> str | None:
    """When dropna removed more than ``max_dropped_fraction`` of the rows (the workflow
    passes the schema default; a spec without it reports any drop)."""
    total = len(raw.features) + raw.dropped_rows
    limit = spec.get("max_dropped_fraction") or 0.0
    if raw.dropped_rows == 0 or raw.dropped_rows <= limit * total:
        return None
    counts = ", ".join(f"{c} {n}" for c, n in raw.missing_by_column.items())
    return (
        f"{name}: dropped {raw.dropped_rows} of {total} rows "
        f"({raw.dropped_rows / total:.1%}, more than max_dropped_fraction {limit:g}) with a "
        f"missing value; rows missing per column: {counts}"
    )


def duplicates_note(about: dict[str, Any], name: str) -> str:
    """One line for the log: how many duplicate feature rows, and what was done."""
    done = {
        "group": "each group lies in one split",
        "drop": f"dropped {about['removed']} row(s), kept each group's first",
        "keep": "kept: a group may lie in several splits (test metrics may be optimistic)",
    }[about["handling"]]
    conflicting = about["conflicting_groups"]
    return (
        f"{name}: {about['rows']} row(s) repeat another row's features ({about['groups']} "
        f"group(s), {conflicting} with differing targets); split.duplicates: "
        f"{about['handling']}: {done}"
    )


def class_balance(
    y: np.ndarray, raw: RawData, spec: dict[str, Any], name: str
) -> tuple[dict[str, Any], str | None]:
    """The majority class and its share of the rows (classification), and a warning when
    the share exceeds ``max_majority_share`` (the workflow passes the schema default; a
    spec without it never warns): accuracy then flatters a majority-class predictor."""
    if raw.task == "regression":
        return {}, None
    counts = np.bincount(y)
    top = int(counts.argmax())
    label = raw.classes[top] if raw.classes else str(top)
    share = float(counts[top] / len(y))
    about = {"majority_class": label, "majority_share": share}
    limit = spec.get("max_majority_share")
    if limit is None or share <= limit:
        return about, None
    return about, (
        f"{name}: class {label!r} holds {share:.1%} of the rows (more than max_majority_share "
        f"{limit:g}): always predicting it scores {share:.3f} accuracy; consider "
        f"datasets.{name}.primary_metric: balanced_acc"
    )


# Parquet type of the stored target, per task.
TARGET_TYPES = {"binary": pa.int8(), "multiclass": pa.int64(), "regression": pa.float64()}


def model_matrix(
    x: pd.DataFrame, raw: RawData, spec: dict[str, Any], train: np.ndarray, name: str
) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """The encoded features ``x`` (standardized, from training rows) as float32, their
    names and the scaler; an overflowing matrix is refused here, not in training."""
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
    values = x.to_numpy(dtype=np.float32)
    finite = np.isfinite(values).all(axis=0)
    if not finite.all():
        raise LionSweepError(
            f"{name}: column {features[int(np.argmin(finite))]!r} has values too large for "
            "float32 (or to standardize): rescale it in the file"
        )
    return values, features, scaler


def target_meta(
    raw: RawData, y: np.ndarray, parts: dict[str, np.ndarray], name: str
) -> dict[str, Any]:
    """What meta.json says about the target ``y`` (the rows kept): class balance per
    split, the class labels (multiclass), or the training split's mean and std
    (regression: the engine standardizes the target with them)."""
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
    Warnings go to stderr (the prepare log and the console) and to meta.json.
    """
    digest = verify_digest(raw_path, sha256, name)
    raw = load_raw(raw_path, spec, name)
    x = encode(raw, name)
    try:
        x, y, parts, duplicates = split_rows(
            x, raw.target, split, raw.task != "regression", raw.classes
        )
    except LionSweepError as err:
        raise LionSweepError(f"{name}: {err}") from None
    values, features, scaler = model_matrix(x, raw, spec, parts["train"], name)
    about_target = target_meta(raw, y, parts, name)
    balance, imbalanced = class_balance(y, raw, spec, name)
    keep = duplicates["handling"] == "keep" and duplicates["rows"]
    leaky = duplicates_note(duplicates, name) if keep else None
    warnings = [w for w in (dropped_warning(raw, spec, name), leaky, imbalanced) if w]
    for warning in warnings:
        print(f"lionsweep prepare: warning: {warning}", file=sys.stderr)
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
        "duplicates": duplicates,
        "rows": {s: len(parts[s]) for s in SPLITS},
        **about_target,
        **balance,
        "features": features,
        "numeric_features": [c for c in raw.numeric if c in features],
        "scaler": scaler,
        "split": split,
        "warnings": warnings,
    }
    write_json(meta, outdir / "meta.json")
    return meta


def load_splits(directory: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read prepared splits as ``{split: (X float32 [N, D], y [N])}``; y is int64 for
    classification (0/1 or class codes) and float64 for regression."""
    directory = Path(directory)
    out = {}
    for split_name in SPLITS:
        out[split_name] = _read_split(directory / f"{split_name}.parquet")
    return out


def _read_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One split, X filled column by column into float32: the file's float64 columns
    are never all in memory at once (lionsweep.train.memory.data_bytes counts one)."""
    file = pq.ParquetFile(path)
    target = file.read(columns=[TARGET]).column(TARGET)
    kind = np.float64 if pa.types.is_floating(target.type) else np.int64
    y = target.to_numpy().astype(kind)
    features = [c for c in file.schema_arrow.names if c != TARGET]
    x = np.empty((len(y), len(features)), dtype=np.float32)
    for j, name in enumerate(features):
        x[:, j] = file.read(columns=[name]).column(name).to_numpy()
    return x, y


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
    print(duplicates_note(meta["duplicates"], args.dataset))
