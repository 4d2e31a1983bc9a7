"""ShuffleNet v1 (Zhang et al. 2018) and v2 (Ma et al. 2018).

- :class:`ShuffleUnitV1`: 1×1 group conv + BN + ReLU, channel shuffle, 3×3
  depthwise + BN, 1×1 group conv + BN; added to the input (stride 1) or
  concatenated with a 3×3/2 average pool of it (stride 2); then ReLU.
- :class:`ShuffleUnitV2`: channel split: half the channels pass untouched, the
  other half go through 1×1, 3×3 depthwise, 1×1 (all the same width, no group
  conv); concatenate, then channel shuffle with 2 groups. At stride 2 both
  halves see the whole input and the width doubles.

ShuffleNet v2 follows the model zoo's layout (×1.0: 2,278,604 parameters, same
state_dict keys). ShuffleNet v1 is not in that zoo; its layout follows the
paper's Table 1: 3×3/2 conv 24, 3×3/2 max-pool, stages of 4, 8, 4 units
(the first of each at stride 2; bottleneck = 1/4 of the stage width; the very
first 1×1 conv is not grouped, as the input has only 24 channels), global
average pool + linear (``classifier``). At g = 3, ×1.0 it has 1,865,728 parameters
(the paper's reference implementation reports 1.9M).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..nn import ChannelShuffle, Conv2d
from ._registry import register_model
from .blocks import AvgPool2d, ConvNormAct, GlobalPoolLinear, MaxPool2d, init_kaiming_

__all__ = ["ShuffleNetV1", "ShuffleNetV2", "ShuffleUnitV1", "ShuffleUnitV2"]


class ShuffleUnitV1(nn.Module):
    """ShuffleNet v1 unit (Figure 2 b/c): GConv 1×1, shuffle, DWConv 3×3, GConv 1×1, add or concat, ReLU.

    Args:
        in_channels, out_channels (int): channels; at stride 2 the conv branch
            makes ``out_channels - in_channels`` and the pooled input fills the rest.
        groups (int): groups of the 1×1 convs (and of the shuffle).
        stride (int): 1 (identity shortcut, ``in == out``) or 2 (avg-pool shortcut).
        group_first (bool): group the first 1×1 conv (False for the network's very first unit).

    Shape:
        ``[N, in_channels, H, W] -> [N, out_channels, ceil(H / stride), ceil(W / stride)]``.

    Raises:
        ValueError: bad stride, ``in != out`` at stride 1, ``out <= in`` at stride 2,
            or groups not dividing the widths (from the convs).

    Example:
        >>> ShuffleUnitV1(240, 480, groups=3, stride=2)(torch.randn(1, 240, 8, 8)).shape
        torch.Size([1, 480, 4, 4])
    """

    def __init__(
        self, in_channels: int, out_channels: int, groups: int, stride: int = 1, group_first: bool = True
    ) -> None:
        super().__init__()
        op = "ShuffleUnitV1"
        if stride not in (1, 2):
            raise ValueError(f"{op}: stride must be 1 or 2, got {stride!r}")
        if stride == 1 and in_channels != out_channels:
            raise ValueError(
                f"{op}: at stride 1 in_channels ({in_channels}) must equal out_channels ({out_channels})"
            )
        if stride == 2 and out_channels <= in_channels:
            raise ValueError(
                f"{op}: at stride 2 out_channels ({out_channels}) must exceed in_channels ({in_channels})"
            )
        mid = out_channels // 4
        branch_out = out_channels - in_channels if stride == 2 else out_channels
        first_groups = groups if group_first else 1
        self.stride = stride
        self.gconv1 = ConvNormAct(in_channels, mid, 1, groups=first_groups)
        self.shuffle = ChannelShuffle(groups) if first_groups > 1 else nn.Identity()
        self.dwconv = ConvNormAct(mid, mid, 3, stride, groups=mid, act_layer=None)
        self.gconv2 = ConvNormAct(mid, branch_out, 1, groups=groups, act_layer=None)
        self.shortcut = AvgPool2d(3, stride=2, padding=1) if stride == 2 else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.gconv2(self.dwconv(self.shuffle(self.gconv1(x))))
        out = torch.cat([self.shortcut(x), out], dim=1) if self.stride == 2 else out + x
        return self.relu(out)


class ShuffleNetV1(nn.Module):
    """ShuffleNet v1: 3×3/2 conv 24, max-pool, three stages of shuffle units, GAP + linear.

    Args:
        num_classes (int): outputs (default 1000).
        in_channels (int): image channels (default 3).
        groups (int): 1, 2, 3, 4 or 8 (stage widths of the paper's Table 1).
        width_mult (float): scale of the stage widths (the paper's "s×"); 24 stays.

    Shape:
        ``[N, in_channels, H, W] -> [N, num_classes]`` for any ``H, W >= 1`` (224×224 canonical).
    """

    WIDTHS = {
        1: (144, 288, 576),
        2: (200, 400, 800),
        3: (240, 480, 960),
        4: (272, 544, 1088),
        8: (384, 768, 1536),
    }
    default_input_size = (224, 224)
    min_input_size = (1, 1)
    head_names: tuple[str, ...] = ("classifier",)

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        groups: int = 3,
        width_mult: float = 1.0,
        repeats: Sequence[int] = (4, 8, 4),
    ) -> None:
        super().__init__()
        if groups not in self.WIDTHS:
            raise ValueError(f"ShuffleNetV1: groups must be one of {sorted(self.WIDTHS)}, got {groups!r}")
        if not isinstance(width_mult, (int, float)) or not width_mult > 0:
            raise ValueError(f"ShuffleNetV1: width_mult must be a number > 0, got {width_mult!r}")
        # keep every width a multiple of 4 * groups (bottleneck = width / 4, grouped)
        widths = [int(round(w * width_mult / (4 * groups))) * 4 * groups for w in self.WIDTHS[groups]]
        self.conv1 = ConvNormAct(in_channels, 24, 3, stride=2)
        self.maxpool = MaxPool2d(3, stride=2, padding=1)
        width = 24
        for i, (w, n) in enumerate(zip(widths, repeats), start=2):
            units = [ShuffleUnitV1(width, w, groups, stride=2, group_first=i > 2)]
            units += [ShuffleUnitV1(w, w, groups) for _ in range(n - 1)]
            self.add_module(f"stage{i}", nn.Sequential(*units))
            width = w
        self.classifier = GlobalPoolLinear(width, num_classes)
        self.num_features = width
        init_kaiming_(self, linear_std=None)

    def forward_features(self, x: Tensor) -> Tensor:
        """The last feature map ``[N, stage-4 width, H/32, W/32]``."""
        return self.stage4(self.stage3(self.stage2(self.maxpool(self.conv1(x)))))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.forward_features(x))


def _dw_bn(channels: int, stride: int) -> list[nn.Module]:
    return [Conv2d(channels, channels, 3, stride, 1, groups=channels, bias=False), nn.BatchNorm2d(channels)]


def _pw_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class ShuffleUnitV2(nn.Module):
    """ShuffleNet v2 unit (Figure 3 c/d): channel split, 1×1 / 3×3 DW / 1×1 branch, concat, shuffle.

    The branches are flat Sequentials (``branch1``, ``branch2``) as in the
    model zoo, so its weights load unchanged.

    Args:
        in_channels, out_channels (int): channels (``out_channels`` even).
        stride (int): 1 (split: half identity, half conv; ``in == out``) or 2
            (both halves convolve the whole input at stride 2).

    Shape:
        ``[N, in_channels, H, W] -> [N, out_channels, ceil(H / stride), ceil(W / stride)]``.

    Example:
        >>> ShuffleUnitV2(24, 116, stride=2)(torch.randn(1, 24, 8, 8)).shape
        torch.Size([1, 116, 4, 4])
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        op = "ShuffleUnitV2"
        if stride not in (1, 2):
            raise ValueError(f"{op}: stride must be 1 or 2, got {stride!r}")
        if out_channels % 2:
            raise ValueError(f"{op}: out_channels must be even (two halves), got {out_channels}")
        if stride == 1 and in_channels != out_channels:
            raise ValueError(
                f"{op}: at stride 1 in_channels ({in_channels}) must equal out_channels ({out_channels})"
            )
        half = out_channels // 2
        self.stride = stride
        if stride > 1:
            self.branch1 = nn.Sequential(*_dw_bn(in_channels, stride), *_pw_bn_relu(in_channels, half))
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            *_pw_bn_relu(in_channels if stride > 1 else half, half),
            *_dw_bn(half, stride),
            *_pw_bn_relu(half, half),
        )
        self.shuffle = ChannelShuffle(2)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat([x1, self.branch2(x2)], dim=1)
        else:
            out = torch.cat([self.branch1(x), self.branch2(x)], dim=1)
        return self.shuffle(out)


class ShuffleNetV2(nn.Module):
    """ShuffleNet v2 in the zoo's layout: ``conv1``, ``maxpool``, ``stage2-4``, ``conv5`` (1×1), GAP, ``fc``.

    Args:
        stage_channels (5 ints): widths of conv1, stages 2-4 and conv5
            (×0.5: 24, 48, 96, 192, 1024; ×1.0: 24, 116, 232, 464, 1024).
        num_classes (int): outputs (default 1000).
        in_channels (int): image channels (default 3).
        repeats (3 ints): units per stage (default 4, 8, 4).

    Shape:
        ``[N, in_channels, H, W] -> [N, num_classes]`` for any ``H, W >= 1`` (224×224 canonical).
    """

    default_input_size = (224, 224)
    min_input_size = (1, 1)
    head_names: tuple[str, ...] = ("fc",)

    def __init__(
        self,
        stage_channels: Sequence[int],
        num_classes: int = 1000,
        in_channels: int = 3,
        repeats: Sequence[int] = (4, 8, 4),
    ) -> None:
        super().__init__()
        if len(stage_channels) != 5:
            raise ValueError(f"ShuffleNetV2: stage_channels must be 5 widths, got {stage_channels!r}")
        if len(repeats) != 3:
            raise ValueError(f"ShuffleNetV2: repeats must be 3 counts, got {repeats!r}")
        self.conv1 = ConvNormAct(in_channels, stage_channels[0], 3, stride=2)
        self.maxpool = MaxPool2d(3, stride=2, padding=1)
        width = stage_channels[0]
        for i, (w, n) in enumerate(zip(stage_channels[1:4], repeats), start=2):
            units = [ShuffleUnitV2(width, w, 2)] + [ShuffleUnitV2(w, w, 1) for _ in range(n - 1)]
            self.add_module(f"stage{i}", nn.Sequential(*units))
            width = w
        self.conv5 = ConvNormAct(width, stage_channels[4], 1)
        self.fc = nn.Linear(stage_channels[4], num_classes)
        self.num_features = stage_channels[4]

    def forward_features(self, x: Tensor) -> Tensor:
        """The last feature map ``[N, conv5 width, H/32, W/32]``."""
        x = self.stage4(self.stage3(self.stage2(self.maxpool(self.conv1(x)))))
        return self.conv5(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.forward_features(x).mean(dim=(2, 3)))


@register_model
def shufflenet_v1_g3(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ShuffleNetV1:
    """ShuffleNet v1 (g=3, ×1.0), "ShuffleNet: An Extremely Efficient CNN for Mobile Devices" (Zhang et al., CVPR 2018)."""
    return ShuffleNetV1(num_classes, in_channels, groups=3, **kwargs)


@register_model
def shufflenet_v2_x0_5(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ShuffleNetV2:
    """ShuffleNet v2 ×0.5, "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design" (Ma et al., ECCV 2018)."""
    return ShuffleNetV2((24, 48, 96, 192, 1024), num_classes, in_channels, **kwargs)


@register_model
def shufflenet_v2_x1_0(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ShuffleNetV2:
    """ShuffleNet v2 ×1.0, "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design" (Ma et al., ECCV 2018)."""
    return ShuffleNetV2((24, 116, 232, 464, 1024), num_classes, in_channels, **kwargs)
