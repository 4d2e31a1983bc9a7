"""Every registered conv algorithm vs torch native on real network shapes.

    python -m benchmarks.conv [--backward] [--repeats 7] [--threads 2] [--only SUBSTRING]

Prints per shape and algorithm: median ms (interleaved repeats), ratio to native
(>1 means faster than native), GFLOP/s (2 flops per MAC) and % of this CPU's peak
measured by a large matmul in the same run.
"""

from __future__ import annotations

import argparse

import torch

from convolab._bench import interleaved, measure_peak_gflops, print_table
from convolab.functional import conv, conv_transpose
from convolab.functional.algorithms import ALGORITHMS

# (name, N, C_in, C_out, spatial, kernel, stride, padding, dilation, groups, transposed)
SUITE = [
    ("resnet50 conv1 7x7/2", 1, 3, 64, (224, 224), (7, 7), 2, 3, 1, 1, False),
    ("resnet50 1x1 64->256 @56", 4, 64, 256, (56, 56), (1, 1), 1, 0, 1, 1, False),
    ("resnet50 3x3 64 @56", 4, 64, 64, (56, 56), (3, 3), 1, 1, 1, 1, False),
    ("resnet50 3x3 128/2 @56", 4, 128, 128, (56, 56), (3, 3), 2, 1, 1, 1, False),
    ("resnet50 3x3 256 @14", 4, 256, 256, (14, 14), (3, 3), 1, 1, 1, 1, False),
    ("resnet50 1x1 1024->256 @14", 4, 1024, 256, (14, 14), (1, 1), 1, 0, 1, 1, False),
    ("resnet50 3x3 512 @7", 4, 512, 512, (7, 7), (3, 3), 1, 1, 1, 1, False),
    ("depthwise 3x3 C256 @56", 4, 256, 256, (56, 56), (3, 3), 1, 1, 1, 256, False),
    ("depthwise 7x7 C128 @56", 4, 128, 128, (56, 56), (7, 7), 1, 3, 1, 128, False),
    ("dilated 3x3 d2 C256 @28", 4, 256, 256, (28, 28), (3, 3), 1, 2, 2, 1, False),
    ("grouped 3x3 g32 C256 @28", 4, 256, 256, (28, 28), (3, 3), 1, 1, 1, 32, False),
    ("transposed 4x4/2 256->128 @14", 4, 256, 128, (14, 14), (4, 4), 2, 1, 1, 1, True),
    ("1-D k9 C64 L4096", 4, 64, 64, (4096,), (9,), 1, 4, 1, 1, False),
    ("3-D 3x3x3 C64 @16x28x28", 1, 64, 64, (16, 28, 28), (3, 3, 3), 1, 1, 1, 1, False),
]


def _macs(n, cin, cout, spatial, kernel, stride, padding, dilation, groups, transposed):
    from convolab import arithmetic as A

    if transposed:
        return A.conv_transpose_macs(cin, cout, kernel, spatial, groups, n)
    out = A.conv_output_shape(spatial, kernel, stride, padding, dilation)
    return A.conv_macs(cin, cout, kernel, out, groups, n)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backward", action="store_true", help="time forward+backward instead of forward")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="", help="run shapes whose name contains this")
    parser.add_argument("--algorithms", default="", help="comma-separated subset (default: all registered)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    peak = measure_peak_gflops()
    algos = [a for a in (args.algorithms.split(",") if args.algorithms else ALGORITHMS) if a]
    rows = []
    for name, n, cin, cout, spatial, kernel, stride, padding, dilation, groups, transposed in SUITE:
        if args.only not in name:
            continue
        x = torch.randn(n, cin, *spatial, requires_grad=args.backward)
        if transposed:
            w = torch.randn(cin, cout // groups, *kernel, requires_grad=args.backward)
        else:
            w = torch.randn(cout, cin // groups, *kernel, requires_grad=args.backward)

        def make(algorithm):
            def run():
                if transposed:
                    y = conv_transpose(x, w, None, stride, padding, 0, groups, dilation, algorithm=algorithm)
                else:
                    y = conv(x, w, None, stride, padding, dilation, groups, algorithm=algorithm)
                if args.backward:
                    y.sum().backward()
                return y

            return run

        fns = {}
        for a in algos:
            try:
                make(a)()
            except NotImplementedError:
                continue
            fns[a] = make(a)
        if not fns:
            continue
        times = interleaved(fns, repeats=args.repeats)
        flops = 2 * _macs(n, cin, cout, spatial, kernel, stride, padding, dilation, groups, transposed)
        flops *= 3 if args.backward else 1  # backward: grad input + grad weight
        for a, t in times.items():
            gflops = flops / t / 1e9
            rows.append((name, a, f"{t * 1e3:.2f}", f"{times['native'] / t:.2f}x" if "native" in times else "-",
                         f"{gflops:.1f}", f"{100 * gflops / peak:.0f}%"))
    print_table(
        f"conv {'forward+backward' if args.backward else 'forward'}: algorithm vs native "
        f"({args.threads} threads, peak {peak:.0f} GFLOP/s)",
        ["shape", "algorithm", "ms", "vs native", "GFLOP/s", "% peak"],
        rows,
        note="ratio = native time / algorithm time, medians of interleaved repeats.",
    )


if __name__ == "__main__":
    main()
