"""Every module of the package imports first, alone, in a fresh interpreter.

An import cycle hides while some other module happens to be imported first (as
``optim`` -> ``optim_drivers`` -> ``optim`` did: ``import lionsweep.optim.drivers``
raised ImportError), so each module gets a process of its own. The list is read from
the package directory, sub-packages included, so it follows any later move.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT

PACKAGE = ROOT / "workflow" / "lionsweep"


def package_modules() -> list[str]:
    """Dotted names of every module and sub-package under workflow/lionsweep."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__main__":
            continue  # importing it runs the CLI; `python -m lionsweep` is test_cli's
        if parts[-1] == "__init__":
            parts.pop()
        found.append(".".join(parts))
    return found


def import_alone(module: str, pythonpath: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=pythonpath)
    return subprocess.run(
        [sys.executable, "-c", f"import {module}"], env=env, capture_output=True, text=True
    )


def test_the_module_list_is_the_package():
    modules = package_modules()
    assert {"lionsweep", "lionsweep.optim.registry", "lionsweep.optim.drivers"} <= set(modules)
    assert len(modules) == len(list(PACKAGE.rglob("*.py"))) - 1  # all but __main__


@pytest.mark.parametrize("module", package_modules())
def test_imports_first_in_a_fresh_process(module):
    proc = import_alone(module, str(ROOT / "workflow"))
    assert proc.returncode == 0, proc.stderr.strip().splitlines()[-1:]
