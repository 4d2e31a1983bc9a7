"""Pooling ops and convolution variants vs the nearest torch composition.

    python -m benchmarks.variants [--backward] [--repeats 7] [--threads 2] [--only SUBSTRING]

For each op: median ms of ours and of the torch anchor (interleaved repeats), ratio
(anchor time / our time, > 1 means we are faster), and throughput: GB/s (input + output
bytes) against this CPU's copy bandwidth for the memory-bound pooling ops, GFLOP/s
(2 flops per MAC) against its matmul peak for the convolutions, both measured in the run.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable

import torch
import torch.nn.functional as F

import convolab.functional as CF
from convolab import arithmetic as A
from convolab._bench import interleaved, measure_bandwidth_gbs, measure_peak_gflops, print_table


def _same_pad(x: torch.Tensor, k: int, s: int, value: float) -> torch.Tensor:
    """The torch way to get TensorFlow's 'same' for stride > 1: compute it, F.pad, pool."""
    flat = []
    for size in reversed(x.shape[2:]):
        flat += list(A.same_padding(size, k, s))
    return F.pad(x, flat, value=value)


def _spp_torch(x: torch.Tensor, levels, pool) -> torch.Tensor:
    return torch.cat([pool(x, n).flatten(1) for n in levels], 1)


def _spp_paper_torch(x: torch.Tensor, levels) -> torch.Tensor:
    h, w = x.shape[2:]
    return torch.cat(
        [F.max_pool2d(x, (math.ceil(h / n), math.ceil(w / n)), (h // n, w // n)).flatten(1) for n in levels], 1
    )


def _lse_torch(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
    n, c, h, w = x.shape
    cols = F.unfold(x, k, stride=s).view(n, c, k * k, -1)
    return cols.logsumexp(2).view(n, c, (h - k) // s + 1, (w - k) // s + 1)


# (name, input shape, ours, anchor, kind) where kind is "mem" (GB/s) or MACs for convs
def _suite() -> list[tuple[str, tuple[int, ...], Callable, Callable, object]]:
    dw, pw = torch.randn(64, 1, 3, 3), torch.randn(128, 64, 1, 1)
    col, row = torch.randn(64, 64, 7, 1), torch.randn(64, 64, 1, 7)
    cw, vs = torch.randn(64, 64, 1, 1), [torch.randn(64, 1, 3, 1), torch.randn(64, 1, 1, 3)]
    big, spp_in, conv_in = (8, 64, 112, 112), (8, 256, 13, 13), (8, 64, 56, 56)
    return [
        ("max_pool2d 3x3/2 pad 1", big, lambda x: CF.max_pool2d(x, 3, 2, 1), lambda x: F.max_pool2d(x, 3, 2, 1), "mem"),
        ("max_pool2d 3x3/2 'same'", big, lambda x: CF.max_pool2d(x, 3, 2, "same"),
         lambda x: F.max_pool2d(_same_pad(x, 3, 2, -math.inf), 3, 2), "mem"),
        ("avg_pool2d 3x3/2 'same'", big, lambda x: CF.avg_pool2d(x, 3, 2, "same"),
         lambda x: F.avg_pool2d(_same_pad(x, 3, 2, 0.0), 3, 2), "mem"),
        ("avg_pool2d 3x3/1 pad 1 no-pad-count", big, lambda x: CF.avg_pool2d(x, 3, 1, 1, count_include_pad=False),
         lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False), "mem"),
        ("lp_pool2d p=2 2x2", big, lambda x: CF.lp_pool2d(x, 2, 2), lambda x: F.lp_pool2d(x, 2, 2), "mem"),
        ("adaptive_avg_pool2d 7", big, lambda x: CF.adaptive_avg_pool2d(x, 7), lambda x: F.adaptive_avg_pool2d(x, 7), "mem"),
        ("global_avg_pool", big, CF.global_avg_pool, lambda x: x.mean((2, 3)), "mem"),
        ("pool reduce='max' 3x3/2 (windows)", big, lambda x: CF.pool(x, 3, 2, 1, reduce="max"),
         lambda x: F.max_pool2d(x, 3, 2, 1), "mem"),
        ("pool reduce=logsumexp 2x2/2", big, lambda x: CF.pool(x, 2, 2, reduce=torch.logsumexp),
         lambda x: _lse_torch(x, 2, 2), "mem"),
        ("spatial_pyramid_pool (1,2,4) adaptive", spp_in, lambda x: CF.spatial_pyramid_pool(x),
         lambda x: _spp_torch(x, (1, 2, 4), F.adaptive_max_pool2d), "mem"),
        ("spatial_pyramid_pool (1,2,3,6) paper", spp_in, lambda x: CF.spatial_pyramid_pool(x, (1, 2, 3, 6), bins="paper"),
         lambda x: _spp_paper_torch(x, (1, 2, 3, 6)), "mem"),
        ("channel_shuffle g=4", (8, 256, 28, 28), lambda x: CF.channel_shuffle(x, 4), lambda x: F.channel_shuffle(x, 4), "mem"),
        ("depthwise separable 3x3 64->128", conv_in, lambda x: CF.depthwise_separable_conv(x, dw, pw, padding=1),
         lambda x: F.conv2d(F.conv2d(x, dw, None, 1, 1, 1, 64), pw), A.depthwise_separable_macs(64, 128, 3, (56, 56), batch=8)),
        ("spatially separable 7x1+1x7 64", conv_in, lambda x: CF.spatially_separable_conv(x, [col, row], padding=3),
         lambda x: F.conv2d(F.conv2d(x, col, padding=(3, 0)), row, padding=(0, 3)),
         A.spatially_separable_macs(64, 64, 7, (56, 56), padding=3, batch=8)),
        ("flattened 3x3 64->64", conv_in, lambda x: CF.flattened_conv(x, cw, vs, padding=1),
         lambda x: F.conv2d(F.conv2d(F.conv2d(x, cw), vs[0], None, 1, (1, 0), 1, 64), vs[1], None, 1, (0, 1), 1, 64),
         A.flattened_conv_macs(64, 64, 3, (56, 56), padding=1, batch=8)),
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backward", action="store_true", help="time forward+backward instead of forward")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="", help="run cases whose name contains this")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    peak, bandwidth = measure_peak_gflops(), measure_bandwidth_gbs()
    rows = []
    for name, shape, ours, anchor, kind in _suite():
        if args.only not in name:
            continue
        x = torch.randn(*shape, requires_grad=args.backward)

        def timed(fn):
            def run():
                y = fn(x)
                if args.backward:
                    y.sum().backward()
                return y

            return run

        with torch.no_grad():
            torch.testing.assert_close(ours(x), anchor(x), rtol=1e-4, atol=1e-4)  # same op, or no timing
        times = interleaved({"ours": timed(ours), "torch": timed(anchor)}, repeats=args.repeats)
        t = times["ours"]
        if kind == "mem":
            with torch.no_grad():
                moved = 4 * (x.numel() + ours(x).numel()) * (2 if args.backward else 1)
            rate = f"{moved / t / 1e9:.1f} GB/s ({100 * moved / t / 1e9 / bandwidth:.0f}%)"
        else:
            flops = 2 * kind * (3 if args.backward else 1)
            rate = f"{flops / t / 1e9:.1f} GFLOP/s ({100 * flops / t / 1e9 / peak:.0f}%)"
        rows.append((name, "x".join(map(str, shape)), f"{t * 1e3:.2f}", f"{times['torch'] * 1e3:.2f}",
                     f"{times['torch'] / t:.2f}x", rate))
    print_table(
        f"variants {'forward+backward' if args.backward else 'forward'} vs the nearest torch composition "
        f"({args.threads} threads, peak {peak:.0f} GFLOP/s, copy {bandwidth:.1f} GB/s)",
        ["case", "shape", "ours ms", "torch ms", "ratio", "throughput (% of peak)"],
        rows,
        note="ratio = torch time / our time (>1: faster), medians of interleaved repeats; "
        "the machine is shared, so absolute numbers are noisy.",
    )


if __name__ == "__main__":
    main()
