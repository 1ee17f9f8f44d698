"""Boundary Atlas's command line: ``python -m geometry <command> ...``.

    python -m geometry train --preset digits-cnn-silu
    python -m geometry report --model digits-cnn-silu --dataset digits --out report.html [--n 100]
    python -m geometry atlas --model digits-cnn-silu --data digits --engine ray --out atlas.parquet

One module per command (`geometry.cli.train`, `geometry.cli.report`, `geometry.cli.atlas`), each with ``HELP`` (one
line), ``DESCRIPTION``, ``register`` (adds its arguments to a sub-parser) and ``run`` (gets the parsed arguments,
returns the exit status); `COMMANDS` lists them. A text progress bar goes to stderr; a bad argument or input prints
one line ``error: ...`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from geometry.cli import atlas, report, train
from geometry.cli.progress import ProgressBar

__all__ = ["COMMANDS", "ProgressBar", "main"]

COMMANDS: dict[str, ModuleType] = {"train": train, "report": report, "atlas": atlas}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m geometry", description="Boundary Atlas from the command line.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, command in COMMANDS.items():
        p = sub.add_parser(
            name,
            help=command.HELP,
            description=command.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.register(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status (2 for bad arguments or input, 130 when interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    args.argv = argv[argv.index(args.command) + 1 :]  # the command's own arguments as given (train records them)
    try:
        return int(COMMANDS[args.command].run(args))
    except (ValueError, TypeError, FileNotFoundError, NotADirectoryError, PermissionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
