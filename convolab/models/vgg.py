"""VGG (Simonyan & Zisserman 2015): configurations A, B, D, E (VGG-11/13/16/19), with or without BN.

Stacks of 3×3 convs (padding 1) separated by 2×2 max-pools, a 7×7 adaptive
average pool and a flatten + FC 4096-4096 head. Parameter counts and
state_dict keys equal the model zoo's (e.g. VGG-16 138,357,544).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

from torch import Tensor, nn

from .._args import check_choice
from ..nn import Conv2d
from ._registry import register_model
from .blocks import AdaptiveAvgPool2d, FlattenLinear, MaxPool2d, init_kaiming_

__all__ = ["CONFIGS", "VGG", "make_layers"]

# conv widths per configuration of the paper's Table 1; "M" is a 2×2 max-pool
CONFIGS: dict[str, list[Union[int, str]]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ],
}


def make_layers(
    config: Sequence[Union[int, str]], in_channels: int = 3, batch_norm: bool = False
) -> nn.Sequential:
    """The ``features`` Sequential of a VGG configuration: 3×3 conv [+ BN] + ReLU per width, max-pool per "M".

    Example:
        >>> len(make_layers(CONFIGS["A"])), len(make_layers(CONFIGS["A"], batch_norm=True))
        (21, 29)
    """
    layers: list[nn.Module] = []
    width = in_channels
    for v in config:
        if v == "M":
            layers.append(MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(Conv2d(width, v, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        width = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """VGG: ``features`` (3×3 convs + max-pools), ``avgpool`` (to 7×7), ``classifier`` (flatten + FC).

    Args:
        config (str): "A" (VGG-11), "B" (13), "D" (16) or "E" (19).
        batch_norm (bool): BN after every conv (the conv keeps its bias, as in the zoo).
        num_classes (int): outputs (default 1000).
        in_channels (int): image channels (default 3).
        dropout (float): dropout of the classifier (default 0.5).

    Shape:
        ``[N, in_channels, H, W] -> [N, num_classes]``; 224×224 canonical, at
        least 32×32 (five 2×2 pools).

    Raises:
        ValueError: unknown ``config``.
    """

    default_input_size = (224, 224)
    min_input_size = (32, 32)
    head_names: tuple[str, ...] = ("classifier",)

    def __init__(
        self,
        config: str = "D",
        batch_norm: bool = False,
        num_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        check_choice(config, CONFIGS, "config", "VGG")
        self.features = make_layers(CONFIGS[config], in_channels, batch_norm)
        self.avgpool = AdaptiveAvgPool2d((7, 7))
        self.classifier = FlattenLinear(512 * 7 * 7, num_classes, (4096, 4096), dropout)
        self.num_features = 512
        init_kaiming_(self, linear_std=0.01)

    def forward_features(self, x: Tensor) -> Tensor:
        """The last conv feature map ``[N, 512, H/32, W/32]``."""
        return self.features(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(self.features(x)))


@register_model
def vgg11(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-11 (configuration A), "Very Deep Convolutional Networks ..." (Simonyan & Zisserman, ICLR 2015)."""
    return VGG("A", False, num_classes, in_channels, **kwargs)


@register_model
def vgg11_bn(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-11 with BN, "Very Deep Convolutional Networks ..." (Simonyan & Zisserman, ICLR 2015)."""
    return VGG("A", True, num_classes, in_channels, **kwargs)


@register_model
def vgg13(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-13 (configuration B), "Very Deep Convolutional Networks ..." (Simonyan & Zisserman, ICLR 2015)."""
    return VGG("B", False, num_classes, in_channels, **kwargs)


@register_model
def vgg13_bn(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-13 with BN, "Very Deep Convolutional Networks ..." (Simonyan & Zisserman, ICLR 2015)."""
    return VGG("B", True, num_classes, in_channels, **kwargs)


@register_model
def vgg16(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-16 (configuration D), "Very Deep Convolutional Networks ..." (Simonyan & Zisserman, ICLR 2015)."""
    return VGG("D", False, num_classes, in_channels, **kwargs)


@register_model
def vgg16_bn(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-16 with BN, "Very Deep Convolutional Networks ..." (Simonyan & Zisserman, ICLR 2015)."""
    return VGG("D", True, num_classes, in_channels, **kwargs)


@register_model
def vgg19(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-19 (configuration E), "Very Deep Convolutional Networks ..." (Simonyan & Zisserman, ICLR 2015)."""
    return VGG("E", False, num_classes, in_channels, **kwargs)


@register_model
def vgg19_bn(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-19 with BN, "Very Deep Convolutional Networks ..." (Simonyan & Zisserman, ICLR 2015)."""
    return VGG("E", True, num_classes, in_channels, **kwargs)
