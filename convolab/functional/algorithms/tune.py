"""Autotuning of ``algorithm="auto"``: cuDNN's benchmark mode for convolab's algorithms.

Turned on by ``convolab.autotune(True)`` or the environment variable
``CONVOLAB_AUTOTUNE=1``: the first time a problem is seen, every plausible candidate is
timed on random tensors of the problem's shape, dtype, memory layout and device (forward,
or forward + backward when grad mode is on), and the winner is cached in memory — and on
disk as JSON if a cache file is given (``CONVOLAB_AUTOTUNE=/path/cache.json`` does both).
The key is the whole :class:`Problem` plus grad mode, thread count and torch version, so
any change of shape, dtype, layout or device tunes again. The candidates come from the
cost model (:mod:`.chooser`).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Callable, Union

import torch

from .registry import ALGORITHMS, Problem, choices_changed

__all__ = ["TUNE_MARGIN", "autotune", "autotune_enabled", "clear_tuning_cache", "tuned_choice", "tuning_cache"]

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


def tuned_choice(p: Problem, backward: bool, candidates: Callable[[], list[str]]) -> str:
    """The fastest of ``candidates()`` on ``p`` as timed (once per problem, then cached)."""
    key = _key(p, backward)
    with _lock:
        hit = _cache.get(key)
    if hit is not None and hit in ALGORITHMS and ALGORITHMS[hit].supports(p):
        return hit
    names = candidates()
    times = _time_candidates(p, names, backward) if len(names) > 1 else {"native": 0.0}
    best = min(times, key=times.__getitem__)
    if times[best] > TUNE_MARGIN * times["native"]:  # near-ties go to native: noise must not flip the choice
        best = "native"
    with _lock:
        _cache[key] = best
        _save()
    return best


def _from_environment() -> None:
    value = os.environ.get("CONVOLAB_AUTOTUNE", "").strip()
    if value.lower() in ("", "0", "false", "off", "no"):
        return
    autotune(True, None if value.lower() in ("1", "true", "on", "yes") else value)


_from_environment()
