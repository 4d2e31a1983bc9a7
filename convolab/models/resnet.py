"""ResNet (He et al. 2016): BasicBlock, Bottleneck, ResNet-18/34/50/101/152.

Layout, parameter counts and state_dict keys equal the common model zoo's
(torchvision's "v1.5": the stride of a downsampling Bottleneck sits on its 3×3
conv), so its weight files load with ``create_model("resnet50", weights=path)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

from torch import Tensor, nn

from ..nn import Conv2d
from ._registry import register_model
from .blocks import AdaptiveAvgPool2d, MaxPool2d, init_kaiming_

__all__ = ["BasicBlock", "Bottleneck", "ResNet"]


def _projection(in_channels: int, out_channels: int, stride: int) -> Optional[nn.Sequential]:
    """The projection shortcut (1×1 conv + BN) when the residual's shape changes, else None (identity)."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(
        Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
    )


class BasicBlock(nn.Module):
    """Two 3×3 convs with a shortcut: ``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``.

    The shortcut is the identity, or a 1×1 conv + BN projection when the
    stride or the channel count changes.

    Args:
        in_channels (int): input channels.
        channels (int): output channels (``expansion = 1``).
        stride (int): stride of the first conv (and of the projection).

    Shape:
        ``[N, in_channels, H, W] -> [N, channels, ceil(H / stride), ceil(W / stride)]``.

    Example:
        >>> import torch
        >>> BasicBlock(64, 128, stride=2)(torch.randn(1, 64, 8, 8)).shape
        torch.Size([1, 128, 4, 4])
    """

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = _projection(in_channels, channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3, 1×1 expand (×4), with a shortcut: ResNet-50 and deeper.

    He et al.'s example (2016, Figure 5): on a 256-channel map, 1×1 256→64, 3×3 64→64, 1×1 64→256
    has 69,632 weights per position against 589,824 for one 3×3 256→256.

    Args:
        in_channels (int): input channels.
        channels (int): bottleneck width; the block outputs ``4 * channels``.
        stride (int): stride of the 3×3 conv (and of the projection).

    Shape:
        ``[N, in_channels, H, W] -> [N, 4 * channels, ceil(H / stride), ceil(W / stride)]``.

    Example:
        >>> import torch
        >>> Bottleneck(256, 64)(torch.randn(1, 256, 5, 5)).shape
        torch.Size([1, 256, 5, 5])
    """

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = Conv2d(channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _projection(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """Stem (7×7/2 conv, BN, ReLU, 3×3/2 max-pool), four stages of residual blocks, GAP + linear.

    Stages have widths 64, 128, 256, 512 (times the block's expansion); stages
    2-4 halve the resolution in their first block. Named stages ``layer1`` …
    ``layer4`` are the usual backbone outputs (strides 4, 8, 16, 32).

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers (4 ints): blocks per stage.
        num_classes (int): outputs of ``fc`` (default 1000).
        in_channels (int): image channels (default 3).
        zero_init_residual (bool): zero the last BN of each block (starts as identity).

    Shape:
        ``[N, in_channels, H, W] -> [N, num_classes]`` for any ``H, W >= 1``
        (224×224 canonical; the last map is ``ceil(H / 32)``).
    """

    default_input_size = (224, 224)
    min_input_size = (1, 1)
    head_names: tuple[str, ...] = ("fc",)

    def __init__(
        self,
        block: type[Union[BasicBlock, Bottleneck]],
        layers: Sequence[int],
        num_classes: int = 1000,
        in_channels: int = 3,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if len(layers) != 4 or any(not isinstance(n, int) or n < 1 for n in layers):
            raise ValueError(f"ResNet: layers must be 4 ints >= 1 (blocks per stage), got {layers!r}")
        self.conv1 = Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = MaxPool2d(kernel_size=3, stride=2, padding=1)
        width = 64
        for i, (channels, n) in enumerate(zip((64, 128, 256, 512), layers), start=1):
            blocks = []
            for j in range(n):
                blocks.append(block(width, channels, stride=2 if (j == 0 and i > 1) else 1))
                width = channels * block.expansion
            self.add_module(f"layer{i}", nn.Sequential(*blocks))
        self.avgpool = AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width, num_classes)
        self.num_features = width
        init_kaiming_(self, linear_std=None)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward_features(self, x: Tensor) -> Tensor:
        """The last feature map ``[N, num_features, H/32, W/32]`` (the backbone output)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.avgpool(self.forward_features(x)).flatten(1))


@register_model
def resnet18(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-18, "Deep Residual Learning for Image Recognition" (He et al., CVPR 2016)."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, in_channels, **kwargs)


@register_model
def resnet34(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-34, "Deep Residual Learning for Image Recognition" (He et al., CVPR 2016)."""
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes, in_channels, **kwargs)


@register_model
def resnet50(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-50, "Deep Residual Learning for Image Recognition" (He et al., CVPR 2016)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, in_channels, **kwargs)


@register_model
def resnet101(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-101, "Deep Residual Learning for Image Recognition" (He et al., CVPR 2016)."""
    return ResNet(Bottleneck, (3, 4, 23, 3), num_classes, in_channels, **kwargs)


@register_model
def resnet152(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-152, "Deep Residual Learning for Image Recognition" (He et al., CVPR 2016)."""
    return ResNet(Bottleneck, (3, 8, 36, 3), num_classes, in_channels, **kwargs)
