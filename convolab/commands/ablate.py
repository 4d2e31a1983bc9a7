"""``convolab ablate``: which convolution (or norm placement, head, downsampling) should I use, measured.

Trains the base network once per variant and seed with everything else fixed, then prints
the comparison (params, MACs, receptive field, held-out accuracy mean ± std, time per epoch,
latency per image) and saves it as table.md/.json/.csv and accuracy_vs_macs.png in --out.
Re-running with the same --out reuses the finished runs.
"""

from __future__ import annotations

import argparse

from ..train import TrainConfig

_D = TrainConfig()


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..ablation import axes

    choices = "; ".join(f"{axis}={','.join(values)}" for axis, values in axes().items())
    p = sub.add_parser(
        "ablate",
        help="train a network once per variant of one component and compare them (accuracy, cost, speed)",
        description=f"Swap one component of a registered network, keep everything else fixed, train each "
        f"variant with several seeds and compare. Axes and variants: {choices}.",
    )
    p.add_argument("--base", default="mnist_cnn", help="registry name of the base network (default: %(default)s)")
    p.add_argument("--swap", action="append", metavar="AXIS=V1,V2,...",
                   help="variants to compare, in table order (repeat for other axes; default: conv=standard,depthwise_separable)")
    p.add_argument("--data", default="digits", help="digits | mnist:PATH | folder:PATH (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per run (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per variant: 0, 1, ... (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=_D.batch_size, help="default: %(default)s")
    p.add_argument("--lr", type=float, default=_D.lr, help="peak learning rate (default: %(default)s)")
    p.add_argument("--augment-shift", type=int, default=0, metavar="PIXELS", help="random shift (default: %(default)s)")
    p.add_argument("--limit", type=int, default=None, help="use at most this many training (and held-out) images")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    p.add_argument("--out", default="runs/ablate", help="output folder (default: %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._bench import print_table
    from ..ablation import ablate
    from ..cli import UsageError

    if args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {args.seeds}")
    if args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    config = TrainConfig(batch_size=args.batch_size, lr=args.lr, augment_shift=args.augment_shift, limit=args.limit)
    table = ablate(
        args.base, args.swap or "conv=standard,depthwise_separable", out=args.out, data=args.data,
        epochs=args.epochs, seeds=range(args.seeds), config=config, threads=args.threads,
        progress=True, plot=not args.no_plot,
    )
    print_table(table.title, table.columns, table.cells(),
                note="RF: receptive field of the last feature map; ms/image: batch 1 on this machine (noisy when busy)")
    print(f"written to {args.out}: table.md, table.json, table.csv" + ("" if args.no_plot else ", accuracy_vs_macs.png"))
    return 0
