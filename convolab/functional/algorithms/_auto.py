"""What ``algorithm="auto"`` runs: a cost model, and optional autotuning with a cache.

The cost model estimates the seconds each applicable algorithm takes from the
problem's arithmetic (MACs, FFT lengths, bytes moved) and a few per-machine
constants (:class:`Machine`: GEMM throughput, FFT throughput, memory
bandwidth, and how efficiently torch's own kernels run each problem class).
Under ``torch.no_grad()`` / ``inference_mode`` it minimises the forward time;
otherwise forward + backward, since the algorithm chosen for the forward also
computes the gradients. Another algorithm replaces ``"native"`` only when it
is predicted clearly faster (``margin``): torch's kernels are the safe default.

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
import statistics
import threading
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional, Union

import torch

from . import ALGORITHMS, Problem
from .fft import plan_sizes

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
]


@dataclass(frozen=True)
class Machine:
    """Per-machine constants of the cost model (defaults measured on the 2-core CI box).

    Attributes:
        gemm_gmacs: float32 GEMM throughput, GMAC/s (half the matmul GFLOP/s).
        fft_gunits: real-FFT throughput in G(elements x log2 length)/s.
        bandwidth_gbs: copy bandwidth (read + write), GB/s.
        dense_efficiency: fraction of GEMM throughput torch's conv reaches on dense convs.
        depthwise_efficiency: same for depthwise convs (NCHW).
        depthwise_cl_efficiency: channels-last depthwise forward, any kernel size.
        grouped_efficiency, grouped_cl_efficiency: grouped convs (more than one channel
            per group), NCHW and channels-last; equal: on a quiet machine the NCHW forward
            of ResNeXt's g32 3x3 took 0.7 ms in one run and 1.1 ms in the next, against
            1.0 ms channels-last (conversion included), so neither layout wins reliably.
        dense_cl_gain: how much faster oneDNN's channels-last kernels run dense convs whose
            input is *already* channels-last (1.2-1.4x measured); converting NCHW input to
            channels-last for one conv never paid on the ResNet-50 shapes, so no gain then.
        transposed_cl_gain: the same for transposed convs; these gain even when converting
            (forward 5-6% faster overall, measured).
        cl_grad_factor: backward / forward time of channels-last dense, grouped and
            transposed convs (NCHW: 2); oneDNN's channels-last backward measured 1.2-1.4x
            slower than NCHW's on ResNet shapes.
        depthwise_width: kernel extent up to which depthwise NCHW kernels keep their
            efficiency; wider kernels run ``taps / 49`` times slower (measured: fine at
            13x13, 8x slower than channels-last at 31x31, 5-20x slower than FFT at 257 taps).
        margin: another algorithm must be predicted this much faster than native.
        layout_margin: the margin for native_cl, which runs the same kernels as native in
            another memory layout: a wrong pick costs little, so a small predicted gain is
            enough.
    """

    gemm_gmacs: float = 60.0
    fft_gunits: float = 2.0
    bandwidth_gbs: float = 12.0
    dense_efficiency: float = 0.6
    depthwise_efficiency: float = 0.5
    depthwise_cl_efficiency: float = 0.35
    grouped_efficiency: float = 0.3
    grouped_cl_efficiency: float = 0.3
    dense_cl_gain: float = 1.2
    transposed_cl_gain: float = 1.1
    cl_grad_factor: float = 2.5
    depthwise_width: int = 15
    margin: float = 0.75
    layout_margin: float = 0.97


MACHINE = Machine()


def set_machine(machine: Machine) -> None:
    """Install new per-machine constants (e.g. measured on the target machine) for the cost model.

    Example:
        >>> from dataclasses import replace
        >>> set_machine(replace(MACHINE, gemm_gmacs=60.0))
    """
    global MACHINE
    if not isinstance(machine, Machine):
        raise TypeError(f"set_machine: expected a Machine, got {type(machine).__name__}")
    MACHINE = machine
    _model_choice.cache_clear()


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
        MACHINE,
        gemm_gmacs=measure_peak_gflops((1024,), 3) / 2,
        fft_gunits=units / best / 1e9,
        bandwidth_gbs=measure_bandwidth_gbs(64, 3),
    )


def _itemsize(p: Problem) -> int:
    return 8 if p.dtype == "torch.float64" else 4


def _bytes_in(p: Problem) -> float:
    return p.batch * p.in_channels * math.prod(p.input_size) * _itemsize(p)


def _bytes_out(p: Problem) -> float:
    return p.batch * p.out_channels * math.prod(p.output_size) * _itemsize(p)


def _native(p: Problem, channels_last: bool, backward: bool) -> float:
    m = MACHINE
    macs = p.macs / math.prod(p.input_dilation)  # torch's transposed conv skips inserted zeros
    taps = math.prod(p.kernel)
    cg = p.in_channels // p.groups
    if cg == 1:  # depthwise-like: memory-bound, and NCHW kernels degrade with large kernels
        if channels_last:
            rate = m.depthwise_cl_efficiency * m.gemm_gmacs
        else:
            rate = m.depthwise_efficiency * m.gemm_gmacs
            if max(p.kernel) > m.depthwise_width:
                rate *= min(1.0, 49 / taps)
        # torch's depthwise backward is far slower than its forward; in channels-last it
        # keeps growing with the kernel (the weight gradient)
        grad_factor = 2 + (taps / 8 if channels_last else min(taps, 81) / 2.5)
    elif p.groups > 1:  # grouped (ResNeXt): few channels per group make short GEMMs
        rate = (m.grouped_cl_efficiency if channels_last else m.grouped_efficiency) * m.gemm_gmacs
        grad_factor = m.cl_grad_factor if channels_last else 2.0
    else:
        rate = m.dense_efficiency * m.gemm_gmacs
        if channels_last and any(d > 1 for d in p.input_dilation):
            rate *= m.transposed_cl_gain
        elif channels_last and p.channels_last:
            rate *= m.dense_cl_gain
        grad_factor = m.cl_grad_factor if channels_last else 2.0
    # NCHW 1x1 convs were once modelled with 3 passes over memory (oneDNN's reorders); on a
    # quiet machine native 1x1 runs at 76-94% of matmul peak and beats gemm/native_cl, so no.
    seconds = macs / (rate * 1e9) + (_bytes_in(p) + _bytes_out(p)) / (m.bandwidth_gbs * 1e9)
    if channels_last and not p.channels_last:  # the conversions: input in, output back
        seconds += 2 * (_bytes_in(p) + _bytes_out(p)) / (m.bandwidth_gbs * 1e9)
    return seconds * (1 + grad_factor if backward else 1)


def _fft(p: Problem, backward: bool) -> float:
    m = MACHINE
    blocks, tiles, phases = plan_sizes(p)
    size = math.prod(blocks)
    log = math.log2(max(size, 2))
    n = p.batch * tiles
    cg = p.in_channels // p.groups * phases
    units = (n * p.in_channels * phases + n * p.out_channels + p.out_channels * cg) * size * log
    products = n * p.out_channels * cg * (size / 2 + 1)  # complex MACs, 4 real each
    product_s = (
        products * 24 / (m.bandwidth_gbs * 1e9)  # broadcast products stream memory
        if cg == 1
        else 4 * products / (0.1 * m.gemm_gmacs * 1e9)  # complex einsum: small, strided GEMMs
    )
    copies = 4 * (_bytes_in(p) * phases + _bytes_out(p)) * tiles / (m.bandwidth_gbs * 1e9)
    seconds = units / (m.fft_gunits * 1e9) + product_s + copies
    return seconds * (3.2 if backward else 1)


def _gemm(p: Problem, backward: bool) -> float:
    m = MACHINE
    seconds = p.macs / (0.8 * m.gemm_gmacs * 1e9) + (_bytes_in(p) + _bytes_out(p)) / (m.bandwidth_gbs * 1e9)
    return seconds * (9.0 if backward else 1)  # its autograd backward: batched GEMMs of expanded weights


def _winograd(p: Problem, mtile: int, backward: bool) -> float:
    m = MACHINE
    a = mtile + 2
    macs = p.macs * (a / mtile) ** p.ndim / 3**p.ndim
    # one small GEMM per transformed position, and the tiles are copied ~8 times on the way
    growth = (a / mtile) ** p.ndim
    seconds = macs / (0.15 * m.gemm_gmacs * 1e9)
    seconds += 8 * growth * (_bytes_in(p) + _bytes_out(p)) / (m.bandwidth_gbs * 1e9)
    return seconds * (3 if backward else 1)


_MODELS: dict[str, Callable[[Problem, bool], float]] = {
    "native": lambda p, b: _native(p, p.channels_last, b),
    "native_cl": lambda p, b: _native(p, True, b),
    "fft": _fft,
    "gemm": _gemm,
    "winograd": lambda p, b: _winograd(p, 4, b),
    "winograd_f2": lambda p, b: _winograd(p, 2, b),
}


def estimate(name: str, p: Problem, backward: bool = False) -> float:
    """Predicted seconds of algorithm ``name`` on ``p`` (inf when it has no model or no support).

    >>> from convolab.functional.algorithms import Problem
    >>> p = Problem(2, 8, 128, 128, 128, (32, 32), (31, 31), (1, 1), (1, 1), ((15, 15), (15, 15)),
    ...             (1, 1), (32, 32))
    >>> estimate("fft", p, backward=True) < 0.1 * estimate("native", p, backward=True)
    True
    """
    algorithm = ALGORITHMS.get(name)
    if algorithm is None or name not in _MODELS or not algorithm.supports(p):
        return math.inf
    return _MODELS[name](p, backward)


@lru_cache(maxsize=4096)  # the model is pure given MACHINE; set_machine clears it
def _model_choice(p: Problem, backward: bool) -> str:
    times = {name: estimate(name, p, backward) for name in _MODELS}
    best = min(times, key=times.__getitem__)
    margin = MACHINE.layout_margin if best == "native_cl" else MACHINE.margin
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


def _save() -> None:
    path = _state["file"]
    if path is None:
        return
    tmp = Path(f"{path}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(_cache, indent=1, sort_keys=True))
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def _candidates(p: Problem, backward: bool) -> list[str]:
    """Applicable algorithms worth timing: native, and any model within 4x of the best model."""
    times = {name: estimate(name, p, backward) for name in _MODELS}
    best = min(times.values())
    return [n for n, t in times.items() if n == "native" or (t < math.inf and t <= 4 * best)]


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
    return name if ALGORITHMS[name].supports(p) else "native"


def _from_environment() -> None:
    value = os.environ.get("CONVOLAB_AUTOTUNE", "").strip()
    if value.lower() in ("", "0", "false", "off", "no"):
        return
    autotune(True, None if value.lower() in ("1", "true", "on", "yes") else value)


_from_environment()
