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

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, DistributedSampler

from ..data import DataSplit, load_dataset
from .checkpoint import (
    CHECKPOINT_ENTRIES,
    RESUMABLE_CHANGES,
    NonFiniteError,
    TrainingCheckpoint,
    first_nonfinite,
    load_training_checkpoint,
    process_state,
    save_checkpoint,
    save_training_checkpoint,
)
from .config import (
    MAX_IMAGE_SIZE,
    MAX_MINING_ROUNDS,
    MAX_MINING_WEIGHT,
    MAX_SEED,
    MAX_WORKERS,
    OPTIMIZERS,
    SCHEDULERS,
    SIZE_SCHEDULES,
    TrainConfig,
    config_fields,
)
from .distributed import DistInfo, all_gather_object, all_reduce_sum, convert_sync_batchnorm, setup, teardown
from .metrics import evaluate, evaluate_sizes, hard_example_loss, write_metrics
from .mining import confusion_matrix, mine, split_pool, with_examples
from .pipeline import InputPipeline, batches, build_model, check_data
from .rundir import OutputClaim, OutputDirError, claim_output_dir

__all__ = [
    "CHECKPOINT_NAME",
    "METRICS_NAMES",
    "RUN_PRODUCTS",
    "WEIGHTS_NAME",
    "Callback",
    "TrainResult",
    "evaluate",
    "fit",
    "hard_example_loss",
    # the settings, the pipeline and the checkpoint layout, offered here too (their homes:
    # config.py, pipeline.py, checkpoint.py), so ``convolab.train.loop`` keeps every name it had
    "CHECKPOINT_ENTRIES",
    "MAX_IMAGE_SIZE",
    "MAX_MINING_ROUNDS",
    "MAX_MINING_WEIGHT",
    "MAX_SEED",
    "MAX_WORKERS",
    "OPTIMIZERS",
    "RESUMABLE_CHANGES",
    "SCHEDULERS",
    "SIZE_SCHEDULES",
    "InputPipeline",
    "NonFiniteError",
    "TrainConfig",
    "build_model",
    "check_data",
    "config_fields",
]

# What a run writes into its folder: finding one of these there means an earlier run.
CHECKPOINT_NAME = "last.pt"
WEIGHTS_NAME = "model.pt"
METRICS_NAMES = ("metrics.csv", "metrics.json")
RUN_PRODUCTS = (CHECKPOINT_NAME, WEIGHTS_NAME, *METRICS_NAMES)


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
        """The held-out accuracy after the last epoch (NaN before any)."""
        return self.history[-1]["val_accuracy"] if self.history else float("nan")


def _optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum or AdamW; weight decay on weights only, not on biases and norm scales."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]  # biases and norm scales
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0)
    return torch.optim.AdamW(groups, lr=config.lr)


def _scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The learning rate per step: constant, or cosine from the peak to zero over ``total_steps``."""
    if config.scheduler == "none":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
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


def _fit(config: TrainConfig, out: Path, resume: Union[bool, str, Path], overwrite: bool, callbacks: Sequence[Callback],
         data: Optional[DataSplit], info: DistInfo) -> TrainResult:
    """:func:`fit` once the folder is claimed: the run's checks, its data, then the training."""
    start_time = time.perf_counter()
    if config.batch_size % info.world_size:
        raise ValueError(
            f"train: batch_size ({config.batch_size}) must be divisible by the number of processes ({info.world_size})"
        )
    checkpoint_path = out / CHECKPOINT_NAME
    resumed: Optional[TrainingCheckpoint] = None
    if resume:
        resume_path = checkpoint_path if resume is True else Path(resume)
        if not resume_path.is_file():
            raise FileNotFoundError(f"train: --resume: no checkpoint at {resume_path}")
        resumed = load_training_checkpoint(resume_path, config)
    if info.is_main:
        _clear_run_folder(out, overwrite)
    if data is None:
        data = load_dataset(config.data, val_fraction=config.val_fraction, seed=config.seed, limit=config.limit,
                            size=config.data_size)
    check_data(config, data)
    result = _Run(config, out, data, info, resumed, callbacks if info.is_main else ()).train()
    result.seconds = time.perf_counter() - start_time
    return result


def _clear_run_folder(out: Path, overwrite: bool) -> None:
    """Delete an earlier run's files when overwriting it, and the temporary files of a killed run."""
    if overwrite:  # the earlier run goes first: nothing of it can be mistaken for this run's
        for name in RUN_PRODUCTS:
            (out / name).unlink(missing_ok=True)
    # a process killed while writing leaves its temporary file (never a torn checkpoint); the
    # lock guarantees that process is gone, so its leftovers can go
    for name in RUN_PRODUCTS:
        for stale in out.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)


class _Run:
    """One training run, set up and standing where it starts (or where ``resumed`` stopped).

    Setting up draws from torch's global generator in a fixed order (the weights from
    ``config.seed``, then augmentation and dropout from ``config.seed + rank``, or the
    checkpoint's saved state), so a resumed run continues bit for bit.

    Offline hard-example mining: the pool is held back from the training set; ``mining`` is
    the state of the rounds (saved in every checkpoint): the round whose training is under
    way, the pool indices added by each round, what each pass over the pool found, and each
    finished round's held-out results.
    """

    def __init__(self, config: TrainConfig, out: Path, data: DataSplit, info: DistInfo,
                 resumed: Optional[TrainingCheckpoint], callbacks: Sequence[Callback]) -> None:
        self.config, self.data, self.info, self.callbacks = config, data, info, callbacks
        self.local_batch = config.batch_size // info.world_size
        self.checkpoint_path = out / CHECKPOINT_NAME

        torch.manual_seed(config.seed)  # the same initial weights on every process and every run
        self.model, self.pipeline = build_model(config, data)
        self.initial = {k: v.clone() for k, v in self.model.state_dict().items()} if config.mining_rounds else None
        if resumed is not None:
            resumed.restore_model(self.model, config.model)
        if config.sync_bn and info.distributed:
            self.model = convert_sync_batchnorm(self.model)
        self.model.to(info.device)
        self.pipeline.to(info.device)
        self.net: nn.Module = self.model
        if info.distributed:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[info.local_rank] if info.device.type == "cuda" else None)

        self.base_train: Dataset = data.train
        self.pool: Optional[Dataset] = None
        self.mining: dict[str, Any] = {"started": 0, "mined": [], "stats": [], "rounds": []}
        if config.mining_rounds:
            self.base_train, self.pool = split_pool(data.train, config.mining_pool, config.seed)
            if len(self.pool) == 0:
                raise ValueError(f"train: the mining pool is empty: {config.mining_pool} of {len(data.train)} training "
                                 f"images holds none; raise --mining-pool")
            if resumed is not None and resumed.mining is not None:
                self.mining = resumed.mining

        self.train_set = self._training_set(self.mining["started"])
        self.sampler, self.steps_per_epoch = self._sampler(self.train_set)
        self.optimizer = _optimizer(config, self.model)
        self.scheduler = _scheduler(config, self.optimizer, config.epochs * self.steps_per_epoch)  # one round's steps

        self.epoch, self.step = 0, 0
        self.history: list[dict[str, Any]] = []
        self.sums = torch.zeros(3, dtype=torch.float64)  # this epoch's loss sum, correct, count
        resumed_from = None
        torch.manual_seed(config.seed + info.rank)  # augmentation and dropout differ per process
        if resumed is not None:
            resumed.restore_optimizer(self.optimizer, self.scheduler)
            self.epoch, self.step, self.history = resumed.epoch, resumed.step, resumed.history
            self.sums = resumed.restore_process(info.rank, info.world_size)
            resumed_from = (self.epoch, self.step)

        self.result = TrainResult(
            config, self.history, out, self.checkpoint_path, out / WEIGHTS_NAME, out / METRICS_NAMES[0],
            out / METRICS_NAMES[1], data.source, sum(p.numel() for p in self.model.parameters()), resumed_from,
            world_size=info.world_size, already_finished=resumed is not None and self.epoch >= config.total_epochs,
        )
        self.result.mining = self.mining if config.mining_rounds else None
        # (epoch, step) now in the checkpoint file: the resumed checkpoint when it is that file
        same_file = resumed is not None and resumed.path.resolve() == self.checkpoint_path.resolve()
        self.saved: Optional[tuple[int, int]] = resumed_from if same_file else None

    def train(self) -> TrainResult:
        """Train every remaining epoch (mining rounds included); write the final weights and metrics."""
        config, result = self.config, self.result
        for cb in self.callbacks:
            cb.on_start({
                "model": config.model, "params": result.num_params, "data": self.data.source,
                "train": len(self.base_train), "val": len(self.data.val), "processes": self.info.world_size,
                "backend": self.info.backend or None, "resumed_from": result.resumed_from,
                "epochs": config.total_epochs, "already_finished": result.already_finished,
                "checkpoint": self.checkpoint_path, "saved": self.saved,
                "pool": len(self.pool) if self.pool is not None else None, "rounds": config.mining_rounds,
            })
        self.net.train()
        self.pipeline.train()
        while self.epoch < config.total_epochs:
            if self.epoch // config.epochs > self.mining["started"]:
                self._start_round()
            self._train_epoch()
        # a finished run resumed again has its files already; they are rewritten only when missing
        if self.info.is_main and not (result.already_finished and result.weights.is_file() and result.metrics_json.is_file()):
            save_checkpoint(result.weights, self.model.state_dict())
            write_metrics(self.history, result.metrics_csv, result.metrics_json, _summary(result, config))
        return result

    def _training_set(self, r: int) -> Dataset:
        """The training set of round ``r``: the base images and every example mined so far."""
        if self.pool is None:
            return self.base_train
        return with_examples(self.base_train, self.pool, self.mining["mined"][:r], self.config.mining_weight)

    def _sampler(self, dataset: Dataset) -> tuple[DistributedSampler, int]:
        """This process's share of ``dataset`` in each epoch's order, and the steps of an epoch."""
        config, info = self.config, self.info
        sampler = DistributedSampler(
            dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=config.seed, drop_last=False
        )
        steps = len(sampler) // self.local_batch
        if steps < 1:
            raise ValueError(
                f"train: batch_size ({config.batch_size}) is larger than the training set "
                f"({len(dataset)} images{f' over {info.world_size} processes' if info.distributed else ''})"
            )
        return sampler, steps

    def _start_round(self) -> None:
        """A new mining round: mine the pool with the model the last round trained, then train again
        from the same initial weights on the larger set (a checkpoint marks the round's start)."""
        config, mining = self.config, self.mining
        found = mine(self.model, self.pipeline, self.pool, [i for chosen in mining["mined"] for i in chosen],
                     config.mining_per_round, config.mining_select, config.seed + self.epoch // config.epochs,
                     self.data.num_classes, 2 * self.local_batch, self.info.device)
        mining["mined"].append(list(found.indices))
        mining["started"] = self.epoch // config.epochs
        self.train_set = self._training_set(mining["started"])
        mining["stats"].append({"round": mining["started"] + 1, **found.to_dict(), "train_images": len(self.train_set)})
        self.sampler, self.steps_per_epoch = self._sampler(self.train_set)
        self.model.load_state_dict(self.initial)
        self.optimizer = _optimizer(config, self.model)
        self.scheduler = _scheduler(config, self.optimizer, config.epochs * self.steps_per_epoch)
        torch.manual_seed(config.seed + self.info.rank)  # the round's augmentation starts as the first one's
        self._save(self.epoch, 0)
        for cb in self.callbacks:
            cb.on_round(mining["started"] + 1, config.mining_rounds + 1, mining["stats"][-1])

    def _train_epoch(self) -> None:
        """The rest of the current epoch, then its metrics, a checkpoint and the metrics files."""
        config, info = self.config, self.info
        self.sampler.set_epoch(self.epoch)
        order = list(self.sampler)[self.step * self.local_batch :]
        for cb in self.callbacks:
            cb.on_epoch_start(self.epoch, config.total_epochs, self.steps_per_epoch, self.step)
        epoch_start = time.perf_counter()
        for x, y in batches(self.train_set, order, self.local_batch, config.workers, drop_last=True):
            self._train_step(x.to(info.device), y.to(info.device))
        metrics = self._epoch_metrics(epoch_start)
        self.history.append(metrics)
        if config.mining_rounds and (self.epoch + 1) % config.epochs == 0:
            cm = confusion_matrix(self.model, self.pipeline, self.data.val, self.data.num_classes, 2 * self.local_batch,
                                  info.device)
            self.mining["rounds"].append({"round": self.epoch // config.epochs + 1, "train_images": len(self.train_set),
                                          "val_accuracy": metrics["val_accuracy"], "confusion": cm.tolist()})
        self.epoch, self.step = self.epoch + 1, 0
        self.sums.zero_()
        self._save(self.epoch, 0)
        if info.is_main:
            write_metrics(self.history, self.result.metrics_csv, self.result.metrics_json, _summary(self.result, config))
        for cb in self.callbacks:
            cb.on_epoch_end(self.epoch - 1, metrics)

    def _train_step(self, x: Tensor, y: Tensor) -> None:
        """One optimizer step on the batch ``(x, y)``; stops before a non-finite loss reaches the weights."""
        config, info = self.config, self.info
        side = config.size_at(self.epoch, self.step, self.steps_per_epoch)
        if side is not None:
            self.pipeline.size = (side, side)
        logits = self.net(self.pipeline(x))
        loss = hard_example_loss(logits, y, config.hard_mining)
        loss_value = loss.item()
        if not config.allow_nonfinite:
            bad = not math.isfinite(loss_value)
            if info.distributed:  # every process must stop at the same step, or the others hang in DDP
                bad = all_reduce_sum(torch.tensor([float(bad)]), info).item() > 0
            if bad:
                what = ("the loss became " + ("NaN" if math.isnan(loss_value) else f"{loss_value}")
                        if not math.isfinite(loss_value) else "the loss became non-finite on another process")
                raise self._stop(what, self.step + 1)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        with torch.no_grad():
            correct = (logits.argmax(1) == y).sum().item()
            self.sums += torch.tensor([loss_value * y.numel(), correct, y.numel()], dtype=torch.float64)
        for cb in self.callbacks:
            cb.on_step(self.epoch, self.step, self.sums[0].item() / self.sums[2].item(),
                       self.sums[1].item() / self.sums[2].item())
        if config.checkpoint_every and self.step % config.checkpoint_every == 0 and self.step < self.steps_per_epoch:
            self._save(self.epoch, self.step)

    def _epoch_metrics(self, epoch_start: float) -> dict[str, Any]:
        """The finished epoch's row of the history: training loss and accuracy, held-out results, lr, time."""
        config, sizes = self.config, self.config.sizes
        train = all_reduce_sum(self.sums, self.info)
        metrics: dict[str, Any] = {"epoch": self.epoch + 1}
        if config.mining_rounds:
            metrics["round"] = self.epoch // config.epochs + 1
        if sizes is not None and len(sizes) > 1:
            metrics["train_size"] = sizes[self.epoch % len(sizes)] if config.size_schedule == "epoch" else "each batch"
        metrics.update({
            "train_loss": train[0].item() / train[2].item(),
            "train_accuracy": train[1].item() / train[2].item(),
            **evaluate_sizes(self.net, self.pipeline, self.data.val, 2 * self.local_batch, self.info, config.workers,
                              sizes),
            "lr": self.optimizer.param_groups[0]["lr"],
            "seconds": round(time.perf_counter() - epoch_start, 3),
        })
        return metrics

    def _save(self, epoch: int, step: int) -> None:
        """Checkpoint the run at ``(epoch, step)``: a collective, every process contributes its own state."""
        if not self.config.allow_nonfinite:
            bad = first_nonfinite(self.model.state_dict().items())  # the same on every process: DDP syncs them
            if bad:
                raise self._stop(f"the weights became non-finite ({bad})", self.step)
        ranks = all_gather_object(process_state(self.sums), self.info)
        if self.info.is_main:
            save_training_checkpoint(
                self.checkpoint_path, config=self.config, model=self.model, optimizer=self.optimizer,
                scheduler=self.scheduler, epoch=epoch, step=step, history=self.history, ranks=ranks, data=self.data,
                mining=self.mining if self.config.mining_rounds else None,
            )
            for cb in self.callbacks:
                cb.on_checkpoint(self.checkpoint_path, epoch, step)
        self.saved = (epoch, step)

    def _stop(self, what: str, step: int) -> NonFiniteError:
        """The error that stops the run at ``step`` of the current epoch, naming the checkpoint kept."""
        if self.saved is None:
            kept = "no checkpoint had been written yet"
        else:
            epoch, at = self.saved
            where = f"epoch {epoch + 1}, step {at}" if at else f"end of epoch {epoch}"
            kept = f"the last good checkpoint {self.checkpoint_path} ({where}) is kept"
        lr = self.optimizer.param_groups[0]["lr"]
        return NonFiniteError(
            f"train: {what} at epoch {self.epoch + 1}, step {step} (learning rate {lr:g}); stopped, and {kept}. "
            f"Start again with a lower --lr (--overwrite), or pass --allow-nonfinite to train on regardless"
        )


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
