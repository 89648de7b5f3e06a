"""The `lionsweep` command: one sub-command per workflow stage.

Each stage module defines ``add_arguments(parser)`` and ``run(args)``; modules
are imported lazily so that `lionsweep fetch` never pays for importing torch.
Errors that a user can fix (bad checksum, malformed file, invalid config) are
raised as ``LionSweepError`` and printed as one line, without a traceback. Ctrl-C
(SIGINT, sent to every job) and SIGTERM (how Snakemake and SLURM stop a job) are one
line too, after the atomic writes have removed their temporary files.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from lionsweep import __version__
from lionsweep.errors import LionSweepError

# sub-command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "fetch": (
        "lionsweep.data.fetch",
        "fetch one raw dataset file (mirror or HTTP) and verify its sha256",
    ),
    "prepare": ("lionsweep.data.prepare", "validate, encode, split and scale one dataset"),
    "grid": ("lionsweep.sweep.grid", "expand one (dataset, optimizer) grid into a table"),
    "train": ("lionsweep.sweep.shards", "train one shard of a grid and write its Parquet"),
    "aggregate": ("lionsweep.sweep.aggregate", "merge shard Parquet files into the sweep table"),
    "confirm": (
        "lionsweep.confirm.retrain",
        "retrain the default and the honest choice on fresh seeds (confirm.parquet)",
    ),
    "tables": ("lionsweep.results.tables", "write the result tables (CSV, Markdown, LaTeX)"),
    "figures": ("lionsweep.results.figures", "draw the result figures (PNG, PDF)"),
    "budget": (
        "lionsweep.results.budget_stage",
        "the budget curve: selected test metric against N candidates (table and figure)",
    ),
    "report": (
        "lionsweep.results.report",
        "write the HTML report atomically (the `report` rule, over current results)",
    ),
    "gpu-check": (
        "lionsweep.train.gpucheck",
        "check the CUDA training path for device mismatches and host reads (--simulate: no GPU)",
    ),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported, to attach its own arguments."""
    parser = argparse.ArgumentParser(prog="lionsweep", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"lionsweep {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


class Interrupted(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that cleanup code runs."""


def _terminate(signum: int, frame: object) -> None:
    raise Interrupted


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    previous = signal.getsignal(signal.SIGINT), signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(argv, command)
    except KeyboardInterrupt as err:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second signal: no traceback either
            signal.signal(sig, signal.SIG_IGN)
        sig = signal.SIGTERM if isinstance(err, Interrupted) else signal.SIGINT
        prog = f"lionsweep {command}" if command in COMMANDS else "lionsweep"
        print(f"{prog}: interrupted by {sig.name}; nothing half-written kept", file=sys.stderr)
        return 128 + sig
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def _main(argv: list[str], command: str | None) -> int:
    args = build_parser(command if command in COMMANDS else None).parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        module.run(args)
    except LionSweepError as err:
        print(f"lionsweep {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
