"""The README and docs/ say what works: every relative link resolves (file and anchor),
and the shell commands they give run as written where that is cheap here.

Commands come from the fenced ``bash`` blocks of README.md and docs/*.md. Every
``snakemake`` command is dry-run (``-n``; ``--cores`` and ``--report`` dropped, the
report needs a finished study) in a copy of the workflow, ``make`` targets must exist
in the Makefile, and every repository path a command names must exist. Commands for
another machine (clone, sudo, srun, pip) are only checked for those paths.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from conftest import ROOT, copy_workflow, snakemake

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "config" / "README.md"]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
# Top-level folders and files a command may name (results/ and logs/ are outputs).
REPO_PATH = re.compile(r"^(config|profiles|envs|workflow|docs|bench|\.ci)/[\w./-]+$")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def relative_links() -> list[tuple[Path, str]]:
    found = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        found += [(page, t) for t in LINK.findall(text) if not re.match(r"\w+:", t)]
    return found


@pytest.mark.parametrize(("page", "target"), relative_links(), ids=lambda v: getattr(v, "name", v))
def test_relative_links_resolve(page: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    dest = (page.parent / path).resolve() if path else page
    assert dest.exists(), f"{page.relative_to(ROOT)}: {target} does not exist"
    if anchor and dest.suffix == ".md":
        assert anchor in anchors(dest), f"{page.relative_to(ROOT)}: no heading for #{anchor}"


def commands() -> list[tuple[str, str]]:
    """(page, command) for every command line of every bash block (continuations joined)."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", page.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                cmd = re.sub(r"\s+#.*$", "", line).strip()
                if cmd and not cmd.startswith("#"):
                    found.append((str(page.relative_to(ROOT)), cmd))
    return found


def test_the_readme_quick_start_is_found() -> None:
    readme = [cmd for page, cmd in commands() if page == "README.md"]
    assert readme[:2] == ["make run", "make test"]
    assert "snakemake --cores 2 --configfile config/test.yaml" in readme


@pytest.mark.parametrize(("page", "cmd"), commands())
def test_named_repository_paths_exist(page: str, cmd: str) -> None:
    words = shlex.split(cmd.replace("$(", "( "), comments=True)
    missing = [w for w in words if REPO_PATH.match(w) and not (ROOT / w).exists()]
    missing = [w for w in missing if "mystudy" not in w]  # the reader's own file
    assert not missing, f"{page}: `{cmd}` names {missing}"


def test_make_targets_exist() -> None:
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.M))
    wanted = {m for _, c in commands() for m in re.findall(r"(?:^|&& )make ([\w-]+)", c)}
    assert wanted and wanted <= targets, sorted(wanted - targets)


def dry_run_forms() -> list[str]:
    """Each distinct snakemake command, as the dry run that checks it."""
    forms = {}
    for _, cmd in commands():
        words = shlex.split(cmd)
        while words and "=" in words[0]:  # PATH=... snakemake
            words.pop(0)
        if not words or words[0] != "snakemake" or "--report" in words:
            continue
        if any("mystudy" in w or "small-shards" in w for w in words):
            continue  # the reader's own study file; an overlay needing the cluster
        kept, skip = [], False
        for w in words[1:]:
            if skip:
                skip = False
            elif w == "--cores":
                skip = True
            elif w not in ("-n", "--dry-run"):
                kept.append(w)
        forms[" ".join(kept)] = None
    return list(forms)


@pytest.mark.parametrize("args", dry_run_forms())
def test_documented_snakemake_commands_dry_run(args: str, tmp_path: Path, mirror: Path) -> None:
    workdir = copy_workflow(tmp_path / "wf")
    proc = snakemake(workdir, *shlex.split(args), "-n", mirror=mirror, check=False)
    assert proc.returncode == 0, f"snakemake {args} -n:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
