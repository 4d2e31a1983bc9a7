"""``nn.Module`` wrappers, thin over :mod:`convolab.functional`."""

from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .fuse import fuse, fuse_conv_bn
from .shuffle import ChannelShuffle

__all__ = [
    "ChannelShuffle",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "fuse",
    "fuse_conv_bn",
]
