"""Ratios reported as min / median / max over the rounds of :func:`convolab._bench.interleaved_samples`.

The ROI benchmark compares against an anchor on a shared, noisy machine, where the spread of
the per-round ratio says more than one median.
"""

from __future__ import annotations

import os
import statistics

from convolab._bench import interleaved_samples

__all__ = ["fmt_spread", "interleaved_samples", "load_average", "median", "ratio_spread"]


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
