"""Rewrite the outputs shown in docs/*.md with what the code prints now (like regenerating golden files).

    python docs/refresh_guide.py docs/concepts.md

``pycon`` blocks get each example's printed result, ``console`` blocks the output of each
``$ convolab ...`` line (run in-process in a scratch folder that links ``docs/``). Blocks whose
expected output elides something with ``...`` (timings, long listings) are left as they are.
Review the diff before committing: tests/test_guide.py then checks the guide against the code.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path

import torch

DOCS = Path(__file__).resolve().parent
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```", re.S | re.M)


def _elided(body: str) -> bool:
    return any(line.strip() == "..." or "... │" in line or "~~~" in line for line in body.splitlines())


def refresh_pycon(body: str, globs: dict) -> str:
    lines = []
    for example in doctest.DocTestParser().get_examples(body):
        source = example.source.rstrip("\n").split("\n")
        lines += [">>> " + source[0], *("... " + s for s in source[1:])]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                exec(compile(example.source, "<guide>", "single"), globs)
            except Exception as exc:  # noqa: BLE001  (shown as doctest shows an expected exception)
                print(f"Traceback (most recent call last):\n  ...\n{type(exc).__name__}: {exc}")
        lines += [s for s in out.getvalue().rstrip("\n").split("\n") if out.getvalue().strip()]
    return "\n".join(lines) + "\n"


def refresh_console(body: str) -> str:
    from convolab.cli import main

    lines = []
    for line in body.splitlines():
        if line.startswith("$ "):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                main(shlex.split(line[2:])[1:])
            lines += [line, *out.getvalue().rstrip("\n").split("\n")]
    return "\n".join(lines) + "\n"


def refresh(path: Path) -> None:
    text = path.read_text()
    globs: dict = {"__name__": "guide"}
    torch.manual_seed(0)

    def one(m: re.Match) -> str:
        lang, body = m.group(1), m.group(2)
        if lang == "pycon" and not _elided(body):
            body = refresh_pycon(body, globs)
        elif lang == "pycon":  # still run it: later blocks may use its names
            refresh_pycon(body, globs)
        elif lang == "console" and not _elided(body):
            body = refresh_console(body)
        return f"```{lang}\n{body}```"

    os.environ["COLUMNS"] = "100"  # the width tests/test_guide.py runs the console blocks at
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "docs").symlink_to(DOCS)
        cwd = os.getcwd()
        os.chdir(scratch)
        try:
            new = FENCE.sub(one, text)
        finally:
            os.chdir(cwd)
    path.write_text(new)


if __name__ == "__main__":
    for arg in sys.argv[1:] or [str(DOCS / "concepts.md")]:
        refresh(Path(arg).resolve())
