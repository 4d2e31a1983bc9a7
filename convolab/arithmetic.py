"""The arithmetic of convolution: every formula of convolab lives here, once.

Pure Python (no torch), so it can be used to plan a network, to check a
student's hand computation, and by the ops, the analysis and the pictures
alike. Every function validates its input and raises a ``ValueError`` that
names the parameter, its value and the rule.

Conventions (per spatial dim):

- output size of a convolution::

      out = floor((in + before + after - dilation*(kernel - 1) - 1) / stride) + 1

- 'same' padding (TensorFlow's rule, for any stride and dilation)::

      out = ceil(in / stride)
      total = max((out - 1)*stride + dilation*(kernel - 1) + 1 - in, 0)
      before = total // 2;  after = total - before

- transposed convolution::

      out = (in - 1)*stride - before - after + dilation*(kernel - 1) + output_padding + 1

- receptive field recursion (size r, jump j, start s of the first unit's centre)::

      j_out = j_in * stride
      r_out = r_in + (k_eff - 1) * j_in            with k_eff = dilation*(kernel - 1) + 1
      s_out = s_in + ((k_eff - 1)/2 - before) * j_in

Example:
    >>> conv_output_size(5, kernel_size=3, stride=2, padding=1)
    3
    >>> same_padding(10, kernel_size=3, stride=2)
    (0, 1)
    >>> [rf.size for rf in receptive_fields([(3, 1, 0)] * 3)]
    [3, 5, 7]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Union

from ._args import PaddingArg, PaddingPairs, is_int, normalize_padding, ntuple, positive_tuple

__all__ = [
    "ReceptiveField",
    "adaptive_pool_macs",
    "avg_pool_macs",
    "conv_macs",
    "conv_output_shape",
    "conv_output_size",
    "conv_output_size_unchecked",
    "conv_params",
    "conv_transpose_equivalent_padding",
    "conv_transpose_macs",
    "conv_transpose_output_shape",
    "conv_transpose_output_size",
    "effective_kernel_size",
    "interpolation_rate",
    "linear_macs",
    "linear_params",
    "locally_connected_macs",
    "locally_connected_params",
    "make_divisible",
    "matmul_macs",
    "norm_macs",
    "pool_output_size",
    # pooling and the separable conv variants (issue 3)
    "adaptive_pool_bins",
    "depthwise_separable_macs",
    "depthwise_separable_params",
    "flattened_conv_macs",
    "flattened_conv_params",
    "pool_macs",
    "pool_output_shape",
    "pool_window_counts",
    "separable_pass_sizes",
    "spatially_separable_macs",
    "spatially_separable_params",
    "spp_features",
    "spp_window",
    "spp_window_unchecked",
    "receptive_fields",
    "resolve_padding",
    "same_padding",
    "same_padding_unchecked",
    "static_padding",
    "transpose_output_padding",
]

Pair = tuple[int, int]
IntOrPair = Union[int, Sequence[int]]


def _positive(value: int, name: str, op: str) -> int:
    if not is_int(value) or value < 1:
        raise ValueError(f"{op}: {name} must be an int >= 1, got {value!r}")
    return int(value)


def _nonneg(value: int, name: str, op: str) -> int:
    if not is_int(value) or value < 0:
        raise ValueError(f"{op}: {name} must be an int >= 0, got {value!r}")
    return int(value)


def _pair(padding: IntOrPair, op: str) -> Pair:
    if is_int(padding):
        p = _nonneg(padding, "padding", op)
        return (p, p)
    if isinstance(padding, Sequence) and len(padding) == 2:
        return (_nonneg(padding[0], "padding before", op), _nonneg(padding[1], "padding after", op))
    raise ValueError(f"{op}: padding must be an int or a (before, after) pair, got {padding!r}")


def effective_kernel_size(kernel_size: int, dilation: int = 1) -> int:
    """Extent of a dilated kernel: ``dilation*(kernel_size - 1) + 1``.

    >>> effective_kernel_size(3, dilation=2)
    5
    """
    k = _positive(kernel_size, "kernel_size", "effective_kernel_size")
    d = _positive(dilation, "dilation", "effective_kernel_size")
    return d * (k - 1) + 1


def conv_output_size(
    in_size: int,
    kernel_size: int,
    stride: int = 1,
    padding: IntOrPair = 0,
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
    n = _nonneg(in_size, "input size", op)
    k = _positive(kernel_size, "kernel_size", op)
    s = _positive(stride, "stride", op)
    d = _positive(dilation, "dilation", op)
    before, after = _pair(padding, op)
    span = n + before + after - d * (k - 1) - 1
    if span < 0:
        where = f" along dim {dim}" if dim is not None else ""
        raise ValueError(
            f"{op}: output size would be {span // s + 1 if span // s + 1 > 0 else 0}{where} "
            f"(in={n}, kernel={k}, dilation={d}, padding=({before}, {after}), stride={s}); "
            f"the padded input must be at least dilation*(kernel-1)+1 = {d * (k - 1) + 1}"
        )
    return conv_output_size_unchecked(n, k, s, (before, after), d)


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
    n = _nonneg(in_size, "input size", op)
    k = _positive(kernel_size, "kernel_size", op)
    s = _positive(stride, "stride", op)
    d = _positive(dilation, "dilation", op)
    return same_padding_unchecked(n, k, s, d)


def same_padding_unchecked(in_size: int, kernel_size: int, stride: int, dilation: int) -> tuple[int, int]:
    """:func:`same_padding` without the checks, for sizes that are not plain ints: the symbolic
    sizes of ``torch.export`` and ``torch.compile`` (arithmetic on them records guards), and
    TorchScript, which compiles this function (keep it to ints and ``max``)."""
    out = -(-in_size // stride)
    total = max((out - 1) * stride + dilation * (kernel_size - 1) + 1 - in_size, 0)
    return (total // 2, total - total // 2)


def conv_output_size_unchecked(in_size, kernel_size, stride, padding, dilation):  # type: ignore[no-untyped-def]
    """:func:`conv_output_size` without the checks (``padding`` a ``(before, after)`` pair), for
    symbolic sizes; the op that runs on them checks the size at run time."""
    before, after = padding
    return (in_size + before + after - dilation * (kernel_size - 1) - 1) // stride + 1


def resolve_padding(
    padding: PaddingArg,
    input_size: Sequence[int],
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    dilation: IntOrPair = 1,
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
    k = positive_tuple(kernel_size, n, "kernel_size", op)
    s = positive_tuple(stride, n, "stride", op)
    d = positive_tuple(dilation, n, "dilation", op)
    return tuple(same_padding(i, kk, ss, dd) for i, kk, ss, dd in zip(input_size, k, s, d))


def static_padding(
    padding: PaddingArg,
    ndim: int,
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    dilation: IntOrPair = 1,
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
    k = positive_tuple(kernel_size, ndim, "kernel_size", op)
    s = positive_tuple(stride, ndim, "stride", op)
    d = positive_tuple(dilation, ndim, "dilation", op)
    if any(ss > 1 for ss in s):
        return None
    # with stride 1 the total is d*(k-1) for every input size; size 0 stands for any
    return tuple(same_padding_unchecked(0, kk, 1, dd) for kk, dd in zip(k, d))


def conv_output_shape(
    input_size: Sequence[int],
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
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
    k = positive_tuple(kernel_size, n, "kernel_size", op)
    s = positive_tuple(stride, n, "stride", op)
    d = positive_tuple(dilation, n, "dilation", op)
    pads = resolve_padding(padding, input_size, k, s, d, op=op)
    return tuple(
        conv_output_size(i, kk, ss, pp, dd, op=op, dim=j + 2)
        for j, (i, kk, ss, pp, dd) in enumerate(zip(input_size, k, s, pads, d))
    )


def conv_transpose_output_size(
    in_size: int,
    kernel_size: int,
    stride: int = 1,
    padding: IntOrPair = 0,
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
    n = _positive(in_size, "input size", op)
    k = _positive(kernel_size, "kernel_size", op)
    s = _positive(stride, "stride", op)
    d = _positive(dilation, "dilation", op)
    op_ = _nonneg(output_padding, "output_padding", op)
    before, after = _pair(padding, op)
    if op_ >= s and op_ >= d:
        raise ValueError(
            f"{op}: output_padding ({op_}) must be smaller than stride ({s}) or dilation ({d})"
        )
    out = (n - 1) * s - before - after + d * (k - 1) + op_ + 1
    if out < 1:
        where = f" along dim {dim}" if dim is not None else ""
        raise ValueError(
            f"{op}: output size would be {out}{where} (in={n}, kernel={k}, stride={s}, "
            f"padding=({before}, {after}), dilation={d}, output_padding={op_})"
        )
    return out


def conv_transpose_output_shape(
    input_size: Sequence[int],
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: IntOrPair | Sequence[Sequence[int]] = 0,
    output_padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    *,
    op: str = "conv_transpose",
) -> tuple[int, ...]:
    """Spatial output shape of an N-d transposed convolution.

    >>> conv_transpose_output_shape((7, 7), 4, stride=2, padding=1)
    (14, 14)
    """
    n = len(input_size)
    k = positive_tuple(kernel_size, n, "kernel_size", op)
    s = positive_tuple(stride, n, "stride", op)
    d = positive_tuple(dilation, n, "dilation", op)
    o = ntuple(output_padding, n, "output_padding", op)
    pads = normalize_padding(padding, n, op)
    if pads == "same":
        raise ValueError(f"{op}: padding='same' is not defined for transposed convolution")
    return tuple(
        conv_transpose_output_size(i, kk, ss, pp, oo, dd, op=op, dim=j + 2)
        for j, (i, kk, ss, pp, oo, dd) in enumerate(zip(input_size, k, s, pads, o, d))
    )


def conv_transpose_equivalent_padding(
    kernel_size: int, padding: IntOrPair = 0, output_padding: int = 0, dilation: int = 1
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
    k = _positive(kernel_size, "kernel_size", op)
    d = _positive(dilation, "dilation", op)
    before, after = _pair(padding, op)
    full = d * (k - 1)
    return (full - before, full - after + _nonneg(output_padding, "output_padding", op))


def transpose_output_padding(
    input_size: Sequence[int],
    output_size: Sequence[int],
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: IntOrPair | Sequence[Sequence[int]] = 0,
    dilation: IntOrPair = 1,
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
    k = positive_tuple(kernel_size, n, "kernel_size", op)
    s = positive_tuple(stride, n, "stride", op)
    d = positive_tuple(dilation, n, "dilation", op)
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
    padding: IntOrPair = 0,
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
    n = _nonneg(in_size, "input size", op)
    k = _positive(kernel_size, "kernel_size", op)
    s = _positive(s, "stride", op)
    d = _positive(dilation, "dilation", op)
    before, after = _pair(padding, op)
    # rounding up lets the last window hang over the end, even past an input smaller than
    # the kernel, as long as it starts inside the input or the left padding
    span = n + before + after - d * (k - 1) - 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + before:
        out -= 1
    if out < 1:
        where = f" along dim {dim}" if dim is not None else ""
        raise ValueError(
            f"{op}: output size would be {max(out, 0)}{where} (in={n}, kernel={k}, dilation={d}, "
            f"padding=({before}, {after}), stride={s}, ceil_mode=True)"
        )
    return out


def pool_output_shape(
    input_size: Sequence[int],
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
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
    k = positive_tuple(kernel_size, n, "kernel_size", op)
    s = k if stride is None else positive_tuple(stride, n, "stride", op)
    d = positive_tuple(dilation, n, "dilation", op)
    pads = resolve_padding(padding, input_size, k, s, d, op=op)
    return tuple(
        pool_output_size(i, kk, ss, pp, dd, ceil_mode, op=op, dim=j + 2)
        for j, (i, kk, ss, pp, dd) in enumerate(zip(input_size, k, s, pads, d))
    )


def pool_window_counts(
    in_size: int,
    kernel_size: int,
    stride: int | None = None,
    padding: IntOrPair = 0,
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
    k = _positive(kernel_size, "kernel_size", op)
    s = k if stride is None else _positive(stride, "stride", op)
    before, after = _pair(padding, op)
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
    n = _positive(in_size, "input size", "adaptive_pool_bins")
    m = _positive(out_size, "output size", "adaptive_pool_bins")
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
    a = _positive(in_size, "input size", op)
    n = _positive(level, "level", op)
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


def spp_features(channels: int, levels: Sequence[IntOrPair], ndim: int = 2) -> int:
    """Length of a spatial-pyramid-pooling vector: ``C * sum(prod(level))`` (independent of the input size).

    >>> spp_features(256, (1, 2, 4))          # 256 * (1 + 4 + 16)
    5376
    """
    op = "spp_features"
    c = _positive(channels, "channels", op)
    nd = _positive(ndim, "ndim", op)
    return c * sum(math.prod(positive_tuple(level, nd, "levels", op)) for level in levels)


def pool_macs(channels: int, kernel_size: IntOrPair, output_size: IntOrPair, batch: int = 1) -> int:
    """Window reads of a pooling layer: ``N * C * prod(out) * prod(k)``.

    Pooling has no multiplies; each window element costs one accumulate or compare, which
    is what this counts (it is the MAC-like cost that a model summary reports).

    >>> pool_macs(64, 2, (56, 56))
    802816
    """
    op = "pool_macs"
    outs = output_size if not is_int(output_size) else (output_size,) * 2
    k = positive_tuple(kernel_size, len(outs), "kernel_size", op)
    return (
        _nonneg(batch, "batch", op) * _positive(channels, "channels", op) * math.prod(k)
        * math.prod(_nonneg(o, "output_size", op) for o in outs)
    )


def depthwise_separable_params(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrPair,
    depth_multiplier: int = 1,
    bias: bool = True,
    ndim: int = 2,
) -> int:
    """Parameters of a depthwise-separable conv: depthwise ``k`` with groups=C_in (C_in*m outputs), then 1x1.

    ``C_in*m*prod(k) + C_in*m*C_out`` plus ``C_in*m + C_out`` biases. Versus the dense
    conv's ``C_in*C_out*prod(k)`` this is a factor ``1/C_out + 1/prod(k)`` (m = 1, no bias).

    >>> depthwise_separable_params(3, 128, 3, bias=False), conv_params(3, 128, 3, bias=False)
    (411, 3456)
    """
    cin = _positive(in_channels, "in_channels", "depthwise_separable_params")
    mid = cin * _positive(depth_multiplier, "depth_multiplier", "depthwise_separable_params")
    return conv_params(cin, mid, kernel_size, cin, bias, ndim) + conv_params(
        mid, out_channels, 1, 1, bias, ndim
    )


def depthwise_separable_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrPair,
    output_size: IntOrPair,
    depth_multiplier: int = 1,
    batch: int = 1,
) -> int:
    """MACs of a depthwise-separable conv (both convs produce ``output_size``).

    >>> depthwise_separable_macs(3, 128, 3, (5, 5)), conv_macs(3, 128, 3, (5, 5))  # Bai's 7x7x3 -> 5x5x128 example
    (10275, 86400)
    """
    cin = _positive(in_channels, "in_channels", "depthwise_separable_macs")
    mid = cin * _positive(depth_multiplier, "depth_multiplier", "depthwise_separable_macs")
    return conv_macs(cin, mid, kernel_size, output_size, cin, batch) + conv_macs(
        mid, out_channels, 1, output_size, 1, batch
    )


def separable_pass_sizes(
    input_size: Sequence[int],
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
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
    k = positive_tuple(kernel_size, n, "kernel_size", op)
    s = positive_tuple(stride, n, "stride", op)
    d = positive_tuple(dilation, n, "dilation", op)
    pads = resolve_padding(padding, input_size, k, s, d, op=op)
    size, sizes = list(input_size), []
    for j in range(n):
        size[j] = conv_output_size(input_size[j], k[j], s[j], pads[j], d[j], op=op, dim=j + 2)
        sizes.append(tuple(size))
    return tuple(sizes)


def _channel_chain(in_channels: int, out_channels: int, mid_channels: int | None, n: int, op: str) -> list[int]:
    cin = _positive(in_channels, "in_channels", op)
    cout = _positive(out_channels, "out_channels", op)
    mid = cout if mid_channels is None else _positive(mid_channels, "mid_channels", op)
    return [cin] + [mid] * (n - 1) + [cout]


def spatially_separable_params(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrPair,
    mid_channels: int | None = None,
    groups: int = 1,
    bias: bool = True,
    ndim: int = 2,
) -> int:
    """Parameters of a spatially separable conv: one 1-D conv per spatial dim (k x 1 then 1 x k).

    Channels run ``C_in -> mid -> ... -> C_out`` (``mid`` defaults to C_out); one bias at
    the end. With ``C_in = mid = C_out`` the factor versus the dense conv is
    ``sum(k) / prod(k)`` (2/3 for 3x3: 6 instead of 9 multiplications).

    >>> spatially_separable_params(1, 1, 3, bias=False), conv_params(1, 1, 3, bias=False)
    (6, 9)
    >>> spatially_separable_params(192, 192, 7, bias=False)      # Inception v3's 1x7 + 7x1
    516096
    """
    op = "spatially_separable_params"
    k = kernel_size if not is_int(kernel_size) else (kernel_size,) * _positive(ndim, "ndim", op)
    chain = _channel_chain(in_channels, out_channels, mid_channels, len(k), op)
    total = sum(
        conv_params(chain[j], chain[j + 1], (k[j],), groups, False, 1) for j in range(len(k))
    )
    return total + (chain[-1] if bias else 0)


def spatially_separable_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrPair,
    input_size: Sequence[int],
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    mid_channels: int | None = None,
    groups: int = 1,
    batch: int = 1,
) -> int:
    """MACs of a spatially separable conv, pass by pass at each pass's own output size.

    >>> spatially_separable_macs(1, 1, 3, (5, 5), padding=1), conv_macs(1, 1, 3, (5, 5))
    (150, 225)
    """
    op = "spatially_separable_macs"
    n = len(input_size)
    k = positive_tuple(kernel_size, n, "kernel_size", op)
    chain = _channel_chain(in_channels, out_channels, mid_channels, n, op)
    sizes = separable_pass_sizes(input_size, k, stride, padding, dilation, op=op)
    return sum(
        conv_macs(chain[j], chain[j + 1], (k[j],) + (1,) * (n - 1), sizes[j], groups, batch)
        for j in range(n)
    )


def flattened_conv_params(
    in_channels: int, out_channels: int, kernel_size: IntOrPair, bias: bool = True, ndim: int = 2
) -> int:
    """Parameters of a flattened conv (Jin et al., 2014): ``C_out*C_in + C_out*sum(k)`` (+ C_out bias).

    A 1-D filter across channels (1x1 conv), then one depthwise 1-D filter per spatial
    dim, so each output channel's dense filter is the rank-1 outer product of the three.

    >>> flattened_conv_params(64, 64, 3, bias=False), conv_params(64, 64, 3, bias=False)
    (4480, 36864)
    """
    op = "flattened_conv_params"
    k = kernel_size if not is_int(kernel_size) else (kernel_size,) * _positive(ndim, "ndim", op)
    cin = _positive(in_channels, "in_channels", op)
    cout = _positive(out_channels, "out_channels", op)
    return cout * cin + cout * sum(positive_tuple(k, len(k), "kernel_size", op)) + (cout if bias else 0)


def flattened_conv_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrPair,
    input_size: Sequence[int],
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    batch: int = 1,
) -> int:
    """MACs of a flattened conv: the channel pass at the input size, then each depthwise 1-D pass.

    >>> flattened_conv_macs(3, 8, 3, (5, 5), padding=1)     # 8*3*25 + 8*3*25 + 8*3*25
    1800
    """
    op = "flattened_conv_macs"
    n = len(input_size)
    cout = _positive(out_channels, "out_channels", op)
    channel = conv_macs(in_channels, cout, 1, tuple(input_size), 1, batch)
    return channel + spatially_separable_macs(
        cout, cout, kernel_size, input_size, stride, padding, dilation, cout, cout, batch
    )


def conv_params(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrPair,
    groups: int = 1,
    bias: bool = True,
    ndim: int = 2,
) -> int:
    """Learnable parameters of a (grouped) convolution: ``C_out*(C_in/groups)*prod(k) + C_out*bias``.

    An int ``kernel_size`` is square/cubic over ``ndim`` spatial dims (default 2).

    >>> sum(conv_params(192, c, k, bias=False) for c, k in [(64, 1), (128, 3), (32, 5)])  # GoogLeNet 3a
    387072
    """
    op = "conv_params"
    cin = _positive(in_channels, "in_channels", op)
    cout = _positive(out_channels, "out_channels", op)
    g = _positive(groups, "groups", op)
    if cin % g or cout % g:
        raise ValueError(
            f"{op}: groups ({g}) must divide in_channels ({cin}) and out_channels ({cout})"
        )
    k = kernel_size if not is_int(kernel_size) else (kernel_size,) * _positive(ndim, "ndim", op)
    ks = [_positive(v, "kernel_size", op) for v in k]
    return cout * (cin // g) * math.prod(ks) + (cout if bias else 0)


def locally_connected_params(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrPair,
    output_size: IntOrPair,
    bias: bool = True,
) -> int:
    """Parameters of a locally connected layer (locality without weight sharing).

    Every output position has its own ``C_out x C_in x prod(k)`` filter bank and its own
    ``C_out`` biases: ``prod(out) * (prod(k)*C_in + 1) * C_out``, i.e. ``(K*C_in + 1)*C_out``
    per output position against the conv's ``(K*C_in + 1)*C_out`` for the whole layer. The
    number of spatial dims is ``len(output_size)`` (2 when it is an int).

    >>> locally_connected_params(1, 1, 3, (26, 26)), conv_params(1, 1, 3)   # one 3x3 map on 28x28
    (6760, 10)
    >>> locally_connected_params(3, 64, 3, (30, 30)) == 30 * 30 * conv_params(3, 64, 3)
    True
    """
    op = "locally_connected_params"
    outs = output_size if not is_int(output_size) else (output_size,) * 2
    positions = math.prod(_positive(o, "output_size", op) for o in outs)
    return positions * conv_params(in_channels, out_channels, kernel_size, 1, bias, ndim=len(outs))


def locally_connected_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrPair,
    output_size: IntOrPair,
    batch: int = 1,
) -> int:
    """MACs of a locally connected layer: the conv's, ``N * prod(out) * C_out * C_in * prod(k)``.

    Without weight sharing every weight is used once per sample instead of once per position:
    the same arithmetic as the conv, ``prod(out)`` times the weights to read.

    >>> locally_connected_macs(1, 1, 3, (26, 26)) == conv_macs(1, 1, 3, (26, 26))
    True
    """
    return conv_macs(in_channels, out_channels, kernel_size, output_size, 1, batch)


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Parameters of a fully connected layer: ``M*N + N`` (with bias).

    >>> linear_params(1250, 1024)
    1281024
    """
    m = _positive(in_features, "in_features", "linear_params")
    n = _positive(out_features, "out_features", "linear_params")
    return m * n + (n if bias else 0)


def conv_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrPair,
    output_size: IntOrPair,
    groups: int = 1,
    batch: int = 1,
) -> int:
    """Multiply-accumulates of a convolution: ``N * prod(out) * C_out * (C_in/groups) * prod(k)``.

    Bias additions are not counted (the common model-zoo convention). The number
    of spatial dims is ``len(output_size)`` (2 when it is an int).

    >>> conv_macs(256, 256, 3, (1, 1))        # ResNet's 256-channel example, per output pixel
    589824
    """
    outs = output_size if not is_int(output_size) else (output_size,) * 2
    weights = conv_params(in_channels, out_channels, kernel_size, groups, bias=False, ndim=len(outs))
    return _nonneg(batch, "batch", "conv_macs") * weights * math.prod(
        _nonneg(o, "output_size", "conv_macs") for o in outs
    )


def conv_transpose_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrPair,
    input_size: IntOrPair,
    groups: int = 1,
    batch: int = 1,
) -> int:
    """MACs of a transposed conv: every input element scatters into ``C_out/groups * prod(k)`` outputs.

    >>> conv_transpose_macs(4, 2, 3, (2, 2))
    288
    """
    ins = input_size if not is_int(input_size) else (input_size,) * 2
    weights = conv_params(in_channels, out_channels, kernel_size, groups, bias=False, ndim=len(ins))
    return _nonneg(batch, "batch", "conv_transpose_macs") * weights * math.prod(
        _nonneg(i, "input_size", "conv_transpose_macs") for i in ins
    )


def linear_macs(in_features: int, out_features: int, batch: int = 1) -> int:
    """MACs of a fully connected layer: ``batch * M * N``."""
    return _nonneg(batch, "batch", "linear_macs") * linear_params(in_features, out_features, False)


def matmul_macs(m: int, k: int, n: int, batch: int = 1) -> int:
    """MACs of a (batched) matrix product ``[batch, m, k] @ [batch, k, n]``: ``batch*m*k*n``.

    A linear layer applied to ``m`` vectors is the same count (``linear_macs(k, n, m)``).

    >>> matmul_macs(49, 512, 1000) == linear_macs(512, 1000, batch=49)
    True
    """
    op = "matmul_macs"
    return _nonneg(batch, "batch", op) * _nonneg(m, "m", op) * _nonneg(k, "k", op) * _nonneg(n, "n", op)


def norm_macs(numel: int) -> int:
    """MACs of a normalisation layer at inference: one per element.

    Batch/layer/group/instance norm reduce to ``y = x*a + b`` per element once the
    statistics are known (BN folds into the preceding conv, which is why the
    model-zoo convention leaves it out).

    >>> norm_macs(64 * 112 * 112)
    802816
    """
    return _nonneg(numel, "numel", "norm_macs")


def avg_pool_macs(out_numel: int, kernel_size: IntOrPair) -> int:
    """MACs of average pooling: one accumulate per window element, ``out_numel * prod(kernel)``.

    Max pooling multiplies and accumulates nothing (comparisons only): the analysis
    counts it as 0 MACs.

    >>> avg_pool_macs(64 * 56 * 56, 3)
    1806336
    """
    op = "avg_pool_macs"
    ks = (kernel_size,) * 2 if is_int(kernel_size) else tuple(kernel_size)
    return _nonneg(out_numel, "out_numel", op) * math.prod(_positive(k, "kernel_size", op) for k in ks)


def adaptive_pool_macs(input_size: Sequence[int], output_size: Sequence[int]) -> int:
    """MACs of adaptive average pooling per channel: the sum of its window sizes.

    Output unit ``o`` averages input units ``floor(o*in/out)`` to ``ceil((o+1)*in/out) - 1``
    (PyTorch's windows, which overlap when ``out`` does not divide ``in``).

    >>> adaptive_pool_macs((7, 7), (1, 1)), adaptive_pool_macs((5,), (3,))
    (49, 7)
    """
    op = "adaptive_pool_macs"
    if len(input_size) != len(output_size):
        raise ValueError(f"{op}: input_size {tuple(input_size)} and output_size {tuple(output_size)} "
                         f"must have the same number of dims")
    total = 1
    for n, m in zip(input_size, output_size):
        n, m = _positive(n, "input size", op), _positive(m, "output size", op)
        total *= sum(-(-(o + 1) * n // m) - o * n // m for o in range(m))
    return total


def interpolation_rate(
    in_size: int, out_size: int, align_corners: bool = False, scale: Optional[float] = None
) -> Fraction:
    """Input units per output unit of PyTorch's interpolation grid (exact, as a fraction).

    ``(in - 1)/(out - 1)`` with ``align_corners``; else ``1/scale`` when a scale
    factor was given (PyTorch samples with it, not with the rounded sizes), else ``in/out``.

    >>> interpolation_rate(7, 14), interpolation_rate(7, 13, align_corners=True)
    (Fraction(1, 2), Fraction(1, 2))
    >>> interpolation_rate(10, 15, scale=1.5)
    Fraction(2, 3)
    """
    op = "interpolation_rate"
    n = _positive(in_size, "input size", op)
    m = _positive(out_size, "output size", op)
    if align_corners:
        return Fraction(n - 1, m - 1) if m > 1 else Fraction(0)
    if scale is not None and scale > 0:
        return 1 / Fraction(scale).limit_denominator(1 << 20)
    return Fraction(n, m)


def _num(x: Union[Fraction, float, int]) -> Union[int, float]:
    """An exact value as an int when whole, else a float (fields print as 212, not 212.0)."""
    return int(x) if x == int(x) else float(x)


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one unit along one dim, in input coordinates.

    Attributes:
        size: how many input pixels the unit sees (``r``).
        jump: distance in input pixels between adjacent units (the effective stride, ``j``).
        start: input coordinate of the centre of the first unit's field (``s``);
            negative values mean the field starts in the padding.
    """

    size: float = 1
    jump: float = 1
    start: float = 0.0

    def conv(
        self, kernel_size: int, stride: int = 1, padding: IntOrPair = 0, dilation: int = 1
    ) -> "ReceptiveField":
        """Field after a conv/pool window (one line of the recursion)."""
        op = "receptive_field"
        k = effective_kernel_size(kernel_size, dilation)
        s = _positive(stride, "stride", op)
        before, _ = _pair(padding, op)
        return ReceptiveField(
            size=self.size + (k - 1) * self.jump,
            jump=self.jump * s,
            start=self.start + ((k - 1) / 2 - before) * self.jump,
        )

    @property
    def effective_padding(self) -> float:
        """How far the first unit's field reaches before input pixel 0: ``(size - 1)/2 - start``.

        For a chain of windows it equals Araujo et al.'s ``sum_l p_l * prod_{i<l} s_i``.

        >>> receptive_fields([(3, 1, 1), (3, 2, 1)])[-1].effective_padding
        2.0
        """
        return (self.size - 1) / 2 - self.start

    @property
    def bounds(self) -> tuple[float, float]:
        """Input coordinates of the first and last pixel centre the first unit sees."""
        half = (self.size - 1) / 2
        return (self.start - half, self.start + half)

    def transposed_conv(
        self, kernel_size: int, stride: int = 1, padding: IntOrPair = 0, dilation: int = 1
    ) -> "ReceptiveField":
        """Field after a transposed convolution: a conv of stride 1 on the zero-inserted input.

        The jump becomes ``j/stride``. Output unit ``o`` sees the inputs ``i`` with
        ``o = i*stride - before + t*dilation`` for a tap ``t``; the field follows
        :meth:`resample` (centres on the line fitted through the phases, size the
        smallest that holds every phase's inputs). For stride 1 it is the conv rule
        with padding ``dilation*(kernel - 1) - before``; for the common kernel 4,
        stride 2, padding 1 it adds ``1.5*j_in`` (the span of the kernel in input units).

        >>> ReceptiveField().transposed_conv(4, stride=2, padding=1)
        ReceptiveField(size=2.5, jump=0.5, start=-0.25)
        >>> ReceptiveField(size=4, jump=2, start=0.5).transposed_conv(2, stride=2)
        ReceptiveField(size=5, jump=1, start=0)
        """
        op = "receptive_field"
        k = _positive(kernel_size, "kernel_size", op)
        s = _positive(stride, "stride", op)
        d = _positive(dilation, "dilation", op)
        before, _ = _pair(padding, op)

        def taps(o: int) -> list[int]:
            return [(o + before - t * d) // s for t in range(k) if (o + before - t * d) % s == 0]

        return self.resample(Fraction(1, s), taps, period=s)

    def resample(
        self, rate: Union[Fraction, int], taps: "Callable[[int], Sequence[Union[int, Fraction]]]", period: int
    ) -> "ReceptiveField":
        """Field after any op whose output unit ``o`` reads input units ``taps(o)``.

        The one rule behind transposed conv, interpolation and adaptive pooling.
        ``rate`` is input units per output unit (``a``); ``taps`` repeats with
        ``period`` (``taps(o + period) = taps(o) + a*period``). The centre of unit
        ``o`` is ``a*o + b`` (``b`` averages the phases, so centres are exact on
        average); the size is the smallest that holds every phase's inputs:

            j_out = a * j_in;  s_out = s_in + b * j_in;  r_out = r_in + 2*h * j_in
            b = mean_o(mid(taps(o)) - a*o);  h = max_o max(hi - (a*o + b), (a*o + b) - lo)

        For a conv window (``taps(o) = [o*s - before, o*s - before + k_eff - 1]``,
        period 1) it is exactly :meth:`conv`.

        >>> rf = ReceptiveField(size=3, jump=1, start=0)
        >>> rf.resample(2, lambda o: [2 * o - 1, 2 * o + 1], period=1) == rf.conv(3, 2, 1)
        True
        """
        a = Fraction(rate)
        spans = [(o, min(t), max(t)) for o in range(_positive(period, "period", "resample"))
                 if (t := [Fraction(v) for v in taps(o)])]
        if not spans:
            raise ValueError("resample: no output unit reads any input unit (every phase has no taps)")
        b = sum((lo + hi) / 2 - a * o for o, lo, hi in spans) / len(spans)
        h = max(max(hi - (a * o + b), (a * o + b) - lo) for o, lo, hi in spans)
        return ReceptiveField(
            size=_num(self.size + 2 * h * Fraction(self.jump)),
            jump=_num(a * Fraction(self.jump)),
            start=_num(Fraction(self.start) + b * Fraction(self.jump)),
        )

    def adaptive_pool(self, in_size: int, out_size: int) -> "ReceptiveField":
        """Field after adaptive pooling from ``in_size`` to ``out_size`` units (PyTorch's windows).

        Unit ``o`` pools ``[floor(o*in/out), ceil((o+1)*in/out) - 1]``; ``out_size = 1``
        is global pooling (the field covers every unit).

        >>> ReceptiveField(size=3, jump=2, start=0).adaptive_pool(7, 1)
        ReceptiveField(size=15, jump=14, start=6)
        >>> ReceptiveField().adaptive_pool(8, 4) == ReceptiveField().conv(2, 2)
        True
        """
        n = _positive(in_size, "input size", "adaptive_pool")
        m = _positive(out_size, "output size", "adaptive_pool")

        def taps(o: int) -> list[int]:
            return [o * n // m, -(-(o + 1) * n // m) - 1]

        return self.resample(Fraction(n, m), taps, period=m // math.gcd(n, m))

    def interpolate(
        self, in_size: int, out_size: int, mode: str = "nearest", align_corners: bool = False,
        scale: Optional[float] = None,
    ) -> "ReceptiveField":
        """Field after ``torch.nn.functional.interpolate`` along one dim (PyTorch's sampling grid).

        The source coordinate of output unit ``o`` is ``x = o*a`` (nearest),
        ``(o + 0.5)*a`` (nearest-exact, floored) or ``(o + 0.5)*a - 0.5`` (linear,
        cubic), or ``o*a`` with ``a = (in - 1)/(out - 1)`` when ``align_corners``;
        ``a = 1/scale`` when the scale factor is given, else ``in/out`` (see
        :func:`interpolation_rate`). Linear reads 2 neighbours, cubic 4; borders
        (where PyTorch clamps) do not change the field, as padding does not.

        >>> ReceptiveField().interpolate(4, 8, "nearest")
        ReceptiveField(size=1.5, jump=0.5, start=-0.25)
        >>> ReceptiveField().interpolate(4, 8, "bilinear") == ReceptiveField().transposed_conv(4, 2, 1)
        True
        """
        op = "interpolate"
        n = _positive(in_size, "input size", op)
        m = _positive(out_size, "output size", op)
        a = interpolation_rate(n, m, align_corners, scale)
        base = {"bilinear": "linear", "trilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
        if base not in ("nearest", "nearest-exact", "linear", "cubic"):
            raise ValueError(
                f"{op}: mode must be nearest, nearest-exact, (bi/tri)linear or bicubic, got {mode!r}"
            )
        shift = Fraction(0) if align_corners or base == "nearest" else Fraction(1, 2)

        def taps(o: int) -> list[Fraction]:
            x = (o + shift) * a - (shift if base in ("linear", "cubic") else 0)
            lo = math.floor(x)
            if base.startswith("nearest"):
                return [lo]
            if base == "linear":
                return [lo, lo + 1] if x != lo else [lo]
            return [lo - 1, lo + 2]

        return self.resample(a, taps, period=min(a.denominator, m))

    def slice(self, begin: int = 0, step: int = 1) -> "ReceptiveField":
        """Field of ``x[begin::step]`` along this dim (cropping and subsampling).

        >>> ReceptiveField(size=5, jump=2, start=1).slice(2, 3)
        ReceptiveField(size=5, jump=6, start=5)
        """
        return ReceptiveField(self.size, self.jump * step, self.start + begin * self.jump)

    def aligned_with(self, other: "ReceptiveField", tol: float = 1e-9) -> bool:
        """Same jump and same centres: units of two branches see fields centred at the same pixel."""
        return abs(self.jump - other.jump) <= tol * max(1, abs(self.jump)) and abs(
            self.start - other.start
        ) <= tol * max(1, abs(self.start))

    def union(self, *others: "ReceptiveField") -> "ReceptiveField":
        """Field of a merge (add, concat) of branches: the union of their regions.

        Branches must have the same jump (else units do not correspond and there
        is no single field: ``ValueError``). Centres that differ are *misaligned*
        (Araujo et al.): the union is still well defined and returned, and the
        caller should report the offset (:meth:`aligned_with`).

        >>> ReceptiveField(3, 1, 0).union(ReceptiveField(5, 1, 0))
        ReceptiveField(size=5, jump=1, start=0)
        >>> ReceptiveField(3, 2, 1).union(ReceptiveField(3, 2, 0))
        ReceptiveField(size=4, jump=2, start=0.5)
        """
        lo, hi = self.bounds
        for other in others:
            if abs(self.jump - other.jump) > 1e-9 * max(1, abs(self.jump)):
                raise ValueError(
                    f"receptive_field: branches with different jumps ({_num(self.jump)} and "
                    f"{_num(other.jump)}) cannot be merged: their units do not correspond"
                )
            olo, ohi = other.bounds
            lo, hi = min(lo, olo), max(hi, ohi)
        if all(o.aligned_with(self) for o in others):
            return ReceptiveField(max([self.size, *(o.size for o in others)]), self.jump, self.start)
        return ReceptiveField(_num(hi - lo + 1), self.jump, _num((lo + hi) / 2))


LayerSpec = Union[Sequence[int], dict]


def receptive_fields(
    layers: Sequence[LayerSpec], input_field: ReceptiveField = ReceptiveField()
) -> list[ReceptiveField]:
    """Receptive field after each layer of a chain of windows along one dim.

    Each layer is ``(kernel, stride, padding[, dilation])`` or a dict with those keys.
    The recursion is ``R_i = (k_i - 1) * prod(strides of layers 1..i-1) + R_{i-1}``: the product runs
    over the *previous* layers' strides (a layer's own stride spaces its outputs, it does not widen
    what one output sees).

    >>> [(rf.size, rf.jump) for rf in receptive_fields([(3, 1, 1), (2, 2, 0), (3, 1, 1)])]
    [(3, 1), (4, 2), (8, 2)]
    """
    out = []
    rf = input_field
    for i, layer in enumerate(layers):
        if isinstance(layer, dict):
            rf = rf.conv(
                layer["kernel"], layer.get("stride", 1), layer.get("padding", 0), layer.get("dilation", 1)
            )
        elif isinstance(layer, Sequence) and 1 <= len(layer) <= 4:
            rf = rf.conv(*layer)
        else:
            raise ValueError(
                f"receptive_fields: layer {i} must be (kernel, stride, padding[, dilation]) "
                f"or a dict, got {layer!r}"
            )
        out.append(rf)
    return out


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to the nearest multiple of ``divisor``, never more than 10% below ``value``.

    The width rule of MobileNet/ShuffleNet-style width multipliers (hardware
    prefers channel counts divisible by 8): ``max(min_value, floor(value/d + 1/2)*d)``,
    plus ``d`` if that lost more than 10%. ``min_value`` defaults to ``divisor``.

    >>> make_divisible(32 * 0.75), make_divisible(16 * 0.5), make_divisible(1280 * 1.4)
    (24, 8, 1792)
    """
    op = "make_divisible"
    d = _positive(divisor, "divisor", op)
    if not value > 0:
        raise ValueError(f"{op}: value must be > 0, got {value!r}")
    floor_to = d if min_value is None else _positive(min_value, "min_value", op)
    rounded = max(floor_to, int(value + d / 2) // d * d)
    return rounded + d if rounded < 0.9 * value else rounded
