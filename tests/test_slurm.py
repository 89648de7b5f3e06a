"""The test configuration through a real SLURM scheduler (profiles/slurm-ci).

Needs the single-node cluster of .ci/slurm-cluster.sh:

    bash .ci/slurm-cluster.sh install && bash .ci/slurm-cluster.sh start
    pytest -m slurm
    bash .ci/slurm-cluster.sh stop

Skipped when SLURM is not installed or the cluster is not up, unless
LIONSWEEP_REQUIRE_SLURM=1 (CI sets it), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import copy_workflow, snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

PARTITION = "debug"
UP_STATES = {"idle", "mixed", "allocated", "completing"}


def _cluster_problem() -> str | None:
    """Why the CI cluster cannot be used, or None when it is up."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "SLURM client tools not installed (bash .ci/slurm-cluster.sh install)"
    try:
        proc = subprocess.run(
            ["sinfo", "-h", "-p", PARTITION, "-o", "%T"],
            capture_output=True,
            text=True,
            timeout=15,
        )
    except subprocess.TimeoutExpired:
        return "sinfo timed out: slurmctld not answering (bash .ci/slurm-cluster.sh start)"
    states = {s.strip().rstrip("*~#$@+-") for s in proc.stdout.split()}
    if proc.returncode != 0 or not states & UP_STATES:
        detail = (proc.stderr.strip().splitlines() or [proc.stdout.strip() or "no node"])[-1]
        return (
            f"SLURM cluster not up, partition {PARTITION!r}: {detail} "
            "(bash .ci/slurm-cluster.sh start)"
        )
    return None


@pytest.fixture(scope="module")
def slurm_cluster() -> None:
    problem = _cluster_problem()
    if problem is None:
        return
    if os.environ.get("LIONSWEEP_REQUIRE_SLURM") == "1":
        pytest.fail(problem)
    pytest.skip(problem)


def _scontrol_job(job_id: str) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "-o", "show", "job", job_id],
        capture_output=True,
        text=True,
        timeout=15,
        check=True,
    ).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def test_test_config_runs_through_slurm(slurm_cluster, tmp_path: Path, mirror: Path) -> None:
    workdir = copy_workflow(tmp_path / "wf")
    # Titanic only keeps the run to ~1.5 min (6 training shards, 1 prepare job) while still
    # exercising every rule; drop this file to run the whole test configuration.
    (workdir / "slurm-small.yaml").write_text(yaml.safe_dump({"study": {"datasets": ["titanic"]}}))

    # conftest.snakemake puts the venv's bin/ first on PATH; sbatch --export=ALL hands that
    # environment (and LIONSWEEP_DATA_MIRROR) to the jobs, which re-run snakemake inside.
    proc = snakemake(
        workdir,
        "--profile",
        "profiles/slurm-ci",
        "--configfile",
        "config/test.yaml",
        "slurm-small.yaml",
        mirror=mirror,
        timeout=900,
    )
    log = proc.stdout + proc.stderr

    assert (workdir / "results" / "test" / "sweep.parquet").is_file()

    # Every non-local job went through sbatch ...
    submitted = dict(re.findall(r"submitted with SLURM jobid (\d+) \(log: (\S+)\)", log))
    assert submitted, f"no job was submitted through sbatch:\n{log[-3000:]}"
    shards = sorted((workdir / "results" / "test" / "shards").rglob("*.parquet"))
    train_logs = sorted((workdir / ".snakemake" / "slurm_logs" / "rule_train_shard").rglob("*.log"))
    assert len(train_logs) == len(shards) > 0
    assert (workdir / ".snakemake" / "slurm_logs" / "rule_prepare").is_dir()

    # ... and the training jobs ran as SLURM jobs that were given the (fake) GPU.
    for path in train_logs:
        job_id = path.stem
        assert job_id.isdigit() and job_id in submitted, path
        job = _scontrol_job(job_id)  # MinJobAge=600 keeps finished jobs visible
        assert job["JobState"] == "COMPLETED", job
        assert job["Partition"] == PARTITION
        assert job["Comment"].startswith("rule_train_shard"), job
        assert "gpu" in job.get("TresPerJob", "") + job.get("TresPerNode", ""), job

    # The numbers equal a local run of the same configuration.
    local = copy_workflow(tmp_path / "local")
    shutil.copy(workdir / "slurm-small.yaml", local / "slurm-small.yaml")
    snakemake(
        local,
        "--cores",
        "2",
        "--configfile",
        "config/test.yaml",
        "slurm-small.yaml",
        mirror=mirror,
    )
    volatile = ["wall_time_s", "device"]
    keys = ["dataset", "optimizer", "seed", "config_id"]
    on_slurm = pd.read_parquet(workdir / "results/test/sweep.parquet").drop(columns=volatile)
    on_local = pd.read_parquet(local / "results/test/sweep.parquet").drop(columns=volatile)
    pd.testing.assert_frame_equal(
        on_slurm.sort_values(keys).reset_index(drop=True),
        on_local.sort_values(keys).reset_index(drop=True),
        check_exact=True,
    )
