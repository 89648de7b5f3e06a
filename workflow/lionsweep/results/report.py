"""`lionsweep report`: Snakemake's HTML report, written only over current results.

Run by the `report` rule, whose inputs are every table and figure: Snakemake brings
them up to date first (a changed `results.ci_level` reruns the tables), so the report
can never package stale tables under a new config's provenance, which a bare
``snakemake --report`` does without a word (issue 16 item 4). The report itself is
``snakemake --report`` on the same Snakefile and config, written to a temporary name
beside the output and moved into place only when complete: a full disk leaves the
last good report untouched and gives one line (item 11).
"""

from __future__ import annotations

import argparse
import errno
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from lionsweep.atomic import write_error
from lionsweep.errors import LionSweepError

# The run's whole config as JSON, set by the workflow (common.smk) for the nested run:
# a file would be one more output, a parameter one more very long command line.
CONFIG_ENV = "LIONSWEEP_REPORT_CONFIG"
# What Snakemake writes when the report's disk is full.
NO_SPACE = os.strerror(errno.ENOSPC)


def snakemake_report(snakefile: str, target: Path, config: Path) -> subprocess.CompletedProcess:
    """``snakemake --report target`` for the workflow's default target (the outer run
    holds the lock: --nolock; the report reads metadata only)."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", snakefile, "--nolock"]
    command += ["--report", str(target), "--configfile", str(config)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def write_report(snakefile: str, output: Path, config_json: str, details: Path) -> None:
    """Write ``output`` atomically; Snakemake's own output goes to ``details``."""
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.stem}.", suffix=output.suffix, dir=output.parent)
    os.close(fd)
    fd, cfg = tempfile.mkstemp(prefix=".report-config.", suffix=".json", dir=output.parent)
    os.close(fd)
    try:
        Path(cfg).write_text(config_json)
        proc = snakemake_report(snakefile, Path(tmp), Path(cfg))
        details.parent.mkdir(parents=True, exist_ok=True)
        details.write_text(proc.stdout + proc.stderr)
        if NO_SPACE in proc.stdout + proc.stderr:
            raise write_error(output, OSError(errno.ENOSPC, NO_SPACE))
        if proc.returncode != 0 or os.path.getsize(tmp) == 0:
            raise LionSweepError(
                f"snakemake --report failed (exit {proc.returncode}); {output} is unchanged; "
                f"its output: {details}"
            )
        umask = os.umask(0)  # mkstemp made it 0600: a report others may read
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, output)
    except OSError as err:
        raise write_error(output, err) from None
    finally:
        for path in (tmp, cfg):
            Path(path).unlink(missing_ok=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--snakefile", required=True, help="the workflow's main Snakefile")
    parser.add_argument("--output", required=True, type=Path, help="results/<study>/report.html")
    parser.add_argument("--details", required=True, type=Path, help="Snakemake's output")


def run(args: argparse.Namespace) -> None:
    config = os.environ.get(CONFIG_ENV)
    if not config:
        raise LionSweepError(f"{CONFIG_ENV} is not set: run the report through Snakemake's "
                             "`report` target (snakemake report --configfile ...)")  # fmt: skip
    write_report(args.snakefile, args.output, config, args.details)
    print(f"{args.output}: written")
