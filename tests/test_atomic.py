"""Failed writes (disk full, no permission) are one line naming the path, and keep nothing."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import ROOT
from lionsweep import atomic
from lionsweep.errors import LionSweepError


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("kind", ["json", "parquet"])
def test_disk_full_keeps_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch, kind: str
) -> None:
    path = tmp_path / f"out.{kind}"
    path.write_text("previous")
    if kind == "json":
        monkeypatch.setattr(Path, "write_text", _disk_full)
        write = lambda: atomic.write_json({"a": 1}, path)  # noqa: E731
    else:
        monkeypatch.setattr(pq, "write_table", _disk_full)
        write = lambda: atomic.write_parquet(pa.table({"a": [1]}), path)  # noqa: E731
    with pytest.raises(LionSweepError) as err:
        write()
    assert str(err.value) == (
        f"cannot write {path}: No space left on device; nothing was kept (no partial file; "
        "an earlier file at that path, if any, is unchanged)"
    )
    assert path.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_disk_full_inside_atomic_path_body(tmp_path: Path) -> None:
    path = tmp_path / "raw.csv"
    expected = f"cannot write {path}: No space left on device"
    with pytest.raises(LionSweepError, match=expected), atomic.atomic_path(path) as tmp:
        tmp.write_text("half")
        _disk_full()
    assert list(tmp_path.iterdir()) == []


def test_other_errors_of_the_body_pass_unchanged(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), atomic.atomic_path(tmp_path / "x"):
        open(tmp_path / "no-such-input")  # noqa: SIM115
    assert list(tmp_path.iterdir()) == []


def test_output_folder_without_write_permission(tmp_path: Path, monkeypatch) -> None:
    """What creating the temporary file in a read-only folder raises (simulated: the
    tests may run as root, which ignores file permissions)."""

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    path = tmp_path / "meta.json"
    path.write_text("previous")
    with pytest.raises(LionSweepError) as err:
        atomic.write_json({"a": 1}, path)
    assert str(err.value).startswith(f"cannot write {path}: Permission denied; nothing was kept")
    assert path.read_text() == "previous"


def test_permission_error_from_the_writer(tmp_path: Path, monkeypatch) -> None:
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(os, "replace", denied)
    path = tmp_path / "meta.json"
    with pytest.raises(LionSweepError, match=f"cannot write {path}: Permission denied"):
        atomic.write_json({"a": 1}, path)
    assert list(tmp_path.iterdir()) == []


# A writer that creates its temporary file and waits there, to be killed (kill -9: no
# cleanup code runs) or to stay alive beside the test's own writes.
WRITER = (
    "import sys, time\n"
    "from lionsweep import atomic\n"
    "with atomic.atomic_path(sys.argv[1]) as tmp:\n"
    "    print(tmp, flush=True)\n"
    "    time.sleep(600)\n"
)


def _writer(target: Path) -> tuple[subprocess.Popen[str], Path]:
    """A real process inside ``atomic_path(target)``, and its temporary file."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "workflow")}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    tmp = Path(proc.stdout.readline().strip())
    assert tmp.is_file() and tmp.name.endswith(".part"), tmp
    return proc, tmp


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path: Path) -> None:
    """kill -9 during tables/figures left a hidden 0-byte .part for good: the next write
    into that folder (of any target: the stage's first) removes it."""
    figures = tmp_path / "figures"
    for target in ("heatmap.png", "other.json"):
        proc, tmp = _writer(figures / "heatmap.png")
        proc.kill()
        proc.wait()
        assert tmp.exists()  # nothing of the killed process ran
        atomic.write_json({"a": 1}, figures / target)
        assert sorted(p.name for p in figures.iterdir()) == [target], target
        (figures / target).unlink()


FOLDER = (
    "import sys, time\n"
    "from lionsweep import atomic\n"
    "with atomic.temporary_folder(sys.argv[1]) as tmp:\n"
    "    (tmp / 'rows.parquet').write_bytes(b'x' * 1000)\n"
    "    print(tmp, flush=True)\n"
    "    time.sleep(600)\n"
)


def test_a_killed_aggregate_s_scratch_folder_is_removed_by_the_next_write(tmp_path: Path) -> None:
    """The summary's scratch folder (up to a grid's rows) of a killed aggregate stayed
    for good: it is named like the temporaries, so the next write into that folder
    removes it, and a live job's is kept."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "workflow")}
    target = tmp_path / "summary.parquet"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", FOLDER, str(target)], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    scratch = [Path(p.stdout.readline().strip()) for p in procs]
    try:
        assert all(s.is_dir() and s.name.endswith(".part") for s in scratch), scratch
        procs[0].kill()
        procs[0].wait()
        atomic.write_json({"a": 1}, target)
        assert not scratch[0].exists() and (scratch[1] / "rows.parquet").exists()
    finally:
        procs[1].kill()
        procs[1].wait()


def test_a_running_writers_temporary_is_kept(tmp_path: Path) -> None:
    """A concurrent job's temporary file is not stale: it must survive our writes."""
    proc, tmp = _writer(tmp_path / "shard0.parquet")
    try:
        atomic.write_json({"a": 1}, tmp_path / "shard0.parquet")
        atomic.write_json({"a": 1}, tmp_path / "shard1.parquet")
        assert tmp.exists()
    finally:
        proc.kill()
        proc.wait()


def test_temporaries_of_other_hosts_or_other_programs_are_kept(tmp_path: Path) -> None:
    """On a shared file system a pid means nothing on another host; a name not of our
    making is not ours to delete."""
    others = [
        f".a.png.{2**22 + 1}@elsewhere.example.abc123.part",  # another node: its pid unknown
        ".a.png.k3j4h5g6.part",  # no pid in the name
        "notes.part",
    ]
    for name in others:
        (tmp_path / name).write_text("")
    atomic.write_json({"a": 1}, tmp_path / "a.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*others, "a.png"])
