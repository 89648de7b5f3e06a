"""Style gates that CI enforces: ruff, snakefmt and Snakemake's own linter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ROOT

BIN = Path(sys.executable).parent


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_check_and_format() -> None:
    check = run(str(BIN / "ruff"), "check", ".")
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = run(str(BIN / "ruff"), "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def snakemake_files() -> list[str]:
    """Every Snakefile and rule file of the repository (the top-level Snakefile and
    workflow/Snakefile included), found rather than listed, so a new one is checked."""
    found = [*ROOT.rglob("Snakefile"), *ROOT.rglob("*.smk")]
    skip = (".venv", ".snakemake", "results", ".git")
    return sorted(str(p.relative_to(ROOT)) for p in found if not set(p.parts) & set(skip))


def test_snakefmt_check() -> None:
    files = snakemake_files()
    assert {"Snakefile", "workflow/Snakefile", "workflow/rules/common.smk"} <= set(files)
    proc = run(str(BIN / "snakefmt"), "--check", *files)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"All {len(files)} file(s) would be left unchanged" in proc.stdout + proc.stderr


def test_snakemake_lint() -> None:
    proc = run(str(BIN / "snakemake"), "--lint", "--configfile", "config/test.yaml")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Lints for" not in output, output
    assert "Congratulations" in output
