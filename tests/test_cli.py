"""The command line the rules call: one readable line on bad input, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


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
