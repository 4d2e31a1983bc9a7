"""Deformable conv 2-D vs torch's dense conv2d at the same shape (float32, 2 threads).

Run: ``python -m benchmarks.deform [--repeats 7] [--quick] [--compile]``.

The anchor is torch's own dense ``conv2d`` (forward, and forward+backward with
every input requiring grad); the ratio is ours / anchor (lower is better; the
targets are <= 4x forward+backward at C=64 and <= 2.5x at C >= 256, <= 3x / 2x
forward alone). A second table splits our forward+backward into its stages
(GEMMs, embedding_bag sampling and transposed sums, corner-weight gradients,
sorting, scatter, the rest) from torch's profiler on the same shapes.

``--compile`` adds a third table: a deformable block (DeformConv2d with its offset
predictor, C=64 at 56x56, then BatchNorm2d and ReLU) eager vs ``torch.compile``
(inductor), inference and one training step, next to the same block with a dense
``torch.nn.Conv2d`` in place of the deformable conv, so that what inductor does to the
rest of the block (batch norm, ReLU) on this CPU is seen apart from the custom op.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from convolab._bench import interleaved, measure_peak_gflops, print_table
from convolab.arithmetic import conv_macs
from convolab.functional import deform_conv2d

SHAPES = [(8, 64, 56), (4, 256, 28), (2, 512, 14)]


def _inputs(n: int, c: int, hw: int, modulated: bool):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, hw, hw, generator=g, requires_grad=True)
    w = (torch.randn(c, c, 3, 3, generator=g) * 0.05).requires_grad_()
    b = torch.zeros(c, requires_grad=True)
    off = (torch.randn(n, 18, hw, hw, generator=g) * 2).requires_grad_()
    mask = torch.rand(n, 9, hw, hw, generator=g).requires_grad_() if modulated else None
    return x, w, b, off, mask


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="first shape only")
    ap.add_argument("--compile", action="store_true", help="also time a deformable block under torch.compile")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    peak = measure_peak_gflops()
    rows, parts = [], []
    for n, c, hw in SHAPES[:1] if args.quick else SHAPES:
        macs = conv_macs(c, c, (3, 3), (hw, hw), 1, n)
        for modulated in (False, True):
            x, w, b, off, mask = _inputs(n, c, hw, modulated)
            grad = torch.randn(n, c, hw, hw)

            def ours_f():
                with torch.no_grad():
                    deform_conv2d(x, off, w, b, mask=mask, padding=1)

            def ours_fb():
                deform_conv2d(x, off, w, b, mask=mask, padding=1).backward(grad)

            def dense_f():
                with torch.no_grad():
                    F.conv2d(x, w, b, padding=1)

            def dense_fb():
                F.conv2d(x, w, b, padding=1).backward(grad)

            t = interleaved(
                {"ours_f": ours_f, "dense_f": dense_f, "ours_fb": ours_fb, "dense_fb": dense_fb},
                repeats=args.repeats,
            )
            shape = f"N={n} C={c} {hw}x{hw} 3x3 s1 p1{' +mask' if modulated else ''}"
            for kind, mult in (("f", 1), ("fb", 3)):
                ours, anchor = t[f"ours_{kind}"], t[f"dense_{kind}"]
                gflops = 2 * mult * macs / ours / 1e9
                rows.append(
                    (
                        shape,
                        "fwd" if kind == "f" else "fwd+bwd",
                        f"{ours * 1e3:.1f}",
                        f"{anchor * 1e3:.1f}",
                        f"{ours / anchor:.2f}x",
                        f"{gflops:.1f}",
                        f"{100 * gflops / peak:.0f}%",
                    )
                )
            if modulated:
                parts.append((shape, *_breakdown(x, w, off, mask, grad, args.repeats)))
    print_table(
        "deform_conv2d vs torch dense conv2d (float32; ratio = ours / dense, lower is better)",
        ["shape", "pass", "ours ms", "dense ms", "ratio", "GFLOP/s", "% peak"],
        rows,
        note=f"peak (matmul) {peak:.0f} GFLOP/s in this run; medians of "
        f"{args.repeats} interleaved repeats.",
    )
    print_table(
        "where our forward+backward time goes (ms of self CPU time per stage, profiler; same shapes, with mask)",
        ["shape", *(name for name, _ in _STAGES), _OTHER],
        parts,
    )
    if args.compile:
        _compiled_block(args.repeats)


class _Block(torch.nn.Module):
    """conv (deformable with its offset predictor, or dense) + BatchNorm2d + ReLU."""

    def __init__(self, c: int, deformable: bool) -> None:
        super().__init__()
        from convolab.nn import DeformConv2d

        if deformable:
            self.conv = DeformConv2d(c, c, 3, padding=1)
            # torch's conv as the offset predictor: convolab's own conv modules compile in
            # one graph only with the toolchain work of issue 14
            self.conv.conv_offset = torch.nn.Conv2d(c, 18, 3, padding=1)
            torch.nn.init.normal_(self.conv.conv_offset.weight, std=0.01)  # offsets of ~1 pixel
        else:
            self.conv = torch.nn.Conv2d(c, c, 3, padding=1)
        self.bn, self.relu = torch.nn.BatchNorm2d(c), torch.nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


def _compiled_block(repeats: int) -> None:
    x = torch.randn(8, 64, 56, 56, requires_grad=True)
    rows = []
    for deformable in (True, False):
        block = _Block(64, deformable)
        compiled = torch.compile(block, fullgraph=True)

        def infer(m):
            def run():
                with torch.no_grad():
                    m(x)

            return run

        def train(m):
            return lambda: m(x).sum().backward()

        fns = {"eager_inf": infer(block), "compiled_inf": infer(compiled), "eager_train": train(block), "compiled_train": train(compiled)}
        t = interleaved(fns, repeats=repeats)
        name = "DeformConv2d(64, 64, 3) + BN + ReLU" if deformable else "dense twin: Conv2d(64, 64, 3) + BN + ReLU"
        for kind, label in (("inf", "inference"), ("train", "fwd+bwd")):
            eager, comp = t[f"eager_{kind}"], t[f"compiled_{kind}"]
            rows.append((name, label, f"{eager * 1e3:.1f}", f"{comp * 1e3:.1f}", f"{eager / comp:.2f}x"))
    print_table(
        "a deformable block under torch.compile (inductor), N=8 56x56 (speed-up = eager / compiled, higher is better)",
        ["block", "pass", "eager ms", "compiled ms", "speed-up"],
        rows,
        note="the deformable conv is one opaque custom op in the compiled graph; inductor fuses the rest",
    )


# op-name groups of the profile: (column title, substrings of aten op names), first match wins
_STAGES = (
    ("GEMMs", ("mm",)),
    ("embedding_bag (columns, transposed sums)", ("embedding_bag_forward_only", "_embedding_bag(", "embedding_bag_dense")),
    ("corner-weight grads", ("per_sample_weights_backward",)),
    ("index_add (input-gradient rows)", ("index_add", "scatter_add")),
)
_OTHER = "other (offsets to points, NumPy radix sort, chain rule, copies)"


def _breakdown(x, w, off, mask, grad, repeats):
    """Self CPU time per stage of one forward+backward, from torch's profiler (ms, median of runs)."""
    ins = [t.detach().clone().requires_grad_() for t in (x, off, w, mask)]
    runs = []
    for _ in range(max(3, repeats // 2)):
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            deform_conv2d(ins[0], ins[1], ins[2], mask=ins[3], padding=1).backward(grad)
        totals = dict.fromkeys([name for name, _ in _STAGES] + [_OTHER], 0.0)
        for ev in prof.key_averages():
            stage = next((name for name, keys in _STAGES if any(k in ev.key + "(" for k in keys)), None)
            totals[stage or _OTHER] += ev.self_cpu_time_total / 1e3
        runs.append(totals)
    return tuple(f"{sorted(r[k] for r in runs)[len(runs) // 2]:.1f}" for k in runs[0])


if __name__ == "__main__":
    main()
