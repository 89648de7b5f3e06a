"""The result files, named once: the rules (results.smk) and the writers both use these.

Kept free of heavy imports because Snakemake imports it while parsing the workflow.
Each entry is ``(path, report)``: ``report`` holds the keyword arguments of
Snakemake's ``report()`` for the file the HTML report shows, else None.
"""

from __future__ import annotations

from typing import Any

TABLES = (
    "datasets",
    "paper_table",
    "paper_table_seeds",
    "honest_table",
    "lion_vs_adamw",
    "comparison",
    "best_configs",
    "decay_product",
    "confirmed",
    "claims_check",
)
# The field's tables (lionsweep.results.field): written when the study sweeps an optimizer
# beyond the paper's pair, so the paper's own study keeps exactly its outputs.
PAPER_PAIR = ("lion", "adamw")
FIELD_TABLES = ("field_ranks", "field_vs_baseline", "field_wtl")
# The report shows HTML inline; CSV/Markdown/LaTeX are the files to reuse.
TABLE_FORMATS = ("html", "csv", "md", "tex")
# Figure stems -> report subcategory. Per-dataset figures are `{stem}_{dataset}`.
PER_DATASET = {
    "heatmap": "Accuracy heatmaps",
    "marginal": "Marginal effects",
    "curves": "Learning curves",
}
GLOBAL = {
    "sensitivity": "Sensitivity",
    "importance": "Importance",
    "effective_decay": "Effective decay",
}
# The field's figure (lionsweep.results.field.plot_ranks), on the same condition as its tables.
FIELD_FIGURES = {"ranks": "Optimizer ranks"}
FIGURE_FORMATS = ("png", "pdf")
# The budget curve (lionsweep.results.budget): one table and one figure, written by the
# `budget` rule when `results.budget_curve` names sweeps to read.
BUDGET = "budget_curve"

Output = tuple[str, dict[str, Any] | None]


def is_field(optimizers: list[str] | tuple[str, ...] | None) -> bool:
    """Does the study sweep an optimizer beyond the paper's pair (then: the field outputs)?"""
    return bool(set(optimizers or ()) - set(PAPER_PAIR))


def table_names(optimizers: list[str] | tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The tables a study with ``optimizers`` writes, in order."""
    return TABLES + (FIELD_TABLES if is_field(optimizers) else ())


def table_outputs(
    outdir: str = "results/tables", optimizers: list[str] | None = None
) -> list[Output]:
    out: list[Output] = []
    for name in table_names(optimizers):
        for ext in TABLE_FORMATS:
            report = None
            if ext == "html":
                report = {
                    "caption": f"../report/{name}.rst",
                    "category": "Tables",
                    "labels": {"table": name},
                }
            out.append((f"{outdir}/{name}.{ext}", report))
    return out


def figure_stems(
    datasets: list[str], optimizers: list[str] | None = None
) -> list[tuple[str, str, str]]:
    """(stem, kind, dataset or 'all') for every figure, in drawing order."""
    stems = [(f"{kind}_{d}", kind, d) for d in datasets for kind in PER_DATASET]
    field = FIELD_FIGURES if is_field(optimizers) else {}
    return stems + [(kind, kind, "all") for kind in (*GLOBAL, *field)]


def figure_outputs(
    datasets: list[str], outdir: str = "results/figures", optimizers: list[str] | None = None
) -> list[Output]:
    out: list[Output] = []
    for stem, kind, dataset in figure_stems(datasets, optimizers):
        for ext in FIGURE_FORMATS:
            report = None
            if ext == "png":
                report = {
                    "caption": f"../report/{kind}.rst",
                    "category": "Figures",
                    "subcategory": {**PER_DATASET, **GLOBAL, **FIELD_FIGURES}[kind],
                    "labels": {"figure": kind, "dataset": dataset},
                }
            out.append((f"{outdir}/{stem}.{ext}", report))
    return out


def budget_outputs(
    entries: list[dict[str, Any]] | None, results: str = "results/paper"
) -> list[Output]:
    """The budget curve's table and figure files; none when ``results.budget_curve`` is off."""
    if not entries:
        return []
    out: list[Output] = []
    for ext in TABLE_FORMATS:
        report = None
        if ext == "html":
            report = {"caption": f"../report/{BUDGET}.rst", "category": "Tables",
                      "labels": {"table": BUDGET}}  # fmt: skip
        out.append((f"{results}/tables/{BUDGET}.{ext}", report))
    for ext in FIGURE_FORMATS:
        report = None
        if ext == "png":
            report = {"caption": f"../report/{BUDGET}.rst", "category": "Figures",
                      "subcategory": "Budget curve",
                      "labels": {"figure": BUDGET, "dataset": "all"}}  # fmt: skip
        out.append((f"{results}/figures/{BUDGET}.{ext}", report))
    return out
