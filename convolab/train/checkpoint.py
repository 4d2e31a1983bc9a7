"""Verified training checkpoints: what they hold, writing and reading them, and whether a run can resume one.

A checkpoint is written atomically (:func:`convolab.train.atomic.atomic_write`): a kill at
any moment leaves either the previous checkpoint or the new one, never a torn file.

Format (2): the zip archive ``torch.save`` writes, plus one member
``<archive>/.convolab/sha256`` holding the SHA-256 of every other member (name and bytes, in
archive order). ``torch.load`` reads such a file as usual; :func:`load_checkpoint` first
recomputes the digest and refuses a file whose bytes changed after it was written (a bit
flip, a truncation, another program's file). Checkpoints of format 1 (convolab before the
digest) carry no digest: they are loaded without that check.

A training checkpoint is a dict with the entries ``format``, ``config`` (the
:class:`~convolab.train.TrainConfig` as a dict), ``model``, ``optimizer`` and ``scheduler``
(state dicts), ``epoch`` and ``step`` (where the run stands: ``step`` > 0 inside an epoch),
``history`` (one metrics dict per finished epoch), ``ranks`` (per process: its random state
``rng`` and the epoch's partial sums ``sums``), ``mining`` (hard-example mining runs only:
the rounds' state) and ``data`` (what the model was trained on: classes, channels, size,
mean, std, source). This module alone writes and reads them:
:func:`save_training_checkpoint`, :func:`load_training_checkpoint` (with
:func:`check_resumable`) and :class:`TrainingCheckpoint`, which puts them back.
"""

from __future__ import annotations

import hashlib
import io
import random
import zipfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import Tensor, nn

from .._args import nonnegative_int
from ..data import DataSplit
from ..models import canonical_name
from .atomic import PathLike, atomic_write, atomic_write_text, file_mode
from .config import TrainConfig

__all__ = [
    "CHECKPOINT_ENTRIES",
    "FORMAT",
    "RESUMABLE_CHANGES",
    "NonFiniteError",
    "TrainingCheckpoint",
    "atomic_write",
    "atomic_write_text",
    "check_resumable",
    "deserialize",
    "file_mode",
    "first_nonfinite",
    "load_checkpoint",
    "load_training_checkpoint",
    "process_state",
    "require_entries",
    "rng_state",
    "save_checkpoint",
    "save_training_checkpoint",
    "serialize",
    "set_rng_state",
]

FORMAT = 2  # the "format" entry of the checkpoints fit writes
# The entries of a training checkpoint; resuming needs every one.
CHECKPOINT_ENTRIES = ("config", "model", "optimizer", "scheduler", "epoch", "step", "history", "ranks")
# Settings that may differ between a run and its resumption: they do not change the numbers
# (allow_nonfinite only matters once a value is already non-finite). ``epochs`` may grow too,
# see :func:`convolab.train.fit`.
RESUMABLE_CHANGES = ("workers", "checkpoint_every", "allow_nonfinite", "epochs")
DIGEST_MEMBER = ".convolab/sha256"  # inside the archive's top folder, where torch.load ignores it
_DIGEST_PREFIX = b"sha256:"
# what a damaged file's message suggests
_REMEDY = "restore it from a copy, or start the run again with --overwrite"
_ZIP_MAGIC = b"PK\x03\x04"


class NonFiniteError(ValueError):
    """Training produced a NaN or infinite loss or weight (raised unless ``allow_nonfinite``)."""


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


# --------------------------------------------------------------------------- the training checkpoint


def process_state(sums: Tensor) -> dict[str, Any]:
    """This process's entry of ``ranks``: its random state and the epoch's partial sums (copied)."""
    return {"rng": rng_state(), "sums": sums.clone()}


def save_training_checkpoint(
    path: PathLike,
    *,
    config: TrainConfig,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    epoch: int,
    step: int,
    history: list[dict[str, Any]],
    ranks: list[dict[str, Any]],
    data: DataSplit,
    mining: Optional[dict[str, Any]] = None,
) -> Path:
    """Write the whole state of a run at ``(epoch, step)`` as a training checkpoint (see the module docstring).

    Args:
        path: the file (written atomically, with its digest).
        config, model, optimizer, scheduler: the run's settings and what they hold now.
        epoch, step: where the run stands (``step`` 0: at the end of ``epoch`` finished epochs).
        history: the metrics of every finished epoch.
        ranks: every process's :func:`process_state`, in rank order.
        data: the dataset the model trains on (its classes, channels, size, normalisation, source).
        mining: the hard-example mining rounds' state (None: not a mining run).

    Returns:
        ``path`` as a Path.
    """
    return save_checkpoint(path, {
        "format": FORMAT,
        "config": asdict(config),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "step": step,
        "history": history,
        "ranks": ranks,
        **({"mining": mining} if mining is not None else {}),
        "data": {"classes": data.classes, "channels": data.channels, "size": list(data.size),
                 "mean": data.mean, "std": data.std, "source": data.source},
    })


@dataclass
class TrainingCheckpoint:
    """A training checkpoint read back to resume a run; its ``restore_*`` methods put the state back.

    Attributes:
        path: the file.
        entries: its entries, checked by :func:`check_resumable`.
    """

    path: Path
    entries: dict[str, Any]

    @property
    def epoch(self) -> int:
        """Finished epochs (the epoch under way when ``step`` > 0)."""
        return self.entries["epoch"]

    @property
    def step(self) -> int:
        """Steps done in the epoch under way (0: at an epoch's end)."""
        return self.entries["step"]

    @property
    def history(self) -> list[dict[str, Any]]:
        """The metrics of every finished epoch (a copy the run may extend)."""
        return list(self.entries["history"])

    @property
    def mining(self) -> Optional[dict[str, Any]]:
        """The hard-example mining rounds' state, or None when the checkpoint holds none."""
        return self.entries.get("mining")

    def restore_model(self, model: nn.Module, name: str) -> None:
        """Load the weights into ``model`` (registered as ``name``).

        Raises:
            ValueError: the weights do not fit the model.
        """
        try:
            model.load_state_dict(self.entries["model"])
        except RuntimeError as exc:
            raise ValueError(f"train: checkpoint {self.path} does not fit model {name!r}: {str(exc).splitlines()[0]}") from None

    def restore_optimizer(self, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
        """Load the optimizer's and the scheduler's state.

        Raises:
            ValueError: either state does not fit this run's optimizer or scheduler.
        """
        try:
            optimizer.load_state_dict(self.entries["optimizer"])
            scheduler.load_state_dict(self.entries["scheduler"])
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise ValueError(
                f"train: checkpoint {self.path}: its optimizer or scheduler state does not fit this run "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            ) from None

    def restore_process(self, rank: int, world_size: int) -> Tensor:
        """Put back process ``rank``'s random state; return its partial sums of the epoch under way.

        Raises:
            ValueError: the checkpoint was written by another number of processes.
        """
        ranks = self.entries["ranks"]
        if len(ranks) != world_size:
            raise ValueError(
                f"train: checkpoint {self.path} was written by {len(ranks)} processes, now {world_size}; "
                f"resume with the same number of processes"
            )
        sums = ranks[rank]["sums"].clone()
        set_rng_state(ranks[rank]["rng"])
        return sums


def load_training_checkpoint(path: PathLike, config: TrainConfig) -> TrainingCheckpoint:
    """Load a training checkpoint and check that ``config``'s run can resume from it.

    Raises:
        FileNotFoundError: no such file.
        ValueError, NonFiniteError: as :func:`load_checkpoint` and :func:`check_resumable`.
    """
    path = Path(path)
    state = load_checkpoint(path)
    check_resumable(state, config, path)
    return TrainingCheckpoint(path, state)


def check_resumable(state: dict[str, Any], config: TrainConfig, path: Path) -> None:
    """Refuse a checkpoint of another architecture or run, with malformed entries, or non-finite values.

    Args:
        state: the checkpoint's entries (as :func:`load_checkpoint` returns them).
        config: the settings of the run that would resume it.
        path: the file, for the messages.

    Raises:
        ValueError: another model or other settings (but :data:`RESUMABLE_CHANGES`), a missing
            or malformed entry, or fewer epochs than the checkpoint has trained.
        NonFiniteError: NaN or inf in the weights or the optimizer state (unless
            ``config.allow_nonfinite``).
    """
    saved = state["config"]
    if not isinstance(saved, dict):
        raise ValueError(f"train: checkpoint {path}: its 'config' entry is not a dict; it cannot be resumed")
    # the most telling difference first; a model's old name (an alias) resumes the same architecture
    if canonical_name(str(saved.get("model"))) != canonical_name(config.model):
        raise ValueError(
            f"train: checkpoint {path} was written for model {saved.get('model')!r}, not {config.model!r} "
            f"(a checkpoint only resumes the architecture that wrote it)"
        )
    require_entries(state, path, CHECKPOINT_ENTRIES)
    if not isinstance(state["model"], dict) or not isinstance(state["history"], list):
        raise ValueError(f"train: checkpoint {path}: its 'model' entry must be a state dict and 'history' a list")
    for name in ("epoch", "step"):
        nonnegative_int(state[name], f"entry {name!r}", f"train: checkpoint {path}")
    if not isinstance(state["ranks"], list) or not all(isinstance(r, dict) and {"rng", "sums"} <= r.keys() for r in state["ranks"]):
        raise ValueError(f"train: checkpoint {path}: entry 'ranks' must list each process's 'rng' and 'sums'")
    current = asdict(config)
    saved = {**saved, "model": current["model"]}  # compared above, alias-aware
    changed = [
        f"{k}={saved.get(k)!r} (now {current[k]!r})"
        for k in current
        if k not in RESUMABLE_CHANGES and saved.get(k, current[k]) != current[k]
    ]
    if changed:
        raise ValueError(
            f"train: checkpoint {path} belongs to a run with other settings: {', '.join(changed)}; "
            f"resume with the same settings or start a new --out folder"
        )
    if config.mining_rounds and saved.get("epochs", config.epochs) != config.epochs:
        raise ValueError(
            f"train: checkpoint {path} belongs to a hard-example mining run of {saved.get('epochs')!r} epochs per "
            f"round, now {config.epochs!r}: the rounds would no longer line up; resume with the same --epochs"
        )
    mining = state.get("mining")
    if config.mining_rounds and mining is not None and not (
            isinstance(mining, dict) and {"started", "mined", "stats", "rounds"} <= mining.keys()):
        raise ValueError(f"train: checkpoint {path}: entry 'mining' must hold 'started', 'mined', 'stats' and 'rounds'")
    done = state["epoch"] + (1 if state["step"] else 0)  # a mid-epoch checkpoint needs its epoch finished
    if config.total_epochs < done:
        raise ValueError(
            f"train: checkpoint {path} has {'reached epoch ' + str(done) if state['step'] else f'trained {done} epochs'}; "
            f"epochs must be >= {done} to resume it, got {config.epochs}"
        )
    if not config.allow_nonfinite:
        optimizer_state = state["optimizer"].get("state", {}) if isinstance(state["optimizer"], dict) else {}
        bad = first_nonfinite(
            [(f"model entry {k!r}", v) for k, v in state["model"].items()]
            + [(f"optimizer state of parameter {i} ({k})", v) for i, d in optimizer_state.items() for k, v in d.items()]
        )
        if bad:
            raise NonFiniteError(
                f"train: checkpoint {path} holds non-finite values ({bad}); training from it would spread them "
                f"to every weight: resume from an earlier copy, or start again with --overwrite"
            )
