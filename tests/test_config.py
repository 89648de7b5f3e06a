"""Invalid configuration fails before any job runs, naming the offending key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import copy_workflow, snakemake


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("wf"))


def dry_run(workdir: Path, override: dict, name: str):
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(override))
    return snakemake(workdir, "-n", "--configfile", str(path), check=False)


def test_default_and_test_configs_are_valid(workdir: Path) -> None:
    proc = snakemake(workdir, "-n", "--configfile", "config/test.yaml", check=False)
    assert proc.returncode == 0, proc.stderr
    assert "train_shard" in proc.stdout + proc.stderr


BAD = {
    "wrong_type": ({"training": {"epochs": "ten"}}, ["'ten' is not of type 'integer'", "epochs"]),
    "unknown_dataset_key": (
        {"datasets": {"titanic": {"colour": "red"}}},
        ["'colour' was unexpected", "titanic"],
    ),
    "beta1_out_of_range": (
        {"optimizers": {"lion": {"defaults": {"beta1": 1.0}}}},
        ["beta1", "1.0"],
    ),
    "lr_not_positive": ({"optimizers": {"adamw": {"grid": {"lr": [0.001, 0.0]}}}}, ["lr"]),
    "empty_grid": ({"optimizers": {"lion": {"grid": {"weight_decay": []}}}}, ["weight_decay"]),
    "bad_dataset_name": (
        {
            "datasets": {
                "My-Data": {
                    "sha256": "0" * 64,
                    "file": "x.csv",
                    "read": {"header": True},
                    "target": "y",
                    "positive": 1,
                }
            }
        },
        ["My-Data"],
    ),
    "undefined_dataset": ({"study": {"datasets": ["titanic", "iris"]}}, ["iris", "study.datasets"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_invalid_config_fails_naming_the_key(workdir: Path, case: str) -> None:
    override, needles = BAD[case]
    proc = dry_run(workdir, override, case)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for needle in needles:
        assert needle in output, f"{needle!r} not in:\n{output}"
    assert "Job stats" not in output  # failed before planning any job
