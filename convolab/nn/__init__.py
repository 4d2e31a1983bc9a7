"""``nn.Module`` wrappers, thin over :mod:`convolab.functional`."""

from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .deform import (
    DeformConv1d,
    DeformConv2d,
    DeformConv3d,
    ModulatedDeformConv1d,
    ModulatedDeformConv2d,
    ModulatedDeformConv3d,
    PlainDeformConv1d,
    PlainDeformConv2d,
    PlainDeformConv3d,
)
from .roi import RoIAlign, RoIPool
from .shuffle import ChannelShuffle

__all__ = [
    "ChannelShuffle",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "DeformConv1d",
    "DeformConv2d",
    "DeformConv3d",
    "ModulatedDeformConv1d",
    "ModulatedDeformConv2d",
    "ModulatedDeformConv3d",
    "PlainDeformConv1d",
    "PlainDeformConv2d",
    "PlainDeformConv3d",
    "RoIAlign",
    "RoIPool",
]
