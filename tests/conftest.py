"""Shared fixtures: the repository, its default config, and the offline data mirror."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _mirror() -> Path:
    configured = os.environ.get("LIONSWEEP_DATA_MIRROR")
    return Path(configured) if configured else (ROOT.parent / "shared" / "datasets")


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The offline data mirror (../shared/datasets, or $LIONSWEEP_DATA_MIRROR)."""
    path = _mirror()
    if not (path / "titanic.csv").is_file():
        pytest.fail(f"data mirror not found at {path}: set LIONSWEEP_DATA_MIRROR")
    return path


@pytest.fixture
def torch_refused(tmp_path: Path) -> Path:
    """A folder holding a ``torch`` that refuses to import: first on PYTHONPATH, it
    proves a command never imports torch (it fails naming torch otherwise)."""
    blocker = tmp_path / "torch-refused" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        "raise ImportError('torch imported where it must not be')\n"
    )
    return blocker.parent


@pytest.fixture(scope="session")
def config() -> dict:
    with open(ROOT / "config" / "config.yaml") as fh:
        return yaml.safe_load(fh)


def copy_workflow(dest: Path) -> Path:
    """Copy what a user clones (Snakefile, workflow/, config/, envs/, profiles/) to ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "Snakefile", dest / "Snakefile")
    for sub in ("workflow", "config", "envs", "profiles"):
        if (ROOT / sub).exists():
            shutil.copytree(ROOT / sub, dest / sub, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def snakemake(
    workdir: Path, *args: str, mirror: Path | None = None, check: bool = True, timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    """Run the venv's snakemake in ``workdir``; output captured for assertions."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
    if mirror is not None:
        env["LIONSWEEP_DATA_MIRROR"] = str(mirror)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "snakemake"), *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


@pytest.fixture(scope="session")
def finished(tmp_path_factory, mirror: Path) -> Path:
    """One uninterrupted run of the test configuration."""
    workdir = copy_workflow(tmp_path_factory.mktemp("run"))
    snakemake(workdir, "--cores", "2", "--configfile", "config/test.yaml", mirror=mirror)
    return workdir


def copy_run(src: Path, dest: Path) -> Path:
    """Copy a finished run (results, logs, .snakemake) keeping mtimes, so Snakemake sees
    the same state there as in ``src`` (cheaper than running the test study again)."""
    shutil.copytree(src, dest, symlinks=True)
    return dest


def snapshot(workdir: Path, *exclude: str) -> dict[str, tuple[str, int]]:
    """(sha256, mtime) of every file under results/ and logs/, less paths under ``exclude``."""
    out = {}
    for top in ("results", "logs"):
        for path in sorted((workdir / top).rglob("*")):
            rel = path.relative_to(workdir).as_posix()
            if path.is_file() and not any(rel.startswith(f"{e}/") for e in exclude):
                out[rel] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return out
