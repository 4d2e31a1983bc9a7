"""``convolab ablate``: which convolution (or norm placement, head, downsampling) should I use, measured.

Trains the base network once per variant and random seed with everything else fixed, then
prints the comparison (params, MACs, receptive field, held-out accuracy mean ± std, time per
epoch, latency per image) and saves it as table.md/.json/.csv and accuracy_vs_macs.png in
--out. Re-running with the same --out and --resume reuses the finished runs; --overwrite
starts afresh. Every option and --out are checked before any training; Ctrl-C stops with one
line saying what was kept (exit status 130).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..train import TrainConfig

_D = TrainConfig()
MAX_SEEDS = 1000  # random seeds per variant: each is a full training run


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..ablation import axes

    from ..ablation.variants import SIZES_AXIS

    choices = "; ".join(f"{axis}={','.join(values)}" for axis, values in axes().items() if axis != SIZES_AXIS)
    choices += (f"; {SIZES_AXIS}=SIZES,... (the image sizes training switches among, joined by +, e.g. "
                f"{SIZES_AXIS}=28,28+20+36; the base must take any size, e.g. --base mnist_spp)")
    p = sub.add_parser(
        "ablate",
        help="train a network once per variant of one component and compare them (accuracy, cost, speed)",
        description=f"Swap one component of a registered network, keep everything else fixed, train each "
        f"variant with several random seeds and compare. Axes and variants: {choices}.",
    )
    p.add_argument("--base", default="mnist_cnn", help="registry name of the base network (default: %(default)s)")
    p.add_argument("--swap", action="append", metavar="AXIS=V1,V2,...",
                   help="variants to compare, in table order (repeat for other axes; default: conv=standard,depthwise_separable)")
    p.add_argument("--data", default="digits", help="digits | mnist:PATH | folder:PATH (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per run, >= 1 (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=3,
                   help=f"random seeds per variant (0, 1, ...), 1 to {MAX_SEEDS} (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=_D.batch_size, help=">= 1 (default: %(default)s)")
    p.add_argument("--lr", type=float, default=_D.lr, help="peak learning rate, > 0 (default: %(default)s)")
    p.add_argument("--augment-shift", type=int, default=0, metavar="PIXELS",
                   help="random shift, at most a quarter of the image side (default: %(default)s)")
    p.add_argument("--limit", type=int, default=None,
                   help="use at most this many training and at most this many held-out images")
    p.add_argument("--size-schedule", default=_D.size_schedule, choices=("epoch", "batch"),
                   help="train_sizes: switch size every epoch or every batch (default: %(default)s)")
    p.add_argument("--eval-sizes", type=_sizes, default=None, metavar="S1,S2,...",
                   help="train_sizes: also measure every run's held-out accuracy at these image sizes "
                   "(default: every size the variants name)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    p.add_argument("--out", default="runs/ablate", help="output folder, one ablation at a time (default: %(default)s)")
    p.add_argument("--resume", action="store_true",
                   help="continue the ablation in --out: reuse its finished runs, continue an interrupted one")
    p.add_argument("--overwrite", action="store_true", help="replace the ablation in --out (default: refuse)")
    p.set_defaults(func=run)


def _sizes(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected image sizes separated by commas (e.g. 20,28,36), got {text!r}") from None


def interrupted(out: Path) -> str:
    """The line printed after Ctrl-C: which runs are kept in ``out`` and how to continue."""
    finished = sorted(out.glob("runs/*/seed*/run.json"))
    partial = [p for p in sorted(out.glob("runs/*/seed*/last.pt")) if not (p.parent / "run.json").is_file()]
    kept = []
    if finished:
        kept.append(f"{len(finished)} finished run{'s' if len(finished) != 1 else ''} in {out / 'runs'}")
    if partial:
        kept.append(f"the interrupted run's last checkpoint {partial[0]}")
    if not kept:
        return "interrupted before any run was saved; nothing was kept (run the same command to start again)"
    return f"interrupted; kept {' and '.join(kept)}: to continue, run the same command with --resume"


def run(args: argparse.Namespace) -> int:
    from .._bench import print_table
    from ..ablation import ablate
    from ..cli import UsageError
    from .train import check_threads

    if not 1 <= args.seeds <= MAX_SEEDS:
        raise UsageError(f"--seeds must be >= 1, got {args.seeds}" if args.seeds < 1
                         else f"--seeds must be <= {MAX_SEEDS} (each seed is a training run per variant), got {args.seeds}")
    check_threads(args.threads)
    config = TrainConfig(batch_size=args.batch_size, lr=args.lr, augment_shift=args.augment_shift, limit=args.limit,
                         size_schedule=args.size_schedule)
    # every option before any work; the base network is named by ablate() itself
    TrainConfig(**{**config.__dict__, "epochs": args.epochs}).validate(options=True)
    try:
        table = ablate(
            args.base, args.swap or "conv=standard,depthwise_separable", out=args.out, data=args.data,
            epochs=args.epochs, seeds=range(args.seeds), config=config, threads=args.threads,
            progress=True, plot=not args.no_plot, resume=args.resume, overwrite=args.overwrite,
            eval_sizes=args.eval_sizes,
        )
    except KeyboardInterrupt:
        print(f"convolab ablate: {interrupted(Path(args.out))}", file=sys.stderr, flush=True)
        return 130
    note = "RF: receptive field of the last feature map; ms/image: batch 1 on this machine (noisy when busy)"
    if table.sizes:
        note += ("; accuracy: at each variant's first size; acc@S: mean held-out accuracy with the images resized "
                 "to SxS (— where not measured)")
    print_table(table.title, table.columns, table.cells(), note=note)
    print(f"written to {args.out}: table.md, table.json, table.csv" + ("" if args.no_plot else ", accuracy_vs_macs.png"))
    return 0
