"""Where the workflow's files live, and the digests that keep studies apart.

A study's own outputs live under ``results/<study>/`` (grids, shards, the sweep,
tables, figures, report) and its logs under ``logs/<study>/``. Raw files and
prepared data are shared between studies, so they are content-addressed: two
studies that give the same dataset name different contents get different folders
and never overwrite each other, while identical definitions share one copy.

Kept free of heavy imports: Snakemake imports it while parsing the workflow.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from typing import Any

# Dataset keys that say where a file comes from or what it is, not what it holds:
# changing them must neither move the prepared data nor rerun the sweep.
PROVENANCE_KEYS = ("url", "description")
# Dataset keys that only the results read (selection, tables): changing them reruns the
# confirmation and the tables, never the preparation or the sweep.
RESULTS_KEYS = ("primary_metric",)
SHORT = 16  # hex digits of a sha256 in folder names: 64 bits, collisions are not a concern
# A prepared dataset's splits (one `<split>.parquet` each), in this order everywhere:
# files, metric columns (lionsweep.train.heads), the engine's evaluation.
SPLITS = ("train", "val", "test")


def canonical(obj: Any) -> str:
    """Compact JSON with sorted keys: equal content, equal text (and digest)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def digest(obj: Any) -> str:
    return hashlib.sha256(canonical(obj).encode()).hexdigest()[:SHORT]


def preparing_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """What preparing a dataset depends on: its entry, less provenance and results keys."""
    return {k: v for k, v in spec.items() if k not in (*PROVENANCE_KEYS, *RESULTS_KEYS)}


def primary_metrics(config: dict[str, Any]) -> dict[str, str]:
    """``{dataset: primary_metric}`` of the studied datasets that set one (the results'
    ``primary_metrics`` setting; the others keep their task's default)."""
    datasets = config["datasets"]
    return {
        d: datasets[d]["primary_metric"]
        for d in config["study"]["datasets"]
        if datasets[d].get("primary_metric") is not None
    }


def data_digest(spec: dict[str, Any], split: dict[str, Any]) -> str:
    """Names the prepared data folder: the dataset entry (less provenance) and the split."""
    return digest({"dataset": preparing_spec(spec), "split": split})


def raw_dir(dataset: str, spec: dict[str, Any]) -> str:
    return f"results/raw/{dataset}/{spec['sha256'][:SHORT]}"


def raw_path(dataset: str, spec: dict[str, Any]) -> str:
    return f"{raw_dir(dataset, spec)}/{spec['file']}"


def data_dir(dataset: str, spec: dict[str, Any], split: dict[str, Any]) -> str:
    return f"results/data/{dataset}/{data_digest(spec, split)}"


def study_dir(study: str) -> str:
    return f"results/{study}"


def study_logs(study: str) -> str:
    return f"logs/{study}"


# The command that reruns the current study, set by the workflow for messages that jobs
# print (an environment variable, not a rule parameter: how Snakemake was called must
# not make anything out of date).
RERUN_ENV = "LIONSWEEP_RERUN"


def rerun_command(configfiles: list[str | os.PathLike[str]]) -> str:
    """``snakemake --cores all --configfile ...`` with the run's config files, relative to
    the working directory where they lie inside it, quoted for a POSIX shell."""
    files = []
    for path in configfiles:
        relative = os.path.relpath(path)
        files.append(relative if not relative.startswith("..") else os.path.abspath(path))
    return shlex.join(["snakemake", "--cores", "all", *(["--configfile", *files] if files else [])])


def download_environment(config: dict[str, Any]) -> dict[str, str]:
    """Where and how to download raw files, as environment variables for the fetch jobs.

    Not rule parameters: a raw file is named by its sha256, so two studies that give it
    different URLs or timeouts share it, and must not refetch it (a new mtime would make
    every study's prepared data, and so its sweep, out of date)."""
    env = {
        "LIONSWEEP_DOWNLOAD_TIMEOUT_S": str(config["download"]["timeout_s"]),
        "LIONSWEEP_DOWNLOAD_RETRIES": str(config["download"]["retries"]),
    }
    for name, spec in config["datasets"].items():
        env[f"LIONSWEEP_URL_{name}"] = spec.get("url") or ""
    return env
