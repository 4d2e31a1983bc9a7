"""What ``algorithm="auto"`` runs: a cost model, and optional autotuning with a cache.

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
independently of the sizes (see :func:`~.fft.tile_length`).

When the chosen algorithm does not keep native's numerics (FFT, Winograd),
it runs behind the checks of :mod:`._numerics`: a non-finite or badly scaled
input, weight or incoming gradient falls back to native, so ``"auto"`` always
gives native's NaN/Inf pattern and an error bound comparable to native's.

Autotuning (``convolab.autotune(True)`` or the environment variable
``CONVOLAB_AUTOTUNE=1``) is cuDNN's benchmark mode: the first time a problem
is seen, every plausible candidate is timed on random tensors of the problem's
shape, dtype, memory layout and device (forward, or forward + backward when
grad mode is on), and the winner is cached in memory — and on disk as JSON if
a cache file is given (``CONVOLAB_AUTOTUNE=/path/cache.json`` does both). The
key is the whole :class:`Problem` plus grad mode, thread count and torch
version, so any change of shape, dtype, layout or device tunes again.

Meta tensors (shape analysis) always get ``"native"``: the analysis must see
torch's own conv op. The chooser never returns an algorithm whose
``supports(problem)`` is false.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Union

import torch

from . import ALGORITHMS, Problem, _machine, choices_changed, estimate, workspace
from ._machine import Machine, bytes_in, bytes_out, bytes_weight

__all__ = [
    "MACHINE",
    "Machine",
    "autotune",
    "autotune_enabled",
    "calibrate",
    "choose_algorithm",
    "clear_tuning_cache",
    "estimate",
    "set_machine",
    "tuning_cache",
    "workspace_limit",
]


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


# ---- autotuning ---------------------------------------------------------------------------------

_lock = threading.Lock()
_state: dict[str, object] = {"enabled": False, "file": None}
_cache: dict[str, str] = {}


def _key(p: Problem, backward: bool) -> str:
    return f"{p!r}|backward={backward}|threads={torch.get_num_threads()}|torch={torch.__version__}"


def tuning_cache() -> dict[str, str]:
    """The in-memory autotuning cache (key -> algorithm name); a copy."""
    with _lock:
        return dict(_cache)


def autotune(enabled: bool = True, cache_file: Union[str, os.PathLike, None] = None) -> None:
    """Turn autotuning of ``algorithm="auto"`` on or off (like ``torch.backends.cudnn.benchmark``).

    Args:
        enabled (bool): time the candidates once per problem and reuse the fastest. Default: True.
        cache_file (path, optional): JSON file of earlier results; read now if it exists,
            rewritten (atomically) after every new measurement. Default: None (memory only).

    Raises:
        ValueError: ``cache_file`` exists but does not hold a JSON object.

    Example:
        >>> import convolab
        >>> convolab.autotune(False)
    """
    with _lock:
        choices_changed()
        _state["enabled"] = bool(enabled)
        _state["file"] = Path(cache_file) if cache_file is not None else None
        if cache_file is not None and Path(cache_file).exists():
            try:
                stored = json.loads(Path(cache_file).read_text())
            except (OSError, ValueError) as e:
                raise ValueError(f"autotune: cache_file {str(cache_file)!r} is not a JSON cache: {e}") from None
            if not isinstance(stored, dict):
                raise ValueError(f"autotune: cache_file {str(cache_file)!r} must hold a JSON object")
            _cache.update({str(k): str(v) for k, v in stored.items() if v in ALGORITHMS})


def autotune_enabled() -> bool:
    """Whether ``algorithm="auto"`` autotunes."""
    return bool(_state["enabled"])


def clear_tuning_cache() -> None:
    """Forget every tuned choice (in memory; the cache file is left alone)."""
    with _lock:
        _cache.clear()
    choices_changed()


def _save() -> None:
    path = _state["file"]
    if path is None:
        return
    tmp = Path(f"{path}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(_cache, indent=1, sort_keys=True))
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def _candidates(p: Problem, backward: bool) -> list[str]:
    """Applicable algorithms worth timing: native, and any model within 4x of the best model
    (among those that fit the workspace limit)."""
    times = _times(p, backward)
    best = min(times.values())
    return [n for n, t in times.items() if n == "native" or t <= 4 * best]


#: A tuned algorithm replaces native only when it was timed at most this fraction of native's
#: time: a wrong switch can cost 1.5x (measured), a missed 10% gain costs 10%.
TUNE_MARGIN = 0.9


def _time_candidates(p: Problem, names: list[str], backward: bool, repeats: int = 5) -> dict[str, float]:
    """Fastest of up to ``repeats`` timed runs of each candidate, round-robin after a warm-up.

    The minimum, not the median: on a shared machine noise only ever adds time, while the
    costs a call always pays (allocation, page faults of fresh buffers) are in every run.
    Round-robin spreads load spikes over all candidates alike; a candidate 3x slower than
    the best so far is not timed again.
    """
    from ..._bench import steady_allocator

    steady_allocator()  # time what a long-running process pays, not a fresh process's page faults
    fmt = {2: torch.channels_last, 3: torch.channels_last_3d}.get(p.ndim, torch.contiguous_format)
    dtype = getattr(torch, p.dtype.replace("torch.", ""))
    gen = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(p.batch, p.in_channels, *p.input_size, generator=gen, dtype=dtype).to(p.device)
    if p.channels_last:
        x = x.contiguous(memory_format=fmt)
    w = torch.randn(
        p.out_channels, p.in_channels // p.groups, *p.kernel, generator=gen, dtype=dtype
    ).to(p.device)
    grad = torch.randn(p.batch, p.out_channels, *p.output_size, generator=gen, dtype=dtype).to(p.device)

    def once(name: str) -> float:
        algorithm = ALGORITHMS[name]
        start = time.perf_counter()
        if backward:
            xs, ws = x.detach().requires_grad_(True), w.detach().requires_grad_(True)
            with torch.enable_grad():
                algorithm.run(xs, ws, None, p).backward(grad)
        else:
            with torch.no_grad():
                algorithm.run(x, w, None, p)
        return time.perf_counter() - start

    for name in names:  # warm-up: first-call costs (plans, allocator growth) are not the steady state
        once(name)
    samples: dict[str, list[float]] = {name: [once(name)] for name in names}
    for _ in range(repeats - 1):
        best = min(min(v) for v in samples.values())
        for name in names:
            if min(samples[name]) <= 3 * best:
                samples[name].append(once(name))
    return {name: min(v) for name, v in samples.items()}


def _tuned_choice(p: Problem, backward: bool) -> str:
    key = _key(p, backward)
    with _lock:
        hit = _cache.get(key)
    if hit is not None and hit in ALGORITHMS and ALGORITHMS[hit].supports(p):
        return hit
    names = _candidates(p, backward)
    times = _time_candidates(p, names, backward) if len(names) > 1 else {"native": 0.0}
    best = min(times, key=times.__getitem__)
    if times[best] > TUNE_MARGIN * times["native"]:  # near-ties go to native: noise must not flip the choice
        best = "native"
    with _lock:
        _cache[key] = best
        _save()
    return best


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
    name = _tuned_choice(p, backward) if _state["enabled"] else _model_choice(p, backward)
    return name if name == "native" or ALGORITHMS[name].supports(p) else "native"


def _from_environment() -> None:
    value = os.environ.get("CONVOLAB_AUTOTUNE", "").strip()
    if value.lower() in ("", "0", "false", "off", "no"):
        return
    autotune(True, None if value.lower() in ("1", "true", "on", "yes") else value)


_from_environment()
