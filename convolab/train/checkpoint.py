"""Atomic checkpoints and the random-number state that makes a resumed run exact.

A checkpoint is written to a temporary file in the same folder, flushed and fsynced, then
renamed over the old one with ``os.replace`` (atomic on POSIX and Windows), and the folder
is fsynced so the rename itself survives a power cut. A kill at any moment therefore
leaves either the previous checkpoint or the new one, never a torn file.
"""

from __future__ import annotations

import io
import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Union

import numpy as np
import torch

PathLike = Union[str, "os.PathLike[str]"]


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(file)`` on a temporary file and atomically move it to ``path``.

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


def save_checkpoint(path: PathLike, state: dict[str, Any]) -> Path:
    """Serialise ``state`` with ``torch.save`` and write it atomically to ``path``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return atomic_write(path, lambda f: f.write(buffer.getbuffer()))


def load_checkpoint(path: PathLike) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors, numbers, strings only).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a convolab checkpoint (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_checkpoint: no such file {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a foreign or damaged file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValueError(f"load_checkpoint: {path} is not a readable checkpoint ({type(exc).__name__}: {first})") from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ValueError(f"load_checkpoint: {path} is not a convolab training checkpoint (no 'model'/'config' entries)")
    return state


def rng_state() -> dict[str, Any]:
    """The state of every random generator a training step may draw from (torch, numpy, random).

    Stored as tensors and plain Python values so that ``torch.load(weights_only=True)`` reads it.
    """
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():  # pragma: no cover  (no GPU on the project's machines)
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():  # pragma: no cover
        torch.cuda.set_rng_state_all(state["cuda"])
