"""What a study folder holds (``results/<study>/study.json``), so that a study name
reused for another study stops instead of replacing the first one's results.

A study is its datasets, its optimizers and its grids (as one digest); seeds, training
and results options are not part of it (more seeds extend a study, a changed option
reruns what it must). The first run of a study writes the manifest; a later run whose
study differs stops with one line naming the folder and the two ways on: its own
``study.name``, or ``study.replace: true``, which removes the old study's sweep,
confirmation, tables, figures and report (grids and shards stay: Snakemake reuses
those still valid and retrains the rest). Checked when jobs are about to run (the
workflow's ``onstart``): a dry run, ``--lint`` or a resumed run writes nothing.

Kept free of heavy imports: Snakemake imports it while parsing the workflow.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from lionsweep.atomic import write_json
from lionsweep.errors import LionSweepError
from lionsweep.layout import digest

MANIFEST = "study.json"
# A study's outputs that belong to its datasets and optimizers as a whole: removed when
# the study is replaced (files, then folders).
DERIVED = ("sweep.parquet", "confirm.parquet", "report.html")
DERIVED_DIRS = ("tables", "figures")


def study_manifest(
    datasets: list[str], optimizers: list[str], grids: dict[str, Any]
) -> dict[str, Any]:
    """The manifest of a study (order-free: reordering datasets is the same study)."""
    return {
        "datasets": sorted(datasets),
        "optimizers": sorted(optimizers),
        "grids": digest(grids),
    }


def recorded(folder: str | Path) -> dict[str, Any] | None:
    """The manifest ``folder`` holds; None when it holds none (a new study)."""
    path = Path(folder) / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise LionSweepError(f"{path}: not a readable study manifest ({err})") from None


def _describe(manifest: dict[str, Any]) -> str:
    return (
        f"datasets {', '.join(manifest.get('datasets', []))}; optimizers "
        f"{', '.join(manifest.get('optimizers', []))}; grids {manifest.get('grids')}"
    )


def conflict(folder: str | Path, manifest: dict[str, Any]) -> str:
    """The one-line refusal when ``folder`` holds another study, else ""."""
    old = recorded(folder)
    if old is None or old == manifest:
        return ""
    return (
        f"{folder}/ holds another study ({_describe(old)}), not this one "
        f"({_describe(manifest)}): give this run its own study.name, or set "
        "study.replace: true to replace that study's sweep, confirmation, tables, "
        "figures and report"
    )


def claim(folder: str | Path, manifest: dict[str, Any], replace: bool) -> list[str]:
    """Make ``folder`` this study's before jobs run: refuse another study's folder (one
    line), or with ``replace`` remove its derived outputs; record the manifest.
    Returns the paths removed."""
    folder = Path(folder)
    why = conflict(folder, manifest)
    if why and not replace:
        raise LionSweepError(why)
    removed = []
    if why:
        for name in DERIVED:
            if (folder / name).exists():
                (folder / name).unlink()
                removed.append(str(folder / name))
        for name in DERIVED_DIRS:
            if (folder / name).is_dir():
                shutil.rmtree(folder / name)
                removed.append(f"{folder / name}/")
    if why or recorded(folder) is None:
        write_json(manifest, folder / MANIFEST)
    return removed
