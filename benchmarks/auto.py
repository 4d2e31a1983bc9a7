"""``algorithm="auto"`` against torch's own convolution on a suite of real network shapes.

The anchor is the faster of torch native in NCHW and torch native in
channels-last *including the conversion* (both measured in the same run).
Forward is timed under ``torch.no_grad()`` (inference: auto optimises the
forward), forward+backward with grad mode on (auto optimises both). Medians
of interleaved repeats.

    python -m benchmarks.auto                 # cost model
    python -m benchmarks.auto --autotune      # cuDNN-style autotuning (tuning time excluded)
    python -m benchmarks.auto --only dw --mode fwdbwd --repeats 5
    python -m benchmarks.auto --accuracy      # every algorithm vs float64 native on the suite

When "auto" picks an algorithm that does not keep native's numerics (fft, winograd), it runs
it behind the checks of ``algorithms._numerics``; the column "checks" is what they cost: auto's
time over the same algorithm run explicitly (unchecked), minus one.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from convolab._bench import interleaved, measure_peak_gflops, print_table
from convolab.functional import ALGORITHMS, conv, conv_transpose
from convolab.functional.algorithms import native_numerics, set_chooser
from convolab.functional.algorithms import autotune, choose_algorithm


@dataclass(frozen=True)
class Case:
    name: str
    input: tuple[int, ...]
    weight: tuple[int, ...]
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    transposed: bool = False

    @property
    def nd(self) -> int:
        return len(self.weight) - 2


SUITE = [
    # ResNet-50 (batch 4, 224x224 input)
    Case("r50 stem 7x7/2", (4, 3, 224, 224), (64, 3, 7, 7), 2, 3),
    Case("r50 l1 1x1 64->64", (4, 64, 56, 56), (64, 64, 1, 1)),
    Case("r50 l1 3x3 64", (4, 64, 56, 56), (64, 64, 3, 3), 1, 1),
    Case("r50 l1 1x1 64->256", (4, 64, 56, 56), (256, 64, 1, 1)),
    Case("r50 l1 1x1 256->64", (4, 256, 56, 56), (64, 256, 1, 1)),
    Case("r50 l2 3x3/2 128", (4, 128, 56, 56), (128, 128, 3, 3), 2, 1),
    Case("r50 l2 1x1 512->128", (4, 512, 28, 28), (128, 512, 1, 1)),
    Case("r50 l3 3x3 256", (4, 256, 14, 14), (256, 256, 3, 3), 1, 1),
    Case("r50 l3 1x1/2 512->1024", (4, 512, 28, 28), (1024, 512, 1, 1), 2),
    Case("r50 l4 3x3 512", (4, 512, 7, 7), (512, 512, 3, 3), 1, 1),
    Case("r50 l4 1x1 2048->512", (4, 2048, 7, 7), (512, 2048, 1, 1)),
    # depthwise (MobileNet 3x3, ConvNeXt 7x7, RepLKNet 13x13 / 31x31)
    Case("dw 3x3 C128 56", (4, 128, 56, 56), (128, 1, 3, 3), 1, 1, 1, 128),
    Case("dw 7x7 C128 56", (4, 128, 56, 56), (128, 1, 7, 7), 1, 3, 1, 128),
    Case("dw 13x13 C128 56", (4, 128, 56, 56), (128, 1, 13, 13), 1, 6, 1, 128),
    Case("dw 31x31 C128 32", (4, 128, 32, 32), (128, 1, 31, 31), 1, 15, 1, 128),
    # the shapes of the large-kernel bars (issue 17): batch 2
    Case("dw 13x13 C128 56 N2", (2, 128, 56, 56), (128, 1, 13, 13), 1, 6, 1, 128),
    Case("dw 31x31 C128 32 N2", (2, 128, 32, 32), (128, 1, 31, 31), 1, 15, 1, 128),
    # dilated (DeepLab), grouped (ResNeXt), transposed (DCGAN / U-Net)
    Case("dilated 3x3 d2 256 28", (4, 256, 28, 28), (256, 256, 3, 3), 1, 2, 2),
    Case("grouped 3x3 g32 256 28", (4, 256, 28, 28), (256, 8, 3, 3), 1, 1, 1, 32),
    Case("transposed 4x4/2 128->64", (4, 128, 28, 28), (128, 64, 4, 4), 2, 1, 1, 1, True),
    # 1-D (audio / sequences) and 3-D (video)
    Case("1d 9 taps 64 L4096", (8, 64, 4096), (64, 64, 9), 1, 4),
    Case("1d dw 257 taps C64 L4096", (8, 64, 4096), (64, 1, 257), 1, 128, 1, 64),
    Case("3d 3x3x3 64 8x28x28", (2, 64, 8, 28, 28), (64, 64, 3, 3, 3), 1, 1),
]

_TORCH = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_TORCH_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_CL = {2: torch.channels_last, 3: torch.channels_last_3d}


def _fns(case: Case, x: torch.Tensor, w: torch.Tensor, algorithm: str = "auto"):
    args = (case.stride, case.padding)

    def ours():
        f = conv_transpose if case.transposed else conv
        tail = (0, case.groups, case.dilation) if case.transposed else (case.dilation, case.groups)
        return f(x, w, None, *args, *tail, algorithm=algorithm)

    def native():
        if case.transposed:
            return _TORCH_T[case.nd](x, w, None, *args, 0, case.groups, case.dilation)
        return _TORCH[case.nd](x, w, None, *args, case.dilation, case.groups)

    def native_cl():
        fmt = _CL[case.nd]
        xc, wc = x.contiguous(memory_format=fmt), w.contiguous(memory_format=fmt)
        if case.transposed:
            return _TORCH_T[case.nd](xc, wc, None, *args, 0, case.groups, case.dilation)
        return _TORCH[case.nd](xc, wc, None, *args, case.dilation, case.groups)

    fns = {"native": native, "auto": ours, "native (again)": native}  # the last: an A/A control
    if case.nd in _CL:
        fns["native_cl"] = native_cl
    return fns


def _chosen(case: Case, x: torch.Tensor, w: torch.Tensor):
    """Run the case once under a recording chooser: (algorithm "auto" picked, its Problem).

    Tunes the case first when autotuning is on, so tuning time stays out of the timings.
    """
    seen = []

    def record(p):
        seen.append((choose_algorithm(p), p))
        return seen[-1][0]

    set_chooser(record)
    try:
        _fns(case, x, w)["auto"]()
    finally:
        set_chooser(choose_algorithm)
    return seen[-1]


def run(cases, modes, repeats: int) -> None:
    peak = measure_peak_gflops()
    rows = []
    for case in cases:
        torch.manual_seed(0)
        x, w = torch.randn(*case.input), torch.randn(*case.weight)
        for mode in modes:
            backward = mode == "fwd+bwd"
            with torch.set_grad_enabled(backward):
                algo, p = _chosen(case, x, w)
            if backward:
                xg, wg = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
                y = _fns(case, xg, wg)["native"]()
                grad = torch.randn_like(y)

                def step(f):
                    return lambda: f().backward(grad)

                fns = {k: step(f) for k, f in _fns(case, xg, wg).items()}
                if not native_numerics(algo, p):
                    fns["unchecked"] = step(_fns(case, xg, wg, algo)["auto"])
                times = interleaved(fns, repeats=repeats, warmup=1, min_time=0.1)
            else:
                fns = _fns(case, x, w)
                if not native_numerics(algo, p):
                    fns["unchecked"] = _fns(case, x, w, algo)["auto"]
                with torch.no_grad():
                    times = interleaved(fns, repeats=repeats, warmup=1, min_time=0.1)
            unchecked = times.pop("unchecked", None)
            aa = times.pop("native (again)")
            noise = abs(times["native"] / aa - 1)  # the same op timed twice in the same run
            anchor_name = min((k for k in times if k != "auto"), key=times.__getitem__)
            anchor = times[anchor_name]
            gflop = 2 * p.macs * (3 if backward else 1) / 1e9
            rows.append([
                case.name, mode, f"{times['native'] * 1e3:.1f}",
                f"{times['native_cl'] * 1e3:.1f}" if "native_cl" in times else "-",
                f"{times['auto'] * 1e3:.1f}", algo, f"{anchor / times['auto']:.2f}",
                f"{100 * (times['auto'] / unchecked - 1):+.1f}%" if unchecked else "-",
                f"{gflop / times['auto']:.1f}", f"{100 * gflop / times['auto'] / peak:.0f}%", f"{100 * noise:.0f}%",
            ])
            print(" | ".join(rows[-1]), flush=True)
    print_table(
        f"auto vs torch native (ratio = best native / auto; peak {peak:.0f} GFLOP/s; median of {repeats} interleaved repeats)",
        ["shape", "mode", "native ms", "native_cl ms", "auto ms", "chosen", "ratio", "checks", "GFLOP/s", "% peak", "A/A"],
        rows,
        note="A/A: how far two timings of the same native op differ in this run (the noise floor "
        "the ratio must be read against). checks: auto's numerics checks, auto / unchecked - 1.",
        width=200,
    )


def accuracy(cases) -> None:
    rows = []
    for case in cases:
        torch.manual_seed(0)
        x, w = torch.randn(*case.input), torch.randn(*case.weight)
        x64, w64 = x.double(), w.double()
        ref = _fns(case, x64, w64, "native")["native"]()
        scale = ref.abs().max().item()
        for name in ALGORITHMS:
            if name in ("direct", "im2col") and math.prod(case.weight) * x.numel() > 2e9:
                continue
            try:
                y = _fns(case, x, w, name)["auto"]()
            except NotImplementedError:
                continue
            err = (y.double() - ref).abs().max().item() / scale
            rows.append([case.name, name, f"{err:.1e}", "ok" if err <= 1e-5 else "FAIL"])
            print(" | ".join(rows[-1]), flush=True)
    print_table("float32 error relative to float64 native (max |y - y64| / max |y64|)",
                ["shape", "algorithm", "rel. error", "<= 1e-5"], rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="substring of case names to run")
    ap.add_argument("--mode", choices=["fwd", "fwdbwd", "both"], default="both")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--autotune", action="store_true")
    ap.add_argument("--accuracy", action="store_true")
    args = ap.parse_args()
    cases = [c for c in SUITE if args.only in c.name]
    if args.accuracy:
        accuracy(cases)
        return
    if args.autotune:
        autotune(True)
    modes = {"fwd": ["fwd"], "fwdbwd": ["fwd+bwd"], "both": ["fwd", "fwd+bwd"]}[args.mode]
    run(cases, modes, args.repeats)


if __name__ == "__main__":
    main()
