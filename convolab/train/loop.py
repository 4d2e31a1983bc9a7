"""The training loop: any registered model, any dataset spec, exact resume, data-parallel.

One epoch is: the sampler's permutation for (seed, epoch), cut into batches; for each batch
forward, cross-entropy (optionally only on the hardest fraction), backward, optimizer and
scheduler step; then an evaluation on the held-out set. Every ``checkpoint_every`` steps and
at the end of every epoch the whole state (model, optimizer, scheduler, RNG states, epoch,
step, partial sums) is saved atomically, so ``resume=True`` continues bit for bit.

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

from .._args import check_choice, suggest
from ..data import DataSplit, ImageTensors, load_dataset
from .checkpoint import atomic_write_text, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .distributed import (
    DistInfo,
    all_gather_object,
    all_reduce_sum,
    convert_sync_batchnorm,
    setup,
    teardown,
)

OPTIMIZERS = ("sgd", "adamw")
SCHEDULERS = ("cosine", "none")
CHECKPOINT_NAME = "last.pt"
WEIGHTS_NAME = "model.pt"
# Settings that may differ between a run and its resumption (they do not change the numbers).
RESUMABLE_CHANGES = ("workers", "checkpoint_every")


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
        augment_shift: random translation of each image by up to this many pixels (0: off).
        val_fraction: share held out when the dataset has no test set of its own.
        limit: use at most this many training (and held-out) images.
        image_size: resize images to this square size (default: the dataset's size).
        seed: seeds the weights, the split, the data order and the augmentation.
        checkpoint_every: also checkpoint every this many steps (0: only at epoch ends).
        sync_bn: batch-norm statistics over the global batch under ``torchrun``.
        workers: DataLoader worker processes for image folders (0: load in the main process).
        deterministic: ``torch.use_deterministic_algorithms`` during the run.
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
    image_size: Optional[int] = None
    seed: int = 0
    checkpoint_every: int = 0
    sync_bn: bool = False
    workers: int = 0
    deterministic: bool = True

    def validate(self) -> "TrainConfig":
        """Check every value; raise ValueError naming the setting, its value and the rule."""
        from ..models import list_models

        if self.model not in list_models(aliases=True):  # not check_choice: listing ~30 names would drown the line
            raise ValueError(
                f"train: unknown model {self.model!r}{suggest(self.model, list_models())} "
                f"(`convolab models` lists all {len(list_models())})"
            )
        check_choice(self.optimizer, OPTIMIZERS, "optimizer", "train")
        check_choice(self.scheduler, SCHEDULERS, "scheduler", "train")
        for name in ("epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"train: {name} must be an int >= 1, got {getattr(self, name)!r}")
        for name in ("augment_shift", "checkpoint_every", "workers"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"train: {name} must be an int >= 0, got {getattr(self, name)!r}")
        for name in ("limit", "image_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"train: {name} must be >= 1, got {getattr(self, name)!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"train: lr must be a finite number > 0, got {self.lr!r}")
        if self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ValueError(
                f"train: expected weight_decay >= 0 and 0 <= momentum < 1, got {self.weight_decay}, {self.momentum}"
            )
        if self.hard_mining is not None and not 0 < self.hard_mining <= 1:
            raise ValueError(f"train: hard_mining must be a fraction in (0, 1], got {self.hard_mining!r}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"train: val_fraction must be in [0, 1), got {self.val_fraction!r}")
        return self


class Callback:
    """Hooks called by :func:`fit` on the main process (override the ones you need)."""

    def on_start(self, summary: dict[str, Any]) -> None:
        """Before the first step: model, params, data source, train/held-out sizes, processes, resumed_from."""

    def on_epoch_start(self, epoch: int, epochs: int, steps: int, start_step: int) -> None: ...

    def on_step(self, epoch: int, step: int, loss: float, accuracy: float) -> None: ...

    def on_epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None: ...

    def on_checkpoint(self, path: Path, epoch: int, step: int) -> None: ...


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
    size = (config.image_size, config.image_size) if config.image_size else None
    h, w = size or data.size
    pipeline = InputPipeline(data.mean, data.std, channels, size, config.augment_shift)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, channels, h, w))
    except Exception as exc:  # any failure of the probe means these inputs do not fit
        works = None if config.image_size else _working_size(model, channels, max(h, w))
        hint = f"--image-size {works} works" if works else "pass an image size it accepts with --image-size"
        raise ValueError(
            f"train: model {config.model!r} cannot take {channels}x{h}x{w} images "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); {hint}"
        ) from None
    model.train(was_training)
    if not isinstance(out, Tensor) or tuple(out.shape) != (2, data.num_classes):
        raise ValueError(
            f"train: model {config.model!r} must return logits [N, {data.num_classes}], "
            f"got {list(out.shape) if isinstance(out, Tensor) else type(out).__name__}"
        )
    return model, pipeline


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


def _write_metrics(history: list[dict[str, Any]], csv_path: Path, json_path: Path, summary: dict[str, Any]) -> None:
    buffer = io.StringIO()
    if history:
        writer = csv.DictWriter(buffer, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    atomic_write_text(csv_path, buffer.getvalue())
    atomic_write_text(json_path, json.dumps({**summary, "epochs": history}, indent=2) + "\n")


def _check_resumable(saved: dict[str, Any], config: TrainConfig, path: Path) -> None:
    from ..models import canonical_name

    # a model's old name (an alias) resumes the same architecture
    if canonical_name(str(saved.get("model"))) != canonical_name(config.model):
        raise ValueError(
            f"train: checkpoint {path} was written for model {saved.get('model')!r}, not {config.model!r} "
            f"(a checkpoint only resumes the architecture that wrote it)"
        )
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


def fit(
    config: TrainConfig,
    out: Union[str, Path],
    *,
    resume: Union[bool, str, Path] = False,
    callbacks: Sequence[Callback] = (),
    data: Optional[DataSplit] = None,
) -> TrainResult:
    """Train ``config.model`` on ``config.data``; write checkpoints, weights and metrics to ``out``.

    Args:
        config: the run's settings (validated here).
        out: folder for ``last.pt`` (checkpoint), ``model.pt`` (final weights), ``metrics.csv``/``.json``.
        resume: True to continue from ``out/last.pt``, or the path of a checkpoint.
        callbacks: progress hooks, called on the main process only.
        data: an already loaded :class:`DataSplit` (default: ``load_dataset(config.data, ...)``).

    Returns:
        A :class:`TrainResult` with the per-epoch history and the paths written.

    Raises:
        ValueError: bad settings, data the model cannot take, a checkpoint of another model or run.
        FileNotFoundError: missing data or checkpoint.
    """
    config.validate()
    info = setup()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        if config.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        return _fit(config, Path(out), resume, callbacks, data, info)
    finally:
        torch.use_deterministic_algorithms(previous_deterministic)
        teardown(info)


def _fit(config: TrainConfig, out: Path, resume, callbacks, data: Optional[DataSplit], info: DistInfo) -> TrainResult:
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
        _check_resumable(state["config"], config, resume_path)
    out.mkdir(parents=True, exist_ok=True)
    if info.is_main:
        # a process killed while writing leaves its temporary file (never a torn checkpoint): tidy up
        for name in (CHECKPOINT_NAME, WEIGHTS_NAME, "metrics.csv", "metrics.json"):
            for stale in out.glob(f".{name}.*.tmp"):
                stale.unlink(missing_ok=True)
    if data is None:
        data = load_dataset(config.data, val_fraction=config.val_fraction, seed=config.seed, limit=config.limit, size=config.image_size)

    torch.manual_seed(config.seed)  # the same initial weights on every process and every run
    model, pipeline = build_model(config, data)
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

    sampler = DistributedSampler(
        data.train, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=config.seed, drop_last=False
    )
    steps_per_epoch = len(sampler) // local_batch
    if steps_per_epoch < 1:
        raise ValueError(
            f"train: batch_size ({config.batch_size}) is larger than the training set "
            f"({len(data.train)} images{f' over {info.world_size} processes' if info.distributed else ''})"
        )
    total_steps = config.epochs * steps_per_epoch
    optimizer = _optimizer(config, model)
    scheduler = _scheduler(config, optimizer, total_steps)

    epoch, step, history = 0, 0, []
    sums = torch.zeros(3, dtype=torch.float64)  # this epoch's loss sum, correct, count
    resumed_from = None
    torch.manual_seed(config.seed + info.rank)  # augmentation and dropout differ per process
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
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
        config, history, out, checkpoint_path, out / WEIGHTS_NAME, out / "metrics.csv", out / "metrics.json",
        data.source, num_params, resumed_from, world_size=info.world_size,
    )
    main_callbacks = callbacks if info.is_main else ()

    def save(epoch_: int, step_: int) -> None:
        # a collective: every process contributes its own random state and partial sums
        ranks = all_gather_object({"rng": rng_state(), "sums": sums.clone()}, info)
        if info.is_main:
            save_checkpoint(checkpoint_path, {
                "format": 1,
                "config": asdict(config),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch_,
                "step": step_,
                "history": history,
                "ranks": ranks,
                "data": {"classes": data.classes, "channels": data.channels, "size": list(data.size),
                         "mean": data.mean, "std": data.std, "source": data.source},
            })
            for cb in main_callbacks:
                cb.on_checkpoint(checkpoint_path, epoch_, step_)

    for cb in main_callbacks:
        cb.on_start({
            "model": config.model, "params": num_params, "data": data.source, "train": len(data.train),
            "val": len(data.val), "processes": info.world_size, "backend": info.backend or None,
            "resumed_from": resumed_from,
        })
    net.train()
    pipeline.train()
    while epoch < config.epochs:
        sampler.set_epoch(epoch)
        order = list(sampler)[step * local_batch :]
        for cb in main_callbacks:
            cb.on_epoch_start(epoch, config.epochs, steps_per_epoch, step)
        epoch_start = time.perf_counter()
        for x, y in _batches(data.train, order, local_batch, config.workers, drop_last=True):
            x, y = x.to(info.device), y.to(info.device)
            logits = net(pipeline(x))
            loss = hard_example_loss(logits, y, config.hard_mining)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            with torch.no_grad():
                correct = (logits.argmax(1) == y).sum().item()
                sums += torch.tensor([loss.item() * y.numel(), correct, y.numel()], dtype=torch.float64)
            for cb in main_callbacks:
                cb.on_step(epoch, step, sums[0].item() / sums[2].item(), sums[1].item() / sums[2].item())
            if config.checkpoint_every and step % config.checkpoint_every == 0 and step < steps_per_epoch:
                save(epoch, step)
        train = all_reduce_sum(sums, info)
        metrics = {
            "epoch": epoch + 1,
            "train_loss": train[0].item() / train[2].item(),
            "train_accuracy": train[1].item() / train[2].item(),
            **evaluate(net, pipeline, data.val, 2 * local_batch, info, config.workers),
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": round(time.perf_counter() - epoch_start, 3),
        }
        history.append(metrics)
        epoch, step = epoch + 1, 0
        sums.zero_()
        save(epoch, 0)
        if info.is_main:
            _write_metrics(history, result.metrics_csv, result.metrics_json, _summary(result, config))
        for cb in main_callbacks:
            cb.on_epoch_end(epoch - 1, metrics)

    if info.is_main:
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
    }


def config_fields() -> list[str]:
    """Names of the :class:`TrainConfig` settings, in order."""
    return [f.name for f in fields(TrainConfig)]
