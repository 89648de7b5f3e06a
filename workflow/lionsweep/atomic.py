"""Atomic file writes: a killed job must never leave a readable partial output.

A write that fails (disk full, no permission) is reported as one ``LionSweepError``
naming the path; the temporary file is removed and an earlier file at that path is
left untouched, so nothing half-written is ever kept. A process killed outright
(``kill -9``) cannot remove its temporary file: the name carries its host and pid, so
the next write into that folder removes it once that process is gone.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lionsweep.errors import LionSweepError

if TYPE_CHECKING:  # pyarrow is imported where used: the rules parse this module (fetch)
    import pyarrow as pa

# Errors of the output's file system (not of whatever the caller reads meanwhile).
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


# .{target}.{pid}@{host}.{random}.part: mkstemp's random part has no dots or "@".
_TEMP = re.compile(r"\..+\.(?P<pid>[0-9]+)@(?P<host>[^@/]+)\.[A-Za-z0-9_]+\.part")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; not a pid: keep
        return True
    return True


def remove_stale_temporaries(folder: Path) -> None:
    """Remove the temporary files that killed writers left in ``folder``.

    Only names of our making, from this host, whose process no longer runs: a running
    job's temporary (here, or on another node of a shared file system) is never touched.
    """
    host = socket.gethostname()
    try:
        names = [e.name for e in os.scandir(folder) if e.name.startswith(".")]
    except OSError:
        return
    for name in names:
        match = _TEMP.fullmatch(name)
        if match and match["host"] == host and not _alive(int(match["pid"])):
            if (folder / name).is_dir():  # a scratch folder (temporary_folder)
                shutil.rmtree(folder / name, ignore_errors=True)
            with contextlib.suppress(OSError):
                (folder / name).unlink()


def write_error(path: Path, err: OSError) -> LionSweepError:
    """One line naming the output, the reason, and that nothing was kept."""
    reason = err.strerror or str(err) or type(err).__name__
    return LionSweepError(
        f"cannot write {path}: {reason}; nothing was kept (no partial file; "
        "an earlier file at that path, if any, is unchanged)"
    )


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only on success.

    The temporary file lives in the same directory so the final ``os.replace`` is
    atomic on POSIX file systems (including the shared ones of SLURM clusters).
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(final.parent)
        prefix = f".{final.name}.{os.getpid()}@{socket.gethostname()}."
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".part", dir=final.parent)
        os.close(fd)
    except OSError as err:
        raise write_error(final, err) from None
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
        except OSError as err:
            if err.errno in WRITE_ERRNOS:
                raise write_error(final, err) from None
            raise
        try:
            # mkstemp creates 0600; give the result the permissions of a normal file
            # (others on a shared cluster file system must be able to read results).
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)
            os.replace(tmp_path, final)
        except OSError as err:
            raise write_error(final, err) from None
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def temporary_folder(beside: str | os.PathLike[str]) -> Iterator[Path]:
    """A scratch folder beside the output ``beside`` (same file system), removed on exit;
    named as ``atomic_path``'s temporaries, so that one a killed job left is removed by
    the next write into that folder."""
    final = Path(beside)
    prefix = f".{final.name}.{os.getpid()}@{socket.gethostname()}."
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=prefix, suffix=".part", dir=final.parent))
    except OSError as err:
        raise write_error(final, err) from None
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_atomic(path: str | os.PathLike[str], writer: Callable[[Path], Any]) -> None:
    """Call ``writer(tmp_path)`` and move the result to ``path`` atomically.

    Any ``OSError`` of the writer is a failed write (it only writes the temporary file).
    """
    with atomic_path(path) as tmp:
        try:
            writer(tmp)
        except OSError as err:
            raise write_error(Path(path), err) from None


def write_parquet(table: pa.Table, path: str | os.PathLike[str]) -> None:
    """Write a Parquet file atomically, with settings that make equal tables equal bytes."""
    import pyarrow.parquet as pq

    write_atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write sorted, indented JSON atomically (stable bytes for stable content)."""
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    write_atomic(path, lambda tmp: tmp.write_text(text))
