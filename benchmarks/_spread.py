"""Interleaved timing that keeps every sample, for ratios reported as min / median / max.

:func:`convolab._bench.interleaved` returns medians; the ROI and deformable benchmarks compare
against an anchor on a shared, noisy machine, where the spread of the per-round ratio says more
than one median. Each round times every function once (enough calls to last ``min_time``),
so one round's ratio compares calls made moments apart. Besides wall time each sample records
the process CPU time (all threads): less sensitive to other processes than wall time, though
it counts helper threads' spinning too.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

from convolab._bench import steady_allocator

Samples = dict[str, list[tuple[float, float]]]


def interleaved_samples(fns: dict[str, Callable[[], object]], repeats: int = 7, warmup: int = 2,
                        min_time: float = 0.02) -> Samples:
    """(wall seconds, process CPU seconds) per call of each function, for every round."""
    steady_allocator()
    inner: dict[str, int] = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        t = time.perf_counter()
        fn()
        inner[name] = max(1, int(min_time / max(time.perf_counter() - t, 1e-7)))
    samples: Samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            for _ in range(inner[name]):
                fn()
            samples[name].append(((time.perf_counter() - t) / inner[name], (time.process_time() - c) / inner[name]))
    return samples


def median(samples: list[tuple[float, float]], which: int = 0) -> float:
    """Median wall (0) or CPU (1) seconds."""
    return statistics.median(s[which] for s in samples)


def ratio_spread(num: list[tuple[float, float]], den: list[tuple[float, float]], which: int = 0) -> tuple[float, float, float]:
    """min, median, max over rounds of num / den (wall times by default)."""
    ratios = sorted(a[which] / b[which] for a, b in zip(num, den))
    return ratios[0], statistics.median(ratios), ratios[-1]


def fmt_spread(spread: tuple[float, float, float]) -> str:
    return f"{spread[0]:.2f} / {spread[1]:.2f} / {spread[2]:.2f}"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (the machine's other work), for the table's note."""
    try:
        return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} CPUs"
    except OSError:  # pragma: no cover
        return "load average unavailable"
