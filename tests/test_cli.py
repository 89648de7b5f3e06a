"""The command line the rules call: one readable line on bad input, never a traceback."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import ROOT
from lionsweep import cli
from lionsweep.data.fetch import sha256_of


def lionsweep(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(ROOT / "workflow"), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "lionsweep", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_bad_checksum_is_one_line_exit_2(mirror: Path, tmp_path: Path) -> None:
    out = tmp_path / "titanic.csv"
    proc = lionsweep(
        "fetch",
        "--file",
        "titanic.csv",
        "--sha256",
        "f" * 64,
        "--mirror",
        str(mirror),
        "--output",
        str(out),
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("lionsweep fetch: error: sha256 mismatch for titanic.csv")
    assert not out.exists()


def test_malformed_file_names_the_culprit(config: dict, tmp_path: Path) -> None:

    raw = tmp_path / "spambase.data"
    raw.write_text("1,2,3\n4,5\n")
    proc = lionsweep(
        "prepare",
        "--dataset",
        "spambase",
        "--spec",
        json.dumps(config["datasets"]["spambase"]),
        "--split",
        json.dumps(config["split"]),
        "--raw",
        str(raw),
        "--sha256",
        sha256_of(raw),
        "--outdir",
        str(tmp_path / "out"),
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "spambase.data: line 1 has 3 fields, expected 58" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_sub_command_help_lists_its_own_arguments() -> None:
    proc = lionsweep("train", "--help")
    assert proc.returncode == 0
    for flag in ("--rows", "--grid", "--job-mem-mb"):
        assert flag in proc.stdout


def _prepare_args(config: dict, raw: Path, sha256: str, outdir: Path) -> list[str]:
    spec = config["datasets"]["titanic"]
    return [
        "prepare",
        "--dataset",
        "titanic",
        "--spec",
        json.dumps(spec),
        "--split",
        json.dumps(config["split"]),
        "--raw",
        str(raw),
        "--sha256",
        sha256,
        "--outdir",
        str(outdir),
    ]


def test_prepare_refuses_a_raw_file_edited_after_fetch(
    mirror: Path, config: dict, tmp_path: Path
) -> None:
    raw = tmp_path / "titanic.csv"
    raw.write_text((mirror / "titanic.csv").read_text() + "892,1,3,x,male,30,0,0,t,7.5,,S\n")
    expected = config["datasets"]["titanic"]["sha256"]
    proc = lionsweep(*_prepare_args(config, raw, expected, tmp_path / "out"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(
        f"lionsweep prepare: error: {raw}: sha256 is {sha256_of(raw)}, expected {expected}"
    )
    assert f"Delete {raw} and rerun" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_prepare_requires_sha256(mirror: Path, config: dict, tmp_path: Path) -> None:
    args = _prepare_args(config, mirror / "titanic.csv", "x", tmp_path / "out")[:-4]
    proc = lionsweep(*args, "--outdir", str(tmp_path / "out"))
    assert proc.returncode == 2 and "the following arguments are required: --sha256" in proc.stderr


def test_cuda_without_cuda_is_one_line_before_reading_anything(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli.main(train_argv(tmp_path, "cuda")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(
        "lionsweep train: error: training.device is cuda, but CUDA is not available on this node"
    )
    assert err.rstrip().endswith(
        "set training.device: auto (CUDA where a node has it, else CPU), or install a CUDA "
        "build of torch"
    )
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("device", ["auto", "cpu"])
def test_other_devices_are_not_refused_without_cuda(
    tmp_path: Path, monkeypatch, capsys, device: str
) -> None:
    """auto and cpu pass the device check without CUDA: the command goes on to read the
    prepared data (absent here, so its own error), which a refused cuda never reaches."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli.main(train_argv(tmp_path, device)) == 2
    err = capsys.readouterr().err
    assert "CUDA" not in err
    assert err.startswith(f"lionsweep train: error: {tmp_path / 'missing' / 'meta.json'}: ")


def test_train_without_the_prepared_meta_is_one_line(tmp_path: Path, capsys) -> None:
    """`train` reads the task from meta.json: prepared data without it (or damaged) is one
    line naming the file, before any grid is read or output written."""
    data = tmp_path / "data"
    data.mkdir()
    settings = {"hidden": 4, "dropout": 0.0, "epochs": 1, "batch_size": 8, "device": "cpu"}
    argv = ["train", "--dataset", "d", "--optimizer", "sgd", "--seed", "0", "--shard", "0"]
    argv += ["--rows", "0:1", "--settings", json.dumps(settings)]
    argv += ["--grid", str(tmp_path / "missing.parquet"), "--data", str(data)]
    argv += ["--output", str(tmp_path / "out.parquet")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err == (
        f"lionsweep train: error: {data / 'meta.json'}: not readable as the prepared data's "
        "meta (FileNotFoundError); prepare it again\n"
    )
    (data / "meta.json").write_text(json.dumps({"task": "ordinal"}))
    assert cli.main(argv) == 2
    assert "task 'ordinal' is not one of binary, multiclass, regression" in capsys.readouterr().err
    assert not (tmp_path / "out.parquet").exists()


@pytest.fixture(scope="module")
def shard_inputs(mirror: Path, config: dict, tmp_path_factory) -> tuple[Path, Path, int]:
    """Prepared titanic and its Lion grid (the rules' real inputs to `train`)."""
    from lionsweep.sweep.grid import grid_spec

    base = tmp_path_factory.mktemp("shard")
    raw = mirror / "titanic.csv"
    args = _prepare_args(config, raw, sha256_of(raw), base / "data")
    assert cli.main(args) == 0
    spec = json.dumps(grid_spec(config, "titanic", "lion"))
    assert cli.main(["grid", "--spec", spec, "--output", str(base / "grid.parquet")]) == 0
    return base / "data", base / "grid.parquet", len(pq.read_table(base / "grid.parquet"))


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_training_is_one_line_and_keeps_nothing(
    shard_inputs: tuple[Path, Path, int], tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    """Ctrl-C (SIGINT to every job) or Snakemake's SIGTERM mid-training: one line per job,
    no traceback, no output and no temporary file."""
    data, grid, rows = shard_inputs
    settings = {"hidden": 64, "dropout": 0.0, "epochs": 20, "batch_size": 8}
    out = tmp_path / "shard" / "shard0.parquet"
    argv = ["train", "--dataset", "titanic", "--optimizer", "lion", "--seed", "0"]
    argv += ["--shard", "0", "--rows", f"0:{rows}", "--settings", json.dumps(settings)]
    argv += ["--grid", str(grid), "--data", str(data), "--threads", "1", "--output", str(out)]
    env = {"PYTHONPATH": str(ROOT / "workflow"), "PATH": "/usr/bin:/bin"}
    env["LIONSWEEP_CACHE"] = str(tmp_path / "cache")  # interrupted while building the kernels
    proc = subprocess.Popen(
        [sys.executable, "-m", "lionsweep", *argv],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert proc.stderr is not None
    seen = b""
    while b"epochs" not in seen:  # the epoch bar: training has started
        chunk = os.read(proc.stderr.fileno(), 4096)
        assert chunk, seen.decode()
        seen += chunk
    proc.send_signal(sig)
    stdout, rest = proc.communicate(timeout=120)
    # beside the progress bars (\r-rewritten, cleared with blanks and cursor moves), one line
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", (seen + rest).decode())
    lines = [ln.strip() for ln in re.split(r"[\r\n]", text)]
    assert [ln for ln in lines if ln and not re.match(r"(chunks|epochs): ", ln)] == [
        f"lionsweep train: interrupted by {sig.name}; nothing half-written kept"
    ]
    assert proc.returncode == code and stdout == b""
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def train_argv(tmp_path: Path, device: str) -> list[str]:
    """`lionsweep train` on one configuration with ``device``, over data that is absent."""
    settings = {"hidden": 4, "dropout": 0.0, "epochs": 1, "batch_size": 8, "device": device}
    argv = ["train", "--dataset", "d", "--optimizer", "lion", "--seed", "0", "--shard", "0"]
    argv += ["--rows", "0:1", "--settings", json.dumps(settings)]
    argv += ["--grid", str(tmp_path / "missing.parquet"), "--data", str(tmp_path / "missing")]
    return [*argv, "--output", str(tmp_path / "out.parquet")]
