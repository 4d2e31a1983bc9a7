"""Benchmark harness shared by benchmarks/ and `convolab bench`: interleaved repeats, medians, this CPU's peak, one table format.

Every benchmark in this folder measures the anchor (torch's own op) in the same
run, interleaving candidates repeat by repeat so that load on the shared machine
hits them alike, and reports the median. Run by hand, never from the tests.
"""

from __future__ import annotations

import re
import statistics
import textwrap
import time
from collections.abc import Callable, Sequence
from typing import Optional

import torch


def measure_peak_gflops(sizes: Sequence[int] = (1024, 2048, 3072), repeats: int = 8) -> float:
    """This CPU's float32 matmul throughput (GFLOP/s, 2 flops per MAC): the best over sizes and repeats.

    Taking the best (not the median) estimates what the CPU can do when it is not
    disturbed; on a loaded machine it still underestimates, so a % of peak above
    100 means the peak was measured during a burst of load.
    """
    best_rate = 0.0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        for _ in range(repeats):
            t = time.perf_counter()
            a @ b
            best_rate = max(best_rate, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best_rate


def measure_bandwidth_gbs(mb: int = 256, repeats: int = 5) -> float:
    """Copy bandwidth in GB/s (bytes read + written), best of ``repeats``."""
    src = torch.empty(mb * 2**20 // 4)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - t)
    return 2 * src.numel() * 4 / best / 1e9


def steady_allocator() -> None:
    """Put glibc's allocator in the state a long-running PyTorch process reaches.

    glibc maps every buffer above its mmap threshold afresh (and page-faults it on first
    touch, ~1 ms per 4 MB here), and it raises that threshold, up to 32 MiB, only after such
    a buffer is freed. Until then the first cases of a benchmark pay page faults a training
    loop would not. Freeing one 30 MiB buffer moves the threshold to its steady value.
    """
    torch.empty(30 << 18)  # 30 MiB of float32, mapped and freed at once


Samples = dict[str, list[tuple[float, float]]]


def interleaved_samples(
    fns: dict[str, Callable[[], object]], repeats: int = 7, warmup: int = 2, min_time: float = 0.02
) -> Samples:
    """(wall seconds, process CPU seconds) per call of each function, for every round.

    Functions run round-robin, each sample enough calls to take at least ``min_time``, so one
    round's ratio compares calls made moments apart; the allocator is first put in its steady
    state (:func:`steady_allocator`). CPU time (all threads) is less sensitive to other
    processes than wall time, though it counts helper threads' spinning too.
    """
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


def interleaved(
    fns: dict[str, Callable[[], object]], repeats: int = 7, warmup: int = 2, min_time: float = 0.02
) -> dict[str, float]:
    """Median wall seconds per call of each function, measured round-robin (see :func:`interleaved_samples`)."""
    samples = interleaved_samples(fns, repeats, warmup, min_time)
    return {name: statistics.median(wall for wall, _ in v) for name, v in samples.items()}


def _is_number(text: str) -> bool:
    """A cell that is a number (with separators, a unit suffix or ± spread): never wrapped or cut."""
    return bool(re.fullmatch(r"[-+]?[\d,.]+(\s*(±|x|%|ms|s)\s*[\d,.]*%?)*", text.strip())) if text.strip() else True


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    note: Optional[str] = None,
    *,
    width: Optional[int] = None,
) -> None:
    """Print a table with rich when installed, else as aligned plain text.

    The table is as wide as the terminal (rich's default: the terminal, else ``COLUMNS``, else
    80) or ``width``. Text columns wrap; number columns are never wrapped or cut. When even the
    narrowest layout does not fit, columns are dropped from the right (never the first) and a
    line under the table names them.
    """
    cells = [[str(v) for v in r] for r in rows]
    # numbers and one-word names (model names, variants) are kept whole; other text wraps
    whole = [all(_is_number(r[i]) or " " not in r[i] for r in cells) for i in range(len(columns))]
    numeric = [all(_is_number(r[i]) for r in cells) for i in range(len(columns))]
    try:
        from rich.console import Console
        from rich.measure import Measurement
        from rich.table import Table
    except ImportError:  # pragma: no cover
        widths = [max(len(str(c)), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
        print(title)
        print("  ".join(str(c).rjust(w) for c, w in zip(columns, widths)))
        for r in cells:
            print("  ".join(v.rjust(w) for v, w in zip(r, widths)))
    else:
        console = Console(width=width)

        def build(keep: list[int]) -> Table:
            table = Table(title=title)
            for i in keep:
                if whole[i]:
                    table.add_column(str(columns[i]), justify="right" if numeric[i] else "left", no_wrap=True,
                                     min_width=max([len(str(columns[i])), *(len(r[i]) for r in cells)]))
                else:
                    table.add_column(str(columns[i]), justify="left", overflow="fold")
            for r in cells:
                table.add_row(*(r[i] for i in keep))
            return table

        unbounded = console.options.update_width(1 << 20)  # measure the table's own minimum, not the clamped one

        def minimum(table: Table) -> int:
            return Measurement.get(console, unbounded, table).minimum

        keep = list(range(len(columns)))
        table = build(keep)
        while len(keep) > 1 and minimum(table) > console.width:
            keep.pop()
            table = build(keep)
        # a single column wider than the terminal is printed whole: a cut number would be a wrong number
        wide = Console(width=minimum(table)) if minimum(table) > console.width else console
        wide.print(table)
        dropped = [str(columns[i]) for i in range(len(columns)) if i not in keep]
        if dropped:
            print(textwrap.fill(f"(left out to fit the terminal: {', '.join(dropped)}; widen it or set COLUMNS)",
                                console.width, break_long_words=False, break_on_hyphens=False))
    if note:
        print(note)
