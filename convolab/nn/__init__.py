"""``nn.Module`` wrappers, thin over :mod:`convolab.functional`."""

from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .pool import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveAvgPool3d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    AdaptiveMaxPool3d,
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    GlobalAvgPool,
    GlobalMaxPool,
    LPPool1d,
    LPPool2d,
    LPPool3d,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
    Pool,
    SpatialPyramidPool,
)
from .separable import (
    DepthwiseSeparableConv1d,
    DepthwiseSeparableConv2d,
    DepthwiseSeparableConv3d,
    FlattenedConv1d,
    FlattenedConv2d,
    FlattenedConv3d,
    PointwiseConv1d,
    PointwiseConv2d,
    PointwiseConv3d,
    SpatiallySeparableConv2d,
    SpatiallySeparableConv3d,
)
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
from .roi import RoIAlign, RoIPool, RoISpatialPyramidPool
from .fuse import fuse, fuse_conv_bn
from .convert import to_torch, torch_equivalents
from .shuffle import ChannelShuffle
from .local import LocallyConnected1d, LocallyConnected2d, LocallyConnected3d
from .local import __all__ as _LOCAL_ALL
from .conv import __all__ as _CONV_ALL
from .convert import __all__ as _CONVERT_ALL
from .deform import __all__ as _DEFORM_ALL
from .fuse import __all__ as _FUSE_ALL
from .pool import __all__ as _POOL_ALL
from .roi import __all__ as _ROI_ALL
from .separable import __all__ as _SEPARABLE_ALL
from .shuffle import __all__ as _SHUFFLE_ALL

# one list per module: each submodule's __all__ says what it exports
__all__ = [*_CONV_ALL, *_POOL_ALL, *_SEPARABLE_ALL, *_DEFORM_ALL, *_ROI_ALL, *_FUSE_ALL, *_SHUFFLE_ALL,
           *_LOCAL_ALL, *_CONVERT_ALL]
