"""Output sizes and padding: convolution, transposed convolution, pooling, separable passes.

Per spatial dim, with ``k_eff = dilation*(kernel - 1) + 1``::

    conv:        out = floor((in + before + after - k_eff) / stride) + 1
    'same':      out = ceil(in / stride);  total = max((out - 1)*stride + k_eff - in, 0)
                 before = total // 2;  after = total - before
    transposed:  out = (in - 1)*stride - before - after + k_eff + output_padding

The ``*_unchecked`` functions are the same formulas without the checks, for sizes that are
not plain ints (the symbolic sizes of ``torch.export`` and ``torch.compile``) and for
TorchScript, which compiles them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from .._args import (
    DimPadding,
    IntOrTuple,
    PaddingArg,
    PaddingPairs,
    Pair,
    nonnegative_int,
    normalize_padding,
    ntuple,
    padding_pair,
    positive_int,
    window_tuples,
)

__all__ = [
    "conv_output_shape",
    "conv_output_size",
    "conv_output_size_unchecked",
    "conv_transpose_equivalent_padding",
    "conv_transpose_output_shape",
    "conv_transpose_output_size",
    "effective_kernel_size",
    "pool_output_shape",
    "pool_output_size",
    "resolve_padding",
    "same_padding",
    "same_padding_unchecked",
    "separable_pass_sizes",
    "static_padding",
    "transpose_output_padding",
]


def _window(in_size: int, kernel_size: int, stride: int, dilation: int, op: str) -> tuple[int, int, int, int]:
    """One dim's window, checked in this order: input size >= 0; kernel size, stride, dilation >= 1."""
    return (
        nonnegative_int(in_size, "input size", op),
        positive_int(kernel_size, "kernel_size", op),
        positive_int(stride, "stride", op),
        positive_int(dilation, "dilation", op),
    )


def _along(dim: Optional[int]) -> str:
    """`` along dim 2`` for an error message, or nothing when the caller did not say."""
    return f" along dim {dim}" if dim is not None else ""


def effective_kernel_size(kernel_size: int, dilation: int = 1) -> int:
    """Extent of a dilated kernel: ``dilation*(kernel_size - 1) + 1``.

    >>> effective_kernel_size(3, dilation=2)
    5
    """
    k = positive_int(kernel_size, "kernel_size", "effective_kernel_size")
    d = positive_int(dilation, "dilation", "effective_kernel_size")
    return d * (k - 1) + 1


def conv_output_size(
    in_size: int,
    kernel_size: int,
    stride: int = 1,
    padding: DimPadding = 0,
    dilation: int = 1,
    *,
    op: str = "conv",
    dim: int | None = None,
) -> int:
    """Output length of a convolution (or pooling window) along one dim.

    ``padding`` is an int (both sides) or a ``(before, after)`` pair.
    Raises ``ValueError`` when the output would be empty.

    >>> conv_output_size(28, 3)              # mnist_cnn's first conv
    26
    >>> conv_output_size(7, 3, stride=2, padding=(0, 1))
    3
    """
    n, k, s, d = _window(in_size, kernel_size, stride, dilation, op)
    before, after = padding_pair(padding, op)
    span = n + before + after - d * (k - 1) - 1
    if span < 0:
        raise ValueError(
            f"{op}: output size would be {span // s + 1 if span // s + 1 > 0 else 0}{_along(dim)} "
            f"(in={n}, kernel={k}, dilation={d}, padding=({before}, {after}), stride={s}); "
            f"the padded input must be at least dilation*(kernel-1)+1 = {d * (k - 1) + 1}"
        )
    return conv_output_size_unchecked(n, k, s, (before, after), d)


def conv_output_size_unchecked(in_size, kernel_size, stride, padding, dilation):  # type: ignore[no-untyped-def]
    """:func:`conv_output_size` without the checks (``padding`` a ``(before, after)`` pair), for
    symbolic sizes; the op that runs on them checks the size at run time."""
    before, after = padding
    return (in_size + before + after - dilation * (kernel_size - 1) - 1) // stride + 1


def same_padding(in_size: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> Pair:
    """(before, after) padding that makes ``out = ceil(in / stride)`` (TensorFlow's 'SAME').

    The odd pixel goes after, as in TensorFlow; for stride 1 and odd
    effective kernels this is the symmetric ``(k_eff - 1) / 2``.

    >>> same_padding(224, 7, stride=2)
    (2, 3)
    >>> same_padding(5, 3, dilation=2)
    (2, 2)
    """
    op = "same_padding"
    n, k, s, d = _window(in_size, kernel_size, stride, dilation, op)
    return same_padding_unchecked(n, k, s, d)


def same_padding_unchecked(in_size: int, kernel_size: int, stride: int, dilation: int) -> tuple[int, int]:
    """:func:`same_padding` without the checks, for sizes that are not plain ints: the symbolic
    sizes of ``torch.export`` and ``torch.compile`` (arithmetic on them records guards), and
    TorchScript, which compiles this function (keep it to ints and ``max``)."""
    out = -(-in_size // stride)
    total = max((out - 1) * stride + dilation * (kernel_size - 1) + 1 - in_size, 0)
    return (total // 2, total - total // 2)


def static_padding(
    padding: PaddingArg,
    ndim: int,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    dilation: IntOrTuple = 1,
    *,
    op: str = "conv",
) -> Optional[PaddingPairs]:
    """The per-dim ``(before, after)`` pairs when they do not depend on the input size, else None.

    Only 'same' with a stride > 1 depends on it (``out = ceil(in / stride)``); with stride 1,
    'same' pads ``dilation*(kernel - 1)`` in total whatever the input size.

    >>> static_padding("same", 2, 3), static_padding("same", 2, 3, stride=2)
    (((1, 1), (1, 1)), None)
    """
    spec = normalize_padding(padding, ndim, op)
    if spec != "same":
        return spec  # type: ignore[return-value]
    k, s, d = window_tuples(kernel_size, stride, dilation, ndim, op)
    if any(ss > 1 for ss in s):
        return None
    # with stride 1 the total is d*(k-1) for every input size; size 0 stands for any
    return tuple(same_padding_unchecked(0, kk, 1, dd) for kk, dd in zip(k, d))


def resolve_padding(
    padding: PaddingArg,
    input_size: Sequence[int],
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    dilation: IntOrTuple = 1,
    *,
    op: str = "conv",
) -> PaddingPairs:
    """Resolve any padding spec to per-dim ``(before, after)`` pairs for this input size.

    >>> resolve_padding("same", (10, 11), 3, stride=2)
    ((0, 1), (1, 1))
    >>> resolve_padding(((1, 2), (0, 0)), (5, 5), 3)
    ((1, 2), (0, 0))
    """
    n = len(input_size)
    static = static_padding(padding, n, kernel_size, stride, dilation, op=op)
    if static is not None:
        return static
    k, s, d = window_tuples(kernel_size, stride, dilation, n, op)
    return tuple(same_padding(i, kk, ss, dd) for i, kk, ss, dd in zip(input_size, k, s, d))


def conv_output_shape(
    input_size: Sequence[int],
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    *,
    op: str = "conv",
) -> tuple[int, ...]:
    """Spatial output shape of an N-d convolution for any padding spec.

    >>> conv_output_shape((5, 5), 3, stride=2, padding=1)
    (3, 3)
    >>> conv_output_shape((10, 11), 3, stride=2, padding="same")
    (5, 6)
    """
    n = len(input_size)
    k, s, d = window_tuples(kernel_size, stride, dilation, n, op)
    pads = resolve_padding(padding, input_size, k, s, d, op=op)
    return tuple(
        conv_output_size(i, kk, ss, pp, dd, op=op, dim=j + 2)
        for j, (i, kk, ss, pp, dd) in enumerate(zip(input_size, k, s, pads, d))
    )


def conv_transpose_output_size(
    in_size: int,
    kernel_size: int,
    stride: int = 1,
    padding: DimPadding = 0,
    output_padding: int = 0,
    dilation: int = 1,
    *,
    op: str = "conv_transpose",
    dim: int | None = None,
) -> int:
    """Output length of a transposed convolution along one dim.

    ``output_padding`` must be smaller than ``stride`` or ``dilation`` (as in PyTorch).

    >>> conv_transpose_output_size(2, 3, stride=1, padding=0)   # Dumoulin & Visin's 2x2 -> 4x4
    4
    >>> conv_transpose_output_size(3, 3, stride=2, padding=1, output_padding=1)
    6
    """
    n = positive_int(in_size, "input size", op)
    k = positive_int(kernel_size, "kernel_size", op)
    s = positive_int(stride, "stride", op)
    d = positive_int(dilation, "dilation", op)
    out_pad = nonnegative_int(output_padding, "output_padding", op)
    before, after = padding_pair(padding, op)
    if out_pad >= s and out_pad >= d:
        raise ValueError(
            f"{op}: output_padding ({out_pad}) must be smaller than stride ({s}) or dilation ({d})"
        )
    out = (n - 1) * s - before - after + d * (k - 1) + out_pad + 1
    if out < 1:
        raise ValueError(
            f"{op}: output size would be {out}{_along(dim)} (in={n}, kernel={k}, stride={s}, "
            f"padding=({before}, {after}), dilation={d}, output_padding={out_pad})"
        )
    return out


def conv_transpose_output_shape(
    input_size: Sequence[int],
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    *,
    op: str = "conv_transpose",
) -> tuple[int, ...]:
    """Spatial output shape of an N-d transposed convolution.

    >>> conv_transpose_output_shape((7, 7), 4, stride=2, padding=1)
    (14, 14)
    """
    n = len(input_size)
    k, s, d = window_tuples(kernel_size, stride, dilation, n, op)
    o = ntuple(output_padding, n, "output_padding", op)
    pads = normalize_padding(padding, n, op)
    if pads == "same":
        raise ValueError(f"{op}: padding='same' is not defined for transposed convolution")
    return tuple(
        conv_transpose_output_size(i, kk, ss, pp, oo, dd, op=op, dim=j + 2)
        for j, (i, kk, ss, pp, oo, dd) in enumerate(zip(input_size, k, s, pads, o, d))
    )


def conv_transpose_equivalent_padding(
    kernel_size: int, padding: DimPadding = 0, output_padding: int = 0, dilation: int = 1
) -> Pair:
    """(before, after) padding of the zero-inserted input that turns a transposed conv into a conv.

    A transposed conv equals a stride-1 conv (flipped kernel) of the input with
    ``stride - 1`` zeros inserted between samples, padded by
    ``dilation*(kernel - 1) - padding`` on each side plus ``output_padding`` after.
    Negative entries mean cropping.

    >>> conv_transpose_equivalent_padding(3)                      # Dumoulin & Visin's 2x2 -> 4x4: pad 2
    (2, 2)
    >>> conv_transpose_equivalent_padding(3, padding=1, output_padding=1)
    (1, 2)
    """
    op = "conv_transpose_equivalent_padding"
    k = positive_int(kernel_size, "kernel_size", op)
    d = positive_int(dilation, "dilation", op)
    before, after = padding_pair(padding, op)
    full = d * (k - 1)
    return (full - before, full - after + nonnegative_int(output_padding, "output_padding", op))


def transpose_output_padding(
    input_size: Sequence[int],
    output_size: Sequence[int],
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    *,
    op: str = "conv_transpose",
) -> tuple[int, ...]:
    """The ``output_padding`` that makes a transposed conv produce ``output_size`` (PyTorch's rule).

    Valid sizes lie in ``[min, min + stride - 1]`` where ``min`` is the size with
    ``output_padding = 0``.

    >>> transpose_output_padding((3, 3), (6, 5), 3, stride=2, padding=1)
    (1, 0)
    """
    n = len(input_size)
    if len(output_size) != n:
        raise ValueError(
            f"{op}: output_size must have {n} spatial entries, got {tuple(output_size)!r}"
        )
    k, s, d = window_tuples(kernel_size, stride, dilation, n, op)
    pads = normalize_padding(padding, n, op)
    if pads == "same":
        raise ValueError(f"{op}: padding='same' is not defined for transposed convolution")
    result = []
    for j in range(n):
        lo = conv_transpose_output_size(input_size[j], k[j], s[j], pads[j], 0, d[j], op=op)
        hi = lo + s[j] - 1
        want = output_size[j]
        if not lo <= want <= hi:
            raise ValueError(
                f"{op}: requested output_size {tuple(output_size)!r} is invalid along dim {j + 2}: "
                f"must be between {lo} and {hi} for in={input_size[j]}, stride={s[j]}"
            )
        result.append(want - lo)
    return tuple(result)


def pool_output_size(
    in_size: int,
    kernel_size: int,
    stride: int | None = None,
    padding: DimPadding = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
    *,
    op: str = "pool",
    dim: int | None = None,
) -> int:
    """Output length of a pooling window along one dim (PyTorch's rule for ``ceil_mode``).

    With ``ceil_mode`` the division rounds up, but the last window must start
    inside the input or the left padding. ``stride`` defaults to ``kernel_size``.

    >>> pool_output_size(5, 2, ceil_mode=True)
    3
    >>> pool_output_size(26, 2)              # mnist_cnn's first max-pool
    13
    >>> pool_output_size(2, 3, 2, ceil_mode=True)   # smaller than the kernel: torch gives 1 too
    1
    """
    s = kernel_size if stride is None else stride
    if not ceil_mode:
        return conv_output_size(in_size, kernel_size, s, padding, dilation, op=op, dim=dim)
    n, k, s, d = _window(in_size, kernel_size, s, dilation, op)
    before, after = padding_pair(padding, op)
    # rounding up lets the last window hang over the end, even past an input smaller than
    # the kernel, as long as it starts inside the input or the left padding
    span = n + before + after - d * (k - 1) - 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + before:
        out -= 1
    if out < 1:
        raise ValueError(
            f"{op}: output size would be {max(out, 0)}{_along(dim)} (in={n}, kernel={k}, dilation={d}, "
            f"padding=({before}, {after}), stride={s}, ceil_mode=True)"
        )
    return out


def pool_output_shape(
    input_size: Sequence[int],
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    *,
    op: str = "pool",
) -> tuple[int, ...]:
    """Spatial output shape of an N-d pooling window for any padding spec (``stride`` defaults to the kernel).

    >>> pool_output_shape((5, 5), 2, ceil_mode=True)
    (3, 3)
    >>> pool_output_shape((10, 11), 3, stride=2, padding="same")
    (5, 6)
    """
    n = len(input_size)
    k, s, d = window_tuples(kernel_size, kernel_size if stride is None else stride, dilation, n, op)
    pads = resolve_padding(padding, input_size, k, s, d, op=op)
    return tuple(
        pool_output_size(i, kk, ss, pp, dd, ceil_mode, op=op, dim=j + 2)
        for j, (i, kk, ss, pp, dd) in enumerate(zip(input_size, k, s, pads, d))
    )


def separable_pass_sizes(
    input_size: Sequence[int],
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    *,
    op: str = "separable_pass_sizes",
) -> tuple[tuple[int, ...], ...]:
    """Spatial size after each 1-D pass of a spatially separable conv (dim 1 first, then dim 2, ...).

    Pass ``i`` convolves, pads and strides only dim ``i``, so earlier dims are already
    at their output size and later dims still at their input size. Padding (also
    "same") is resolved for the full kernel, so the last entry equals the dense conv's
    output shape.

    >>> separable_pass_sizes((10, 12), 3, stride=2, padding=1)
    ((5, 12), (5, 6))
    """
    n = len(input_size)
    k, s, d = window_tuples(kernel_size, stride, dilation, n, op)
    pads = resolve_padding(padding, input_size, k, s, d, op=op)
    size, sizes = list(input_size), []
    for j in range(n):
        size[j] = conv_output_size(input_size[j], k[j], s[j], pads[j], d[j], op=op, dim=j + 2)
        sizes.append(tuple(size))
    return tuple(sizes)
