"""Memory requests from the inputs (issue 19): a training job's estimate bounds its
measured peak, a grant too small for the data and one model is refused in one line
before the data is read, and the rules' mem_mb come from meta.json and the sweep's rows."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_workflow import TEST_CONFIG, merged_test_config

from conftest import copy_workflow, snakemake
from lionsweep import layout
from lionsweep.config import validate
from lionsweep.errors import LionSweepError
from lionsweep.sweep import shards as sweep
from lionsweep.sweep.grid import expand, grid_size, grid_spec
from lionsweep.train import memory

SETTINGS = {
    "hidden": 16,
    "dropout": 0.2,
    "epochs": 1,
    "batch_size": 4096,
    "dtype": "float32",
    "device": "cpu",
    "memory_budget_mb": 64,
}
SPEC = {"optimizer": "lion", "defaults": {}, "grid": [{"param": "lr", "values": [1e-3]}]}


def write_prepared(folder: Path, rows: int, features: int, name: str = "synthetic") -> dict:
    """A binary dataset as `prepare` writes it: float64 feature columns, an int8 target
    per split, and meta.json (rows per split, features)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    counts = {"train": rows * 7 // 10, "val": rows * 15 // 100}
    counts["test"] = rows - counts["train"] - counts["val"]
    names = [f"x{j}" for j in range(features)]
    for split, n in counts.items():
        x = rng.standard_normal((n, features))
        columns = {f: pa.array(x[:, j]) for j, f in enumerate(names)}
        columns["target"] = pa.array((x[:, 0] > 0).astype(np.int8), type=pa.int8())
        pq.write_table(pa.table(columns), folder / f"{split}.parquet")
    meta = {"dataset": name, "task": "binary", "rows": counts, "features": names}
    (folder / "meta.json").write_text(json.dumps(meta))
    return meta


PEAK = """
import sys
from pathlib import Path
import lionsweep.train.engine
from lionsweep.sweep.grid import expand
from lionsweep.sweep.shards import train_configs
spec, settings = {spec!r}, {settings!r}
Path("/proc/self/clear_refs").write_text("5")  # the peak from here on: not the imports'
train_configs(expand(spec), Path(sys.argv[1]), ("synthetic", "lion", 0, 0), settings, 1,
              progress=False)
status = Path("/proc/self/status").read_text()
print(int(status.split("VmHWM:")[1].split()[0]) // 1024)
"""


def peak_mb(data_dir: Path) -> int:
    """Peak RSS (MiB) of a fresh process training the two-configuration grid on it, after
    its imports (whose transient peak would hide the data's on modest sizes)."""
    code = PEAK.format(spec=SPEC, settings=SETTINGS)
    done = subprocess.run(
        [sys.executable, "-c", code, str(data_dir)], capture_output=True, text=True, check=True
    )
    return int(done.stdout.split()[-1])


def estimate_mb(meta: dict) -> int:
    """The whole job's estimate in MB, for the grid's two models."""
    data, model = memory.training_need(meta, SETTINGS, "lion")
    return memory.BASE_MB + data + 2 * model


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's VmHWM reset")
def test_the_estimate_bounds_the_peak_rss_of_a_training_job(tmp_path):
    """On two sizes: the estimate is above the measured peak and within a factor of it
    (its base also covers the imports' transient peak and CUDA's libraries), and what
    the job grows by from one size to the other is what the estimate grows by (the
    float64 check copy, the ones column and all-columns-at-once loading made it 3x)."""
    small = write_prepared(tmp_path / "small", 20_000, 40)
    large = write_prepared(tmp_path / "large", 300_000, 40)
    peaks = [peak_mb(tmp_path / "small"), peak_mb(tmp_path / "large")]
    estimates = [estimate_mb(small), estimate_mb(large)]
    for peak, estimate in zip(peaks, estimates, strict=True):
        assert peak <= estimate <= 4 * peak, (peaks, estimates)
    grown, counted = peaks[1] - peaks[0], estimates[1] - estimates[0]
    assert counted / 3 <= grown <= 1.25 * counted + 16, (grown, counted)


def test_a_grant_without_room_for_the_data_and_one_model_is_refused_in_one_line(
    tmp_path, monkeypatch
):
    meta = write_prepared(tmp_path / "data", 2_000, 5, name="toosmall")
    data, model = memory.training_need(meta, SETTINGS, "lion")

    def no_read(*args):
        raise AssertionError("the data was read before the grant was checked")

    monkeypatch.setattr(sweep, "load_splits", no_read)
    granted = memory.BASE_MB + data + model - 1
    with pytest.raises(LionSweepError) as err:
        sweep.train_configs(
            expand(SPEC), tmp_path / "data", ("toosmall", "lion", 0, 0), SETTINGS, 1,
            progress=False, job_mem_mb=granted,
        )  # fmt: skip
    message = str(err.value)
    assert "\n" not in message
    need = memory.BASE_MB + data + model
    for part in ("'toosmall'", f"needs {need} MB", f"granted {granted} MB", memory.MEMORY_KEY):
        assert part in message
    # one MB more fits: the models get what is left after the base and the data
    assert memory.models_budget_mb(meta, SETTINGS, "lion", granted + 1) == model


def test_the_request_holds_base_data_and_the_models_budget():
    meta = {"dataset": "big", "rows": {"train": 700_000, "val": 150_000, "test": 150_000}}
    meta["features"] = [f"x{j}" for j in range(100)]
    request = memory.train_request_mb(meta, {**SETTINGS, "memory_budget_mb": 2048}, "lion")
    data, _ = memory.training_need(meta, SETTINGS, "lion")
    assert data >= 1e6 * 100 * 4 / 2**20  # X in float32 at least
    assert request == memory.BASE_MB + data + 2048
    assert memory.models_budget_mb(meta, SETTINGS, "lion", request) == 2048


def planned_mem_mb(dry_run: str) -> list[tuple[str, str, int]]:
    """(rule, wildcards, mem_mb) of each job a dry run lists."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) )", dry_run):
        rule, mem = re.match(r"\w+ (\w+):", block), re.search(r"mem_mb=(\d+)", block)
        wildcards = re.search(r"wildcards: ([^\n]*)", block)
        if rule and mem:
            jobs.append((rule[1], wildcards[1] if wildcards else "", int(mem[1])))
    return jobs


def test_rules_ask_for_memory_from_the_data_and_the_sweep(tmp_path, mirror):
    """A dry run: train_shard's mem_mb from its dataset's meta.json (the one prepared
    here is 10^6 x 100), confirm's from the largest plus its selection, the results rules'
    from the largest grid's rows (they hold a grid at a time)."""
    workdir = copy_workflow(tmp_path / "wf")
    cfg = merged_test_config(workdir)
    validate(cfg, workdir / "workflow" / "schemas" / "config.schema.yaml")  # + defaults
    big = "spambase"
    folder = workdir / layout.data_dir(big, cfg["datasets"][big], cfg["split"])
    meta = {"dataset": big, "rows": {"train": 700_000, "val": 150_000, "test": 150_000}}
    meta["features"] = [f"x{j}" for j in range(100)]
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps(meta))
    out = snakemake(workdir, "-n", *TEST_CONFIG, mirror=mirror).stdout
    mem: dict[str, set[int]] = {}
    for rule, wildcards, value in planned_mem_mb(out):
        key = f"{rule}:{big}" if rule == "train_shard" and f"dataset={big}" in wildcards else rule
        mem.setdefault(key, set()).add(int(value))
    settings = {**cfg["model"], **cfg["training"]}
    expected = max(memory.train_request_mb(meta, settings, o) for o in cfg["study"]["optimizers"])
    assert mem[f"train_shard:{big}"] == {expected}  # one request for a dataset's shards
    assert expected > max(mem["train_shard"])  # the other datasets: not prepared yet
    rows = len(cfg["sweep"]["seeds"]) * max(  # the largest grid's rows
        grid_size(grid_spec(cfg, d, o))
        for d in cfg["study"]["datasets"]
        for o in cfg["study"]["optimizers"]
    )
    assert mem["confirm"] == {expected + memory.selection_mb(rows)}
    for stage in ("aggregate", "tables", "figures"):
        assert mem[stage] == {memory.results_request_mb(stage, rows)}
