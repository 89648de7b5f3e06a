"""Fetching: mirror and HTTP, sha256 verified both ways, nothing kept on failure."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from lionsweep.data.fetch import fetch, sha256_of
from lionsweep.errors import LionSweepError

TITANIC_SHA = "4a437fde05fe5264e1701a7387ac6fb75393772ba38bb2c9c566405af5af4bd7"


def test_mirror_copy_is_verified_and_identical(mirror: Path, tmp_path: Path) -> None:
    dest = tmp_path / "raw" / "titanic.csv"
    origin = fetch("titanic.csv", TITANIC_SHA, dest, mirror=mirror)
    assert origin == str(mirror / "titanic.csv")
    assert dest.read_bytes() == (mirror / "titanic.csv").read_bytes()
    assert sha256_of(dest) == TITANIC_SHA


def test_wrong_checksum_names_file_and_digests_and_keeps_nothing(
    mirror: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "raw" / "titanic.csv"
    wrong = "0" * 64
    with pytest.raises(LionSweepError) as err:
        fetch("titanic.csv", wrong, dest, mirror=mirror)
    message = str(err.value)
    assert "titanic.csv" in message and wrong in message and TITANIC_SHA in message
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # no partial or temporary file left


def test_corrupted_mirror_file_is_rejected(mirror: Path, tmp_path: Path) -> None:
    bad_mirror = tmp_path / "mirror"
    bad_mirror.mkdir()
    data = (mirror / "titanic.csv").read_bytes()
    (bad_mirror / "titanic.csv").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(LionSweepError, match=r"sha256 mismatch for titanic\.csv"):
        fetch("titanic.csv", TITANIC_SHA, tmp_path / "out.csv", mirror=bad_mirror)
    assert not (tmp_path / "out.csv").exists()


def test_file_missing_from_mirror_says_how_to_provide_it(tmp_path: Path) -> None:
    with pytest.raises(LionSweepError) as err:
        fetch("titanic.csv", TITANIC_SHA, tmp_path / "x.csv", mirror=tmp_path, url="http://x/y")
    assert "titanic.csv is not in the data mirror" in str(err.value)
    assert "LIONSWEEP_DATA_MIRROR" in str(err.value)


def test_offline_without_mirror_is_one_clear_message(tmp_path: Path) -> None:
    with pytest.raises(LionSweepError) as err:
        # port 9 (discard) on loopback: connection refused at once
        fetch(
            "titanic.csv",
            TITANIC_SHA,
            tmp_path / "x.csv",
            url="http://127.0.0.1:9/t.csv",
            retries=0,
            timeout_s=2,
        )
    message = str(err.value)
    assert "could not download titanic.csv" in message and "LIONSWEEP_DATA_MIRROR" in message
    assert not (tmp_path / "x.csv").exists()


@pytest.fixture()
def http_mirror(mirror: Path, tmp_path: Path):
    """Serve a copy of the mirror over real HTTP on loopback."""
    root = tmp_path / "www"
    shutil.copytree(mirror, root)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()


def test_http_download_is_verified(http_mirror, tmp_path: Path) -> None:
    base, root = http_mirror
    dest = tmp_path / "titanic.csv"
    assert fetch("titanic.csv", TITANIC_SHA, dest, url=f"{base}/titanic.csv") == (
        f"{base}/titanic.csv"
    )
    assert sha256_of(dest) == TITANIC_SHA
    (root / "titanic.csv").write_bytes(b"PassengerId\n1\n")  # the server now serves junk
    with pytest.raises(LionSweepError, match="sha256 mismatch"):
        fetch("titanic.csv", TITANIC_SHA, tmp_path / "again.csv", url=f"{base}/titanic.csv")
    assert not (tmp_path / "again.csv").exists()
