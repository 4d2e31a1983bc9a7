"""The small example every animation runs: checked sizes, and seeded small integers to check by hand."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

import torch
from torch import Tensor

from ..._args import positive_tuple

__all__ = ["check_geometry", "check_input_size", "generator", "sample_ints"]

Size = Union[int, Sequence[int]]


def check_input_size(input_size: Size, op: str) -> tuple[int, ...]:
    """``input_size`` as a tuple of 1 or 2 positive sizes (an int is 1-D).

    Raises:
        ValueError: another number of dims, or a size < 1.
    """
    size = (input_size,) if isinstance(input_size, int) else tuple(input_size)
    if len(size) not in (1, 2):
        raise ValueError(f"{op}: input_size must have 1 or 2 spatial dims, got {size!r}")
    return positive_tuple(size, len(size), "input_size", op)


def check_geometry(
    op: str, input_size: Size, kernel_size: Size, stride: Optional[Size], dilation: Size
) -> tuple[tuple[int, ...], int, tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Validated ``(size, ndim, kernel, stride, dilation)`` of a window; ``stride=None`` means the kernel (pooling)."""
    size = check_input_size(input_size, op)
    nd = len(size)
    k = positive_tuple(kernel_size, nd, "kernel_size", op)
    s = k if stride is None else positive_tuple(stride, nd, "stride", op)
    d = positive_tuple(dilation, nd, "dilation", op)
    return size, nd, k, s, d


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``: the example's values depend on nothing else."""
    return torch.Generator().manual_seed(int(seed))


def sample_ints(shape: Sequence[int], low: int, high: int, gen: torch.Generator, *, nonzero: bool = False) -> Tensor:
    """Float64 small integers from ``[low, high]`` (easy to check by hand); ``nonzero`` leaves 0 out.

    Example:
        >>> sample_ints((4,), -1, 1, generator(0), nonzero=True).abs().tolist()
        [1.0, 1.0, 1.0, 1.0]
    """
    if not nonzero:
        return torch.randint(low, high + 1, shape, generator=gen).double()
    choices = torch.tensor([v for v in range(low, high + 1) if v != 0], dtype=torch.float64)
    return choices[torch.randint(0, len(choices), shape, generator=gen)]
