"""Checks of the configuration that a JSON schema cannot express, and the paths built from it.

The schema (workflow/schemas/config.schema.yaml) checks types and ranges; this
module checks cross-references (every studied dataset is defined, grids exist)
so that every mistake is reported before any job runs, naming the offending key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lionsweep.errors import LionSweepError
from lionsweep.fetch import MIRROR_ENV
from lionsweep.grid import check_grid, grid_source, grid_spec


def check(config: dict[str, Any]) -> None:
    """Raise LionSweepError naming the first inconsistent key."""
    datasets = config["datasets"]
    for name in config["study"]["datasets"]:
        if name not in datasets:
            raise LionSweepError(
                f"study.datasets names {name!r}, which has no entry under `datasets` "
                f"(defined: {sorted(datasets)})"
            )
        spec = datasets[name]
        if not spec["read"]["header"] and not spec["read"].get("columns"):
            raise LionSweepError(f"datasets.{name}.read.columns is required when header is false")
    for opt in config["study"]["optimizers"]:
        if opt not in config["optimizers"]:
            raise LionSweepError(
                f"study.optimizers names {opt!r}, which has no entry under `optimizers`"
            )
        for name in config["study"]["datasets"]:
            where = f"optimizers.{opt}.{grid_source(config, name, opt)}"
            check_grid(grid_spec(config, name, opt)["grid"], where)


def export_job_environment(package_root: str, python: str, mirror: Path | None) -> None:
    """Set what every job (local, conda or SLURM) inherits from Snakemake's environment.

    - PYTHONPATH: the package beside the rules is importable without installing it;
    - PATH: jobs run `python` from the environment Snakemake itself runs in (e.g.
      .venv) even when it was not activated; `--sdm conda` puts its own env first;
    - LIONSWEEP_DATA_MIRROR: jobs read the mirror from the environment, so that
      switching between mirror and download reruns nothing (the sha256 guarantees
      the same bytes).
    """
    env = os.environ
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env["PATH"] = os.pathsep.join((str(Path(python).parent), env.get("PATH", "")))
    if mirror is not None:
        env[MIRROR_ENV] = str(mirror.resolve())
