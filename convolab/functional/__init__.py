"""Tensor operators: one general convolution at the centre, the variants as parameterisations."""

from .algorithms import ALGORITHMS, Problem, autotune, available_algorithms, register_algorithm
from .convolution import (
    conv,
    conv1d,
    conv2d,
    conv3d,
    conv_transpose,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
)
from .pooling import __all__ as _POOL_ALL
from .pooling import (
    adaptive_avg_pool,
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    adaptive_max_pool,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    adaptive_max_pool3d,
    avg_pool,
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    global_avg_pool,
    global_max_pool,
    lp_pool,
    lp_pool1d,
    lp_pool2d,
    lp_pool3d,
    max_pool,
    max_pool1d,
    max_pool2d,
    max_pool3d,
    pool,
    spatial_pyramid_pool,
)
from .separable import (
    depthwise_separable_conv,
    flattened_conv,
    spatially_separable_conv,
    split_separable_kernel,
)
from .deform import deform_conv, deform_conv1d, deform_conv2d, deform_conv3d
from .roi import roi_align, roi_pool, roi_spatial_pyramid_pool
from .shuffle import channel_shuffle
from .local import locally_connected, locally_connected1d, locally_connected2d, locally_connected3d

__all__ = [
    "ALGORITHMS",
    "Problem",
    "autotune",
    "available_algorithms",
    "channel_shuffle",
    "conv",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "deform_conv",
    "deform_conv1d",
    "deform_conv2d",
    "deform_conv3d",
    "locally_connected",
    "locally_connected1d",
    "locally_connected2d",
    "locally_connected3d",
    "register_algorithm",
    *_POOL_ALL,  # pooling: whatever convolab.functional.pooling exports
    # separable convolutions
    "depthwise_separable_conv",
    "flattened_conv",
    "spatially_separable_conv",
    "split_separable_kernel",
    "roi_align",
    "roi_pool",
    "roi_spatial_pyramid_pool",
]
