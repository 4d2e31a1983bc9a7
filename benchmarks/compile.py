"""convolab networks under torch.compile vs the same networks built from torch.nn, same weights.

    python -m benchmarks.compile [--models resnet18,resnet50,mobilenet_v2] [--batch 8] [--size 224]
                                 [--threads 2] [--repeats 7] [--quick]

For each model and pass (inference under no_grad; a training step: forward, backward, SGD
update) four variants run interleaved: convolab eager, its torch.nn twin eager
(:func:`convolab.nn.to_torch`), and both compiled with ``torch.compile`` (inductor). Prints
median ms, the ratios (twin / ours: > 1 means convolab is faster; the bar is >= 0.97 for both
eager and compiled), the compile speed-up of each, GFLOP/s and % of this CPU's matmul peak
measured in the same run. Compilation happens before timing and is reported separately.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch import nn

from convolab import nn as cnn
from convolab._bench import interleaved, measure_peak_gflops, print_table
from convolab.models import create_model

from .models import forward_macs

DEFAULT = "resnet18,resnet50,mobilenet_v2"


def _runner(model: nn.Module, x: torch.Tensor, train: bool):  # type: ignore[no-untyped-def]
    if not train:
        def infer() -> None:
            with torch.no_grad():
                model(x)
        return infer
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        model(x).float().mean().backward()
        opt.step()
    return step


def _compiled(fn_model: nn.Module, x: torch.Tensor, train: bool) -> tuple[object, float]:
    compiled = torch.compile(fn_model)
    run = _runner(compiled, x, train)
    start = time.perf_counter()
    run()  # compiles
    run()
    return run, time.perf_counter() - start


def main(argv=None) -> None:  # type: ignore[no-untyped-def]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT, help="comma-separated registry names")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224, help="input height = width")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="batch 4, 128x128, 5 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.size, args.repeats = 4, 128, 5
    torch.set_num_threads(args.threads)
    peak = measure_peak_gflops()
    rows = []
    for name in args.models.split(","):
        for train in (False, True):
            torch.manual_seed(0)
            torch._dynamo.reset()
            ours = create_model(name).train(train)
            twin = cnn.to_torch(ours, strict=True).train(train)
            x = torch.randn(args.batch, 3, args.size, args.size)
            macs = forward_macs(ours.eval(), x) * (3 if train else 1)
            ours.train(train)
            ours_c, t_ours = _compiled(ours, x, train)
            twin_c, t_twin = _compiled(twin, x, train)
            times = interleaved(
                {"ours": _runner(ours, x, train), "twin": _runner(twin, x, train),
                 "ours_c": ours_c, "twin_c": twin_c},
                args.repeats, min_time=0.0,
            )
            gflops = 2 * macs / times["ours_c"] / 1e9
            rows.append((
                f"{name} {'train' if train else 'no_grad'}",
                f"{times['ours'] * 1e3:.0f}", f"{times['twin'] * 1e3:.0f}", f"{times['twin'] / times['ours']:.2f}",
                f"{times['ours_c'] * 1e3:.0f}", f"{times['twin_c'] * 1e3:.0f}",
                f"{times['twin_c'] / times['ours_c']:.2f}",
                f"{times['ours'] / times['ours_c']:.2f}", f"{times['twin'] / times['twin_c']:.2f}",
                f"{gflops:.0f}", f"{100 * gflops / peak:.0f}%", f"{t_ours:.0f}/{t_twin:.0f}",
            ))
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print_table(
        f"torch.compile: convolab vs torch.nn twin, batch {args.batch}, {args.size}x{args.size}, "
        f"{args.threads} threads, peak {peak:.0f} GFLOP/s, load {load}",
        ["case", "eager", "twin", "ratio", "compiled", "twin c.", "ratio c.", "speed-up", "twin s-u",
         "GFLOP/s", "% peak", "compile s"],
        rows,
        note="ms are medians of interleaved repeats; ratio = twin / ours (> 1: convolab faster); speed-up = "
             "eager / compiled; GFLOP/s and % peak of convolab compiled; compile s = first two calls, ours/twin.",
    )


if __name__ == "__main__":
    main()
