"""``convolab train``: train any registered model on the embedded digits, MNIST IDX files or an image folder.

Runs data-parallel when started by torchrun, e.g. on one machine with two processes:
``torchrun --standalone --nproc_per_node=2 -m convolab train mnist_cnn --out runs/a``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Optional

from ..train import Callback, TrainConfig, TrainResult, fit
from ..train.loop import OPTIMIZERS, SCHEDULERS

_DEFAULTS = TrainConfig()


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
    p.add_argument("--epochs", type=int, default=d.epochs, help="default: %(default)s")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="global batch (default: %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (default: %(default)s)")
    p.add_argument("--optimizer", default=d.optimizer, help=f"{' | '.join(OPTIMIZERS)} (default: %(default)s)")
    p.add_argument("--scheduler", default=d.scheduler, help=f"{' | '.join(SCHEDULERS)} (default: %(default)s)")
    p.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum (default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="default: %(default)s")
    p.add_argument("--hard-mining", type=float, default=None, metavar="FRACTION",
                   help="back-propagate only the hardest FRACTION of each batch (online hard example mining)")
    p.add_argument("--augment-shift", type=int, default=d.augment_shift, metavar="PIXELS",
                   help="shift each training image randomly by up to PIXELS (default: %(default)s)")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction,
                   help="held-out share when the data has no test set (default: %(default)s)")
    p.add_argument("--limit", type=int, default=None, help="use at most this many training images")
    p.add_argument("--image-size", type=int, default=None, help="resize images to this square size")
    p.add_argument("--seed", type=int, default=d.seed, help="default: %(default)s")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, metavar="STEPS",
                   help="also checkpoint every STEPS steps (default: only at epoch ends)")
    p.add_argument("--sync-bn", action="store_true", help="batch norm over the global batch under torchrun")
    p.add_argument("--workers", type=int, default=d.workers, help="data-loading processes for image folders")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads per process (default: torch's)")
    p.add_argument("--out", default="runs/train", help="output folder (default: %(default)s)")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                   help="continue from OUT/last.pt (or the given checkpoint) with the same settings")


def config_from_args(args: argparse.Namespace, **overrides: Any) -> TrainConfig:
    """A TrainConfig from parsed options (``overrides`` win)."""
    values = dict(
        model=args.model, data=args.data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        optimizer=args.optimizer, scheduler=args.scheduler, momentum=args.momentum,
        weight_decay=args.weight_decay, hard_mining=args.hard_mining, augment_shift=args.augment_shift,
        val_fraction=args.val_fraction, limit=args.limit, image_size=args.image_size, seed=args.seed,
        checkpoint_every=args.checkpoint_every, sync_bn=args.sync_bn, workers=args.workers,
    )
    values.update(overrides)
    return TrainConfig(**values)


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


class TqdmProgress(Callback):
    """A tqdm bar per epoch with the running loss and accuracy; one summary line per epoch."""

    def __init__(self) -> None:
        self.bar: Optional[Any] = None

    def on_start(self, summary: dict[str, Any]) -> None:
        procs = f", {summary['processes']} processes ({summary['backend']})" if summary["processes"] > 1 else ""
        resumed = summary["resumed_from"]
        print(
            f"training {summary['model']} ({summary['params']:,} parameters) on {summary['data']}: "
            f"{summary['train']:,} training / {summary['val']:,} held-out images{procs}"
            + (f"; resuming epoch {resumed[0] + 1} at step {resumed[1]}" if resumed else ""),
            flush=True,
        )

    def on_epoch_start(self, epoch: int, epochs: int, steps: int, start_step: int) -> None:
        try:
            from tqdm import tqdm
        except ImportError:  # the cli extra is missing: epoch lines only
            return
        self.bar = tqdm(total=steps, initial=start_step, desc=f"epoch {epoch + 1}/{epochs}", unit="step",
                        dynamic_ncols=True, leave=False)

    def on_step(self, epoch: int, step: int, loss: float, accuracy: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.2%}", refresh=False)

    def on_epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        print(
            f"epoch {metrics['epoch']}: train loss {metrics['train_loss']:.4f} acc {metrics['train_accuracy']:.2%}"
            f" | held-out loss {metrics['val_loss']:.4f} acc {metrics['val_accuracy']:.2%}"
            f" | {metrics['seconds']:.1f} s",
            flush=True,
        )


def train(config: TrainConfig, out: str, resume: Any = False, threads: Optional[int] = None) -> TrainResult:
    """Run :func:`convolab.train.fit` with a progress bar; user mistakes become one-line usage errors."""
    import torch

    from ..cli import UsageError

    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be >= 1, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        return fit(config, out, resume=resume, callbacks=[TqdmProgress()] if is_main_process() else [])
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
    resumed = (
        f" (resumed from epoch {result.resumed_from[0] + 1}, step {result.resumed_from[1]})"
        if result.resumed_from else ""
    )
    return "\n".join([
        f"final held-out accuracy: {result.val_accuracy:.2%} after {len(result.history)} epochs{resumed}",
        f"checkpoint (resume with --resume): {result.checkpoint}",
        f"weights (convolab.models.create_model({result.config.model!r}, weights=...)): {result.weights}",
        f"metrics: {result.metrics_csv}, {result.metrics_json}",
    ])


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    result = train(config, args.out, args.resume, args.threads)
    if is_main_process():
        print(report(result))
    return 0
