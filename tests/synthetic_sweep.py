"""A small sweep table that follows docs/schema.md exactly, for the results tests.

Accuracies are multiples of 1/n_test (like real ones, so ties happen), with a
planted structure: accuracy rises with lr up to the middle of the grid, and the
default configuration is a little worse than the best grid point. ``task`` (one
name, or one per dataset) writes the task-era schema: ``task`` and
``primary_metric`` columns and each task's metric columns (NaN in the rows of
other tasks); regression R^2 follows the same structure, shifted down (so it can
go below 0). Without ``task`` the sweep is the binary schema from before tasks.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

METRICS = ("acc", "balanced_acc", "f1", "logloss", "auc")
TASK_METRICS = {  # as lionsweep.train.heads names them (independent copy: the sweep's contract)
    "binary": METRICS,
    "multiclass": ("acc", "balanced_acc", "f1_macro", "logloss", "auc_ovr"),
    "regression": ("rmse", "mae", "r2"),
}
PRIMARY = {"binary": "acc", "multiclass": "acc", "regression": "r2"}
SPLITS = ("train", "val", "test")
GRIDS = {
    "lion": {"lr": [1e-4, 1e-3, 1e-2], "beta1": [0.8, 0.9], "weight_decay": [0.0, 0.05, 0.1]},
    "adamw": {"lr": [1e-3, 1e-2, 1e-1], "beta1": [0.9, 0.95], "weight_decay": [0.0, 0.01, 0.1]},
    "sgd": {"lr": [1e-3, 1e-2, 1e-1], "momentum": [0.0, 0.9], "weight_decay": [0.0, 1e-3]},
    "adam": {"lr": [1e-4, 1e-3, 1e-2], "beta1": [0.9], "weight_decay": [0.0, 0.01]},
}
NAN = np.nan
DEFAULTS = {
    "lion": {"lr": 1e-4, "beta1": 0.9, "beta2": 0.99, "weight_decay": 0.0, "eps": NAN},
    "adamw": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "weight_decay": 0.01, "eps": 1e-8},
    "sgd": {
        "lr": 1e-2,
        "beta1": NAN,
        "beta2": NAN,
        "weight_decay": 0.0,
        "eps": NAN,
        "momentum": 0.0,
        "nesterov": 0.0,
    },
    "adam": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "weight_decay": 0.0, "eps": 1e-8},
}
NEW_HPARAMS = ("momentum", "nesterov")  # task-era grids: NaN where an optimizer lacks them


def _metrics(task: str, base: float, n_test: int, rng: np.random.Generator) -> dict[str, float]:
    """One split's metrics for ``task`` around the planted value ``base``."""
    acc = float(min(np.round((base + rng.normal(0, 0.02)) * n_test) / n_test, 1.0))
    if task == "regression":
        r2 = 2.0 * base - 1.3 + rng.normal(0, 0.05)  # base 0.70..0.78 -> R^2 about 0.1..0.26
        return {"r2": r2, "rmse": 1.2 - r2 + rng.normal(0, 0.01), "mae": 0.9 - r2}
    values = (acc, acc - 0.01, acc - 0.02, 1.2 - acc + rng.normal(0, 0.01), min(acc + 0.05, 1.0))
    return dict(zip(TASK_METRICS[task], values, strict=True))


def make_sweep(
    datasets: tuple[str, ...] = ("titanic", "spambase", "toy"),
    optimizers: tuple[str, ...] = ("lion", "adamw"),
    seeds: tuple[int, ...] = (0, 1, 2),
    epochs: int = 5,
    n_test: int = 143,
    rng_seed: int = 7,
    grids: dict[str, dict[str, list[float]]] | None = None,
    task: str | dict[str, str] | None = None,
) -> pd.DataFrame:
    rng = np.random.default_rng(rng_seed)
    tasks = {d: (task.get(d, "binary") if isinstance(task, dict) else task) for d in datasets}
    new_schema = task is not None or not set(optimizers) <= {"lion", "adamw"}
    all_metrics = list(
        dict.fromkeys(m for t in tasks.values() for m in TASK_METRICS[t or "binary"])
    )
    rows = []
    for dataset, optimizer, seed in itertools.product(datasets, optimizers, seeds):
        grid = (grids or GRIDS)[optimizer]
        d = DEFAULTS[optimizer]
        if new_schema:
            d = {**{h: NAN for h in NEW_HPARAMS}, **d}
        points = [
            {**d, **dict(zip(grid, values, strict=True))}
            for values in itertools.product(*grid.values())
        ]
        points.append(dict(d))
        t = tasks[dataset] or "binary"
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
            if tasks[dataset] is not None:
                row |= {"task": t, "primary_metric": PRIMARY[t]}
            for prefix in ("", "best_"):
                for split in SPLITS:
                    values = _metrics(t, base, n_test, rng)
                    for m in all_metrics:
                        row[f"{prefix}{split}_{m}"] = float(values.get(m, NAN))
            row["best_epoch"] = int(rng.integers(1, epochs + 1))
            primary = PRIMARY[t]
            curve = np.linspace(0.0 if t == "regression" else 0.5, row[f"val_{primary}"], epochs)
            row[f"curve_val_{primary}"] = curve.astype(np.float32)
            row["curve_val_loss"] = (1.2 - curve).astype(np.float32)
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
    for col in [c for c in frame.columns if c.startswith("curve_")]:
        for i in frame.index[mask]:
            if not isinstance(frame.at[i, col], np.ndarray):  # another task's curve: absent
                continue
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
