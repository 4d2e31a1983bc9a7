"""Locally connected layers vs a conv of the same shape and vs the usual plain-torch version.

    python -m benchmarks.local [--backward] [--repeats 7] [--threads 2] [--only SUBSTRING]

A locally connected layer does exactly the conv's multiply-accumulates but reads a different
filter bank at every output position (``prod(out)`` times the conv's weights), so the conv of
the same shape is its lower bound in time. The second anchor is the version people write in
plain torch (unfold the windows, multiply by the weight broadcast over the batch, sum), which
materialises ``N x C_out x C_in x K`` products per position. Reported: median ms of
interleaved repeats, our time relative to each anchor, and achieved GFLOP/s (2 flops per MAC)
against this CPU's matmul peak measured in the same run.
"""

from __future__ import annotations

import argparse
import math
import os

import torch
import torch.nn.functional as F

from convolab import arithmetic as A
from convolab._bench import interleaved, measure_peak_gflops, print_table
from convolab.functional import locally_connected

# (name, input shape [N, C_in, *spatial], C_out, kernel, stride, padding)
CASES = [
    ("1-D 16->32 k7, L 256", (32, 16, 256), 32, 7, 1, 3),
    ("MNIST stem 1->8 k3", (64, 1, 28, 28), 8, 3, 1, 0),
    ("mnist_cnn layer3 25->50 k3", (64, 25, 13, 13), 50, 3, 1, 0),
    ("CIFAR 32->32 k3 'same'", (16, 32, 32, 32), 32, 3, 1, 1),
    ("DeepFace-like 16->16 k5, 32x32", (8, 16, 32, 32), 16, 5, 1, 0),
    ("strided 32->64 k3 s2", (16, 32, 32, 32), 64, 3, 2, 1),
    ("3-D 8->8 k3, 12^3", (4, 8, 12, 12, 12), 8, 3, 1, 1),
]


def _plain_torch(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, k: int, s: int, p: int) -> torch.Tensor:
    """The usual plain-torch locally connected layer: unfold, broadcast-multiply, sum."""
    nd = x.dim() - 2
    x = F.pad(x, [p] * (2 * nd))
    for j in range(nd):
        x = x.unfold(2 + j, k, s)  # [N, C_in, *out, *k]
    # weight [*out, C_out, C_in, *k] -> [C_out, C_in, *out, *k] to broadcast over N
    order = [nd, nd + 1, *range(nd), *range(nd + 2, 2 * nd + 2)]
    prod = x.unsqueeze(1) * w.permute(order).unsqueeze(0)  # [N, C_out, C_in, *out, *k]
    return prod.sum([2, *range(3 + nd, 3 + 2 * nd)]) + b


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backward", action="store_true", help="time forward+backward instead of forward")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="", help="run cases whose name contains this")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    peak = measure_peak_gflops()
    rows = []
    for name, shape, c_out, k, s, p in CASES:
        if args.only not in name:
            continue
        nd = len(shape) - 2
        torch.manual_seed(0)
        x = torch.randn(*shape, requires_grad=args.backward)
        out = A.conv_output_shape(shape[2:], k, s, p)
        w = torch.randn(*out, c_out, shape[1], *(k,) * nd, requires_grad=args.backward)
        b = torch.randn(c_out, *out, requires_grad=args.backward)
        cw = torch.randn(c_out, shape[1], *(k,) * nd, requires_grad=args.backward)
        cb = torch.randn(c_out, requires_grad=args.backward)
        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
        fns = {
            "ours": lambda: locally_connected(x, w, b, s, p),
            "conv": lambda: conv(x, cw, cb, s, p),
            "plain": lambda: _plain_torch(x, w, b, k, s, p),
        }
        with torch.no_grad():
            torch.testing.assert_close(fns["ours"](), fns["plain"](), rtol=1e-4, atol=1e-3)  # same op, or no timing

        def timed(fn):
            def run():
                y = fn()
                if args.backward:
                    y.sum().backward()
                return y

            return run

        times = interleaved({n: timed(f) for n, f in fns.items()}, repeats=args.repeats)
        macs = A.locally_connected_macs(shape[1], c_out, (k,) * nd, out, batch=shape[0])
        flops = 2 * macs * (3 if args.backward else 1)
        t = times["ours"]
        weights_mb = 4 * A.locally_connected_params(shape[1], c_out, (k,) * nd, out) / 2**20
        rows.append((name, "x".join(map(str, shape)), f"{weights_mb:.1f}", f"{t * 1e3:.2f}",
                     f"{times['conv'] * 1e3:.2f}", f"{t / times['conv']:.2f}x", f"{times['plain'] * 1e3:.2f}",
                     f"{times['plain'] / t:.1f}x", f"{flops / t / 1e9:.1f} ({100 * flops / t / 1e9 / peak:.0f}%)"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    print_table(
        f"locally_connected {'forward+backward' if args.backward else 'forward'} ({args.threads} threads, "
        f"peak {peak:.0f} GFLOP/s, load average {load:.1f})",
        ["case", "input", "weights MB", "ours ms", "conv ms", "ours/conv", "plain ms", "plain/ours", "GFLOP/s (% peak)"],
        rows,
        note="ours/conv: time relative to the conv of the same shape (its lower bound: same MACs, shared "
        "weights); plain/ours: speed-up over unfold * weight -> sum in plain torch. Medians of interleaved "
        "repeats on a shared machine: compare within a row.",
    )


if __name__ == "__main__":
    main()
