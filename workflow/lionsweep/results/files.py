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
FIGURE_FORMATS = ("png", "pdf")

Output = tuple[str, dict[str, Any] | None]


def table_outputs(outdir: str = "results/tables") -> list[Output]:
    out: list[Output] = []
    for name in TABLES:
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


def figure_stems(datasets: list[str]) -> list[tuple[str, str, str]]:
    """(stem, kind, dataset or 'all') for every figure, in drawing order."""
    stems = [(f"{kind}_{d}", kind, d) for d in datasets for kind in PER_DATASET]
    return stems + [(kind, kind, "all") for kind in GLOBAL]


def figure_outputs(datasets: list[str], outdir: str = "results/figures") -> list[Output]:
    out: list[Output] = []
    for stem, kind, dataset in figure_stems(datasets):
        for ext in FIGURE_FORMATS:
            report = None
            if ext == "png":
                report = {
                    "caption": f"../report/{kind}.rst",
                    "category": "Figures",
                    "subcategory": PER_DATASET.get(kind) or GLOBAL[kind],
                    "labels": {"figure": kind, "dataset": dataset},
                }
            out.append((f"{outdir}/{stem}.{ext}", report))
    return out
