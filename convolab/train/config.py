"""The settings of a training run: :class:`TrainConfig`, the choices and ranges it is checked against.

A config is plain data (saved as a dict in every checkpoint): :meth:`TrainConfig.validate`
checks every value's type, range and finiteness before any work, with one message per
setting that names the rule and the value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Optional, Union

from .._args import check_choice, is_int, suggest
from ..models import list_models

__all__ = [
    "MAX_IMAGE_SIZE",
    "MAX_MINING_ROUNDS",
    "MAX_MINING_WEIGHT",
    "MAX_SEED",
    "MAX_WORKERS",
    "MINING_SELECT",
    "OPTIMIZERS",
    "SCHEDULERS",
    "SIZE_SCHEDULES",
    "TrainConfig",
    "config_fields",
]

OPTIMIZERS = ("sgd", "adamw")
SCHEDULERS = ("cosine", "none")
SIZE_SCHEDULES = ("epoch", "batch")
MINING_SELECT = ("hard", "random")  # what a mining round adds: the model's mistakes, or the random control

# Range limits of the settings, each with its reason.
MAX_SEED = 2**63 - 1  # torch and the samplers take 64-bit seeds; seed + epoch and seed + rank must fit
MAX_IMAGE_SIZE = 4096  # a 4096x4096 batch of 64 RGB float images is already 12 GiB
MAX_WORKERS = 64  # DataLoader processes: more only fork-bombs the machine
MAX_MINING_ROUNDS = 100  # each round is a whole training run
MAX_MINING_WEIGHT = 100  # a mined example repeated more often would be most of every epoch


@dataclass
class TrainConfig:
    """Everything that determines a training run (saved in every checkpoint).

    Attributes:
        model: registry name (``convolab.models.list_models()``).
        data: "digits", "mnist:PATH" or "folder:PATH".
        epochs: passes over the training set.
        batch_size: the global batch (divided among ``torchrun`` processes).
        lr: peak learning rate. weight_decay, momentum: optimizer settings (momentum: SGD only).
        optimizer: "sgd" (Nesterov momentum) or "adamw".
        scheduler: "cosine" (per step, to zero) or "none".
        hard_mining: back-propagate only this hardest fraction of each batch (None: all).
        augment_shift: random translation of each image by up to this many pixels (0: off); at
            most a quarter of the images' smaller side (7 for 28x28), beyond which a shifted
            image loses much of its content.
        val_fraction: share held out when the dataset has no test set of its own, in [0, 1);
            0 is refused for such a dataset (no held-out set would be left to measure accuracy).
        limit: use at most this many training (and at most this many held-out) images.
        image_size: resize images to this square size, 1 to 4096 (default: the dataset's size);
            a list of sizes (e.g. ``[28, 24, 32]``) trains at each in turn (SPP-net's multi-size
            training), for models whose head takes any size (spatial pyramid or global pooling).
            Held-out accuracy is measured at the first size (``val_accuracy``) and at each other
            one (``val_accuracy@24``, ...).
        size_schedule: with several sizes, switch size every "epoch" (epoch ``e`` trains at
            ``image_size[e % len]``) or every "batch" (step ``t`` at ``image_size[t % len]``).
        mining_rounds: offline hard-example mining: rounds of retraining after the first training
            (0: off). Each round runs the model over the pool, adds its mistakes to the training
            set and trains again from the same initial weights for ``epochs`` epochs, so a run
            trains ``epochs * (mining_rounds + 1)`` epochs (:mod:`convolab.train.mining`).
        mining_pool: share of the training images held back as the pool, in (0, 1).
        mining_per_round: at most this many pool examples added per round, >= 1.
        mining_weight: how many times each added example appears in the training set, 1 to 100.
        mining_select: "hard" (the model's most confident mistakes) or "random" (as many random
            pool images: the control that tells hardness from more data).
        seed: seeds the weights, the split, the data order and the augmentation; 0 to 2**63 - 1.
        checkpoint_every: also checkpoint every this many steps (0: only at epoch ends).
        sync_bn: batch-norm statistics over the global batch under ``torchrun``.
        workers: DataLoader worker processes for image folders (0: load in the main process), at most 64.
        deterministic: ``torch.use_deterministic_algorithms`` during the run.
        allow_nonfinite: keep training after a NaN or infinite loss (default: stop at the first one).
    """

    model: str = "mnist_cnn"
    data: str = "digits"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    scheduler: str = "cosine"
    hard_mining: Optional[float] = None
    augment_shift: int = 0
    val_fraction: float = 0.2
    limit: Optional[int] = None
    image_size: Optional[Union[int, list[int]]] = None
    seed: int = 0
    checkpoint_every: int = 0
    sync_bn: bool = False
    workers: int = 0
    deterministic: bool = True
    allow_nonfinite: bool = False
    size_schedule: str = "epoch"
    mining_rounds: int = 0
    mining_pool: float = 0.2
    mining_per_round: int = 100
    mining_weight: int = 2
    mining_select: str = "hard"

    def __post_init__(self) -> None:
        # one spelling of the sizes, so a run and its checkpoint compare equal: an int, or a list
        if isinstance(self.image_size, (list, tuple)):
            sizes = list(self.image_size)
            self.image_size = sizes[0] if len(sizes) == 1 else sizes

    @property
    def sizes(self) -> Optional[list[int]]:
        """The training sizes as a list (the first is the evaluation size), or None."""
        if self.image_size is None:
            return None
        return list(self.image_size) if isinstance(self.image_size, list) else [self.image_size]

    @property
    def data_size(self) -> Optional[int]:
        """The size images are loaded at (image folders): the largest training size."""
        return max(self.sizes) if self.sizes else None

    @property
    def total_epochs(self) -> int:
        """Epochs of the whole run: ``epochs`` per round of training."""
        return self.epochs * (self.mining_rounds + 1)

    def size_at(self, epoch: int, step: int, steps_per_epoch: int) -> Optional[int]:
        """The training size of step ``step`` (0-based) of epoch ``epoch`` (None: the data's own)."""
        sizes = self.sizes
        if sizes is None:
            return None
        turn = epoch if self.size_schedule == "epoch" else epoch * steps_per_epoch + step
        return sizes[turn % len(sizes)]

    def validate(self, *, options: bool = False) -> "TrainConfig":
        """Check every value's type, range and finiteness before any work.

        Args:
            options: name the settings as the command line's options (``--lr``) instead of
                ``train: lr``, for ``convolab train``'s one-line errors.

        Returns:
            ``self``.

        Raises:
            ValueError: a value out of its range, not finite, or an unknown name; the message
                names the setting, the rule and the value, e.g.
                ``train: lr must be a finite number > 0, got inf``.
            TypeError: a value of the wrong type (e.g. a float epoch count).
        """
        prefix = "" if options else "train: "

        def label(name: str) -> str:
            return "--" + name.replace("_", "-") if options else name

        def integer(name: str, low: int, high: Optional[int] = None, high_text: str = "") -> None:
            value = getattr(self, name)
            if value is None and name in ("limit", "image_size"):
                return
            rule = f"an int >= {low}" if high is None else f"an int in [{low}, {high_text or high}]"
            if not is_int(value) or value < low or (high is not None and value > high):
                raise ValueError(f"{prefix}{label(name)} must be {rule}, got {value!r}")

        def number(name: str, rule: str, ok: Any) -> None:
            value = getattr(self, name)
            if value is None and name == "hard_mining":
                return
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
                raise ValueError(f"{prefix}{label(name)} must be {rule}, got {value!r}")

        for name in ("model", "data", "optimizer", "scheduler", "size_schedule", "mining_select"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"train: {name} must be a str, got {getattr(self, name)!r}")
        for name in ("sync_bn", "deterministic", "allow_nonfinite"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"train: {name} must be True or False, got {getattr(self, name)!r}")
        if self.model not in list_models(aliases=True):  # not check_choice: listing ~30 names would drown the line
            raise ValueError(
                f"{prefix}unknown model {self.model!r}{suggest(self.model, list_models())} "
                f"(`convolab models` lists all {len(list_models())})"
            )
        for name, choices in (("optimizer", OPTIMIZERS), ("scheduler", SCHEDULERS), ("size_schedule", SIZE_SCHEDULES),
                              ("mining_select", MINING_SELECT)):
            try:
                check_choice(getattr(self, name), choices, label(name), "train")
            except ValueError as exc:
                raise ValueError(f"{prefix}{str(exc).removeprefix('train: ')}") from None
        integer("epochs", 1)
        integer("batch_size", 1)
        integer("augment_shift", 0)
        integer("checkpoint_every", 0)
        integer("workers", 0, MAX_WORKERS)
        integer("limit", 1)
        if isinstance(self.image_size, list):
            shown = ",".join(map(str, self.image_size)) if options else repr(self.image_size)
            if not self.image_size or not all(is_int(v) and 1 <= v <= MAX_IMAGE_SIZE for v in self.image_size):
                raise ValueError(f"{prefix}{label('image_size')} must be sizes in [1, {MAX_IMAGE_SIZE}], got {shown}")
            if len(set(self.image_size)) != len(self.image_size):
                raise ValueError(f"{prefix}{label('image_size')} lists a size twice, got {shown}")
        else:
            integer("image_size", 1, MAX_IMAGE_SIZE)
        integer("seed", 0, MAX_SEED, "2**63 - 1")
        integer("mining_rounds", 0, MAX_MINING_ROUNDS)
        integer("mining_per_round", 1)
        integer("mining_weight", 1, MAX_MINING_WEIGHT)
        number("mining_pool", "a fraction in (0, 1)", lambda v: 0 < v < 1)
        number("lr", "a finite number > 0", lambda v: v > 0)
        number("momentum", "a finite number in [0, 1)", lambda v: 0 <= v < 1)
        number("weight_decay", "a finite number >= 0", lambda v: v >= 0)
        number("hard_mining", "a fraction in (0, 1]", lambda v: 0 < v <= 1)
        number("val_fraction", "a finite number in [0, 1)", lambda v: 0 <= v < 1)
        return self


def config_fields() -> list[str]:
    """Names of the :class:`TrainConfig` settings, in order."""
    return [f.name for f in fields(TrainConfig)]
