"""A small sweep table that follows docs/schema.md exactly, for the results tests.

Accuracies are multiples of 1/n_test (like real ones, so ties happen), with a
planted structure: accuracy rises with lr up to the middle of the grid, and the
default configuration is a little worse than the best grid point.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

METRICS = ("acc", "balanced_acc", "f1", "logloss", "auc")
SPLITS = ("train", "val", "test")
GRIDS = {
    "lion": {"lr": [1e-4, 1e-3, 1e-2], "beta1": [0.8, 0.9], "weight_decay": [0.0, 0.05, 0.1]},
    "adamw": {"lr": [1e-3, 1e-2, 1e-1], "beta1": [0.9, 0.95], "weight_decay": [0.0, 0.01, 0.1]},
}
DEFAULTS = {
    "lion": {"lr": 1e-4, "beta1": 0.9, "beta2": 0.99, "weight_decay": 0.0, "eps": np.nan},
    "adamw": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "weight_decay": 0.01, "eps": 1e-8},
}


def make_sweep(
    datasets: tuple[str, ...] = ("titanic", "spambase", "toy"),
    optimizers: tuple[str, ...] = ("lion", "adamw"),
    seeds: tuple[int, ...] = (0, 1, 2),
    epochs: int = 5,
    n_test: int = 143,
    rng_seed: int = 7,
    grids: dict[str, dict[str, list[float]]] | None = None,
) -> pd.DataFrame:
    rng = np.random.default_rng(rng_seed)
    rows = []
    for dataset, optimizer, seed in itertools.product(datasets, optimizers, seeds):
        grid = (grids or GRIDS)[optimizer]
        d = DEFAULTS[optimizer]
        points = [
            {**d, "lr": lr, "beta1": b1, "weight_decay": wd}
            for lr, b1, wd in itertools.product(grid["lr"], grid["beta1"], grid["weight_decay"])
        ]
        points.append(dict(d))
        for config_id, hp in enumerate(points):
            is_default = config_id == len(points) - 1
            lr_pos = grid["lr"].index(hp["lr"]) if hp["lr"] in grid["lr"] else 0
            base = 0.70 + 0.08 * (lr_pos == 1) + 0.02 * hp["weight_decay"] - 0.01 * is_default
            row = {
                "dataset": dataset,
                "optimizer": optimizer,
                "seed": seed,
                "config_id": config_id,
                "is_default": is_default,
                **{k: float(v) for k, v in hp.items()},
                "hidden": 16,
                "dropout": 0.2,
                "epochs": epochs,
                "batch_size": 64,
            }
            for prefix in ("", "best_"):
                for split in SPLITS:
                    acc = np.round((base + rng.normal(0, 0.02)) * n_test) / n_test
                    row[f"{prefix}{split}_acc"] = float(min(acc, 1.0))
                    row[f"{prefix}{split}_balanced_acc"] = float(acc - 0.01)
                    row[f"{prefix}{split}_f1"] = float(acc - 0.02)
                    row[f"{prefix}{split}_logloss"] = float(1.2 - acc + rng.normal(0, 0.01))
                    row[f"{prefix}{split}_auc"] = float(min(acc + 0.05, 1.0))
            row["best_epoch"] = int(rng.integers(1, epochs + 1))
            curve_acc = np.linspace(0.5, row["val_acc"], epochs).astype(np.float32)
            row["curve_val_acc"] = curve_acc
            row["curve_val_loss"] = (1.2 - curve_acc).astype(np.float32)
            row["diverged"] = False
            row["diverged_epoch"] = pd.NA
            row["device"] = "cpu"
            row["lionsweep_version"] = "0.1.0"
            row["shard"] = 0
            row["wall_time_s"] = 0.01
            rows.append(row)
    frame = pd.DataFrame(rows)
    frame["diverged_epoch"] = frame["diverged_epoch"].astype("Int64")
    return frame


def diverge(
    frame: pd.DataFrame, mask: pd.Series, epoch: int = 2, keep_metrics: bool = False
) -> None:
    """Mark rows diverged in place (metrics NaN, curves NaN from ``epoch`` on, as the engine does).

    ``keep_metrics`` leaves finite metrics behind: a trap that only the flag can catch.
    """
    frame.loc[mask, "diverged"] = True
    frame.loc[mask, "diverged_epoch"] = epoch
    if not keep_metrics:
        metric_cols = [
            c for c in frame.columns if c.split("_", 1)[0] in ("train", "val", "test", "best")
        ]
        metric_cols = [c for c in metric_cols if c != "best_epoch"]
        frame.loc[mask, metric_cols] = np.nan
    for col in ("curve_val_acc", "curve_val_loss"):
        for i in frame.index[mask]:
            curve = frame.at[i, col].copy()
            curve[epoch - 1 :] = np.nan
            frame.at[i, col] = curve


def to_parquet(frame: pd.DataFrame, path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = []
    for field in table.schema:
        if field.name.startswith("curve_"):
            field = field.with_type(pa.list_(pa.float32()))
        fields.append(field)
    pq.write_table(table.cast(pa.schema(fields)), path)


def _all_diverged(optimizer: str) -> pd.DataFrame:
    frame = make_sweep()
    diverge(frame, (frame["optimizer"] == optimizer) & ~frame["is_default"])
    return frame


def _grids(**axes: list[float]) -> dict[str, dict[str, list[float]]]:
    return {opt: {**grid, **axes} for opt, grid in GRIDS.items()}


# Degenerate sweeps every table and figure must cope with (issue 8, defect 7).
DEGENERATE = {
    "one value per axis": lambda: make_sweep(
        grids=_grids(lr=[1e-3], beta1=[0.9], weight_decay=[0.05])
    ),
    "all-zero decay": lambda: make_sweep(grids=_grids(weight_decay=[0.0])),
    "one seed": lambda: make_sweep(seeds=(3,)),
    "one dataset": lambda: make_sweep(datasets=("toy",)),
    "lion only": lambda: make_sweep(optimizers=("lion",)),
    "adamw only": lambda: make_sweep(optimizers=("adamw",)),
    "lion all diverged": lambda: _all_diverged("lion"),
    "default only": lambda: make_sweep(grids=_grids(lr=[], beta1=[], weight_decay=[])),
}
