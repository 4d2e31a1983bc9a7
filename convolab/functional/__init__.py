"""Tensor operators: one general convolution at the centre, the variants as parameterisations."""

from .algorithms import ALGORITHMS, Problem, autotune, available_algorithms, register_algorithm
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
from .shuffle import channel_shuffle

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
    "register_algorithm",
]
