"""The training loop: any registered model, any dataset spec, exact resume, data-parallel.

One epoch is: the sampler's permutation for (seed, epoch), cut into batches; for each batch
forward, cross-entropy (optionally only on the hardest fraction), backward, optimizer and
scheduler step; then an evaluation on the held-out set. Every ``checkpoint_every`` steps and
at the end of every epoch the whole state (model, optimizer, scheduler, RNG states, epoch,
step, partial sums) is saved atomically, so ``resume=True`` continues bit for bit.

Nothing is lost or silently wrong: one run at a time per output folder (a lock), an earlier
run is replaced only when asked (``overwrite=True``), a damaged or non-finite checkpoint is
refused, and training stops at the first non-finite loss (unless ``allow_nonfinite``) with the
last good checkpoint kept.

Under ``torchrun`` each process takes every ``world_size``-th sample of the permutation
(``DistributedSampler``) and ``batch_size / world_size`` of each global batch; DDP averages
the gradients, so one step sees exactly the samples of a single-process step with the same
global batch (when the training set size is divisible by the number of processes; otherwise
``DistributedSampler`` repeats a few samples to even out the shards).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .._args import _is_int, check_choice, suggest
from ..data import DataSplit, ImageTensors, load_dataset
from .checkpoint import (
    FORMAT, atomic_write_text, first_nonfinite, load_checkpoint, require_entries, rng_state, save_checkpoint, set_rng_state,
)
from .distributed import (
    DistInfo,
    all_gather_object,
    all_reduce_sum,
    convert_sync_batchnorm,
    setup,
    teardown,
)
from .mining import MINING_SELECT, confusion_matrix, mine, split_pool, with_examples
from .rundir import OutputClaim, OutputDirError, claim_output_dir

OPTIMIZERS = ("sgd", "adamw")
SCHEDULERS = ("cosine", "none")
CHECKPOINT_NAME = "last.pt"
WEIGHTS_NAME = "model.pt"
METRICS_NAMES = ("metrics.csv", "metrics.json")
# What a run writes into its folder: finding one of these there means an earlier run.
RUN_PRODUCTS = (CHECKPOINT_NAME, WEIGHTS_NAME, *METRICS_NAMES)
# The entries of a training checkpoint; resuming needs every one.
CHECKPOINT_ENTRIES = ("config", "model", "optimizer", "scheduler", "epoch", "step", "history", "ranks")
# Settings that may differ between a run and its resumption: they do not change the numbers
# (allow_nonfinite only matters once a value is already non-finite). ``epochs`` may grow too,
# see :func:`fit`.
RESUMABLE_CHANGES = ("workers", "checkpoint_every", "allow_nonfinite", "epochs")
# Range limits of the settings, each with its reason.
MAX_SEED = 2**63 - 1  # torch and the samplers take 64-bit seeds; seed + epoch and seed + rank must fit
MAX_IMAGE_SIZE = 4096  # a 4096x4096 batch of 64 RGB float images is already 12 GiB
MAX_WORKERS = 64  # DataLoader processes: more only fork-bombs the machine
MAX_MINING_ROUNDS = 100  # each round is a whole training run
MAX_MINING_WEIGHT = 100  # a mined example repeated more often would be most of every epoch
SIZE_SCHEDULES = ("epoch", "batch")


class NonFiniteError(ValueError):
    """Training produced a NaN or infinite loss or weight (raised unless ``allow_nonfinite``)."""


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
        from ..models import list_models

        prefix = "" if options else "train: "

        def label(name: str) -> str:
            return "--" + name.replace("_", "-") if options else name

        def integer(name: str, low: int, high: Optional[int] = None, high_text: str = "") -> None:
            value = getattr(self, name)
            if value is None and name in ("limit", "image_size"):
                return
            rule = f"an int >= {low}" if high is None else f"an int in [{low}, {high_text or high}]"
            if not _is_int(value) or value < low or (high is not None and value > high):
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
            if not self.image_size or not all(_is_int(v) and 1 <= v <= MAX_IMAGE_SIZE for v in self.image_size):
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


class Callback:
    """Hooks called by :func:`fit` on the main process (override the ones you need)."""

    def on_start(self, summary: dict[str, Any]) -> None:
        """Before the first step: model, params, data source, train/held-out sizes, processes, resumed_from,
        epochs, already_finished, checkpoint (its path) and saved ((epoch, step) it holds now, or None)."""

    def on_epoch_start(self, epoch: int, epochs: int, steps: int, start_step: int) -> None: ...

    def on_step(self, epoch: int, step: int, loss: float, accuracy: float) -> None: ...

    def on_epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None: ...

    def on_checkpoint(self, path: Path, epoch: int, step: int) -> None: ...

    def on_round(self, round: int, rounds: int, summary: dict[str, Any]) -> None:
        """Hard-example mining: round ``round`` (1-based, of ``rounds``) starts; ``summary`` holds
        what the pass over the pool found (``added``, ``pool``, ``pool_errors``,
        ``false_positives_by_class``) and ``train_images``, the size of the new training set."""


@dataclass
class TrainResult:
    """What :func:`fit` did and where it put things."""

    config: TrainConfig
    history: list[dict[str, Any]]
    out: Path
    checkpoint: Path
    weights: Path
    metrics_csv: Path
    metrics_json: Path
    data_source: str
    num_params: int
    resumed_from: Optional[tuple[int, int]] = None  # (epoch, step) of the checkpoint
    seconds: float = 0.0
    world_size: int = 1
    already_finished: bool = False  # resumed a run that had trained all its epochs: nothing was trained
    mining: Optional[dict[str, Any]] = None  # hard-example mining: per-round pool passes and results

    @property
    def rounds(self) -> list[dict[str, Any]]:
        """Hard-example mining: each finished round's ``train_images``, ``val_accuracy`` and held-out
        ``confusion`` matrix (``[true][predicted]`` counts), with what its pass over the pool added."""
        if not self.mining:
            return []
        found = {s["round"]: s for s in self.mining["stats"]}
        return [{**r, **{k: v for k, v in found.get(r["round"], {}).items() if k != "round"}}
                for r in self.mining["rounds"]]

    @property
    def val_accuracy(self) -> float:
        return self.history[-1]["val_accuracy"] if self.history else float("nan")


class InputPipeline(nn.Module):
    """Batch images in [0, 1] -> what the model eats: optional random shift, channels, size, normalisation.

    Gray images are repeated to 3 channels (or RGB averaged to 1) when the model expects it;
    ``size`` resizes bilinearly. ``shift`` translates every image by its own random offset of up
    to ``shift`` pixels in training mode, drawing from torch's global generator (saved in
    checkpoints), and is a no-op in eval mode.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], channels: int, size: Optional[tuple[int, int]], shift: int = 0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.channels, self.size, self.shift = channels, size, shift

    def forward(self, x: Tensor) -> Tensor:
        if self.training and self.shift:
            x = _random_shift(x, self.shift)
        x = (x - self.mean) / self.std
        if x.shape[1] != self.channels:
            x = x.mean(1, keepdim=True) if self.channels == 1 else x.expand(-1, self.channels, -1, -1)
        if self.size is not None and tuple(x.shape[2:]) != tuple(self.size):
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return x


def _random_shift(x: Tensor, s: int) -> Tensor:
    n, _, h, w = x.shape
    padded = F.pad(x, (s, s, s, s))
    # drawn on the CPU generator (the one checkpoints save) whatever the device of x
    dy, dx = torch.randint(0, 2 * s + 1, (2, n, 1, 1)).to(x.device)
    rows = (dy + torch.arange(h, device=x.device).view(1, h, 1)).expand(n, h, w)
    cols = (dx + torch.arange(w, device=x.device).view(1, 1, w)).expand(n, h, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1).expand(n, h, w)
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2)


def check_data(config: TrainConfig, data: DataSplit) -> None:
    """Check the settings that depend on the data: the shift against the image size, a held-out set.

    Raises:
        ValueError: ``augment_shift`` above a quarter of the images' smaller side (a larger shift
            moves much of the image out of view), or an empty held-out or training set.
    """
    h, w = data.size
    most = min(h, w) // 4
    if config.augment_shift > most:
        raise ValueError(
            f"train: augment_shift must be at most {most} for {h}x{w} images (a quarter of the smaller side: "
            f"a larger shift moves much of the image out of view), got {config.augment_shift}"
        )
    if len(data.train) == 0:
        raise ValueError(f"train: the training set of {data.source} is empty")
    if len(data.val) == 0:
        raise ValueError(
            f"train: the held-out set is empty: {data.source} has no test set of its own and val_fraction "
            f"is {config.val_fraction}; hold out a share of the images (--val-fraction in (0, 1), e.g. 0.2) "
            f"to measure the accuracy"
        )


def _first_in_channels(model: nn.Module) -> Optional[int]:
    for m in model.modules():
        if isinstance(getattr(m, "in_channels", None), int):
            return m.in_channels
    return None


def build_model(config: TrainConfig, data: DataSplit) -> tuple[nn.Module, InputPipeline]:
    """Create the registered model for this data and the pipeline that feeds it.

    The model is asked for ``num_classes`` and ``in_channels`` of the data; a model that
    does not take ``in_channels`` gets converted images (gray <-> RGB). One probe forward on
    two blank images checks that the model takes the input size and returns
    ``[N, num_classes]``.

    Raises:
        ValueError: the model cannot take the data (the message says what to change).
    """
    from ..models import create_model

    try:
        model = create_model(config.model, num_classes=data.num_classes, in_channels=data.channels)
        channels = data.channels
    except TypeError:
        try:
            model = create_model(config.model, num_classes=data.num_classes)
        except TypeError as exc:
            raise ValueError(f"train: model {config.model!r} does not take num_classes ({exc})") from None
        channels = _first_in_channels(model) or data.channels
    sizes = config.sizes
    size = (sizes[0], sizes[0]) if sizes else None
    h, w = size or data.size
    pipeline = InputPipeline(data.mean, data.std, channels, size, config.augment_shift)
    was_training = model.training
    model.eval()
    try:
        for side in (sizes or [None]):
            ph, pw = (side, side) if side else (h, w)
            failing: list[str] = []
            try:
                with torch.no_grad(), _InnermostModule(model, failing):
                    out = model(torch.zeros(2, channels, ph, pw))
            except Exception as exc:  # any failure of the probe means these inputs do not fit
                reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                if sizes and len(sizes) > 1:
                    raise ValueError(_not_any_size(config, model, failing, f"{ph}x{pw}", reason)) from None
                works = None if config.image_size else _working_size(model, channels, max(ph, pw))
                hint = f"--image-size {works} works" if works else "pass an image size it accepts with --image-size"
                raise ValueError(
                    f"train: model {config.model!r} cannot take {channels}x{ph}x{pw} images ({reason}); {hint}"
                ) from None
            if not isinstance(out, Tensor) or tuple(out.shape) != (2, data.num_classes):
                got = list(out.shape) if isinstance(out, Tensor) else type(out).__name__
                if sizes and len(sizes) > 1 and side != sizes[0]:
                    raise ValueError(_not_any_size(config, model, [], f"{ph}x{pw}", f"it returns {got}"))
                raise ValueError(f"train: model {config.model!r} must return logits [N, {data.num_classes}], got {got}")
    finally:
        model.train(was_training)
    return model, pipeline


class _InnermostModule:
    """While active, ``failing`` holds the qualified name of the innermost module still running
    (after an exception: the module that raised it)."""

    def __init__(self, model: nn.Module, failing: list[str]) -> None:
        self.model, self.failing, self.handles = model, failing, []

    def __enter__(self) -> "_InnermostModule":
        stack: list[str] = []
        for name, module in self.model.named_modules():
            def pre(m: nn.Module, args: Any, name: str = name) -> None:
                stack.append(name)
                self.failing[:] = [name]

            def post(m: nn.Module, args: Any, out: Any) -> None:
                stack.pop()
                self.failing[:] = stack[-1:]

            self.handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self.handles:
            h.remove()


def _not_any_size(config: TrainConfig, model: nn.Module, failing: list[str], size: str, reason: str) -> str:
    """The error for several training sizes on a model whose head takes one size: it names the head."""
    if failing and failing[0]:
        module = model.get_submodule(failing[0])
        head = f"its head {failing[0]} ({type(module).__name__}{_shape_of(module)})"
    else:
        head = "its head"
    sizes = ", ".join(map(str, config.sizes or []))
    return (
        f"train: image sizes {sizes} train at several sizes, which needs a head that takes any size (spatial "
        f"pyramid or global pooling before the classifier); model {config.model!r} cannot take {size} images: "
        f"{head} fails ({reason}). Use a model with such a head, e.g. mnist_spp, or one image size"
    )


def _shape_of(module: nn.Module) -> str:
    if isinstance(module, nn.Linear):
        return f", {module.in_features} inputs"
    return ""


def _working_size(model: nn.Module, channels: int, above: int) -> Optional[int]:
    """The smallest usual square input size larger than ``above`` that ``model`` accepts, if any."""
    for size in (32, 64, 96, 128, 160, 224, 299):
        if size <= above:
            continue
        try:
            with torch.no_grad():
                model(torch.zeros(1, channels, size, size))
            return size
        except Exception:  # noqa: BLE001  (any failure: try the next size)
            continue
    return None


def _optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]  # biases and norm scales
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0)
    return torch.optim.AdamW(groups, lr=config.lr)


def _scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, total_steps: int):
    if config.scheduler == "none":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    )


def hard_example_loss(logits: Tensor, target: Tensor, fraction: Optional[float]) -> Tensor:
    """Mean cross-entropy over the hardest ``fraction`` of the batch (online hard example mining).

    Definition: per-sample losses, keep the ``k = ceil(fraction * N)`` largest, average them;
    the easy samples get no gradient. ``fraction=None`` or 1 is the plain mean.

    Example:
        >>> logits = torch.tensor([[4.0, 0.0], [0.0, 4.0], [0.0, 0.0], [-1.0, 1.0]])
        >>> target = torch.tensor([0, 1, 0, 0])
        >>> round(hard_example_loss(logits, target, 0.5).item(), 4)  # the two worst: 2.1269 and 0.6931
        1.41
    """
    losses = F.cross_entropy(logits, target, reduction="none")
    if fraction is None or fraction >= 1:
        return losses.mean()
    k = max(1, math.ceil(fraction * losses.numel()))
    return losses.topk(k).values.mean()


def _batches(dataset: Dataset, indices: list[int], batch_size: int, workers: int, drop_last: bool) -> Iterator[tuple[Tensor, Tensor]]:
    chunks = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    if drop_last and chunks and len(chunks[-1]) < batch_size:
        chunks.pop()
    if isinstance(dataset, ImageTensors):
        for chunk in chunks:
            yield dataset.batch(torch.tensor(chunk, dtype=torch.long))
    else:
        yield from DataLoader(dataset, batch_sampler=chunks, num_workers=workers)


@torch.no_grad()
def evaluate(model: nn.Module, pipeline: InputPipeline, dataset: Dataset, batch_size: int, info: DistInfo = DistInfo(), workers: int = 0) -> dict[str, float]:
    """Loss and accuracy on ``dataset`` (each process takes every ``world_size``-th sample)."""
    was = model.training, pipeline.training
    model.eval()
    pipeline.eval()
    totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, count
    for x, y in _batches(dataset, list(range(info.rank, len(dataset), info.world_size)), batch_size, workers, False):
        x, y = x.to(info.device), y.to(info.device)
        logits = model(pipeline(x))
        totals += torch.tensor(
            [F.cross_entropy(logits, y, reduction="sum").item(), (logits.argmax(1) == y).sum().item(), y.numel()],
            dtype=torch.float64,
        )
    totals = all_reduce_sum(totals, info)
    model.train(was[0])
    pipeline.train(was[1])
    n = max(totals[2].item(), 1)
    return {"val_loss": totals[0].item() / n, "val_accuracy": totals[1].item() / n}


def _evaluate_sizes(model: nn.Module, pipeline: InputPipeline, dataset: Dataset, batch_size: int, info: DistInfo,
                    workers: int, sizes: Optional[list[int]]) -> dict[str, float]:
    """:func:`evaluate` at the first training size, and the accuracy at each other one (``val_accuracy@S``)."""
    if not sizes or len(sizes) == 1:
        return evaluate(model, pipeline, dataset, batch_size, info, workers)
    out: dict[str, float] = {}
    for i, side in enumerate(sizes):
        pipeline.size = (side, side)
        metrics = evaluate(model, pipeline, dataset, batch_size, info, workers)
        if i == 0:
            out.update(metrics)
        else:
            out[f"val_accuracy@{side}"] = metrics["val_accuracy"]
    pipeline.size = (sizes[0], sizes[0])  # mining and the next evaluation see the first size
    return out


def _write_metrics(history: list[dict[str, Any]], csv_path: Path, json_path: Path, summary: dict[str, Any]) -> None:
    buffer = io.StringIO()
    if history:
        writer = csv.DictWriter(buffer, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    atomic_write_text(csv_path, buffer.getvalue())
    atomic_write_text(json_path, json.dumps({**summary, "epochs": history}, indent=2) + "\n")


def _check_resumable(state: dict[str, Any], config: TrainConfig, path: Path) -> None:
    """Refuse a checkpoint of another architecture or run, with malformed entries, or non-finite values."""
    from ..models import canonical_name

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
        if not _is_int(state[name]) or state[name] < 0:
            raise ValueError(f"train: checkpoint {path}: entry {name!r} must be an int >= 0, got {state[name]!r}")
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


def fit(
    config: TrainConfig,
    out: Union[str, Path],
    *,
    resume: Union[bool, str, Path] = False,
    overwrite: bool = False,
    callbacks: Sequence[Callback] = (),
    data: Optional[DataSplit] = None,
) -> TrainResult:
    """Train ``config.model`` on ``config.data``; write checkpoints, weights and metrics to ``out``.

    Before any work the settings are checked and ``out`` is claimed (:func:`claim_output_dir`):
    one run at a time per folder, and a folder holding an earlier run needs ``resume`` or
    ``overwrite``. A resumed run may raise ``config.epochs`` to train further (the cosine
    schedule is then recomputed for the new total, so the result differs from a run started
    with that many epochs; with ``scheduler="none"`` it is the same); resuming a run that has
    trained all its epochs trains nothing and returns its result (``already_finished``).

    Training stops with :class:`NonFiniteError` at the first NaN or infinite loss, before the
    step that would spread it into the weights, and never saves non-finite weights; the last
    checkpoint stays the last good one. ``config.allow_nonfinite`` trains on regardless.

    Args:
        config: the run's settings (validated here).
        out: folder for ``last.pt`` (checkpoint), ``model.pt`` (final weights), ``metrics.csv``/``.json``.
        resume: True to continue from ``out/last.pt``, or the path of a checkpoint.
        overwrite: replace an earlier run in ``out`` (its checkpoint, weights and metrics are
            deleted first).
        callbacks: progress hooks, called on the main process only.
        data: an already loaded :class:`DataSplit` (default: ``load_dataset(config.data, ...)``).

    Returns:
        A :class:`TrainResult` with the per-epoch history and the paths written.

    Raises:
        ValueError: bad settings, data the model cannot take, a checkpoint of another model or
            run, a damaged checkpoint, an output folder in use or holding an earlier run
            (:class:`OutputDirError`), a non-finite loss (:class:`NonFiniteError`).
        FileNotFoundError: missing data or checkpoint.
    """
    config.validate()
    info = setup()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    claim: Optional[OutputClaim] = None
    try:
        claim = _claim(Path(out), resume, overwrite, info)
        if config.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        return _fit(config, Path(out), resume, overwrite, callbacks, data, info)
    finally:
        if claim is not None:
            claim.release()
        torch.use_deterministic_algorithms(previous_deterministic)
        teardown(info)


def _claim(out: Path, resume: Union[bool, str, Path], overwrite: bool, info: DistInfo) -> Optional[OutputClaim]:
    """Rank 0 claims ``out``; every process raises the same error when it cannot."""
    claim, error = None, None
    if info.is_main:
        try:
            claim = claim_output_dir(out, resume=bool(resume), overwrite=overwrite, op="train", products=RUN_PRODUCTS)
        except OutputDirError as exc:
            error = exc
    if info.distributed:
        message = all_gather_object(None if error is None else str(error), info)[0]
        if message is not None and error is None:
            error = OutputDirError(message)
    if error is not None:
        raise error
    return claim


def _nonfinite_stop(what: str, epoch: int, step: int, lr: float, checkpoint: Path, saved: Optional[tuple[int, int]]) -> NonFiniteError:
    if saved is None:
        kept = "no checkpoint had been written yet"
    else:
        where = f"epoch {saved[0] + 1}, step {saved[1]}" if saved[1] else f"end of epoch {saved[0]}"
        kept = f"the last good checkpoint {checkpoint} ({where}) is kept"
    return NonFiniteError(
        f"train: {what} at epoch {epoch + 1}, step {step} (learning rate {lr:g}); stopped, and {kept}. "
        f"Start again with a lower --lr (--overwrite), or pass --allow-nonfinite to train on regardless"
    )


def _fit(config: TrainConfig, out: Path, resume, overwrite: bool, callbacks, data: Optional[DataSplit], info: DistInfo) -> TrainResult:
    start_time = time.perf_counter()
    if config.batch_size % info.world_size:
        raise ValueError(
            f"train: batch_size ({config.batch_size}) must be divisible by the number of processes ({info.world_size})"
        )
    local_batch = config.batch_size // info.world_size
    checkpoint_path = out / CHECKPOINT_NAME
    state: Optional[dict[str, Any]] = None
    if resume:
        resume_path = checkpoint_path if resume is True else Path(resume)
        if not resume_path.is_file():
            raise FileNotFoundError(f"train: --resume: no checkpoint at {resume_path}")
        state = load_checkpoint(resume_path)
        _check_resumable(state, config, resume_path)
    if info.is_main:
        if overwrite:  # the earlier run goes first: nothing of it can be mistaken for this run's
            for name in RUN_PRODUCTS:
                (out / name).unlink(missing_ok=True)
        # a process killed while writing leaves its temporary file (never a torn checkpoint); the
        # lock guarantees that process is gone, so its leftovers can go
        for name in RUN_PRODUCTS:
            for stale in out.glob(f".{name}.*.tmp"):
                stale.unlink(missing_ok=True)
    if data is None:
        data = load_dataset(config.data, val_fraction=config.val_fraction, seed=config.seed, limit=config.limit,
                            size=config.data_size)
    check_data(config, data)

    torch.manual_seed(config.seed)  # the same initial weights on every process and every run
    model, pipeline = build_model(config, data)
    initial = {k: v.clone() for k, v in model.state_dict().items()} if config.mining_rounds else None
    if state is not None:
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise ValueError(f"train: checkpoint {resume_path} does not fit model {config.model!r}: {str(exc).splitlines()[0]}") from None
    if config.sync_bn and info.distributed:
        model = convert_sync_batchnorm(model)
    model.to(info.device)
    pipeline.to(info.device)
    num_params = sum(p.numel() for p in model.parameters())
    net: nn.Module = model
    if info.distributed:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[info.local_rank] if info.device.type == "cuda" else None)

    # offline hard-example mining: the pool is held back from the training set; ``mining`` is the
    # state of the rounds (saved in every checkpoint): the round whose training is under way,
    # the pool indices added by each round, what each pass over the pool found, and each
    # finished round's held-out results
    base_train, pool = data.train, None
    mining: dict[str, Any] = {"started": 0, "mined": [], "stats": [], "rounds": []}
    if config.mining_rounds:
        base_train, pool = split_pool(data.train, config.mining_pool, config.seed)
        if len(pool) == 0:
            raise ValueError(f"train: the mining pool is empty: {config.mining_pool} of {len(data.train)} training images "
                             f"holds none; raise --mining-pool")
        if state is not None and state.get("mining") is not None:
            mining = state["mining"]

    def round_data(r: int) -> Dataset:
        """The training set of round ``r``: the base images and every example mined so far."""
        if pool is None:
            return base_train
        return with_examples(base_train, pool, mining["mined"][:r], config.mining_weight)

    def make_sampler(dataset: Dataset) -> tuple[DistributedSampler, int]:
        sampler = DistributedSampler(
            dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=config.seed, drop_last=False
        )
        steps = len(sampler) // local_batch
        if steps < 1:
            raise ValueError(
                f"train: batch_size ({config.batch_size}) is larger than the training set "
                f"({len(dataset)} images{f' over {info.world_size} processes' if info.distributed else ''})"
            )
        return sampler, steps

    train_set = round_data(mining["started"])
    sampler, steps_per_epoch = make_sampler(train_set)
    optimizer = _optimizer(config, model)
    scheduler = _scheduler(config, optimizer, config.epochs * steps_per_epoch)  # one round's steps

    epoch, step, history = 0, 0, []
    sums = torch.zeros(3, dtype=torch.float64)  # this epoch's loss sum, correct, count
    resumed_from = None
    torch.manual_seed(config.seed + info.rank)  # augmentation and dropout differ per process
    if state is not None:
        try:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise ValueError(
                f"train: checkpoint {resume_path}: its optimizer or scheduler state does not fit this run "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            ) from None
        epoch, step, history = state["epoch"], state["step"], list(state["history"])
        ranks = state["ranks"]
        if len(ranks) != info.world_size:
            raise ValueError(
                f"train: checkpoint {resume_path} was written by {len(ranks)} processes, now {info.world_size}; "
                f"resume with the same number of processes"
            )
        sums = ranks[info.rank]["sums"].clone()
        set_rng_state(ranks[info.rank]["rng"])
        resumed_from = (epoch, step)

    result = TrainResult(
        config, history, out, checkpoint_path, out / WEIGHTS_NAME, out / METRICS_NAMES[0], out / METRICS_NAMES[1],
        data.source, num_params, resumed_from, world_size=info.world_size,
        already_finished=state is not None and epoch >= config.total_epochs,
    )
    result.mining = mining if config.mining_rounds else None
    main_callbacks = callbacks if info.is_main else ()
    # (epoch, step) now in checkpoint_path: the resumed checkpoint when it is that file
    last_saved = resumed_from if state is not None and resume_path.resolve() == checkpoint_path.resolve() else None

    def save(epoch_: int, step_: int) -> None:
        nonlocal last_saved
        if not config.allow_nonfinite:
            bad = first_nonfinite(model.state_dict().items())  # the same on every process: DDP syncs them
            if bad:
                raise _nonfinite_stop(f"the weights became non-finite ({bad})", epoch, step, optimizer.param_groups[0]["lr"],
                                      checkpoint_path, last_saved)
        # a collective: every process contributes its own random state and partial sums
        ranks = all_gather_object({"rng": rng_state(), "sums": sums.clone()}, info)
        if info.is_main:
            save_checkpoint(checkpoint_path, {
                "format": FORMAT,
                "config": asdict(config),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch_,
                "step": step_,
                "history": history,
                "ranks": ranks,
                **({"mining": mining} if config.mining_rounds else {}),
                "data": {"classes": data.classes, "channels": data.channels, "size": list(data.size),
                         "mean": data.mean, "std": data.std, "source": data.source},
            })
            for cb in main_callbacks:
                cb.on_checkpoint(checkpoint_path, epoch_, step_)
        last_saved = (epoch_, step_)

    for cb in main_callbacks:
        cb.on_start({
            "model": config.model, "params": num_params, "data": data.source, "train": len(base_train),
            "val": len(data.val), "processes": info.world_size, "backend": info.backend or None,
            "resumed_from": resumed_from, "epochs": config.total_epochs, "already_finished": result.already_finished,
            "checkpoint": checkpoint_path, "saved": last_saved,
            "pool": len(pool) if pool is not None else None, "rounds": config.mining_rounds,
        })
    net.train()
    pipeline.train()
    sizes = config.sizes
    while epoch < config.total_epochs:
        if epoch // config.epochs > mining["started"]:
            # a new round: mine the pool with the model the last round trained, then train again
            # from the same initial weights on the larger set (a checkpoint marks the round's start)
            found = mine(model, pipeline, pool, [i for chosen in mining["mined"] for i in chosen],
                         config.mining_per_round, config.mining_select, config.seed + epoch // config.epochs,
                         data.num_classes, 2 * local_batch, info.device)
            mining["mined"].append(list(found.indices))
            mining["started"] = epoch // config.epochs
            train_set = round_data(mining["started"])
            mining["stats"].append({"round": mining["started"] + 1, **found.to_dict(), "train_images": len(train_set)})
            sampler, steps_per_epoch = make_sampler(train_set)
            model.load_state_dict(initial)
            optimizer = _optimizer(config, model)
            scheduler = _scheduler(config, optimizer, config.epochs * steps_per_epoch)
            torch.manual_seed(config.seed + info.rank)  # the round's augmentation starts as the first one's
            save(epoch, 0)
            for cb in main_callbacks:
                cb.on_round(mining["started"] + 1, config.mining_rounds + 1, mining["stats"][-1])
        sampler.set_epoch(epoch)
        order = list(sampler)[step * local_batch :]
        for cb in main_callbacks:
            cb.on_epoch_start(epoch, config.total_epochs, steps_per_epoch, step)
        epoch_start = time.perf_counter()
        for x, y in _batches(train_set, order, local_batch, config.workers, drop_last=True):
            x, y = x.to(info.device), y.to(info.device)
            side = config.size_at(epoch, step, steps_per_epoch)
            if side is not None:
                pipeline.size = (side, side)
            logits = net(pipeline(x))
            loss = hard_example_loss(logits, y, config.hard_mining)
            loss_value = loss.item()
            if not config.allow_nonfinite:
                bad = not math.isfinite(loss_value)
                if info.distributed:  # every process must stop at the same step, or the others hang in DDP
                    bad = all_reduce_sum(torch.tensor([float(bad)]), info).item() > 0
                if bad:
                    what = ("the loss became " + ("NaN" if math.isnan(loss_value) else f"{loss_value}")
                            if not math.isfinite(loss_value) else "the loss became non-finite on another process")
                    raise _nonfinite_stop(what,
                                          epoch, step + 1, optimizer.param_groups[0]["lr"], checkpoint_path, last_saved)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            with torch.no_grad():
                correct = (logits.argmax(1) == y).sum().item()
                sums += torch.tensor([loss_value * y.numel(), correct, y.numel()], dtype=torch.float64)
            for cb in main_callbacks:
                cb.on_step(epoch, step, sums[0].item() / sums[2].item(), sums[1].item() / sums[2].item())
            if config.checkpoint_every and step % config.checkpoint_every == 0 and step < steps_per_epoch:
                save(epoch, step)
        train = all_reduce_sum(sums, info)
        metrics: dict[str, Any] = {"epoch": epoch + 1}
        if config.mining_rounds:
            metrics["round"] = epoch // config.epochs + 1
        if sizes is not None and len(sizes) > 1:
            metrics["train_size"] = sizes[epoch % len(sizes)] if config.size_schedule == "epoch" else "each batch"
        metrics.update({
            "train_loss": train[0].item() / train[2].item(),
            "train_accuracy": train[1].item() / train[2].item(),
            **_evaluate_sizes(net, pipeline, data.val, 2 * local_batch, info, config.workers, sizes),
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": round(time.perf_counter() - epoch_start, 3),
        })
        history.append(metrics)
        if config.mining_rounds and (epoch + 1) % config.epochs == 0:
            cm = confusion_matrix(model, pipeline, data.val, data.num_classes, 2 * local_batch, info.device)
            mining["rounds"].append({"round": epoch // config.epochs + 1, "train_images": len(train_set),
                                     "val_accuracy": metrics["val_accuracy"], "confusion": cm.tolist()})
        epoch, step = epoch + 1, 0
        sums.zero_()
        save(epoch, 0)
        if info.is_main:
            _write_metrics(history, result.metrics_csv, result.metrics_json, _summary(result, config))
        for cb in main_callbacks:
            cb.on_epoch_end(epoch - 1, metrics)

    # a finished run resumed again has its files already; they are rewritten only when missing
    if info.is_main and not (result.already_finished and result.weights.is_file() and result.metrics_json.is_file()):
        save_checkpoint(result.weights, model.state_dict())
        _write_metrics(history, result.metrics_csv, result.metrics_json, _summary(result, config))
    result.seconds = time.perf_counter() - start_time
    return result


def _summary(result: TrainResult, config: TrainConfig) -> dict[str, Any]:
    return {
        "model": config.model,
        "data": result.data_source,
        "params": result.num_params,
        "processes": result.world_size,
        "final_val_accuracy": result.val_accuracy,
        "config": asdict(config),
        **({"rounds": result.rounds} if result.mining else {}),
    }


def config_fields() -> list[str]:
    """Names of the :class:`TrainConfig` settings, in order."""
    return [f.name for f in fields(TrainConfig)]
