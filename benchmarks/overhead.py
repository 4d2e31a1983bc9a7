"""Per-call overhead of convolab ops against torch's on a tiny problem ([1, 4, 8, 8], one thread, no_grad).

Run: ``python -m benchmarks.overhead``. At this size the kernels take a few microseconds, so
the difference is what convolab adds per call: argument checks, the algorithm pick (both
memoised per shape in eager mode, see ``convolab.functional._plans``) and dispatch. Best of
5 rounds of 3,000 calls each, torch and convolab interleaved round by round.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

import convolab
import convolab.functional as F


def _best_us(fns: dict[str, Callable[[], object]], calls: int = 3000, rounds: int = 5) -> dict[str, float]:
    for fn in fns.values():
        for _ in range(200):
            fn()
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / calls * 1e6)
    return best


def main() -> None:
    torch.set_num_threads(1)
    x, w, b = torch.randn(1, 4, 8, 8), torch.randn(4, 4, 3, 3), torch.randn(4)
    theirs, ours = torch.nn.Conv2d(4, 4, 3, padding=1), convolab.nn.Conv2d(4, 4, 3, padding=1)
    cases = {
        "conv2d": (lambda: torch.nn.functional.conv2d(x, w, b, padding=1), lambda: F.conv2d(x, w, b, padding=1)),
        "conv_transpose2d": (lambda: torch.nn.functional.conv_transpose2d(x, w, b, stride=2, padding=1),
                             lambda: F.conv_transpose2d(x, w, b, stride=2, padding=1)),
        "Conv2d module": (lambda: theirs(x), lambda: ours(x)),
        "max_pool2d": (lambda: torch.nn.functional.max_pool2d(x, 2), lambda: F.max_pool2d(x, 2)),
        "avg_pool2d": (lambda: torch.nn.functional.avg_pool2d(x, 2), lambda: F.avg_pool2d(x, 2)),
    }
    print(f"{'op on [1, 4, 8, 8], 1 thread, no_grad':40s} {'torch us':>9s} {'convolab us':>12s} {'extra us':>9s}")
    with torch.no_grad():
        for name, (t, c) in cases.items():
            best = _best_us({"torch": t, "convolab": c})
            print(f"{name:40s} {best['torch']:9.1f} {best['convolab']:12.1f} {best['convolab'] - best['torch']:9.1f}")


if __name__ == "__main__":
    main()
