"""``convolab demo``: the README's main job.

The demo is a list of steps (:func:`demo_steps`), each a ``(title, function(context))``; a step
records what it wrote in ``context.outputs`` and the demo ends by printing where everything is.
The classic worked examples (CS231n's conv layer, GoogLeNet's 1x1 reductions, ResNet's
bottleneck, ...), the per-layer table of a small MNIST CNN (shapes, receptive fields,
parameters, MACs), then training it on the embedded digits to >= 97% held-out accuracy with
a checkpoint, and a picture gallery.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import arithmetic as A
from ..functional import conv2d, conv_transpose2d


# The training recipe of the demo: mnist_cnn reaches >= 97% held-out accuracy on the
# 1,000 held-out embedded digits in 5 epochs: 97.7-98.2% for seeds 0-3, ~14 s of CPU time
# on one thread (41 s wall on the shared 2-core box at load average 10).
DEMO_TRAINING = dict(model="mnist_cnn", data="digits", epochs=5, batch_size=64, lr=0.05, augment_shift=2)
QUICK_TRAINING = dict(epochs=1, limit=256)
# What the demo writes into --out: finding one of these there means an earlier demo.
DEMO_PRODUCTS = ("*_summary.md", "gallery", "*/last.pt", "*/model.pt", "*/metrics.csv", "*/metrics.json")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="worked examples, then train a small CNN on the embedded digits",
                       description="The tour in two minutes: classic worked examples computed by convolab, the "
                       "layer-by-layer table of a small MNIST CNN (mnist_cnn), training it on the embedded "
                       "handwritten digits, and a gallery of animations. Ends with where everything is.")
    p.add_argument("--seed", type=int, default=0, help="seed of the example input and of training")
    p.add_argument("--out", default="convolab-demo", help="folder for the checkpoint and metrics (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier demo's files in --out (default: refuse)")
    p.add_argument("--epochs", type=int, default=DEMO_TRAINING["epochs"], help="training epochs (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="a few seconds: 256 images, 1 epoch (no accuracy target)")
    # The network's matmuls are too small to gain from more threads, and on a busy machine
    # extra threads spin against other processes (measured: 6 min with 2 threads vs 30 s with 1).
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    p.set_defaults(func=run)


@dataclass
class DemoContext:
    """What the steps share: the options, the output folder, and what each step produced."""

    args: argparse.Namespace
    out: Path
    outputs: dict[str, Path] = field(default_factory=dict)  # label -> file or folder, printed at the end
    results: dict[str, Any] = field(default_factory=dict)  # e.g. "train" -> TrainResult


Step = tuple[str, Callable[[DemoContext], None]]


def demo_steps() -> list[Step]:
    """The demo, in order; add a step by inserting a ``(title, function)`` pair."""
    return [
        ("Worked examples: the classic numbers, computed", examples_step),
        ("A small MNIST CNN (mnist_cnn), layer by layer (computed on meta tensors, nothing runs)", summary_step),
        ("Training mnist_cnn on the embedded handwritten digits", train_step),
        ("A gallery of pictures: every convolution and pooling, animated", gallery_step),
    ]


def gallery_step(ctx: DemoContext) -> None:
    from ..viz import write_gallery

    paths = write_gallery(ctx.out / "gallery")
    print(f"{len(paths) - 1} animations and an HTML page with all of them (open it in a browser)")
    ctx.outputs["picture gallery"] = paths[-1]


def summary_step(ctx: DemoContext) -> None:
    from ..analysis import summary
    from ..models import create_model

    table = summary(create_model("mnist_cnn"), (1, 1, 28, 28), depth=2)
    print(table.to_text(width=None), end="")  # as wide as the terminal
    ctx.out.mkdir(parents=True, exist_ok=True)
    path = ctx.out / "mnist_cnn_summary.md"
    path.write_text(table.to_markdown())
    ctx.outputs["per-layer table"] = path


def examples_step(ctx: DemoContext) -> None:
    for title, text in worked_examples(ctx.args.seed):
        print(f"== {title}\n{text}\n")


def train_step(ctx: DemoContext) -> None:
    from .train import report, train
    from ..train import TrainConfig

    settings = {**DEMO_TRAINING, "epochs": ctx.args.epochs, "seed": ctx.args.seed}
    if ctx.args.quick:
        settings.update(QUICK_TRAINING)
    result = train(TrainConfig(**settings), str(ctx.out / "mnist_cnn"), threads=ctx.args.threads,
                   overwrite=getattr(ctx.args, "overwrite", False))
    ctx.results["train"] = result
    print(report(result).splitlines()[0])  # the paths follow in "Where everything is"
    ctx.outputs.update({
        "checkpoint": result.checkpoint, "trained weights": result.weights, "training metrics": result.metrics_csv,
    })


def worked_examples(seed: int = 0) -> list[tuple[str, str]]:
    """(title, text) pairs: every number is computed by convolab, none is typed in."""
    g = torch.Generator().manual_seed(seed)
    out = []
    # CS231n's demo: 5x5x3 input, two 3x3 filters, stride 2, padding 1.
    x = torch.randint(0, 3, (1, 3, 5, 5), generator=g).float()
    w = torch.randint(-1, 2, (2, 3, 3, 3), generator=g).float()
    b = torch.tensor([1.0, 0.0])
    y = conv2d(x, w, b, stride=2, padding=1)
    size = A.conv_output_size(5, 3, stride=2, padding=1)
    out.append((
        "Conv layer: 5x5x3 input, 2 filters 3x3, stride 2, padding 1 (CS231n's convolution demo)",
        f"output size = floor((5 + 2*1 - 3) / 2) + 1 = {size}  ->  output {tuple(y.shape[1:])} "
        f"(C_out, H, W)\n"
        + "\n".join(f"  output channel {o}:\n{_grid(y[0, o])}" for o in range(2)),
    ))
    naive = sum(A.conv_params(192, c, k, bias=False) for c, k in ((64, 1), (128, 3), (32, 5)))
    reduced = (
        A.conv_params(192, 64, 1, bias=False)
        + A.conv_params(192, 96, 1, bias=False) + A.conv_params(96, 128, 3, bias=False)
        + A.conv_params(192, 16, 1, bias=False) + A.conv_params(16, 32, 5, bias=False)
    )
    out.append((
        "1x1 reductions: weights of GoogLeNet's inception (3a), 28x28x192 input (Szegedy et al. 2015)",
        f"naive 1x1/3x3/5x5 branches: {naive:,}\nwith 1x1 reductions (96, 16): {reduced:,}  "
        f"({naive / reduced:.2f}x fewer)",
    ))
    plain = A.conv_macs(256, 256, 3, (1, 1))
    bottleneck = A.conv_macs(256, 64, 1, (1, 1)) + A.conv_macs(64, 64, 3, (1, 1)) + A.conv_macs(64, 256, 1, (1, 1))
    out.append((
        "Bottleneck: a ResNet block on 256 channels (He et al. 2016), multiply-accumulates per output pixel",
        f"3x3 conv 256->256: {plain:,} * w * h\n1x1 256->64, 3x3 64->64, 1x1 64->256: "
        f"{bottleneck:,} * w * h  ({plain / bottleneck:.1f}x fewer)",
    ))
    m, n, k1, k2 = 28 * 28, 28 * 28, 3, 3
    out.append((
        "Locality and weight sharing: one 28x28 map to one 28x28 map",
        f"fully connected M*N+N = {A.linear_params(m, n):,}\n"
        f"one shared 3x3 filter (K1*K2+1) = {A.conv_params(1, 1, (k1, k2)):,}",
    ))
    fields = A.receptive_fields([(3, 1, 0)] * 3)
    out.append((
        "Receptive field of stacked 3x3 convs (stride 1)",
        "  ".join(f"{i + 1} layer{'s' if i else ''}: {rf.size:g}x{rf.size:g}" for i, rf in enumerate(fields)),
    ))
    t = conv_transpose2d(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 3, 3))
    out.append((
        "Transposed convolution: 2x2 input, 3x3 kernel, stride 1 (zero insertion + full padding; Dumoulin & Visin 2016)",
        f"output {tuple(t.shape[2:])}, all-ones input and kernel give the overlap counts:\n{_grid(t[0, 0])}",
    ))
    same = A.conv_output_shape((224, 224), 7, stride=2, padding="same")
    out.append((
        "'same' padding with stride 2 (TensorFlow's rule), 224x224 input, 7x7 kernel",
        f"padding per side {A.resolve_padding('same', (224, 224), 7, 2)} -> output {same}",
    ))
    return out


def _grid(t: torch.Tensor) -> str:
    return "\n".join("    " + " ".join(f"{v:5g}" for v in row.tolist()) for row in t)


def next_steps(ctx: DemoContext) -> list[tuple[str, str]]:
    """(command, what it shows): the three most useful things to try after the demo."""
    from .explain import DEMO_CHECKPOINT

    result = ctx.results.get("train")
    weights = ""
    if result is not None and Path(result.checkpoint).resolve() != DEMO_CHECKPOINT.resolve():
        weights = f" --weights {result.checkpoint}"  # not where `explain` looks by default
    return [
        (f"convolab explain feature-maps --layer layer1{weights} -o maps.png",
         "what the trained network's first layer sees in a digit"),
        ("convolab summary resnet50 --depth 1", "any network, layer by layer (shapes, fields, params, MACs)"),
        ("convolab animate conv2d --input 5 --kernel 3 --stride 2 --padding 1 -o conv.html",
         "the sliding window, step by step, in a browser"),
    ]


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..train import claim_output_dir

    # checked before anything is printed or written
    if args.epochs < 1:
        raise UsageError(f"--epochs must be >= 1, got {args.epochs}")
    if args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    # --out first: a folder that cannot be used, is in use or holds an earlier demo fails before any output
    with claim_output_dir(args.out, overwrite=args.overwrite, op="demo", products=DEMO_PRODUCTS, resumable=False,
                           kind="demo"):
        ctx = DemoContext(args, Path(args.out))
        for i, (title, step) in enumerate(demo_steps(), 1):
            print(f"# {i}. {title}\n")
            step(ctx)
            print()
    if ctx.outputs:
        print("Where everything is:")
        width = max(map(len, ctx.outputs))
        for label, path in ctx.outputs.items():
            print(f"  {label.ljust(width)}  {path}")
    steps = next_steps(ctx)
    print("\nNext:")
    for command, what in steps:
        print(f"  {command}\n      {what}")
    print("  (and the concepts guide, docs/concepts.md: every concept with the call that shows it)")
    return 0
