"""The Snakemake ecosystem's conventions: the workflow catalog's files and layout, both entry
points (./Snakefile and workflow/Snakefile), and a `snakedeploy deploy-workflow` deployment
that runs the test study as a Snakemake module from a folder of its own."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, copy_workflow, snakemake

BIN = Path(sys.executable).parent
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
# What the catalog's generator reads from .snakemake-workflow-catalog.yml
# (snakemake/snakemake-workflow-catalog, scripts/generate-catalog.py and its page template).
CATALOG_USAGE_KEYS = {"mandatory-flags", "software-stack-deployment", "report"}
CATALOG_DEPLOYMENT_KEYS = {"conda", "apptainer", "apptainer+conda", "singularity"}


def schema_keys() -> list[str]:
    """Every top-level and second-level key the schema names, as `top` and `top.sub`; for
    sections whose entries are named by the user (`datasets.<name>`) or share one
    definition (`optimizers.lion`), also the keys of an entry, as `top.<name>.key`."""
    schema = yaml.safe_load(SCHEMA.read_text())
    defs = schema["$defs"]

    def resolve(spec: dict) -> dict:
        ref = spec.get("$ref", "")
        return defs[ref.rsplit("/", 1)[-1]] if ref.startswith("#/$defs/") else spec

    keys = []
    for top, spec in schema["properties"].items():
        keys.append(top)
        entries = dict(spec.get("properties", {}))
        if isinstance(spec.get("additionalProperties"), dict):
            entries["<name>"] = spec["additionalProperties"]
        for sub, sub_spec in entries.items():
            if sub != "<name>":
                keys.append(f"{top}.{sub}")
            keys += [f"{top}.<name>.{key}" for key in resolve(sub_spec).get("properties", {})]
    return sorted(set(keys))


def readme_sections() -> dict[str, str]:
    """config/README.md's text under each "## `key`" heading, by key."""
    text = (ROOT / "config" / "README.md").read_text()
    parts = re.split(r"^## `([a-z_]+)`.*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_config_readme_names_every_schema_key() -> None:
    """config/README.md is the catalog's configuration page: one section per top-level key
    of the schema, naming each of its keys (in backticks), so that a key added to the
    schema without a line there fails here and the page cannot silently go stale."""
    sections = readme_sections()
    schema = yaml.safe_load(SCHEMA.read_text())
    assert list(sections) == list(schema["properties"]), "one section per top-level key"
    missing = [
        key
        for key in schema_keys()
        if "." in key and f"`{key.rsplit('.', 1)[-1]}`" not in sections[key.split(".")[0]]
    ]
    assert not missing, f"config/README.md does not mention: {missing}"


def test_config_readme_names_every_key_of_the_default_config() -> None:
    """The same for what config/config.yaml sets (it may use keys the schema leaves open,
    e.g. a dataset's name)."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    sections = readme_sections()
    missing = [
        f"{top}.{sub}"
        for top, value in config.items()
        for sub in (value if isinstance(value, dict) else [])
        if top != "datasets" and f"`{sub}`" not in sections.get(top, "")
    ]
    names = [n for n in config["datasets"] if f"`{n}`" not in sections["datasets"]]
    assert not missing and not names, f"config/README.md does not mention: {missing + names}"


def test_catalog_file_has_the_catalogs_shape() -> None:
    settings = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())
    usage = settings["usage"]
    assert set(usage) <= CATALOG_USAGE_KEYS
    deployment = usage["software-stack-deployment"]
    assert set(deployment) <= CATALOG_DEPLOYMENT_KEYS
    assert all(isinstance(v, bool) for v in deployment.values())
    # conda: true is a promise that every rule with a command names the conda env
    # (tests/test_envs.py checks the rules); report: true that `--report` works.
    assert deployment["conda"] is True
    assert usage["report"] is True
    flags = usage["mandatory-flags"]
    assert set(flags) == {"desc", "flags"} and isinstance(flags["desc"], str)


def test_catalog_layout_main_snakefile_and_rules() -> None:
    """The catalog's "standardized usage" wants the workflow in workflow/Snakefile,
    rule files ending in .smk under workflow/rules, and config/README.md."""
    main = (ROOT / "workflow" / "Snakefile").read_text()
    assert re.search(r"^rule all:\n    default_target: True", main, flags=re.M)
    assert all(p.suffix == ".smk" for p in (ROOT / "workflow" / "rules").iterdir())
    proc = subprocess.run(
        [str(BIN / "snakefmt"), "--check", "workflow/Snakefile", "Snakefile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def planned_rules(proc: subprocess.CompletedProcess[str]) -> set[str]:
    """Rule names in the job-stats table of a dry run."""
    assert "Job stats:" in proc.stdout, f"nothing planned:\n{proc.stdout[-2000:]}"
    table = proc.stdout.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {line.split()[0] for line in table.splitlines()[3:] if line.split()}


@pytest.mark.parametrize("entry", [[], ["-s", "workflow/Snakefile"]], ids=["top", "workflow"])
def test_both_entry_points_plan_the_whole_study(tmp_path: Path, mirror: Path, entry) -> None:
    """`snakemake` (./Snakefile) and `snakemake -s workflow/Snakefile` plan the same jobs,
    with `all` as the default target (an `include:` would have dropped it)."""
    workdir = copy_workflow(tmp_path / "wf")
    proc = snakemake(workdir, *entry, "-n", "--configfile", "config/test.yaml", mirror=mirror)
    assert planned_rules(proc) == {
        "all",
        "fetch",
        "prepare",
        "grid",
        "train_shard",
        "aggregate",
        "confirm",
        "tables",
        "figures",
        "total",
    }


def deploy(source: Path, dest: Path) -> Path:
    """`snakedeploy deploy-workflow` from a local source folder, as a user would.

    snakedeploy 0.17.1 takes a local path (copied as is; a file:// URL gets "No matching
    provider") and requires --tag/--branch/--commit even though it ignores them for local
    sources. It writes the module's snakefile relative to the *source*
    ("workflow/Snakefile"), which Snakemake resolves against the deployed workflow/ folder:
    we point it at the source's absolute path, the one-line fix the README gives."""
    proc = subprocess.run(
        [str(BIN / "snakedeploy"), "deploy-workflow", str(source), str(dest), "--branch", "main"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    snakefile = dest / "workflow" / "Snakefile"
    text = snakefile.read_text()
    assert '"workflow/Snakefile"' in text, text
    snakefile.write_text(text.replace('"workflow/Snakefile"', f'"{source}/workflow/Snakefile"'))
    return dest


@pytest.mark.slow
def test_snakedeploy_deployment_runs_the_test_study(
    tmp_path: Path, mirror: Path, finished: Path
) -> None:
    """A deployed folder holds only the module declaration, config/ and profiles/; the
    workflow (rules, package, schema, report captions, conda env) is read from the source,
    and the numbers equal a run in a clone of the repository."""
    source = copy_workflow(tmp_path / "lion-sweep")
    dest = deploy(source, tmp_path / "project")
    assert sorted(p.name for p in dest.iterdir()) == ["config", "profiles", "workflow"]
    assert [p.name for p in (dest / "workflow").iterdir()] == ["Snakefile"]

    snakemake(dest, "--cores", "2", "--configfile", "config/test.yaml", mirror=mirror)

    keys = ["dataset", "optimizer", "seed", "config_id"]
    volatile = ["wall_time_s", "device"]
    deployed = pd.read_parquet(dest / "results/test/sweep.parquet").drop(columns=volatile)
    cloned = pd.read_parquet(finished / "results/test/sweep.parquet").drop(columns=volatile)
    pd.testing.assert_frame_equal(
        deployed.sort_values(keys).reset_index(drop=True),
        cloned.sort_values(keys).reset_index(drop=True),
        check_exact=True,
    )
    for table in ("paper_table", "honest_table"):
        assert (dest / f"results/test/tables/{table}.csv").read_text() == (
            finished / f"results/test/tables/{table}.csv"
        ).read_text()
    # The source was only read: no outputs, logs or package caches written into it.
    assert not (source / "results").exists() and not (source / ".snakemake").exists()
