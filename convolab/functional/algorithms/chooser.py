"""What ``algorithm="auto"`` runs: the chooser, the cost model, and :func:`select`.

The cost model estimates the seconds each applicable algorithm takes from the
problem's arithmetic (MACs, FFT lengths, bytes moved) and a few per-machine
constants (:class:`Machine`: GEMM throughput, FFT throughput, memory
bandwidth, and how efficiently torch's own kernels run each problem class).
Under ``torch.no_grad()`` / ``inference_mode`` it minimises the forward time;
otherwise forward + backward, since the algorithm chosen for the forward also
computes the gradients. Another algorithm replaces ``"native"`` only when it
is predicted clearly faster (``margin``): torch's kernels are the safe default.
Each algorithm carries its own estimate (``estimate(problem, backward)``) and
the temporary memory it needs (``workspace(problem, backward)``); an algorithm
whose workspace exceeds :func:`workspace_limit` is never chosen, so a huge
problem (a 10**8 padding, a 2e7-sample signal) runs native rather than
allocating gigabytes of FFT blocks. Planning is integer arithmetic bounded
independently of the sizes (see :func:`~.fft.tile_length`). With autotuning on
(:mod:`.tune`) measured times replace the model.

When the chosen algorithm does not keep native's numerics (FFT, Winograd),
it runs behind the checks of :mod:`._numerics`: a non-finite or badly scaled
input, weight or incoming gradient falls back to native, so ``"auto"`` always
gives native's NaN/Inf pattern and an error bound comparable to native's.

Meta tensors (shape analysis) always get ``"native"``: the analysis must see
torch's own conv op. The chooser never returns an algorithm whose
``supports(problem)`` is false.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from functools import lru_cache
from typing import Callable, Optional

import torch
from torch import Tensor

from .. import _tracing
from . import _machine, tune
from ._machine import Machine, bytes_in, bytes_out, bytes_weight
from .registry import ALGORITHMS, Problem, check_algorithm, choices_changed, estimate, native_numerics, workspace

__all__ = [
    "MACHINE",
    "Machine",
    "calibrate",
    "choose",
    "choose_algorithm",
    "select",
    "set_chooser",
    "set_machine",
    "workspace_limit",
]

# The chooser used by algorithm="auto" (choose_algorithm unless replaced via set_chooser).
_chooser: Optional[Callable[[Problem], str]] = None


def set_chooser(chooser: Optional[Callable[[Problem], str]]) -> None:
    """Install the function that maps a problem to an algorithm name for ``"auto"``."""
    global _chooser
    _chooser = chooser
    choices_changed()


def choose(p: Problem) -> str:
    """The algorithm ``"auto"`` runs for this problem."""
    if _chooser is not None:
        name = _chooser(p)
        if name == "native" or (name in ALGORITHMS and ALGORITHMS[name].supports(p)):
            return name
    return "native"


def select(name: str, x: Tensor, problem: Callable[[], Problem], op: str) -> tuple[str, Optional[Problem]]:
    """The algorithm to run for ``algorithm=name`` on input ``x``, and its :class:`Problem`.

    ``"auto"`` asks the chooser only in plain eager mode (:func:`convolab.functional._tracing.
    free_choice`); under a tracer, a compiler, a functorch transform or a dispatch mode it is
    ``"native"``, torch's own op, which those tools understand. When the chosen algorithm does
    not keep native's numerics for the problem, the returned problem has ``guard`` set: the
    table's ``run`` then checks the operands and falls back to native (:mod:`._numerics`). An explicitly named algorithm
    runs as asked, except while exporting (``torch.export``, ``torch.jit.trace``, ONNX), where
    the exported program records the plain convolution the algorithm computes: every algorithm
    computes the same function. ``problem`` builds the :class:`Problem` only when it is needed
    (the native path on traced shapes never builds one); the result is None for native then.

    Raises:
        NotImplementedError: the named algorithm does not support the problem.
    """
    check_algorithm(name, op)
    if name == "auto":
        if not _tracing.free_choice(x):
            return "native", None
        p = problem()
        name = choose(p)
        if name == "native":  # the op runs torch's kernel itself: nothing to check or guard
            return name, p
        return name, (p if native_numerics(name, p) else replace(p, guard=True))
    if name == "native" or _tracing.exporting():
        return "native", None
    p = problem()
    algorithm = ALGORITHMS[name]
    if not algorithm.supports(p):
        raise NotImplementedError(
            f"{op}: algorithm {name!r} does not support this problem "
            f"(kernel={p.kernel}, stride={p.stride}, dilation={p.dilation}, groups={p.groups}, "
            f"input_dilation={p.input_dilation}, dtype={p.dtype}); "
            f"{getattr(algorithm, 'requirement', '')}".rstrip("; ")
        )
    return name, p


def __getattr__(name: str) -> Machine:
    # MACHINE lives in _machine (the algorithms' estimates read it there); reading it here
    # must see the current one, not a copy bound at import
    if name == "MACHINE":
        return _machine.MACHINE
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def set_machine(machine: Machine) -> None:
    """Install new per-machine constants (e.g. measured on the target machine) for the cost model.

    Example:
        >>> from dataclasses import replace
        >>> set_machine(replace(_machine.MACHINE, gemm_gmacs=60.0))
    """
    if not isinstance(machine, Machine):
        raise TypeError(f"set_machine: expected a Machine, got {type(machine).__name__}")
    _machine.MACHINE = machine
    _model_choice.cache_clear()
    choices_changed()


def calibrate() -> Machine:
    """Measure this machine's GEMM, FFT and copy throughput; the efficiencies are kept.

    Takes about a second. Use as ``set_machine(calibrate())``.

    Returns:
        A :class:`Machine` with ``gemm_gmacs``, ``fft_gunits`` and ``bandwidth_gbs`` measured.
    """
    from ..._bench import measure_bandwidth_gbs, measure_peak_gflops

    x = torch.randn(256, 64, 64)
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        torch.fft.irfftn(torch.fft.rfftn(x, dim=(-2, -1)), s=(64, 64), dim=(-2, -1))
        best = min(best, time.perf_counter() - start)
    units = 2 * x.numel() * math.log2(64 * 64)  # a forward and an inverse transform
    return replace(
        _machine.MACHINE,
        gemm_gmacs=measure_peak_gflops((1024,), 3) / 2,
        fft_gunits=units / best / 1e9,
        bandwidth_gbs=measure_bandwidth_gbs(64, 3),
    )


def workspace_limit(p: Problem) -> float:
    """The most temporary memory ``"auto"`` lets an algorithm use on ``p`` (see
    :attr:`Machine.workspace_bytes`): ``min(max(1 GiB, 16 x problem bytes), workspace_bytes)``."""
    own = bytes_in(p) + bytes_out(p) + bytes_weight(p)
    return min(max(2.0**30, 16 * own), _machine.MACHINE.workspace_bytes)


def _times(p: Problem, backward: bool) -> dict[str, float]:
    """Predicted seconds of every registered algorithm that supports ``p`` and fits the workspace
    limit; native is always there (its temporaries are torch's own)."""
    limit = workspace_limit(p)
    times = {}
    for name in ALGORITHMS:
        if name != "native" and workspace(name, p, backward) > limit:
            continue
        t = estimate(name, p, backward)
        if t < math.inf:
            times[name] = t
    return times


@lru_cache(maxsize=4096)  # the model is pure given MACHINE; set_machine clears it
def _model_choice(p: Problem, backward: bool) -> str:
    times = _times(p, backward)
    best = min(times, key=times.__getitem__)
    margin = _machine.MACHINE.layout_margin if best == "native_cl" else _machine.MACHINE.margin
    if best != "native" and times[best] > margin * times["native"]:
        return "native"
    return best


def _candidates(p: Problem, backward: bool) -> list[str]:
    """Applicable algorithms worth timing: native, and any model within 4x of the best model
    (among those that fit the workspace limit)."""
    times = _times(p, backward)
    best = min(times.values())
    return [n for n, t in times.items() if n == "native" or t <= 4 * best]


def choose_algorithm(p: Problem) -> str:
    """The algorithm ``"auto"`` runs for ``p``: tuned when autotuning is on, else the cost model.

    Example:
        >>> from convolab.functional.algorithms import Problem
        >>> p = Problem(1, 8, 64, 64, 64, (4096,), (257,), (1,), (1,), ((128, 128),), (1,), (4096,))
        >>> choose_algorithm(p)
        'fft'
        >>> choose_algorithm(Problem(2, 1, 3, 8, 1, (5, 5), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)),
        ...                          (1, 1), (5, 5), device="meta"))
        'native'
    """
    if p.device != "cpu" or p.batch == 0 or p.dtype not in ("torch.float32", "torch.float64"):
        return "native"  # meta tensors (analysis), other devices, other dtypes: torch's own op
    backward = torch.is_grad_enabled()
    if tune.autotune_enabled():
        name = tune.tuned_choice(p, backward, lambda: _candidates(p, backward))
    else:
        name = _model_choice(p, backward)
    return name if name == "native" or ALGORITHMS[name].supports(p) else "native"
