"""``convolab bench``: every registered convolution algorithm against torch's native conv on a few shapes."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Optional

import torch

# (description, N, C_in, C_out, input size, kernel, stride, padding, groups)
SHAPES = [
    ("ResNet 3x3", 4, 64, 64, (56, 56), 3, 1, 1, 1),
    ("1x1 reduce", 4, 256, 64, (28, 28), 1, 1, 0, 1),
    ("stem 7x7/2", 2, 3, 64, (112, 112), 7, 2, 3, 1),
    ("depthwise 3x3/2", 4, 96, 96, (56, 56), 3, 2, 1, 96),
    ("1-D 15 taps", 8, 32, 32, (1024,), 15, 1, 7, 1),
]
QUICK_SHAPES = [
    ("3x3", 1, 4, 8, (12, 12), 3, 1, 1, 1),
    ("depthwise 3x3", 1, 8, 8, (12, 12), 3, 2, 1, 8),
]


@dataclass
class BenchRow:
    case: str
    shape: str
    algorithm: str
    seconds: float
    native_seconds: float
    gflops: float
    peak_percent: float

    @property
    def ratio(self) -> float:
        """native time / this algorithm's time: above 1 means faster than torch."""
        return self.native_seconds / self.seconds


def bench(
    shapes=SHAPES, repeats: int = 5, peak_gflops: float = 0.0, progress: Optional[Callable[[str], None]] = None
) -> tuple[list[BenchRow], list[str]]:
    """Time every algorithm that supports each shape (forward), interleaved with native.

    ``progress(case)`` is called after each case (the command line moves a progress bar with it).

    Returns:
        (rows, failures): an algorithm that raises anything but NotImplementedError, or disagrees
        with native beyond float32 tolerance, is reported in ``failures`` instead of timed.
    """
    from .. import arithmetic as A
    from .._bench import interleaved
    from ..functional import conv
    from ..functional.algorithms import ALGORITHMS

    rows, failures = [], []
    for case, n, cin, cout, size, k, s, p, g in shapes:
        nd = len(size)
        x = torch.randn(n, cin, *size)
        w = torch.randn(cout, cin // g, *(k,) * nd)
        fns = {}
        expected = conv(x, w, None, s, p, 1, g, algorithm="native")
        for name in ALGORITHMS:
            fn = lambda name=name: conv(x, w, None, s, p, 1, g, algorithm=name)  # noqa: E731
            try:
                got = fn()
            except NotImplementedError:  # this algorithm does not do this problem
                continue
            except Exception as exc:  # a broken algorithm must show up, not stop the benchmark
                failures.append(f"{case}: {name} failed: {type(exc).__name__}: {exc}")
                continue
            if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-3, atol=1e-3):
                failures.append(f"{case}: {name} disagrees with native")
                continue
            fns[name] = fn
        times = interleaved(fns, repeats=repeats)
        if progress is not None:
            progress(case)
        out = A.conv_output_shape(size, k, stride=s, padding=p)
        macs = A.conv_macs(cin, cout, k, out, g, n)
        shape = f"{n}x{cin}x{'x'.join(map(str, size))} k{k} s{s} g{g} -> {cout}"
        for name, t in times.items():
            gflops = 2 * macs / t / 1e9
            rows.append(BenchRow(case, shape, name, t, times["native"], gflops,
                                 100 * gflops / peak_gflops if peak_gflops else float("nan")))
    return rows, failures


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="time every convolution algorithm against torch's native conv",
        description="Time every registered convolution algorithm (direct, im2col, fft, winograd, ...) against "
        "torch's native convolution on a few real network shapes, forward only, on this machine. Prints "
        "times, the ratio to native, GFLOP/s and the share of this CPU's matmul peak, measured in the same "
        "run. About a minute; --quick is a few seconds.",
    )
    p.add_argument("--quick", action="store_true", help="tiny shapes, few repeats (a smoke test)")
    p.add_argument("--repeats", type=int, default=None, help="interleaved repeats per algorithm (median)")
    p.set_defaults(func=run)


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[str], None]]:
    """A tqdm bar on stderr (one step per case; the table goes to stdout), or nothing without tqdm."""
    try:
        from tqdm import tqdm
    except ImportError:  # the cli extra is missing: no bar
        yield lambda case: None
        return
    bar = tqdm(total=total, desc="bench", unit="case", dynamic_ncols=True, leave=False)

    def step(case: str) -> None:
        bar.set_postfix_str(f"done: {case}", refresh=False)
        bar.update(1)

    try:
        yield step
    finally:
        bar.close()


def run(args: argparse.Namespace) -> int:
    from .._bench import measure_peak_gflops, print_table
    from ..cli import UsageError

    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 7)
    if repeats < 1:
        raise UsageError(f"--repeats must be >= 1, got {repeats}")
    shapes = QUICK_SHAPES if args.quick else SHAPES
    with _progress(len(shapes) + 1) as step:
        peak = measure_peak_gflops(sizes=(256,), repeats=2) if args.quick else measure_peak_gflops()
        step("peak matmul")
        rows, failures = bench(shapes, repeats, peak, progress=step)
    print_table(
        f"conv forward, float32, {torch.get_num_threads()} threads; peak matmul {peak:.0f} GFLOP/s",
        ["case", "shape", "algorithm", "ms", "native ms", "ratio", "GFLOP/s", "% peak"],
        [(r.case, r.shape, r.algorithm, f"{r.seconds * 1e3:.3f}", f"{r.native_seconds * 1e3:.3f}",
          f"{r.ratio:.2f}x", f"{r.gflops:.3g}", f"{r.peak_percent:.0f}%") for r in rows],
        note="ratio = native time / algorithm time (> 1: faster than torch). Medians of interleaved repeats; "
        "timings on a shared machine are noisy.",
    )
    for line in failures:
        print(f"FAILED {line}")
    return 1 if failures else 0
