"""Pooling windows: how many elements each average divides by, adaptive bins, spatial pyramid levels.

The output size of a pooling window is :func:`~convolab.arithmetic.sizes.pool_output_size`;
this module holds what is particular to pooling: the divisor of each window, PyTorch's
adaptive bins and the SPP paper's windows (He et al., 2014).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .._args import (
    DimPadding,
    IntOrTuple,
    Pair,
    padding_pair,
    positive_int,
    positive_tuple,
)
from .sizes import pool_output_size

__all__ = ["adaptive_pool_bins", "pool_window_counts", "spp_features", "spp_window", "spp_window_unchecked"]


def pool_window_counts(
    in_size: int,
    kernel_size: int,
    stride: int | None = None,
    padding: DimPadding = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> tuple[int, ...]:
    """How many elements each average-pooling window divides by along one dim (PyTorch's rule).

    Window ``o`` covers ``[o*stride - before, o*stride - before + kernel)``; it is clipped
    to the padded input ``[-before, in + after)`` when ``count_include_pad`` (so a
    ``ceil_mode`` window hanging past the padding counts only what it covers), else to
    the input ``[0, in)``. In N-d the divisor is the product of the per-dim counts.

    >>> pool_window_counts(5, 2, ceil_mode=True)            # the last window holds one element
    (2, 2, 1)
    >>> pool_window_counts(4, 3, 1, padding=1, count_include_pad=False)
    (2, 3, 3, 2)
    """
    op = "pool_window_counts"
    k = positive_int(kernel_size, "kernel_size", op)
    s = k if stride is None else positive_int(stride, "stride", op)
    before, after = padding_pair(padding, op)
    out = pool_output_size(in_size, k, s, (before, after), 1, ceil_mode, op=op)
    lo, hi = (-before, in_size + after) if count_include_pad else (0, in_size)
    return tuple(
        max(min(o * s - before + k, hi) - max(o * s - before, lo), 0) for o in range(out)
    )


def adaptive_pool_bins(in_size: int, out_size: int) -> tuple[Pair, ...]:
    """The ``(start, end)`` input range of each adaptive-pooling bin (PyTorch's rule).

    ``start = floor(i*in/out)``, ``end = ceil((i+1)*in/out)``: the bins cover the input,
    neighbours overlap by at most one element, and ``out > in`` repeats elements.

    >>> adaptive_pool_bins(5, 2)
    ((0, 3), (2, 5))
    >>> adaptive_pool_bins(13, 4)
    ((0, 4), (3, 7), (6, 10), (9, 13))
    """
    n = positive_int(in_size, "input size", "adaptive_pool_bins")
    m = positive_int(out_size, "output size", "adaptive_pool_bins")
    return tuple((i * n // m, -(-(i + 1) * n // m)) for i in range(m))


def spp_window(in_size: int, level: int, *, op: str = "spp_window", dim: int | None = None) -> Pair:
    """``(window, stride)`` of one spatial-pyramid level by the SPP paper's rule (He et al., 2014).

    ``window = ceil(a/n)``, ``stride = floor(a/n)`` for an input of size ``a`` and ``n``
    bins. This gives exactly ``n`` bins only when ``n <= a`` and ``a mod n <= floor(a/n)``
    (always true for ``a >= n*(n - 1)``); otherwise the rule produces more bins and this
    function raises rather than return a pyramid of the wrong length. Where it fits, the
    bins end at ``(n - 1)*stride + window``, which leaves the last ``a mod n - 1`` elements
    out when ``a mod n >= 2`` (e.g. ``a = 14, n = 4`` ignores the last element); adaptive
    bins always cover the input.

    >>> spp_window(13, 3), spp_window(13, 4), spp_window(13, 6)   # the paper's conv5 of 13x13
    ((5, 4), (4, 3), (3, 2))
    """
    a = positive_int(in_size, "input size", op)
    n = positive_int(level, "level", op)
    where = f" along dim {dim}" if dim is not None else ""
    if n > a:
        raise ValueError(
            f"{op}: pyramid level {n} is larger than the input ({a}){where}; the paper's bins need "
            f"level <= input size (use bins='adaptive' for small inputs)"
        )
    window, stride = spp_window_unchecked(a, n)
    bins = (a - window) // stride + 1
    if bins != n:
        raise ValueError(
            f"{op}: the paper's bins for level {n} on an input of {a}{where} (window ceil({a}/{n}) = "
            f"{window}, stride floor({a}/{n}) = {stride}) give {bins} bins, not {n}; they fit only when "
            f"{a} mod {n} <= {stride} (any input >= {n * (n - 1)} works); use bins='adaptive'"
        )
    return window, stride


def spp_window_unchecked(in_size: int, level: int) -> tuple[int, int]:
    """:func:`spp_window` without the checks (for traced sizes and TorchScript, which compiles
    it): ``(ceil(in/level), floor(in/level))``."""
    return -(-in_size // level), in_size // level


def spp_features(channels: int, levels: Sequence[IntOrTuple], ndim: int = 2) -> int:
    """Length of a spatial-pyramid-pooling vector: ``C * sum(prod(level))`` (independent of the input size).

    >>> spp_features(256, (1, 2, 4))          # 256 * (1 + 4 + 16)
    5376
    """
    op = "spp_features"
    c = positive_int(channels, "channels", op)
    nd = positive_int(ndim, "ndim", op)
    return c * sum(math.prod(positive_tuple(level, nd, "levels", op)) for level in levels)
