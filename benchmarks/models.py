"""Registered networks built from convolab layers vs the same networks with torch.nn convolutions.

    python -m benchmarks.models [--models resnet18,mobilenet_v2] [--batch 8] [--size 128]
                                [--threads 2] [--repeats 7] [--eval]

The torch twin is :func:`convolab.nn.to_torch` of the model: every convolab conv and
pooling layer torch can spell replaced by ``torch.nn``'s with the same weights, so the
two differ only in those layers. Prints per model: median ms of a
training step (forward + backward; ``--eval``: inference forward) for both,
ratio (torch / ours: > 1 means ours is faster; DESIGN's bar is >= 0.97),
GFLOP/s (2 flops per MAC, backward counted as 2x forward) and % of this
CPU's peak measured by a large matmul in the same run.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from convolab import arithmetic
from convolab import nn as cnn
from convolab._bench import interleaved, measure_peak_gflops, print_table
from convolab.models import create_model

DEFAULT = "resnet18,resnet50,mobilenet_v2,shufflenet_v2_x1_0,googlenet,hourglass2"


def torch_twin(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with torch.nn layers in place of convolab's (same weights):
    :func:`convolab.nn.to_torch`."""
    return cnn.to_torch(model)


def forward_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of one forward: convolutions and linear layers, counted by hooks."""
    total = 0

    def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Linear):
            # a linear layer on a channels-last map (ConvNeXt) runs once per position, not once per sample
            total += arithmetic.linear_macs(module.in_features, module.out_features, out.numel() // out.shape[-1])
        elif isinstance(module, (cnn.ConvTranspose2d, nn.ConvTranspose2d)):
            x_in = args[0]
            total += arithmetic.conv_transpose_macs(
                module.in_channels, module.out_channels, module.kernel_size, tuple(x_in.shape[2:]),
                module.groups, x_in.shape[0],
            )  # fmt: skip
        else:
            total += arithmetic.conv_macs(
                module.in_channels, module.out_channels, module.kernel_size, tuple(out.shape[2:]),
                module.groups, out.shape[0],
            )  # fmt: skip

    kinds = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, cnn.Conv2d, cnn.ConvTranspose2d)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total


def _step(model: nn.Module, x: torch.Tensor, train: bool):
    def run() -> None:
        if not train:
            with torch.no_grad():
                model(x)
            return
        out = model(x)
        outs = out if isinstance(out, (list, tuple)) else [out]
        sum(o.float().mean() for o in outs if o is not None).backward()

    return run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT, help="comma-separated registry names")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=128, help="input height = width")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--eval", action="store_true", help="time inference forward instead of a training step"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    peak = measure_peak_gflops()
    train = not args.eval
    rows = []
    for name in args.models.split(","):
        ours = create_model(name).train(train)
        twin = torch_twin(ours).train(train)
        size = max(args.size, getattr(ours, "min_input_size", (args.size,))[0])
        x = torch.randn(args.batch, 3, size, size)
        macs = forward_macs(ours.eval(), x) * (3 if train else 1)
        ours.train(train)
        times = interleaved({"ours": _step(ours, x, train), "torch": _step(twin, x, train)}, args.repeats)
        gflops = 2 * macs / times["ours"] / 1e9
        rows.append(
            (
                f"{name} {args.batch}x3x{size}x{size}",
                f"{times['ours'] * 1e3:.1f}",
                f"{times['torch'] * 1e3:.1f}",
                f"{times['torch'] / times['ours']:.2f}",
                f"{gflops:.1f}",
                f"{100 * gflops / peak:.0f}%",
            )
        )
    print_table(
        f"{'training step (fwd+bwd)' if train else 'inference forward'}: convolab layers vs torch.nn "
        f"({args.threads} threads, peak {peak:.0f} GFLOP/s)",
        ["case", "ours ms", "torch ms", "ratio", "GFLOP/s", "% peak"],
        rows,
        note="ratio = torch / ours (> 1: ours faster); medians of interleaved repeats.",
    )


if __name__ == "__main__":
    main()
