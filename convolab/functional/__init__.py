"""Tensor operators: one general convolution at the centre, the variants as parameterisations."""

from .algorithms import ALGORITHMS, Problem, available_algorithms, register_algorithm
from .conv import (
    conv,
    conv1d,
    conv2d,
    conv3d,
    conv_transpose,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
)
from .deform import deform_conv, deform_conv1d, deform_conv2d, deform_conv3d
from .roi import roi_align, roi_pool
from .shuffle import channel_shuffle

__all__ = [
    "ALGORITHMS",
    "Problem",
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
    "register_algorithm",
    "roi_align",
    "roi_pool",
]
