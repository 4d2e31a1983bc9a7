"""Atomic file writes: a run's files are either the previous version or the new one, never torn.

A file is written to a temporary file in the same folder, flushed and fsynced, then renamed
over the old one with ``os.replace`` (atomic on POSIX and Windows), and the folder is fsynced
so the rename itself survives a power cut. Files are created with the usual permissions
(``0666`` masked by the umask, 0644 under umask 022), as any other program's files, so run
folders can be shared.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Union

__all__ = ["PathLike", "atomic_write", "atomic_write_text", "file_mode"]

PathLike = Union[str, "os.PathLike[str]"]


def _umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:  # Linux >= 4.7: no window with umask 0
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new file gets from ``open()`` in this process: ``0o666`` without the umask's bits.

    Example:
        >>> old = os.umask(0o022); file_mode() == 0o644; _ = os.umask(old)
        True
    """
    return 0o666 & ~_umask()


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(file)`` on a temporary file and atomically move it to ``path``.

    The file gets the mode ``open()`` would give it (``0o666`` masked by the umask), not the
    ``0o600`` of a temporary file.

    Args:
        path: the destination; its folder must exist.
        write: writes the content to the binary file object it is given.

    Returns:
        ``path`` as a Path.

    Raises:
        Whatever ``write`` raises; the temporary file is removed and ``path`` is untouched.

    Example:
        >>> import tempfile, os
        >>> p = atomic_write(os.path.join(tempfile.mkdtemp(), "a.txt"), lambda f: f.write(b"hi"))
        >>> p.read_bytes()
        b'hi'
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600 files; Windows has no modes to fix
            os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # BaseException: a KeyboardInterrupt mid-write must not leave the temp file behind either
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover  (Windows cannot open folders; its rename is durable)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover  (some file systems refuse fsync on folders)
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: PathLike, text: str) -> Path:
    """:func:`atomic_write` for a text file (UTF-8)."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))
