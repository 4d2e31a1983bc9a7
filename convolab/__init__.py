"""convolab: every convolution and pooling concept of CNNs, on PyTorch.

>>> import torch, convolab
>>> convolab.conv2d(torch.randn(1, 3, 5, 5), torch.randn(2, 3, 3, 3), stride=2, padding=1).shape
torch.Size([1, 2, 3, 3])
"""

from . import analysis, arithmetic, functional, nn
from .functional.algorithms import autotune
from .functional import (
    conv,
    conv1d,
    conv2d,
    conv3d,
    conv_transpose,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
    deform_conv,
    deform_conv1d,
    deform_conv2d,
    deform_conv3d,
    locally_connected,
    roi_align,
    roi_pool,
    roi_spatial_pyramid_pool,
)
from .functional import (  # pooling and separable convolutions
    adaptive_avg_pool,
    adaptive_max_pool,
    avg_pool,
    depthwise_separable_conv,
    flattened_conv,
    global_avg_pool,
    global_max_pool,
    lp_pool,
    max_pool,
    pool,
    spatial_pyramid_pool,
    spatially_separable_conv,
    split_separable_kernel,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "analysis",
    "arithmetic",
    "autotune",
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
    "functional",
    "locally_connected",
    "nn",
    # pooling and separable convolutions
    "adaptive_avg_pool",
    "adaptive_max_pool",
    "avg_pool",
    "depthwise_separable_conv",
    "flattened_conv",
    "global_avg_pool",
    "global_max_pool",
    "lp_pool",
    "max_pool",
    "pool",
    "spatial_pyramid_pool",
    "spatially_separable_conv",
    "split_separable_kernel",
    "roi_align",
    "roi_pool",
    "roi_spatial_pyramid_pool",
]
