"""Checks every op makes before any work: the dtype rule and the memory estimate.

**The dtype rule** (one rule for every convolution and pooling op, on every path):

- floating dtypes (float16, bfloat16, float32, float64) are supported by every op, and
  the result has the input's dtype (torch's result dtype for these ops);
- integer dtypes (uint8, int8, int16, int32, int64) are supported too where the result is
  one of the input's elements: max and min pooling of every kind (windowed, adaptive,
  global, generic ``pool`` with ``reduce="max"``/``"min"``, spatial pyramid max pooling),
  and channel shuffle; the result again has the input's dtype;
- channel shuffle, a permutation, takes every dtype;
- everything else (bool, uint16/32/64, complex, integer input to a convolution or an
  averaging, Lp or custom reduction) is a ``TypeError`` naming the op and listing the
  dtypes it supports, raised before any work. Modules with a ``dtype`` argument check it
  at construction.

**The memory estimate**: in plain eager mode on the CPU (never under a tracer, compiler,
transform or dispatch mode, whose sizes may be symbolic and whose tensors may not be
allocated), an op adds up the bytes of the output and of the padded input it is about to
allocate, from the planned shapes, and refuses with a ``ValueError`` naming its arguments
when that exceeds :func:`memory_limit` (never below :data:`ALWAYS_ALLOWED`, 64 MiB) — instead of the allocator's
``DefaultCPUAllocator: can't allocate ...`` (or a swap storm) after the work has begun.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterable, Sequence
from typing import Any, Callable, Optional, Union

import torch
from torch import Tensor

from ._tracing import concrete, free_choice

__all__ = [
    "ALWAYS_ALLOWED",
    "FLOATING",
    "INTEGER",
    "check_floating",
    "check_max_dtype",
    "check_memory",
    "check_module_dtype",
    "format_bytes",
    "memory_limit",
]

#: bytes an op may always allocate, whatever the limits say (no process that runs torch has less)
ALWAYS_ALLOWED = 2**26

FLOATING = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
INTEGER = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def _names(dtypes: Iterable[torch.dtype]) -> str:
    names = [str(d).replace("torch.", "") for d in dtypes]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _check(op: str, t: Tensor, allowed: Sequence[torch.dtype], kind: str, name: str) -> None:
    if t.dtype in allowed:
        return
    hint = ""
    if kind == "floating" and (t.dtype == torch.bool or not (t.dtype.is_floating_point or t.dtype.is_complex)):
        hint = f" (cast with {name}.float())"
    raise TypeError(f"{op}: {name} dtype must be {kind} ({_names(allowed)}), got {t.dtype}{hint}")


def check_floating(op: str, t: Tensor, name: str = "input") -> None:
    """``t`` must have a floating dtype: convolutions, average, Lp and custom pooling."""
    _check(op, t, FLOATING, "floating", name)


def check_max_dtype(op: str, t: Tensor, name: str = "input") -> None:
    """``t`` must have a floating or integer dtype: max and min pooling (the result is an element)."""
    _check(op, t, FLOATING + INTEGER, "floating or integer", name)


def check_module_dtype(op: str, dtype: Any) -> None:
    """A module's ``dtype`` argument: None (torch's default dtype) or a floating dtype.

    Checked at construction, so that ``Conv2d(..., dtype=torch.int64)`` fails there with
    convolab's message rather than inside torch's parameter creation (or at the first call).
    """
    if dtype is None:
        return
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"{op}: dtype must be a torch.dtype or None, got {dtype!r}")
    if dtype not in FLOATING:
        raise TypeError(f"{op}: dtype must be floating ({_names(FLOATING)}), got {dtype}")


# ----------------------------------------------------------------------------- memory


@functools.lru_cache(maxsize=None)
def _machine_memory() -> Optional[int]:
    """Physical memory, lowered to the cgroup (container) limit when one is set; None if unknown."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            limits.append(int(text))
    positive = [v for v in limits if v > 0]
    return min(positive) if positive else None


def memory_limit() -> Optional[int]:
    """The bytes an op may plan to allocate: this machine's physical memory (``os.sysconf``),
    lowered to the container's cgroup limit and to the process's address-space limit
    (``ulimit -v``) when those are set. None when none of them is known (no check then).

    Example:
        >>> memory_limit() is None or memory_limit() > 0
        True
    """
    limits = [v for v in (_machine_memory(),) if v is not None]
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY and soft > 0:
            limits.append(soft)
    except (ImportError, ValueError, OSError):  # not a POSIX system
        pass
    return min(limits) if limits else None


def format_bytes(n: float) -> str:
    """``1536 -> '1.5 KiB'``: bytes in the largest binary unit that keeps the number >= 1."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"


def check_memory(
    op: str,
    x: Tensor,
    buffers: Sequence[tuple[str, Sequence[int]]],
    arguments: Union[str, Callable[[], str]],
    extra_bytes: int = 0,
) -> None:
    """Refuse, before any allocation, buffers that together exceed :func:`memory_limit`.

    Args:
        op: the op's name for the message.
        x: the input; the check runs only in plain eager mode on the CPU (see the module
            docstring) and the buffers have its dtype.
        buffers: ``(what, shape)`` of each tensor the op is about to allocate (e.g.
            ``("output", [N, C, H_out, W_out])``), computed from ``x``'s sizes: nothing is
            checked when those are traced.
        arguments: the op's arguments that set these shapes, named, for the message
            (e.g. ``"padding=((9, 9),), stride=(1,)"``), or a function returning them (only
            called when the check fails).
        extra_bytes: further bytes the op allocates (e.g. a copy of every window).

    Raises:
        ValueError: the estimate exceeds the limit.
    """
    # traced sizes (a dynamic batch) must not be compared: that would specialise the trace; the
    # buffers' sizes derive from the input's, so its shape decides
    if not concrete(x.shape):
        return
    item = x.element_size()
    total = extra_bytes
    for _, shape in buffers:
        total += math.prod(shape) * item
    # the cheap test first: this runs on every call of every op
    if total <= ALWAYS_ALLOWED or not free_choice(x):
        return
    limit = memory_limit()
    if limit is None or total <= limit:
        return
    if callable(arguments):
        arguments = arguments()
    parts = " and ".join(f"{what} {list(shape)}" for what, shape in buffers)
    if extra_bytes:
        parts += f" and {format_bytes(extra_bytes)} of working memory"
    raise ValueError(
        f"{op}: {arguments} give {parts}, {format_bytes(total)} of {str(x.dtype).replace('torch.', '')} "
        f"in all, more than the {format_bytes(limit)} of memory this process can use"
    )
