"""Parsing the workflow never imports torch (or pandas, pyarrow): Snakemake parses it on
every invocation, every dry run and in every cluster job, and torch alone cost ~1.5-2 s
of each (lionsweep.optim.hparams holds the registry's torch-free half for this)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, copy_workflow, snakemake

HEAVY = ("torch", "pandas", "pyarrow")


def rule_imports() -> list[str]:
    """The lionsweep modules the rules import while Snakemake parses them."""
    text = "\n".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    found = re.findall(r"^from (lionsweep[\w.]*) import ([\w, (]+)", text, flags=re.M)
    package = ROOT / "workflow" / "lionsweep"
    modules = set()
    for m, names in found:  # `from lionsweep import layout, ENGINE_VERSION`: one module, a name
        for name in [m] if m != "lionsweep" else [n.strip() for n in names.split(",")]:
            is_module = name.startswith("lionsweep") or (package / f"{name}.py").exists()
            modules.add(name if name.startswith("lionsweep") else
                        f"lionsweep.{name}" if is_module else "lionsweep")  # fmt: skip
    return sorted(modules)


def test_the_rules_helpers_import_without_heavy_modules() -> None:
    modules = rule_imports()
    assert {"lionsweep.config", "lionsweep.sweep.grid", "lionsweep.sweep.shardcost"} <= set(modules)
    code = (
        f"import sys\nfor m in {modules!r}: __import__(m)\n"
        f"print(sorted(set({HEAVY!r}) & set(sys.modules)))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "workflow"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_dry_run_parses_without_torch(
    tmp_path: Path, mirror: Path, monkeypatch, torch_refused: Path
) -> None:
    """A `torch` that cannot be imported first on the path: the dry run still plans."""
    workdir = copy_workflow(tmp_path / "wf")
    monkeypatch.setenv("PYTHONPATH", str(torch_refused))
    proc = snakemake(workdir, "-n", "--configfile", "config/test.yaml", mirror=mirror)
    assert "train_shard" in proc.stdout
