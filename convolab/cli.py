"""The ``convolab`` command. Each subcommand lives in ``convolab/commands/<name>.py`` and
defines ``add_parser(subparsers)`` (which sets ``func``); this file only wires them up.

Bad arguments exit with status 2 and one clear line; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

# One entry per subcommand module, in the order `convolab --help` lists them.
COMMANDS = ["demo", "train", "models", "summary", "bench", "animate", "explain", "ablate"]


class UsageError(Exception):
    """A user mistake: reported as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convolab", description="Every convolution and pooling concept of CNNs, on PyTorch."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"convolab.commands.{name}").add_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UsageError, ValueError, TypeError, FileNotFoundError, KeyError) as exc:
        if args.debug:
            raise
        print(f"convolab {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
