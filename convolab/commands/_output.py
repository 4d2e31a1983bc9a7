"""Output files of the command line, checked before any work is done.

A command that draws or computes for a minute must not fail at the end because ``-o`` points
into a missing or read-only folder. :func:`check_output_file` is called first and names the
option. Missing folders are *not* created: a typo in a path should be an error, not a new
directory tree (the library functions, called from code, do create parent folders).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..cli import UsageError


def check_output_file(text: str, option: str, suffixes: Sequence[str] = ()) -> Path:
    """``text`` as a path that can be written, or a :class:`UsageError` naming ``option``.

    Checks the suffix (when ``suffixes`` is given), that the folder exists and is a folder,
    that the path is not a folder, and that a file can be created in the folder (a probe file,
    removed at once: permissions alone do not tell, e.g. for root in ``/proc``).
    """
    path = Path(text)
    if suffixes and path.suffix.lower() not in suffixes:
        raise UsageError(f"{option} must end in {', '.join(suffixes)}, got {text!r}")
    folder = path.parent
    if not folder.exists():
        raise UsageError(f"{option}: no such folder {str(folder)!r} (create it first), got {text!r}")
    if not folder.is_dir():
        raise UsageError(f"{option}: {str(folder)!r} is not a folder, got {text!r}")
    if path.is_dir():
        raise UsageError(f"{option} must be a file name, got the folder {text!r}")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".convolab-probe-"):
            pass
    except OSError as exc:
        raise UsageError(f"{option}: cannot write in {str(folder)!r} ({exc.strerror or exc}), got {text!r}") from None
    return path
