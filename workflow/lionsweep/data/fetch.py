"""Fetch one raw dataset file from a local mirror or over HTTP, and verify its sha256.

The digest is checked in both cases, so a mirror is trusted no more than the
network. The file appears at its destination only once verified.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from lionsweep.atomic import WRITE_ERRNOS, atomic_path
from lionsweep.errors import LionSweepError

MIRROR_ENV = "LIONSWEEP_DATA_MIRROR"
CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def resolve_mirror(configured: str | None) -> Path | None:
    """The mirror folder: the config's value, else $LIONSWEEP_DATA_MIRROR, else none."""
    value = configured or os.environ.get(MIRROR_ENV) or None
    return Path(value) if value else None


def check_url(url: str, file: str) -> None:
    """A url urllib cannot open (no scheme, one it has no handler for, a malformed host) is
    refused in one line before any attempt: retrying cannot help, and urllib's
    ValueError is a traceback."""
    try:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
    except ValueError as err:
        raise LionSweepError(
            f"cannot download {file}: the url {url!r} is malformed ({err})"
        ) from None
    if not scheme:
        raise LionSweepError(
            f"cannot download {file}: the url {url!r} has no scheme (write https://{url.lstrip('/')})"
        )
    known = sorted(k for k in urllib.request.build_opener().handle_open if k != "unknown")
    if scheme not in known:
        raise LionSweepError(
            f"cannot download {file}: the url {url!r} has the scheme {scheme!r}, which urllib "
            f"cannot open ({', '.join(known)})"
        )


def _download(url: str, file: str, dest: Path, timeout_s: float, retries: int) -> None:
    check_url(url, file)
    last: Exception | None = None
    for attempt in range(retries + 1):
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp, open(dest, "wb") as out:
                shutil.copyfileobj(resp, out, CHUNK)
            return
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            if err.errno in WRITE_ERRNOS:  # disk full: retrying cannot help
                raise
            last = err
            if attempt < retries:
                wait = 2**attempt
                print(f"download failed ({err}); retrying in {wait} s", file=sys.stderr)
                time.sleep(wait)
    raise LionSweepError(
        f"could not download {file} from {url} "
        f"after {retries + 1} attempts ({last}). Offline? Put the file in a folder and "
        f"set {MIRROR_ENV}=/that/folder (or `data_mirror:` in the config)."
    )


def fetch(
    file: str,
    sha256: str,
    dest: Path,
    *,
    url: str | None = None,
    mirror: Path | None = None,
    timeout_s: float = 60,
    retries: int = 3,
) -> str:
    """Copy ``file`` from ``mirror`` (or download ``url``) to ``dest``; return its origin."""
    with atomic_path(dest) as tmp:
        if mirror is not None:
            source = mirror / file
            if not source.is_file():
                raise LionSweepError(
                    f"{file} is not in the data mirror {mirror} "
                    f"(set by `data_mirror:` or {MIRROR_ENV}); copy it there, or unset the "
                    "mirror to download it" + (f" from {url}" if url else "")
                )
            shutil.copyfile(source, tmp)
            origin = str(source)
        elif url:
            _download(url, file, tmp, timeout_s, retries)
            origin = url
        else:
            raise LionSweepError(
                f"{file} has no download url and no data mirror is set: put it in a folder "
                f"and set {MIRROR_ENV}=/that/folder (or `data_mirror:` in the config)"
            )
        actual = sha256_of(tmp)
        if actual != sha256:
            raise LionSweepError(
                f"sha256 mismatch for {file} (from {origin}): expected {sha256}, got {actual}; "
                "the file is corrupt, truncated or a different version, and was not kept"
            )
    return origin


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", required=True, help="file name (in the mirror)")
    parser.add_argument("--sha256", required=True)
    parser.add_argument("--url", default=None)
    parser.add_argument("--mirror", default=None, help=f"mirror folder (default: ${MIRROR_ENV})")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument("--output", required=True, type=Path)


def run(args: argparse.Namespace) -> None:
    origin = fetch(
        args.file,
        args.sha256,
        args.output,
        url=args.url or None,
        mirror=resolve_mirror(args.mirror),
        timeout_s=args.timeout,
        retries=args.retries,
    )
    print(f"{args.file}: sha256 verified ({origin})", file=sys.stderr)
