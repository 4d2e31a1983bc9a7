"""The arithmetic of convolution: every formula of convolab lives here, once.

Pure Python (no torch: the package imports only :mod:`convolab._args` and the standard
library), so it can be used to plan a network, to check a student's hand computation, and by
the ops, the analysis and the pictures alike. Every function validates its input and raises a
``ValueError`` that names the parameter, its value and the rule. Everything public is
importable from here (``from convolab.arithmetic import conv_output_size``); the files:

- ``sizes.py``: output sizes and padding of convolution, transposed convolution and pooling
  ('same', ``ceil_mode``, ``output_padding``, the passes of a spatially separable conv);
- ``receptive_field.py``: :class:`ReceptiveField` (size, jump, start) through every window,
  transposed conv, interpolation and adaptive pooling; the recursion over a chain of windows;
- ``costs.py``: parameters and MACs of every layer; :func:`make_divisible`, the channel widths
  of a width multiplier;
- ``pooling.py``: the divisor of each average-pooling window, adaptive bins, the spatial
  pyramid's windows and feature length.

Example:
    >>> conv_output_size(5, kernel_size=3, stride=2, padding=1)
    3
    >>> same_padding(10, kernel_size=3, stride=2)
    (0, 1)
    >>> [rf.size for rf in receptive_fields([(3, 1, 0)] * 3)]
    [3, 5, 7]
"""

from .costs import (
    adaptive_pool_macs,
    avg_pool_macs,
    conv_macs,
    conv_params,
    conv_transpose_macs,
    depthwise_separable_macs,
    depthwise_separable_params,
    flattened_conv_macs,
    flattened_conv_params,
    linear_macs,
    linear_params,
    locally_connected_macs,
    locally_connected_params,
    make_divisible,
    matmul_macs,
    norm_macs,
    pool_macs,
    spatially_separable_macs,
    spatially_separable_params,
)
from .pooling import (
    adaptive_pool_bins,
    pool_window_counts,
    spp_features,
    spp_window,
    spp_window_unchecked,
)
from .receptive_field import ReceptiveField, interpolation_rate, receptive_fields
from .sizes import (
    conv_output_shape,
    conv_output_size,
    conv_output_size_unchecked,
    conv_transpose_equivalent_padding,
    conv_transpose_output_shape,
    conv_transpose_output_size,
    effective_kernel_size,
    pool_output_shape,
    pool_output_size,
    resolve_padding,
    same_padding,
    same_padding_unchecked,
    separable_pass_sizes,
    static_padding,
    transpose_output_padding,
)

__all__ = [
    # sizes
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
    # receptive fields
    "ReceptiveField",
    "interpolation_rate",
    "receptive_fields",
    # costs
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
    # pooling
    "adaptive_pool_bins",
    "pool_window_counts",
    "spp_features",
    "spp_window",
    "spp_window_unchecked",
]
