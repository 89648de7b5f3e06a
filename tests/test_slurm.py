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
SUBMITTED_ARRAY = r"Submitted array job with Snakemake IDs \S+ and SLURM job ID (\d+)"


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


def _scontrol_jobs(job_id: str) -> list[dict[str, str]]:
    """scontrol's record of a job: one per task for an array job (MinJobAge=600 keeps
    finished jobs visible; there is no sacct without slurmdbd)."""
    out = subprocess.run(
        ["scontrol", "-o", "show", "job", job_id],
        capture_output=True,
        text=True,
        timeout=15,
        check=True,
    ).stdout
    return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in out.splitlines() if line.strip()]


def _sbatch_calls(log: str) -> tuple[list[str], list[str]]:
    """The sbatch command lines the plugin ran (printed with --verbose): arrays, single jobs."""
    arrays = re.findall(r"Submitting array job with sbatch call: (.*)", log)
    singles = re.findall(r"^sbatch call: (.*)", log, flags=re.M)
    return arrays, singles


def test_test_config_runs_through_slurm(slurm_cluster, tmp_path: Path, mirror: Path) -> None:
    workdir = copy_workflow(tmp_path / "wf")
    # Titanic only keeps the run to ~1.5 min (4 training shards, 1 prepare job) while still
    # exercising every rule; drop this file to run the whole test configuration.
    (workdir / "slurm-small.yaml").write_text(yaml.safe_dump({"study": {"datasets": ["titanic"]}}))

    # conftest.snakemake puts the venv's bin/ first on PATH; sbatch --export=ALL hands that
    # environment (and LIONSWEEP_DATA_MIRROR) to the jobs, which re-run snakemake inside.
    # --verbose prints each sbatch command line (the evidence for --array and --requeue).
    proc = snakemake(
        workdir,
        "--profile",
        "profiles/slurm-ci",
        "--configfile",
        "config/test.yaml",
        "slurm-small.yaml",
        "--verbose",
        mirror=mirror,
        timeout=900,
    )
    log = proc.stdout + proc.stderr

    assert (workdir / "results" / "test" / "sweep.parquet").is_file()
    shards = sorted((workdir / "results" / "test" / "shards").rglob("*.parquet"))
    assert len(shards) > 1, shards  # 2 optimizers x 2 seeds, one shard each

    # The training shards went out as ONE array job (profile: slurm-array-jobs), the
    # prepare job as a job of its own; every sbatch call asks for --requeue.
    arrays, singles = _sbatch_calls(log)
    assert len(arrays) == 1, f"expected one array submission:\n{log[-3000:]}"
    assert f"--array=1-{len(shards)}" in arrays[0], arrays[0]
    assert singles and all("rule_train_shard" not in call for call in singles), singles
    assert all(" --requeue" in call for call in arrays + singles), arrays + singles
    array_ids = re.findall(SUBMITTED_ARRAY, log)
    assert len(array_ids) == 1, log[-3000:]

    # ... and ran as SLURM array tasks 1..6 of that job, each given the (fake) GPU and
    # requeueable, each with its log in .snakemake/slurm_logs/rule_train_shard/<job>_<task>.log.
    tasks = _scontrol_jobs(array_ids[0])
    assert sorted(int(t["ArrayTaskId"]) for t in tasks) == list(range(1, len(shards) + 1))
    for task in tasks:
        assert task["ArrayJobId"] == array_ids[0], task
        assert task["JobState"] == "COMPLETED", task
        assert task["Partition"] == PARTITION
        assert task["Requeue"] == "1", task
        assert task["Comment"].startswith("rule_train_shard"), task
        assert "gpu" in task.get("TresPerJob", "") + task.get("TresPerNode", ""), task
    slurm_logs = workdir / ".snakemake" / "slurm_logs"
    logs = sorted(p.name for p in (slurm_logs / "rule_train_shard").glob("*.log"))
    assert logs == sorted(f"{array_ids[0]}_{i}.log" for i in range(1, len(shards) + 1))
    assert (slurm_logs / "rule_prepare").is_dir()

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
