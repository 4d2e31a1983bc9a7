"""The ``convolab`` command. Each subcommand lives in ``convolab/commands/<name>.py`` and
defines ``add_parser(subparsers)`` (which sets ``func``); this file only wires them up.

Bad arguments exit with status 2 and one clear line; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import textwrap
from typing import Optional, Sequence

# One entry per subcommand module, in the order `convolab --help` lists them.
COMMANDS = ["demo", "train", "models", "summary", "bench", "animate", "explain", "ablate"]


class UsageError(Exception):
    """A user mistake: reported as one line, exit status 2."""


class _Wrapper(textwrap.TextWrapper):
    """Wraps at spaces and after commas, and never cuts a word: option lists such as
    ``conv=standard,depthwise_separable,...`` break between items instead of inside one."""

    def _split(self, text: str) -> list[str]:
        return [chunk for chunk in re.split(r"(\s+|(?<=,))", text) if chunk]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's help layout, but descriptions keep their own line breaks (so examples stay one
    per line) and no word is split across lines."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return _Wrapper(width, break_long_words=False, break_on_hyphens=False).wrap(" ".join(text.split()))

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        wrapper = _Wrapper(width, initial_indent=indent, subsequent_indent=indent, break_long_words=False,
                           break_on_hyphens=False)
        # runs of plain lines are re-filled as a paragraph; an indented line (an example command,
        # an entry of a list) is kept as it is
        out: list[str] = []
        paragraph: list[str] = []
        for line in textwrap.dedent(text).strip("\n").splitlines() + [""]:
            if line.strip() and not line.startswith("  "):
                paragraph.append(line)
                continue
            if paragraph:
                out.append(wrapper.fill(" ".join(" ".join(paragraph).split())))
                paragraph = []
            out.append(indent + line if line.strip() else "")
        return "\n".join(out).rstrip("\n")


class _Parser(argparse.ArgumentParser):
    """Every (sub)parser uses :class:`HelpFormatter`."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(
        prog="convolab", description="Every convolution and pooling concept of CNNs, on PyTorch.",
        epilog="Start with `convolab demo`; `convolab COMMAND -h` explains each command.",
    )
    parser.add_argument("--version", action="version", version=f"convolab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
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
