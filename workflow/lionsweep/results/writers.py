"""Writing result tables: display strings, captions, and the four file formats.

Every table is written as CSV (full precision, for reuse), Markdown (README,
reviews; through ``DataFrame.to_markdown``), LaTeX (papers) and HTML (the
Snakemake report shows HTML inline). The CSV keeps numbers; the other three show
them rounded, "n/a" for missing, with the table's caption: what the intervals are
(clipped to the metric's range), rows dropped while preparing the data, and why
a table or row is n/a.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lionsweep.atomic import write_atomic
from lionsweep.errors import LionSweepError
from lionsweep.layout import SPLITS
from lionsweep.optim.hparams import grid_columns
from lionsweep.results.files import TABLE_FORMATS

# Printed to 3 significant digits: every registry hyperparameter and training axis.
HP_COLUMNS = grid_columns()
META_KEYS = ("dataset", "rows_raw", "rows_dropped", "rows", "positives")
# Only binary datasets count positives; a multiclass meta has class_counts, a regression
# one target_mean: there positives are n/a, not missing.
NOT_BINARY = ("class_counts", "target_mean")


def display(frame: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Strings for humans: hyperparameters to 3 significant digits, p-values to 3
    decimals, the rest to ``digits`` decimals; missing values as "n/a"."""

    def fmt(col: str) -> Callable[[Any], str]:
        if col.removeprefix("best_") in HP_COLUMNS or col.endswith("lr_x_wd"):
            spec = "{:.3g}"
        elif col.startswith("p_"):
            spec = "{:.3f}"
        elif col.endswith("_points"):
            spec = "{:+.2f}"
        else:
            spec = f"{{:.{digits}f}}"

        def one(v: Any) -> str:
            if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
                return "n/a"
            if isinstance(v, bool | np.bool_):
                return "yes" if v else "no"
            if isinstance(v, float | np.floating):
                return spec.format(float(v))
            return str(v)

        return one

    return pd.DataFrame({c: [fmt(c)(v) for v in frame[c]] for c in frame.columns}, dtype=object)


def markdown(shown: pd.DataFrame, caption: str = "") -> str:
    """A GitHub pipe table of display strings, then ``Table: caption`` (pandoc's syntax).

    ``disable_numparse`` keeps tabulate from re-formatting "0.8000" as a number.
    """
    cells = shown.apply(lambda col: col.map(lambda v: str(v).replace("|", "\\|")))
    text = cells.to_markdown(index=False, disable_numparse=True) + "\n"
    return text + (f"\nTable: {caption}\n" if caption else "")


def _html(shown: pd.DataFrame, name: str, caption: str) -> str:
    table = shown.to_html(index=False, escape=True, border=0)
    if caption:
        table = table.replace(">\n", f">\n  <caption>{html.escape(caption)}</caption>\n", 1)
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{name}</title>"
        "<style>table{border-collapse:collapse;font:13px sans-serif}"
        "caption{caption-side:bottom;text-align:left;padding-top:4px}"
        "td,th{border:1px solid #bbb;padding:3px 6px;text-align:right}</style></head><body>\n"
        f"{table}\n</body></html>\n"
    )


# Every character LaTeX reads as markup, as text, replaced in one pass (so the braces an
# escape adds are never escaped again); < > | too: outside math, LaTeX's default font
# encoding prints them as other glyphs.
LATEX_TEXT = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "^": r"\textasciicircum{}",
    "_": r"\_",
    "%": r"\%",
    "~": r"\textasciitilde{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}
LATEX_SPECIAL = re.compile("|".join(map(re.escape, LATEX_TEXT)))


def latex_escape(text: str) -> str:
    """``text`` as LaTeX prints it literally (one pass: no escape is escaped again)."""
    return LATEX_SPECIAL.sub(lambda m: LATEX_TEXT[m.group()], str(text))


def latex(shown: pd.DataFrame, name: str, caption: str = "") -> str:
    """A booktabs ``table`` float; cells, column names and caption escaped alike here
    (pandas' own escaping leaves the caption raw: a "95%" commented out its brace)."""
    cells = shown.apply(lambda col: col.map(latex_escape))
    cells.columns = [latex_escape(c) for c in shown.columns]
    return cells.to_latex(
        index=False,
        escape=False,
        column_format="l" * max(1, len(shown.columns)),
        caption=latex_escape(caption) or None,
        label=f"tab:{name}",
    )


def write_table(frame: pd.DataFrame, name: str, outdir: Path, caption: str = "") -> list[Path]:
    """Write ``name`` in every format, atomically; returns the paths."""
    shown = display(frame)
    texts = {
        "csv": frame.to_csv(index=False, float_format="%.10g", na_rep="NaN"),
        "md": markdown(shown, caption),
        "tex": latex(shown, name, caption),
        "html": _html(shown, name, caption),
    }
    paths = []
    for ext in TABLE_FORMATS:
        text = texts[ext]
        path = outdir / f"{name}.{ext}"
        write_atomic(path, lambda tmp, text=text: tmp.write_text(text))
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------- meta.json


def _meta_row(path: Path) -> dict[str, Any]:
    """One prepared dataset's counts from its meta.json; a bad file is named, with its key."""
    try:
        meta = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LionSweepError(f"{path}: not a readable meta.json ({err})") from None
    if not isinstance(meta, dict):
        raise LionSweepError(f"{path}: meta.json must hold a JSON object")
    optional = ("positives",) if any(k in meta for k in NOT_BINARY) else ()
    missing = [k for k in META_KEYS if k not in meta and k not in optional]
    if missing:
        raise LionSweepError(f"{path}: meta.json lacks {missing} (prepare writes them)")
    row: dict[str, Any] = {"dataset": meta["dataset"]}
    for key in ("rows_raw", "rows_dropped"):
        row[key] = meta[key]
    for key in ("rows", "positives"):
        for split in SPLITS:
            if key not in meta:  # positives of a multiclass or regression dataset: n/a
                continue
            value = meta[key].get(split) if isinstance(meta[key], dict) else None
            row[f"{key}_{split}"] = value
    for key, value in row.items():
        if key != "dataset" and (isinstance(value, bool) or not isinstance(value, int)):
            raise LionSweepError(f"{path}: {key} must be a whole number, got {value!r}")
        if key != "dataset" and value < 0:
            raise LionSweepError(f"{path}: {key} must not be negative, got {value}")
    if not isinstance(row["dataset"], str):
        raise LionSweepError(f"{path}: dataset must be a name, got {row['dataset']!r}")
    return {**row, **_duplicates_row(meta.get("duplicates"), path)}


def _duplicates_row(about: Any, path: Path) -> dict[str, Any]:
    """meta.json's ``duplicates`` (prepare's split.duplicates report) as table cells;
    n/a for data prepared before it existed."""
    if about is None:
        return {}
    if not isinstance(about, dict) or not {"handling", "rows", "groups"} <= set(about):
        raise LionSweepError(f"{path}: duplicates must hold handling, rows and groups")
    return {"duplicates": about["handling"], "duplicate_rows": about["rows"],
            "duplicate_groups": about["groups"]}  # fmt: skip


def datasets_table(paths: Sequence[Path] | None, order: Sequence[str] | None) -> pd.DataFrame:
    """The `datasets` table from prepared meta.json files (empty without ``--meta``).

    Only the reported datasets are kept (``order``, when given), in that order;
    two files for one dataset are an error (which one is right?).
    """
    columns = ["dataset", "rows_raw", "rows_dropped"]
    columns += [f"{k}_{s}" for k in ("rows", "positives") for s in SPLITS]
    counts = [*columns[1:], "duplicate_rows", "duplicate_groups"]
    columns += ["duplicates", "duplicate_rows", "duplicate_groups"]
    rows = [_meta_row(p) for p in paths or ()]
    table = pd.DataFrame(rows, columns=columns)
    table[counts] = table[counts].astype("Int64")  # counts; NA: not binary, or older meta
    twice = table["dataset"][table["dataset"].duplicated()].tolist()
    if twice:
        raise LionSweepError(f"--meta: several meta.json files for dataset {twice[0]!r}")
    if order:
        rank = {d: i for i, d in enumerate(order)}
        table = table[table["dataset"].isin(rank)]
        table = table.iloc[np.argsort(table["dataset"].map(rank).to_numpy(), kind="stable")]
    return table.reset_index(drop=True)


def dropped_note(datasets: pd.DataFrame) -> str:
    """``"Rows dropped while preparing: titanic 179 of 891, ..."``, or "" without meta."""
    if datasets.empty:
        return ""
    parts = [f"{r.dataset} {r.rows_dropped} of {r.rows_raw}" for r in datasets.itertuples()]
    return "Rows dropped while preparing the data (missing values): " + ", ".join(parts) + "."
