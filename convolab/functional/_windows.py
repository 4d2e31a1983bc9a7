"""One windowing primitive for im2col, pooling and generic pooling (tinygrad's idea)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from ._lowered import pad_pairs  # noqa: F401  (one padding helper for every op)


def windows(
    x: Tensor, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> Tensor:
    """A strided view of every window of the trailing spatial dims (no copy).

    Shape:
        x: ``[*lead, *spatial]`` with ``len(kernel)`` spatial dims (already padded).
        returns: ``[*lead, *out, *kernel]`` where ``out = floor((in - d*(k-1) - 1)/s) + 1``.
    """
    n = len(kernel)
    lead = x.dim() - n
    for i, (k, s, d) in enumerate(zip(kernel, stride, dilation)):
        # unfold appends the window dim last; window i lands after the windows before it.
        x = x.unfold(lead + i, d * (k - 1) + 1, s)
        if d > 1:
            x = x[..., ::d]
    return x


def dilate(x: Tensor, factors: Sequence[int]) -> Tensor:
    """Insert ``factor - 1`` zeros between neighbours along the trailing dims (input dilation).

    This is the zero-insertion of transposed convolution. Differentiable.
    """
    if all(f == 1 for f in factors):
        return x
    n = len(factors)
    spatial = x.shape[-n:]
    shape = (*x.shape[:-n], *((s - 1) * f + 1 if s > 0 else 0 for s, f in zip(spatial, factors)))
    out = x.new_zeros(shape)
    index = (Ellipsis, *(slice(None, None, f) for f in factors))
    out[index] = x
    return out
