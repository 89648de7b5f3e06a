"""Folder names that keep studies apart: content-addressed raw and prepared data."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from lionsweep import layout


def test_prepared_data_digest_is_what_preparing_depends_on(config: dict) -> None:
    spec, split = config["datasets"]["titanic"], config["split"]
    digest = layout.data_digest(spec, split)
    # independent reference: sha256 of the canonical JSON, first 16 hex digits
    text = json.dumps(
        {
            "dataset": {k: v for k, v in spec.items() if k not in ("url", "description")},
            "split": split,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    assert digest == hashlib.sha256(text.encode()).hexdigest()[:16]
    reordered = dict(reversed(list(spec.items())))
    moved = {**spec, "url": "https://example.org/t.csv", "description": "elsewhere"}
    assert layout.data_digest(reordered, split) == layout.data_digest(moved, split) == digest
    assert layout.data_digest({**spec, "dropna": False}, split) != digest
    assert layout.data_digest(spec, {**split, "seed": 7}) != digest
    assert layout.data_dir("titanic", spec, split) == f"results/data/titanic/{digest}"
    assert layout.raw_path("titanic", spec) == "results/raw/titanic/4a437fde05fe5264/titanic.csv"


def test_rerun_command_quotes_and_relativizes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    inside = tmp_path / "config" / "my study.yaml"
    outside = tmp_path.parent / "other.yaml"
    assert layout.rerun_command([]) == "snakemake --cores all"
    assert layout.rerun_command([inside, outside]) == (
        f"snakemake --cores all --configfile 'config/my study.yaml' {os.path.abspath(outside)}"
    )


def test_download_settings_travel_in_the_environment(config: dict) -> None:
    env = layout.download_environment(config)
    assert env["LIONSWEEP_URL_titanic"] == config["datasets"]["titanic"]["url"]
    assert env["LIONSWEEP_DOWNLOAD_TIMEOUT_S"] == "60" and env["LIONSWEEP_DOWNLOAD_RETRIES"] == "3"
