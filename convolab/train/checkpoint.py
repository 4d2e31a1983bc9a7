"""Atomic, verified checkpoints and the random-number state that makes a resumed run exact.

A checkpoint is written to a temporary file in the same folder, flushed and fsynced, then
renamed over the old one with ``os.replace`` (atomic on POSIX and Windows), and the folder
is fsynced so the rename itself survives a power cut. A kill at any moment therefore
leaves either the previous checkpoint or the new one, never a torn file. Files are created
with the usual permissions (``0666`` masked by the umask, 0644 under umask 022), as any
other program's files, so run folders can be shared.

Format (2): the zip archive ``torch.save`` writes, plus one member
``<archive>/.convolab/sha256`` holding the SHA-256 of every other member (name and bytes, in
archive order). ``torch.load`` reads such a file as usual; :func:`load_checkpoint` first
recomputes the digest and refuses a file whose bytes changed after it was written (a bit
flip, a truncation, another program's file). Checkpoints of format 1 (convolab before the
digest) carry no digest: they are loaded without that check.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, Optional, Union

import numpy as np
import torch

PathLike = Union[str, "os.PathLike[str]"]

FORMAT = 2  # the "format" entry of the checkpoints fit writes
DIGEST_MEMBER = ".convolab/sha256"  # inside the archive's top folder, where torch.load ignores it
_DIGEST_PREFIX = b"sha256:"
# what a damaged file's message suggests
_REMEDY = "restore it from a copy, or start the run again with --overwrite"
_ZIP_MAGIC = b"PK\x03\x04"


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


def _digest(archive: zipfile.ZipFile, members: Iterable[zipfile.ZipInfo]) -> str:
    h = hashlib.sha256()
    for info in members:
        data = archive.read(info)  # zipfile also checks each member's CRC-32 here
        name = info.filename.encode("utf-8")
        h.update(len(name).to_bytes(8, "little") + name + len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _digest_name(archive: zipfile.ZipFile) -> str:
    # torch.save puts every record under one top folder ("archive/" or the file's stem)
    top = archive.infolist()[0].filename.split("/", 1)[0]
    return f"{top}/{DIGEST_MEMBER}"


def serialize(obj: Any) -> bytes:
    """``torch.save(obj)`` as bytes, with the SHA-256 member that :func:`deserialize` checks."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with zipfile.ZipFile(buffer, "a") as archive:
        digest = _digest(archive, archive.infolist())
        archive.writestr(_digest_name(archive), _DIGEST_PREFIX + digest.encode("ascii") + b"\n")
    return buffer.getvalue()


def deserialize(data: bytes, name: str = "the checkpoint") -> tuple[Any, bool]:
    """Check the digest written by :func:`serialize` and load the object (tensors, numbers, strings only).

    Args:
        data: the file's bytes.
        name: how messages call the file (its path).

    Returns:
        (object, verified): ``verified`` is False for a file without a digest member.

    Raises:
        ValueError: the bytes are not a torch archive, or do not match their digest.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
        if not members:
            raise zipfile.BadZipFile("empty archive")
        digest_name = _digest_name(archive)
        recorded = None
        if digest_name in archive.namelist():
            recorded = archive.read(digest_name).strip()
            recorded = recorded[len(_DIGEST_PREFIX):].decode("ascii", "replace") if recorded.startswith(_DIGEST_PREFIX) else ""
        actual = _digest(archive, [m for m in members if m.filename != digest_name])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError) as exc:
        if not data.startswith(_ZIP_MAGIC):
            raise ValueError(
                f"{name} is not a checkpoint (not the zip archive torch.save writes); check the path"
            ) from None
        raise ValueError(f"{name} is damaged (truncated or corrupted: {exc}); {_REMEDY}") from None
    if recorded is not None and recorded != actual:
        raise ValueError(
            f"{name} is damaged: its content does not match the SHA-256 recorded when it was written "
            f"(the file changed on disk); {_REMEDY}"
        )
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a foreign or damaged file
        # the first line only: torch's advice to load with weights_only=False does not apply to damaged files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValueError(f"{name} is not a checkpoint convolab can read ({type(exc).__name__}: {first})") from None
    return obj, recorded is not None


def save_checkpoint(path: PathLike, state: Any) -> Path:
    """Serialise ``state`` with ``torch.save`` plus a SHA-256 digest and write it atomically to ``path``.

    The file stays readable by ``torch.load(path, weights_only=True)``.
    """
    data = serialize(state)
    return atomic_write(path, lambda f: f.write(data))


def load_checkpoint(path: PathLike, required: Iterable[str] = ("model", "config")) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, after checking its SHA-256 digest.

    Args:
        path: the file.
        required: entries the checkpoint must have (a training checkpoint: its model and config).

    Returns:
        The saved dict (tensors, numbers, strings, lists, dicts).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is damaged (the digest does not match, truncated, not an archive),
            is not a convolab checkpoint, or lacks a required entry (every message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_checkpoint: no such file {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"load_checkpoint: cannot read {path} ({exc.strerror or exc})") from None
    try:
        state, verified = deserialize(data, str(path))
    except ValueError as exc:
        raise ValueError(f"load_checkpoint: {exc}") from None
    if not isinstance(state, dict):
        raise ValueError(f"load_checkpoint: {path} is not a convolab training checkpoint (it holds a {type(state).__name__})")
    if not verified and state.get("format") != 1:
        # only the checkpoints written before the digest existed (format 1) may lack it
        raise ValueError(
            f"load_checkpoint: {path} is not a convolab training checkpoint (no integrity digest; "
            f"a model file such as model.pt is loaded with convolab.models.create_model(name, weights=...))"
        )
    require_entries(state, path, required)
    return state


def require_entries(state: dict[str, Any], path: PathLike, required: Iterable[str]) -> None:
    """Raise a ValueError naming ``path`` and every entry of ``required`` that ``state`` lacks."""
    required = list(required)
    missing = [k for k in required if k not in state]
    if missing:
        raise ValueError(
            f"load_checkpoint: {path} has no {', '.join(repr(k) for k in missing)} "
            f"entr{'y' if len(missing) == 1 else 'ies'} (a training checkpoint has "
            f"{', '.join(required)}); it was not written by convolab train or was edited: {_REMEDY}"
        )


def first_nonfinite(tensors: Iterable[tuple[str, Any]]) -> Optional[str]:
    """``"NaN in <name>"`` (or ``"inf in <name>"``) for the first floating tensor holding one, else None."""
    for name, t in tensors:
        if isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
            kind = "NaN" if bool(torch.isnan(t).any()) else "inf"
            return f"{kind} in {name}"
    return None


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
