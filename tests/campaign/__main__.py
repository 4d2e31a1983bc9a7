"""Run the fault-and-bad-input campaign and print its counts.

    python -m tests.campaign                      # everything (a few minutes)
    python -m tests.campaign --random 300 --no-bombs --no-cli   # a quick look
    python -m tests.campaign --show silent,unclear               # list those cases

Every case is reproducible from ``--seed`` (random and non-finite cases are drawn from it).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter

import torch

from .core import OUTCOMES, Draw, Outcome, classify


def outcomes(args: argparse.Namespace) -> list[Outcome]:
    from .generate import large_kernel_case, nonfinite_case, random_case, range_case, within_documented_error
    from .malformed import malformed_cases

    results: list[Outcome] = []
    rng = random.Random(args.seed)
    draw = Draw(rng)
    for _ in range(args.random):
        results.append(classify(random_case(draw).case, args.timeout))
    made = 0
    while made < args.nonfinite:
        built = nonfinite_case(draw)
        if built is None:
            continue
        made += 1
        outcome = classify(built.case, args.timeout)
        if outcome.kind == "silent" and built.documented_nan:
            outcome = Outcome(outcome.case, "correct", "NaN/Inf spread as the algorithm documents")
        results.append(outcome)
    for i in range(args.large):
        built = large_kernel_case(draw, "nonfinite" if i % 2 == 0 else "range")
        results.append(classify(built.case, args.timeout))
    made = 0
    while made < args.range:
        built = range_case(draw)
        if built is None:
            continue
        made += 1
        outcome = classify(built.case, args.timeout)
        if outcome.kind == "silent" and within_documented_error(built):
            outcome = Outcome(outcome.case, "correct", "within the algorithm's documented error bound")
        results.append(outcome)
    if args.malformed:
        results += [classify(case, args.timeout) for case in malformed_cases()]
    if args.bombs:
        from .bombs import names, run_isolated

        for name in names():
            outcome = run_isolated(name)
            outcome.case.name = name
            results.append(outcome)
    if args.cli:
        from .cli import cli_outcomes

        results += cli_outcomes()
    return results


def table(results: list[Outcome]) -> str:
    """Counts per category and in total: tried / correct / clear error / unclear / silent wrong."""
    rows = []
    for category in ("random", "nonfinite", "range", "malformed", "bomb", "cli", "all"):
        chosen = [r for r in results if category == "all" or r.case.category == category]
        if not chosen:
            continue
        n = Counter(r.kind for r in chosen)
        refused = sum(r.refused for r in chosen)
        rows.append((category, len(chosen), *(n[k] for k in OUTCOMES), refused))
    head = ("category", "tried", "correct", "clear error", "unclear", "silent wrong", "(clear: refused valid)")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    fmt = lambda r: "  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt(head), *(fmt(r) for r in rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.campaign", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--random", type=int, default=2400, help="random op configurations")
    parser.add_argument("--nonfinite", type=int, default=540, help="configurations with NaN/Inf inputs")
    parser.add_argument("--large", type=int, default=16,
                        help="auto on large kernels with NaN/Inf or a 1e8 value in the input")
    parser.add_argument("--range", type=int, default=200, help="convolutions with one input value of 1e8")
    parser.add_argument("--no-malformed", dest="malformed", action="store_false")
    parser.add_argument("--no-bombs", dest="bombs", action="store_false")
    parser.add_argument("--no-cli", dest="cli", action="store_false")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per in-process case")
    parser.add_argument("--show", default="silent,unclear", help="outcomes to list case by case")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    results = outcomes(args)
    show = set(args.show.split(",")) if args.show else set()
    for r in results:
        if r.kind in show or ("refused" in show and r.refused):
            print(f"[{r.kind}] ({r.case.category}, {r.case.owner}) {r.case.name}\n    {r.detail}")
    print()
    print(table(results))
    owners = Counter(r.case.owner for r in results if r.kind in ("silent", "unclear"))
    if owners:
        print("unclear or silent by owner:", ", ".join(f"{k}: {v}" for k, v in sorted(owners.items())))
    print(f"seed {args.seed}, {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
