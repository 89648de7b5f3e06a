"""Failed writes (disk full, no permission) are one line naming the path, and keep nothing."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lionsweep import io
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
        write = lambda: io.write_json({"a": 1}, path)  # noqa: E731
    else:
        monkeypatch.setattr(pq, "write_table", _disk_full)
        write = lambda: io.write_parquet(pa.table({"a": [1]}), path)  # noqa: E731
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
    with pytest.raises(LionSweepError, match=expected), io.atomic_path(path) as tmp:
        tmp.write_text("half")
        _disk_full()
    assert list(tmp_path.iterdir()) == []


def test_other_errors_of_the_body_pass_unchanged(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), io.atomic_path(tmp_path / "x"):
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
        io.write_json({"a": 1}, path)
    assert str(err.value).startswith(f"cannot write {path}: Permission denied; nothing was kept")
    assert path.read_text() == "previous"


def test_permission_error_from_the_writer(tmp_path: Path, monkeypatch) -> None:
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(os, "replace", denied)
    path = tmp_path / "meta.json"
    with pytest.raises(LionSweepError, match=f"cannot write {path}: Permission denied"):
        io.write_json({"a": 1}, path)
    assert list(tmp_path.iterdir()) == []
