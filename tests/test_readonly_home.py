"""A read-only HOME: the documented ways to run still work (Snakemake 9 creates its source
cache in $XDG_CACHE_HOME, else ~/.cache, before reading the workflow, and stopped there with
its own traceback)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, copy_workflow

VENV = Path(sys.executable).parent.parent
# As root, permissions do not stop a write: make HOME a read-only mount instead.
READ_ONLY = 'mount --bind -o ro "$HOME" "$HOME" && exec "$@"'


def _runner(home: Path) -> list[str]:
    """A command prefix under which ``home`` is really read-only (else the test skips)."""
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("root without unshare: cannot make HOME read-only")
        prefix = ["unshare", "-m", "sh", "-c", READ_ONLY, "sh"]
    else:
        home.chmod(0o555)
        prefix = []
    probe = subprocess.run(
        [*prefix, "sh", "-c", 'mkdir "$HOME/.cache"'], env={**os.environ, "HOME": str(home)}
    )
    if probe.returncode == 0:
        pytest.skip("could not make HOME read-only here")
    return prefix


@pytest.fixture
def setup(tmp_path: Path, mirror: Path) -> tuple[Path, list[str], dict[str, str]]:
    workdir = copy_workflow(tmp_path / "wf")
    shutil.copy(ROOT / "Makefile", workdir / "Makefile")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", "MPLCONFIGDIR")}
    env |= {"HOME": str(home), "LIONSWEEP_DATA_MIRROR": str(mirror)}
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return workdir, _runner(home), env


def test_make_run_with_a_read_only_home(setup) -> None:
    """`make run` (the README's one command) keeps the caches in the checkout's .cache/."""
    workdir, prefix, env = setup
    # -o: the venv is already installed (do not reinstall it into the copy)
    make = ["make", "-o", f"{VENV}/.installed", f"VENV={VENV}", "run", "ARGS=-n"]
    proc = subprocess.run([*prefix, *make], cwd=workdir, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert (workdir / ".cache" / "snakemake").is_dir()


def test_plain_snakemake_with_the_readmes_advice(setup) -> None:
    """Plain `snakemake` (inside the venv): README's troubleshooting names XDG_CACHE_HOME."""
    workdir, prefix, env = setup
    readme = (ROOT / "README.md").read_text()
    assert "export XDG_CACHE_HOME=$PWD/.cache" in readme
    env["XDG_CACHE_HOME"] = str(workdir / ".cache")
    cmd = ["snakemake", "-n", "--cores", "2", "--configfile", "config/test.yaml"]
    proc = subprocess.run([*prefix, *cmd], cwd=workdir, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
