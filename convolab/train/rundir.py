"""One run per output folder, and no earlier run replaced without being asked.

:func:`claim_output_dir` is called by ``convolab train``, ``convolab ablate`` and ``convolab
demo`` (and by :func:`convolab.train.fit`) before any work. It

- checks the folder can be used: not a file, not under a file, creatable and writable (the
  message names the option, e.g. ``--out``);
- takes the folder's lock file ``.convolab.lock``, which records the owner's pid, host, command
  and start time. The lock is an exclusive ``flock`` held for the run's lifetime, so the kernel
  releases it when its owner dies however it dies: a lock file left by a dead process (a
  *stale* lock) is taken over; one held by a live run makes the second run fail with a message
  naming the owner, before it touches any file. On file systems without ``flock`` the owner's
  pid is checked instead (a dead pid on this host is stale);
- refuses a folder that already holds an earlier run's files unless the caller resumes it or
  asked to overwrite it.

Releasing the claim removes the lock file, and the folders the claim created if nothing was
written into them (a run that fails at its first check leaves no empty folders behind).
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

try:
    import fcntl
except ImportError:  # pragma: no cover  (Windows: the pid check alone)
    fcntl = None  # type: ignore[assignment]

PathLike = Union[str, "os.PathLike[str]"]
LOCK_NAME = ".convolab.lock"


class OutputDirError(ValueError):
    """The output folder cannot be used: another run holds it, it holds an earlier run, or it cannot be written."""


@dataclass
class OutputClaim:
    """This process's hold on an output folder; :meth:`release` (or leaving the ``with`` block) ends it.

    Attributes:
        path: the folder.
        op: the command that holds it ("train", "ablate", "demo").
        existing: files and folders of an earlier run found there (names relative to ``path``).
        stale_owner: the owner recorded in a stale lock this claim took over (pid, host, op, started).
    """

    path: Path
    op: str
    existing: tuple[str, ...] = ()
    stale_owner: Optional[dict[str, Any]] = None
    _created: list[Path] = field(default_factory=list, repr=False)
    _fd: Optional[int] = field(default=None, repr=False)

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_NAME

    def release(self) -> None:
        """Remove the lock file, release the lock, and remove the folders the claim created if still empty."""
        if self._fd is not None:
            try:
                # unlink before unlocking: a waiting process must never lock a file that is then deleted
                if os.stat(self.lock_path).st_ino == os.fstat(self._fd).st_ino:
                    os.unlink(self.lock_path)
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None
        for folder in reversed(self._created):
            try:
                folder.rmdir()  # only succeeds when empty
            except OSError:
                break
        self._created = []

    def __enter__(self) -> "OutputClaim":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except (OSError, OverflowError):
        return False
    return True


def _read_owner(fd: int) -> Optional[dict[str, Any]]:
    try:
        raw = os.pread(fd, 4096, 0) if hasattr(os, "pread") else b""
        owner = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


def _describe(owner: Optional[dict[str, Any]]) -> str:
    if not owner:
        return "another process"
    parts = [f"convolab {owner.get('op', '?')}", f"pid {owner.get('pid', '?')}"]
    if owner.get("host"):
        parts[-1] += f" on {owner['host']}"
    if owner.get("started"):
        parts.append(f"started {owner['started']}")
    return ", ".join(parts)


def _try_lock(fd: int) -> Optional[bool]:
    """True: locked; False: held by another open file; None: this file system has no flock."""
    if fcntl is None:  # pragma: no cover
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return None
        raise
    return True


def _first_existing(path: Path) -> tuple[Path, list[Path]]:
    """The nearest existing ancestor-or-self of ``path`` and the missing folders below it, top first."""
    missing = []
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    return probe, missing[::-1]


def claim_output_dir(
    path: PathLike,
    *,
    resume: bool = False,
    overwrite: bool = False,
    op: str = "train",
    products: Sequence[str] = (),
    option: str = "--out",
    resumable: bool = True,
    kind: str = "run",
) -> OutputClaim:
    """Create (if needed), lock and check an output folder before a run writes into it.

    Args:
        path: the folder.
        resume: the run continues what the folder holds (its files may be there).
        overwrite: the run replaces what the folder holds (the caller removes or rewrites it).
        op: the command, for messages ("train", "ablate", "demo").
        products: glob patterns (relative to ``path``) of the files and folders a run of ``op``
            writes; finding one means the folder holds an earlier run.
        option: the command-line option that named the folder, for messages.
        resumable: whether ``op`` has a ``--resume`` to suggest.
        kind: what ``op`` leaves in the folder, for messages ("run", "ablation", "demo").

    Returns:
        An :class:`OutputClaim`; call ``release()`` (or use it in a ``with`` block) when done.

    Raises:
        OutputDirError (a ValueError): both ``resume`` and ``overwrite``; the path is or is under a
            file; it cannot be created or written; another live run holds it; or it holds an
            earlier run and neither ``resume`` nor ``overwrite`` is set.

    Example:
        >>> import tempfile
        >>> with claim_output_dir(tempfile.mkdtemp(), op="train", products=["last.pt"]) as claim:
        ...     (claim.path / LOCK_NAME).is_file()
        True
    """
    if resume and overwrite:
        raise OutputDirError(f"{op}: --resume and --overwrite exclude each other: continue the run or replace it")
    path = Path(path)
    top, missing = _first_existing(path)
    if not top.is_dir():
        where = f"{option} {path} is a file" if top == path else f"{option} {path}: {top} is a file"
        raise OutputDirError(f"{op}: {where}, not a folder; choose a folder for {option}")
    claim = OutputClaim(path, op)
    try:
        for folder in missing:
            try:
                folder.mkdir()
            except OSError as exc:
                raise OutputDirError(
                    f"{op}: {option} {path}: cannot create the folder {folder} ({exc.strerror or exc})"
                ) from None
            claim._created.append(folder)
        _lock(claim, option)
        found = sorted({str(p.relative_to(path)) for pattern in products for p in path.glob(pattern)})
        claim.existing = tuple(found)
        if found and not (resume or overwrite):
            shown = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
            how = "continue it with --resume or replace it with --overwrite" if resumable else "replace it with --overwrite"
            raise OutputDirError(
                f"{op}: {option} {path} already holds an earlier {kind} ({shown}); {how}, or choose another {option}"
            )
    except BaseException:
        claim.release()
        raise
    return claim


def _lock(claim: OutputClaim, option: str) -> None:
    lock_path = claim.lock_path
    for _ in range(100):  # a retry per lock file deleted under us by its releasing owner
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise OutputDirError(
                f"{claim.op}: {option} {claim.path}: cannot write there ({exc.strerror or exc})"
            ) from None
        try:
            locked = _try_lock(fd)
            owner = _read_owner(fd)
            if locked is False:
                raise OutputDirError(
                    f"{claim.op}: {option} {claim.path} is in use by another run ({_describe(owner)}); "
                    f"wait for it to finish or choose another {option}"
                )
            if locked is None and owner and owner.get("pid") != os.getpid():
                # no flock here: a live pid on this host, or any pid on another host, still owns it
                other_host = owner.get("host") != socket.gethostname()
                pid = owner.get("pid")
                if other_host or (isinstance(pid, int) and _pid_alive(pid)):
                    raise OutputDirError(
                        f"{claim.op}: {option} {claim.path} is in use by another run ({_describe(owner)}); "
                        f"wait for it to finish, or delete {lock_path} if that run is gone"
                    )
            if locked and os.stat(lock_path).st_ino != os.fstat(fd).st_ino:
                os.close(fd)  # its owner released and deleted the file between our open and lock
                continue
        except BaseException:
            if fd is not None:
                os.close(fd)
            raise
        if owner and owner.get("pid") is not None:
            claim.stale_owner = owner
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "op": claim.op,
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
        claim._fd = fd
        return
    raise OutputDirError(f"{claim.op}: {option} {claim.path}: could not take the lock {lock_path}")  # pragma: no cover
