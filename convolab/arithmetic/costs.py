"""Parameters and multiply-accumulates (MACs) of every layer convolab builds, and the channel widths of a width multiplier.

Conventions of the model zoos: a MAC is one multiply and one add; bias additions are not
counted; pooling counts one accumulate or compare per window element; normalisation one
per element. An int size stands for every spatial dim (two when the layer does not say).
Channel counts scaled by a width multiplier are rounded by :func:`make_divisible`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .._args import (
    IntOrTuple,
    PaddingArg,
    is_int,
    nonnegative_int,
    positive_int,
    positive_tuple,
)
from .sizes import separable_pass_sizes

__all__ = [
    "adaptive_pool_macs",
    "avg_pool_macs",
    "conv_macs",
    "conv_params",
    "conv_transpose_macs",
    "depthwise_separable_macs",
    "depthwise_separable_params",
    "flattened_conv_macs",
    "flattened_conv_params",
    "linear_macs",
    "linear_params",
    "locally_connected_macs",
    "locally_connected_params",
    "make_divisible",
    "matmul_macs",
    "norm_macs",
    "pool_macs",
    "spatially_separable_macs",
    "spatially_separable_params",
]


def _per_dim(value: IntOrTuple, ndim: int, op: str) -> Sequence:
    """An int stands for each of ``ndim`` dims (``ndim`` an int >= 1); a sequence already has one entry per dim."""
    return (value,) * positive_int(ndim, "ndim", op) if is_int(value) else value


def conv_params(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
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
    cin = positive_int(in_channels, "in_channels", op)
    cout = positive_int(out_channels, "out_channels", op)
    g = positive_int(groups, "groups", op)
    if cin % g or cout % g:
        raise ValueError(
            f"{op}: groups ({g}) must divide in_channels ({cin}) and out_channels ({cout})"
        )
    k = _per_dim(kernel_size, ndim, op)
    ks = [positive_int(v, "kernel_size", op) for v in k]
    return cout * (cin // g) * math.prod(ks) + (cout if bias else 0)


def conv_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    output_size: IntOrTuple,
    groups: int = 1,
    batch: int = 1,
) -> int:
    """Multiply-accumulates of a convolution: ``N * prod(out) * C_out * (C_in/groups) * prod(k)``.

    Bias additions are not counted (the common model-zoo convention). The number
    of spatial dims is ``len(output_size)`` (2 when it is an int).

    >>> conv_macs(256, 256, 3, (1, 1))        # ResNet's 256-channel example, per output pixel
    589824
    """
    outs = _per_dim(output_size, 2, "conv_macs")
    weights = conv_params(in_channels, out_channels, kernel_size, groups, bias=False, ndim=len(outs))
    return nonnegative_int(batch, "batch", "conv_macs") * weights * math.prod(
        nonnegative_int(o, "output_size", "conv_macs") for o in outs
    )


def conv_transpose_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    input_size: IntOrTuple,
    groups: int = 1,
    batch: int = 1,
) -> int:
    """MACs of a transposed conv: every input element scatters into ``C_out/groups * prod(k)`` outputs.

    >>> conv_transpose_macs(4, 2, 3, (2, 2))
    288
    """
    ins = _per_dim(input_size, 2, "conv_transpose_macs")
    weights = conv_params(in_channels, out_channels, kernel_size, groups, bias=False, ndim=len(ins))
    return nonnegative_int(batch, "batch", "conv_transpose_macs") * weights * math.prod(
        nonnegative_int(i, "input_size", "conv_transpose_macs") for i in ins
    )


def locally_connected_params(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    output_size: IntOrTuple,
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
    outs = _per_dim(output_size, 2, op)
    positions = math.prod(positive_int(o, "output_size", op) for o in outs)
    return positions * conv_params(in_channels, out_channels, kernel_size, 1, bias, ndim=len(outs))


def locally_connected_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    output_size: IntOrTuple,
    batch: int = 1,
) -> int:
    """MACs of a locally connected layer: the conv's, ``N * prod(out) * C_out * C_in * prod(k)``.

    Without weight sharing every weight is used once per sample instead of once per position:
    the same arithmetic as the conv, ``prod(out)`` times the weights to read.

    >>> locally_connected_macs(1, 1, 3, (26, 26)) == conv_macs(1, 1, 3, (26, 26))
    True
    """
    return conv_macs(in_channels, out_channels, kernel_size, output_size, 1, batch)


def depthwise_separable_params(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
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
    cin = positive_int(in_channels, "in_channels", "depthwise_separable_params")
    mid = cin * positive_int(depth_multiplier, "depth_multiplier", "depthwise_separable_params")
    return conv_params(cin, mid, kernel_size, cin, bias, ndim) + conv_params(
        mid, out_channels, 1, 1, bias, ndim
    )


def depthwise_separable_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    output_size: IntOrTuple,
    depth_multiplier: int = 1,
    batch: int = 1,
) -> int:
    """MACs of a depthwise-separable conv (both convs produce ``output_size``).

    >>> depthwise_separable_macs(3, 128, 3, (5, 5)), conv_macs(3, 128, 3, (5, 5))  # Bai's 7x7x3 -> 5x5x128 example
    (10275, 86400)
    """
    cin = positive_int(in_channels, "in_channels", "depthwise_separable_macs")
    mid = cin * positive_int(depth_multiplier, "depth_multiplier", "depthwise_separable_macs")
    return conv_macs(cin, mid, kernel_size, output_size, cin, batch) + conv_macs(
        mid, out_channels, 1, output_size, 1, batch
    )


def _channel_chain(in_channels: int, out_channels: int, mid_channels: int | None, n: int, op: str) -> list[int]:
    cin = positive_int(in_channels, "in_channels", op)
    cout = positive_int(out_channels, "out_channels", op)
    mid = cout if mid_channels is None else positive_int(mid_channels, "mid_channels", op)
    return [cin] + [mid] * (n - 1) + [cout]


def spatially_separable_params(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
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
    k = _per_dim(kernel_size, ndim, op)
    chain = _channel_chain(in_channels, out_channels, mid_channels, len(k), op)
    total = sum(
        conv_params(chain[j], chain[j + 1], (k[j],), groups, False, 1) for j in range(len(k))
    )
    return total + (chain[-1] if bias else 0)


def spatially_separable_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    input_size: Sequence[int],
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
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
    in_channels: int, out_channels: int, kernel_size: IntOrTuple, bias: bool = True, ndim: int = 2
) -> int:
    """Parameters of a flattened conv (Jin et al., 2014): ``C_out*C_in + C_out*sum(k)`` (+ C_out bias).

    A 1-D filter across channels (1x1 conv), then one depthwise 1-D filter per spatial
    dim, so each output channel's dense filter is the rank-1 outer product of the three.

    >>> flattened_conv_params(64, 64, 3, bias=False), conv_params(64, 64, 3, bias=False)
    (4480, 36864)
    """
    op = "flattened_conv_params"
    k = _per_dim(kernel_size, ndim, op)
    cin = positive_int(in_channels, "in_channels", op)
    cout = positive_int(out_channels, "out_channels", op)
    return cout * cin + cout * sum(positive_tuple(k, len(k), "kernel_size", op)) + (cout if bias else 0)


def flattened_conv_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    input_size: Sequence[int],
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    batch: int = 1,
) -> int:
    """MACs of a flattened conv: the channel pass at the input size, then each depthwise 1-D pass.

    >>> flattened_conv_macs(3, 8, 3, (5, 5), padding=1)     # 8*3*25 + 8*3*25 + 8*3*25
    1800
    """
    op = "flattened_conv_macs"
    n = len(input_size)
    cout = positive_int(out_channels, "out_channels", op)
    channel = conv_macs(in_channels, cout, 1, tuple(input_size), 1, batch)
    return channel + spatially_separable_macs(
        cout, cout, kernel_size, input_size, stride, padding, dilation, cout, cout, batch
    )


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Parameters of a fully connected layer: ``M*N + N`` (with bias).

    >>> linear_params(1250, 1024)
    1281024
    """
    m = positive_int(in_features, "in_features", "linear_params")
    n = positive_int(out_features, "out_features", "linear_params")
    return m * n + (n if bias else 0)


def linear_macs(in_features: int, out_features: int, batch: int = 1) -> int:
    """MACs of a fully connected layer: ``batch * M * N``."""
    return nonnegative_int(batch, "batch", "linear_macs") * linear_params(in_features, out_features, False)


def matmul_macs(m: int, k: int, n: int, batch: int = 1) -> int:
    """MACs of a (batched) matrix product ``[batch, m, k] @ [batch, k, n]``: ``batch*m*k*n``.

    A linear layer applied to ``m`` vectors is the same count (``linear_macs(k, n, m)``).

    >>> matmul_macs(49, 512, 1000) == linear_macs(512, 1000, batch=49)
    True
    """
    op = "matmul_macs"
    return nonnegative_int(batch, "batch", op) * nonnegative_int(m, "m", op) * nonnegative_int(k, "k", op) * nonnegative_int(n, "n", op)


def norm_macs(numel: int) -> int:
    """MACs of a normalisation layer at inference: one per element.

    Batch/layer/group/instance norm reduce to ``y = x*a + b`` per element once the
    statistics are known (BN folds into the preceding conv, which is why the
    model-zoo convention leaves it out).

    >>> norm_macs(64 * 112 * 112)
    802816
    """
    return nonnegative_int(numel, "numel", "norm_macs")


def pool_macs(channels: int, kernel_size: IntOrTuple, output_size: IntOrTuple, batch: int = 1) -> int:
    """Window reads of a pooling layer: ``N * C * prod(out) * prod(k)``.

    Pooling has no multiplies; each window element costs one accumulate or compare, which
    is what this counts (it is the MAC-like cost that a model summary reports).

    >>> pool_macs(64, 2, (56, 56))
    802816
    """
    op = "pool_macs"
    outs = _per_dim(output_size, 2, op)
    k = positive_tuple(kernel_size, len(outs), "kernel_size", op)
    return (
        nonnegative_int(batch, "batch", op) * positive_int(channels, "channels", op) * math.prod(k)
        * math.prod(nonnegative_int(o, "output_size", op) for o in outs)
    )


def avg_pool_macs(out_numel: int, kernel_size: IntOrTuple) -> int:
    """MACs of average pooling: one accumulate per window element, ``out_numel * prod(kernel)``.

    Max pooling multiplies and accumulates nothing (comparisons only): the analysis
    counts it as 0 MACs.

    >>> avg_pool_macs(64 * 56 * 56, 3)
    1806336
    """
    op = "avg_pool_macs"
    ks = tuple(_per_dim(kernel_size, 2, op))
    return nonnegative_int(out_numel, "out_numel", op) * math.prod(positive_int(k, "kernel_size", op) for k in ks)


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
        n, m = positive_int(n, "input size", op), positive_int(m, "output size", op)
        total *= sum(-(-(o + 1) * n // m) - o * n // m for o in range(m))
    return total


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to the nearest multiple of ``divisor``, never more than 10% below ``value``.

    The width rule of MobileNet/ShuffleNet-style width multipliers (hardware
    prefers channel counts divisible by 8): ``max(min_value, floor(value/d + 1/2)*d)``,
    plus ``d`` if that lost more than 10%. ``min_value`` defaults to ``divisor``.

    >>> make_divisible(32 * 0.75), make_divisible(16 * 0.5), make_divisible(1280 * 1.4)
    (24, 8, 1792)
    """
    op = "make_divisible"
    d = positive_int(divisor, "divisor", op)
    if not value > 0:
        raise ValueError(f"{op}: value must be > 0, got {value!r}")
    floor_to = d if min_value is None else positive_int(min_value, "min_value", op)
    rounded = max(floor_to, int(value + d / 2) // d * d)
    return rounded + d if rounded < 0.9 * value else rounded
