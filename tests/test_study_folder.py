"""Issue 16 items 4, 6 and 11: a study folder records what it holds and a reused name
stops; the documented report command cannot package stale tables; a report that cannot
be written leaves the last good one and says so in one line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import copy_run, snakemake
from lionsweep import manifest
from lionsweep.errors import LionSweepError
from lionsweep.results import report

TEST = ("--configfile", "config/test.yaml")
PAPER_LIKE = manifest.study_manifest(["titanic", "spambase"], ["lion", "adamw"], {"g": 1})


# ------------------------------------------------------------------ manifest (unit)


def fill(folder: Path, figures: tuple[str, ...] = ("heatmap_mushroom.png",)) -> None:
    derived = ("sweep.parquet", "confirm.parquet", "report.html", "tables/honest_table.csv")
    kept = ("shards/x/y.parquet", "grids/x/y.parquet")
    for rel in (*derived, *(f"figures/{f}" for f in figures), *kept):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text("old")


def test_first_run_records_the_study_and_a_rerun_passes(tmp_path: Path) -> None:
    folder = tmp_path / "results" / "s"
    assert manifest.claim(folder, PAPER_LIKE, replace=False) == []
    assert json.loads((folder / "study.json").read_text()) == PAPER_LIKE
    reordered = manifest.study_manifest(["spambase", "titanic"], ["adamw", "lion"], {"g": 1})
    assert manifest.claim(folder, reordered, replace=False) == []  # same study, other order


@pytest.mark.parametrize(
    ("datasets", "optimizers", "grids"),
    [
        (["titanic"], ["lion", "adamw"], {"g": 1}),  # a dataset less
        (["titanic", "spambase"], ["lion"], {"g": 1}),  # an optimizer less
        (["titanic", "spambase"], ["lion", "adamw"], {"g": 2}),  # another grid only
    ],
    ids=["datasets", "optimizers", "grid-only"],
)
def test_another_study_under_the_same_name_stops_in_one_line(
    tmp_path: Path, datasets, optimizers, grids
) -> None:
    folder = tmp_path / "results" / "s"
    manifest.claim(folder, PAPER_LIKE, replace=False)
    fill(folder)
    before = {p: p.read_text() for p in folder.rglob("*") if p.is_file()}
    other = manifest.study_manifest(datasets, optimizers, grids)
    with pytest.raises(LionSweepError) as err:
        manifest.claim(folder, other, replace=False)
    line = str(err.value)
    assert "\n" not in line and f"{folder}/ holds another study" in line
    assert "study.name" in line and "study.replace: true" in line
    assert {p: p.read_text() for p in folder.rglob("*") if p.is_file()} == before  # untouched


def test_replace_removes_what_belonged_to_the_old_study(tmp_path: Path) -> None:
    folder = tmp_path / "results" / "s"
    manifest.claim(folder, PAPER_LIKE, replace=False)
    fill(folder)
    other = manifest.study_manifest(["titanic"], ["lion"], {"g": 1})
    removed = manifest.claim(folder, other, replace=True)
    assert len(removed) == 5
    left = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert left == ["grids/x/y.parquet", "shards/x/y.parquet", "study.json"]
    assert json.loads((folder / "study.json").read_text()) == other
    assert manifest.claim(folder, other, replace=True) == []  # replace: true left in the config


def test_an_unreadable_manifest_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "study.json").write_text("{not json")
    with pytest.raises(LionSweepError, match=r"study\.json: not a readable study manifest"):
        manifest.claim(tmp_path, PAPER_LIKE, replace=False)


# ------------------------------------------------------------------ report writer (unit)


def fake_snakemake(monkeypatch, text: str, rc: int, output: str) -> None:
    """snakemake --report that writes ``text`` to its target and says ``output``."""

    def run(snakefile: str, target: Path, config: Path) -> subprocess.CompletedProcess:
        target.write_text(text)
        return subprocess.CompletedProcess([], rc, stdout="", stderr=output)

    monkeypatch.setattr(report, "snakemake_report", run)


@pytest.mark.parametrize(
    ("rc", "said", "message"),
    [
        (1, "OSError: [Errno 28] No space left on device", "No space left on device"),
        (1, "Traceback ...\nWorkflowError: something", "snakemake --report failed (exit 1)"),
        (0, "", "snakemake --report failed (exit 0)"),  # exit 0 but an empty report
    ],
    ids=["disk-full", "snakemake-error", "empty"],
)
def test_a_failed_report_keeps_the_last_good_one(
    tmp_path: Path, monkeypatch, rc, said, message
) -> None:
    good = tmp_path / "report.html"
    good.write_text("<html>last good</html>")
    fake_snakemake(monkeypatch, "<html>trunc" if rc else "", rc, said)
    with pytest.raises(LionSweepError) as err:
        report.write_report("Snakefile", good, "{}", tmp_path / "details.log")
    assert message in str(err.value) and "\n" not in str(err.value)
    assert good.read_text() == "<html>last good</html>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["details.log", "report.html"]


def test_disk_full_is_one_line_from_the_cli(tmp_path: Path, monkeypatch, capsys) -> None:
    from lionsweep.cli import main

    fake_snakemake(monkeypatch, "<html>tr", 1, "[Errno 28] No space left on device")
    monkeypatch.setenv(report.CONFIG_ENV, "{}")
    out = tmp_path / "report.html"
    args = ["report", "--snakefile", "S", "--output", str(out), "--details", str(tmp_path / "d")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lionsweep report: error: cannot write {out}: No space left")
    assert len(err.splitlines()) == 1 and not out.exists()


def test_a_good_report_is_moved_into_place(tmp_path: Path, monkeypatch) -> None:
    fake_snakemake(monkeypatch, "<html>new</html>", 0, "")
    (tmp_path / "report.html").write_text("old")
    report.write_report("Snakefile", tmp_path / "report.html", "{}", tmp_path / "d.log")
    assert (tmp_path / "report.html").read_text() == "<html>new</html>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.log", "report.html"]


# ------------------------------------------------------------------ through Snakemake


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_the_report_target_refreshes_stale_tables_and_names_the_level(
    finished: Path, mirror: Path, tmp_path: Path
) -> None:
    work = copy_run(finished, tmp_path / "wf")
    (work / "config" / "ci80.yaml").write_text(yaml.safe_dump({"results": {"ci_level": 0.8}}))
    proc = snakemake(work, "report", "--cores", "2", *TEST, "config/ci80.yaml", mirror=mirror)
    assert "rule tables" in output(proc)  # the stale tables were rebuilt first
    assert "rule train_shard" not in output(proc) and "rule confirm" not in output(proc)
    html = (work / "results/test/report.html").read_text()
    assert "80% t-interval over seeds" in html and "95% t-interval" not in html
    caption = (work / "results/test/tables/honest_table.md").read_text()
    assert "80% t-intervals" in caption
    again = snakemake(work, "report", "--cores", "2", *TEST, "config/ci80.yaml", mirror=mirror)
    assert "Nothing to be done" in output(again)
    assert not [p for p in (work / "results/test").iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_a_reused_study_name_stops_and_replace_cleans_up(
    finished: Path, mirror: Path, tmp_path: Path
) -> None:
    work = copy_run(finished, tmp_path / "wf")
    results = work / "results/test"
    assert json.loads((results / "study.json").read_text())["datasets"] == [
        "mushroom", "spambase", "titanic"]  # fmt: skip
    (work / "config" / "fewer.yaml").write_text(
        yaml.safe_dump({"study": {"datasets": ["titanic"], "optimizers": ["lion"]}})
    )
    fewer = (*TEST, "config/fewer.yaml")
    plan = snakemake(work, "-n", *fewer, mirror=mirror)  # a dry run still plans
    assert "rule aggregate" in output(plan)
    before = (results / "sweep.parquet").read_bytes()
    proc = snakemake(work, "--cores", "2", *fewer, mirror=mirror, check=False)
    assert proc.returncode != 0
    lines = [x for x in output(proc).splitlines() if "holds another study" in x]
    assert len(lines) == 1 and "results/test/" in lines[0] and "study.replace" in lines[0]
    assert "Traceback" not in output(proc)
    assert (results / "sweep.parquet").read_bytes() == before
    assert (results / "figures/heatmap_mushroom.png").is_file()

    (work / "config" / "replace.yaml").write_text(yaml.safe_dump({"study": {"replace": True}}))
    snakemake(work, "--cores", "2", *fewer, "config/replace.yaml", mirror=mirror)
    figures = sorted(p.name for p in (results / "figures").iterdir())
    assert "heatmap_mushroom.png" not in figures and "heatmap_titanic.png" in figures
    assert json.loads((results / "study.json").read_text())["datasets"] == ["titanic"]
    again = snakemake(work, "-n", *fewer, mirror=mirror)  # the new study, rerun: nothing
    assert "Nothing to be done" in output(again)
