"""``convolab train``: train any registered model on the embedded digits, MNIST IDX files or an image folder.

Runs data-parallel when started by torchrun, e.g. on one machine with two processes:
``torchrun --standalone --nproc_per_node=2 -m convolab train mnist_cnn --out runs/a``.

Every option is checked, and the output folder claimed, before any work; Ctrl-C stops with
one line saying what was saved and how to continue (exit status 130).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Optional, Union

from ..train import Callback, TrainConfig, TrainResult, fit
from ..train.config import (
    MAX_IMAGE_SIZE, MAX_MINING_ROUNDS, MAX_MINING_WEIGHT, MAX_WORKERS, MINING_SELECT, OPTIMIZERS, SCHEDULERS, SIZE_SCHEDULES,
)

_DEFAULTS = TrainConfig()
MAX_THREADS = 1024  # more threads than this only contend for the cores
EXIT_INTERRUPTED = 130  # the shell's status for a command ended by Ctrl-C (128 + SIGINT)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a registered model (progress bar, atomic checkpoints, --resume, torchrun)",
        description="Train a registered model; writes last.pt (checkpoint), model.pt (weights) and "
        "metrics.csv/metrics.json to --out. Start it with torchrun for data-parallel training.",
    )
    p.add_argument("model", help="registry name (see `convolab models`)")
    add_training_arguments(p)
    p.set_defaults(func=run)


def add_training_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``TrainConfig`` (shared with ``convolab demo``)."""
    d = _DEFAULTS
    p.add_argument("--data", default=d.data, help="digits | mnist:PATH | folder:PATH (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=d.epochs,
                   help="passes over the training set, >= 1; with --resume, more than the run has trains further "
                   "(default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="global batch, >= 1 (default: %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate, > 0 (default: %(default)s)")
    p.add_argument("--optimizer", default=d.optimizer, help=f"{' | '.join(OPTIMIZERS)} (default: %(default)s)")
    p.add_argument("--scheduler", default=d.scheduler, help=f"{' | '.join(SCHEDULERS)} (default: %(default)s)")
    p.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum, in [0, 1) (default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help=">= 0 (default: %(default)s)")
    p.add_argument("--hard-mining", type=float, default=None, metavar="FRACTION",
                   help="back-propagate only the hardest FRACTION (in (0, 1]) of each batch (online hard example mining)")
    p.add_argument("--augment-shift", type=int, default=d.augment_shift, metavar="PIXELS",
                   help="shift each training image randomly by up to PIXELS, at most a quarter of the image side "
                   "(7 for 28x28) (default: %(default)s)")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction,
                   help="held-out share when the data has no test set of its own, in (0, 1) (default: %(default)s)")
    p.add_argument("--limit", type=int, default=None,
                   help="use at most this many training and at most this many held-out images")
    p.add_argument("--image-size", type=_sizes, default=None, metavar="SIZE[,SIZE...]",
                   help=f"resize images to this square size, 1 to {MAX_IMAGE_SIZE}; several sizes (e.g. 28,24,32) "
                   "train at each in turn (SPP-net's multi-size training: the model's head must take any size, "
                   "e.g. mnist_spp); held-out accuracy is measured at the first size and reported at the others")
    p.add_argument("--size-schedule", default=d.size_schedule, choices=SIZE_SCHEDULES,
                   help="with several --image-size values, switch size every epoch or every batch (default: %(default)s)")
    g = p.add_argument_group(
        "offline hard-example mining",
        "train, run the model over a pool held back from the training images, add its most confident mistakes "
        "(false positives) to the training set, train again from the same initial weights; --epochs is per round")
    g.add_argument("--mining-rounds", type=int, default=d.mining_rounds, metavar="N",
                   help=f"rounds of mining and retraining after the first training, 0 to {MAX_MINING_ROUNDS} (default: "
                   "%(default)s: off)")
    g.add_argument("--mining-pool", type=float, default=d.mining_pool, metavar="FRACTION",
                   help="share of the training images held back as the pool, in (0, 1) (default: %(default)s)")
    g.add_argument("--mining-per-round", type=int, default=d.mining_per_round, metavar="K",
                   help="at most K pool images added per round, >= 1 (default: %(default)s)")
    g.add_argument("--mining-weight", type=int, default=d.mining_weight, metavar="W",
                   help=f"each added image appears W times in the training set (oversampling), 1 to {MAX_MINING_WEIGHT} "
                   "(default: %(default)s)")
    g.add_argument("--mining-select", default=d.mining_select, choices=MINING_SELECT,
                   help="hard: the most confident mistakes; random: as many random pool images, the control "
                   "(default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="0 to 2**63 - 1 (default: %(default)s)")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, metavar="STEPS",
                   help="also checkpoint every STEPS steps (default: only at epoch ends)")
    p.add_argument("--sync-bn", action="store_true", help="batch norm over the global batch under torchrun")
    p.add_argument("--workers", type=int, default=d.workers,
                   help=f"data-loading processes for image folders, 0 to {MAX_WORKERS}")
    p.add_argument("--threads", type=int, default=None,
                   help=f"torch CPU threads per process, 1 to {MAX_THREADS} (default: torch's)")
    p.add_argument("--allow-nonfinite", action="store_true",
                   help="keep training after a NaN or infinite loss (default: stop at the first one, keeping the "
                   "last good checkpoint)")
    p.add_argument("--out", default="runs/train",
                   help="output folder, one run at a time (default: %(default)s)")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                   help="continue from OUT/last.pt (or the given checkpoint) with the same settings")
    p.add_argument("--overwrite", action="store_true", help="replace the earlier run in --out (default: refuse)")


def _sizes(text: str) -> Union[int, list[int]]:
    """``--image-size``: one int, or several separated by commas."""
    try:
        sizes = [int(p.strip()) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size or sizes separated by commas (e.g. 28 or 28,24,32), "
                                         f"got {text!r}") from None
    return sizes[0] if len(sizes) == 1 else sizes


def config_from_args(args: argparse.Namespace, **overrides: Any) -> TrainConfig:
    """A TrainConfig from parsed options (``overrides`` win)."""
    values = dict(
        model=args.model, data=args.data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        optimizer=args.optimizer, scheduler=args.scheduler, momentum=args.momentum,
        weight_decay=args.weight_decay, hard_mining=args.hard_mining, augment_shift=args.augment_shift,
        val_fraction=args.val_fraction, limit=args.limit, image_size=args.image_size, seed=args.seed,
        checkpoint_every=args.checkpoint_every, sync_bn=args.sync_bn, workers=args.workers,
        allow_nonfinite=args.allow_nonfinite, size_schedule=args.size_schedule, mining_rounds=args.mining_rounds,
        mining_pool=args.mining_pool, mining_per_round=args.mining_per_round, mining_weight=args.mining_weight,
        mining_select=args.mining_select,
    )
    values.update(overrides)
    return TrainConfig(**values)


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def check_threads(threads: Optional[int]) -> None:
    """``--threads`` is None (torch's default) or 1 to :data:`MAX_THREADS`; else a UsageError."""
    from ..cli import UsageError

    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be >= 1, got {threads}")
    if threads is not None and threads > MAX_THREADS:
        raise UsageError(f"--threads must be <= {MAX_THREADS} (more only contend for the cores), got {threads}")


def _where(epoch: int, step: int) -> str:
    """A checkpoint's position: (completed epochs, step within the next epoch)."""
    return f"epoch {epoch + 1}, step {step}" if step else f"end of epoch {epoch}"


def _epochs(n: int) -> str:
    return f"{n} epoch{'' if n == 1 else 's'}"


class TqdmProgress(Callback):
    """A tqdm bar per epoch with the running loss and accuracy; one summary line per epoch.

    It also remembers the last checkpoint (:attr:`saved`), for the message after Ctrl-C.
    """

    def __init__(self, weight: int = 1) -> None:
        self.weight = weight  # hard-example mining: how often each added image is repeated
        self.bar: Optional[Any] = None
        self.saved: Optional[tuple[Path, int, int]] = None  # (path, epoch, step) of the last checkpoint
        self.rounds = 0  # hard-example mining: rounds of training (0: none)

    def on_start(self, summary: dict[str, Any]) -> None:
        procs = f", {summary['processes']} processes ({summary['backend']})" if summary["processes"] > 1 else ""
        resumed = summary["resumed_from"]
        pool = (f" (and {summary['pool']:,} held back as the hard-example mining pool, {summary['rounds']} "
                f"round{'s' * (summary['rounds'] != 1)})" if summary.get("pool") else "")
        self.rounds = summary["rounds"] + 1 if summary.get("rounds") else 0
        if summary.get("saved") is not None:
            self.saved = (Path(summary["checkpoint"]), *summary["saved"])
        if summary.get("already_finished"):
            state = (f"; already finished: all {_epochs(resumed[0])} are trained, nothing to do "
                     f"(to train further, pass --epochs N with N > {resumed[0]} and --resume)")
        elif resumed:
            state = f"; resuming epoch {resumed[0] + 1} at step {resumed[1]}"
        else:
            state = ""
        print(
            f"training {summary['model']} ({summary['params']:,} parameters) on {summary['data']}: "
            f"{summary['train']:,} training / {summary['val']:,} held-out images{pool}{procs}{state}",
            flush=True,
        )

    def on_checkpoint(self, path: Path, epoch: int, step: int) -> None:
        self.saved = (Path(path), epoch, step)

    def close(self) -> None:
        """Remove the progress bar (e.g. before printing why the run stopped)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def interrupted(self) -> str:
        """The line printed after Ctrl-C: what was saved and how to continue."""
        if self.saved is None:
            return "interrupted before the first checkpoint; nothing was saved (run the same command to start again)"
        path, epoch, step = self.saved
        return (f"interrupted; the last checkpoint is {path} ({_where(epoch, step)}): "
                f"to continue from it, run the same command with --resume")

    def on_epoch_start(self, epoch: int, epochs: int, steps: int, start_step: int) -> None:
        try:
            from tqdm import tqdm
        except ImportError:  # the cli extra is missing: epoch lines only
            return
        desc = f"epoch {epoch + 1}/{epochs}"
        if self.rounds:
            per = epochs // self.rounds
            desc = f"round {epoch // per + 1}/{self.rounds} epoch {epoch % per + 1}/{per}"
        self.bar = tqdm(total=steps, initial=start_step, desc=desc, unit="step", dynamic_ncols=True, leave=False)

    def on_step(self, epoch: int, step: int, loss: float, accuracy: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.2%}", refresh=False)

    def on_epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None:
        self.close()
        others = [(k.partition("@")[2], v) for k, v in metrics.items() if k.startswith("val_accuracy@")]
        at = f" (at {', '.join(f'{size}: {v:.2%}' for size, v in others)})" if others else ""
        size = f" at {metrics['train_size']}" if isinstance(metrics.get("train_size"), int) else ""
        round_ = f"round {metrics['round']}, " if "round" in metrics else ""
        print(
            f"{round_}epoch {metrics['epoch']}: train{size} loss {metrics['train_loss']:.4f} acc "
            f"{metrics['train_accuracy']:.2%} | held-out loss {metrics['val_loss']:.4f} acc {metrics['val_accuracy']:.2%}"
            f"{at} | {metrics['seconds']:.1f} s",
            flush=True,
        )

    def on_round(self, round: int, rounds: int, summary: dict[str, Any]) -> None:
        self.close()
        print(
            f"round {round}/{rounds}: the model got {summary['pool_errors']:,} of {summary['pool']:,} pool images wrong; "
            f"added {summary['added']:,} (each {self.weight}x): training again from the same initial weights on "
            f"{summary['train_images']:,} images",
            flush=True,
        )


def train(
    config: TrainConfig,
    out: str,
    resume: Any = False,
    threads: Optional[int] = None,
    *,
    overwrite: bool = False,
    progress: Optional[TqdmProgress] = None,
) -> TrainResult:
    """Run :func:`convolab.train.fit` with a progress bar; user mistakes become one-line usage errors.

    Args:
        config: the run's settings.
        out: the output folder (``--out``).
        resume: ``--resume`` (True or a checkpoint path).
        threads: ``--threads`` (None: torch's default).
        overwrite: ``--overwrite``.
        progress: the progress callback to use (default: a new :class:`TqdmProgress`).
    """
    import torch

    from ..cli import UsageError

    check_threads(threads)
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    progress = progress or TqdmProgress()
    try:
        return fit(config, out, resume=resume, overwrite=overwrite, callbacks=[progress] if is_main_process() else [])
    except (ImportError, OSError) as exc:
        # FileNotFoundError is reported by the CLI itself; PermissionError, NotADirectoryError and
        # a missing optional dependency are user problems too.
        if isinstance(exc, FileNotFoundError):
            raise
        raise UsageError(str(exc)) from exc
    finally:
        torch.set_num_threads(before)


def report(result: TrainResult) -> str:
    """The lines printed at the end of a run: accuracy and where everything is."""
    if result.already_finished:
        resumed = f" (the run had already finished; --epochs N with N > {len(result.history)} and --resume trains further)"
    elif result.resumed_from:
        resumed = f" (resumed from {_where(*result.resumed_from)})"
    else:
        resumed = ""
    return "\n".join([
        f"final held-out accuracy: {result.val_accuracy:.2%} after {_epochs(len(result.history))}{resumed}",
        f"checkpoint (resume with --resume): {result.checkpoint}",
        f"weights (convolab.models.create_model({result.config.model!r}, weights=...)): {result.weights}",
        f"metrics: {result.metrics_csv}, {result.metrics_json}",
    ])


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    check_threads(args.threads)
    config.validate(options=True)  # every option, before any work
    progress = TqdmProgress(config.mining_weight)
    try:
        result = train(config, args.out, args.resume, args.threads, overwrite=args.overwrite, progress=progress)
    except KeyboardInterrupt:
        progress.close()
        if is_main_process():
            print(f"convolab train: {progress.interrupted()}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    if is_main_process():
        print(report(result))
    return 0
