"""MobileNet v1 (Howard et al. 2017) and v2 (Sandler et al. 2018).

- :class:`DepthwiseSeparable`: a 3×3 depthwise conv (one filter per channel)
  then a 1×1 pointwise conv, each with BN + ReLU: ``9·C + C·C'`` weights
  instead of ``9·C·C'``.
- :class:`InvertedResidual`: 1×1 expand (×t) + ReLU6, 3×3 depthwise + ReLU6,
  1×1 linear projection (no activation), identity shortcut when the shape is kept.

MobileNet v2 follows the model zoo's layout (3,504,872 parameters, same
state_dict keys). MobileNet v1 is not in that zoo; its layout is the paper's
Table 1 (with the last depthwise conv at stride 1, which gives the table's
7×7 output): stem ``ConvNormAct`` + 13 ``DepthwiseSeparable`` blocks in
``features``, then ``classifier`` = global average pool + linear;
4,231,976 parameters at width 1.0 (BN affine parameters included).
"""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn

from ..arithmetic import make_divisible
from ..nn import Conv2d
from ._registry import register_model
from .blocks import ConvNormAct, GlobalPoolLinear, init_kaiming_

__all__ = ["DepthwiseSeparable", "InvertedResidual", "MobileNetV1", "MobileNetV2"]

_ReLU6 = partial(nn.ReLU6, inplace=True)


class DepthwiseSeparable(nn.Sequential):
    """Depthwise 3×3 conv + BN + ReLU, then pointwise 1×1 conv + BN + ReLU (children ``dw``, ``pw``).

    Args:
        in_channels, out_channels (int): channels.
        stride (int): stride of the depthwise conv.

    Shape:
        ``[N, in_channels, H, W] -> [N, out_channels, ceil(H / stride), ceil(W / stride)]``.

    Example:
        >>> import torch
        >>> m = DepthwiseSeparable(32, 64, stride=2)
        >>> m(torch.randn(1, 32, 9, 9)).shape, m.dw[0].weight.shape
        (torch.Size([1, 64, 5, 5]), torch.Size([32, 1, 3, 3]))
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.dw = ConvNormAct(in_channels, in_channels, 3, stride, groups=in_channels)
        self.pw = ConvNormAct(in_channels, out_channels, 1)


class InvertedResidual(nn.Module):
    """MobileNet v2 block: 1×1 expand + ReLU6, 3×3 depthwise + ReLU6, 1×1 linear projection (+ identity).

    Narrow → wide → narrow, the inverse of a bottleneck; the projection has no
    activation (ReLU on a low-dimensional manifold destroys information). The
    shortcut is used when ``stride == 1`` and ``in_channels == out_channels``.

    Args:
        in_channels, out_channels (int): channels.
        stride (int): 1 or 2, on the depthwise conv.
        expand_ratio (int): expansion ``t`` (no expansion conv when 1).

    Shape:
        ``[N, in_channels, H, W] -> [N, out_channels, ceil(H / stride), ceil(W / stride)]``.

    Example:
        >>> import torch
        >>> InvertedResidual(24, 24, 1, expand_ratio=6)(torch.randn(1, 24, 8, 8)).shape
        torch.Size([1, 24, 8, 8])
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: float) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride must be 1 or 2, got {stride!r}")
        hidden = int(round(in_channels * expand_ratio))
        self.stride = stride
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvNormAct(in_channels, hidden, 1, act_layer=_ReLU6))
        layers += [
            ConvNormAct(hidden, hidden, 3, stride, groups=hidden, act_layer=_ReLU6),
            Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


# (stride, out_channels) of the 13 depthwise-separable layers of MobileNet v1, Table 1
_V1_LAYERS = (
    [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512)] + [(1, 512)] * 5 + [(2, 1024), (1, 1024)]
)

# (expansion t, channels c, repeats n, first stride s) of MobileNet v2, Table 2
_V2_SETTING = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def _check_width(width_mult: float, op: str) -> float:
    if not isinstance(width_mult, (int, float)) or not width_mult > 0:
        raise ValueError(f"{op}: width_mult must be a number > 0, got {width_mult!r}")
    return float(width_mult)


class MobileNetV1(nn.Module):
    """MobileNet v1: 3×3/2 conv, 13 depthwise-separable layers, global average pool, linear.

    Args:
        num_classes (int): outputs (default 1000).
        in_channels (int): image channels (default 3).
        width_mult (float): the width multiplier α (channels ``make_divisible(c * α)``).
        dropout (float): dropout before the classifier (default 0, as the paper).

    Shape:
        ``[N, in_channels, H, W] -> [N, num_classes]`` for any ``H, W >= 1`` (224×224 canonical).
    """

    default_input_size = (224, 224)
    min_input_size = (1, 1)
    head_names: tuple[str, ...] = ("classifier",)

    def __init__(
        self, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0, dropout: float = 0.0
    ) -> None:
        super().__init__()
        a = _check_width(width_mult, "MobileNetV1")
        width = make_divisible(32 * a)
        layers: list[nn.Module] = [ConvNormAct(in_channels, width, 3, stride=2)]
        for stride, c in _V1_LAYERS:
            layers.append(DepthwiseSeparable(width, make_divisible(c * a), stride))
            width = make_divisible(c * a)
        self.features = nn.Sequential(*layers)
        self.classifier = GlobalPoolLinear(width, num_classes, dropout)
        self.num_features = width
        init_kaiming_(self, linear_std=0.01)

    def forward_features(self, x: Tensor) -> Tensor:
        """The last feature map ``[N, 1024·α, H/32, W/32]``."""
        return self.features(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class MobileNetV2(nn.Module):
    """MobileNet v2 in the zoo's layout: ``features`` (stem, 17 inverted residuals, 1×1 conv 1280), ``classifier``.

    Args:
        num_classes (int): outputs (default 1000).
        in_channels (int): image channels (default 3).
        width_mult (float): width multiplier (the last conv keeps at least 1280).
        dropout (float): dropout before the linear layer (default 0.2).

    Shape:
        ``[N, in_channels, H, W] -> [N, num_classes]`` for any ``H, W >= 1`` (224×224 canonical).
    """

    default_input_size = (224, 224)
    min_input_size = (1, 1)
    head_names: tuple[str, ...] = ("classifier",)

    def __init__(
        self, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0, dropout: float = 0.2
    ) -> None:
        super().__init__()
        a = _check_width(width_mult, "MobileNetV2")
        width = make_divisible(32 * a)
        last = make_divisible(1280 * max(1.0, a))
        layers: list[nn.Module] = [ConvNormAct(in_channels, width, 3, stride=2, act_layer=_ReLU6)]
        for t, c, n, s in _V2_SETTING:
            out = make_divisible(c * a)
            for i in range(n):
                layers.append(InvertedResidual(width, out, s if i == 0 else 1, expand_ratio=t))
                width = out
        layers.append(ConvNormAct(width, last, 1, act_layer=_ReLU6))
        self.features = nn.Sequential(*layers)
        self.classifier = GlobalPoolLinear(last, num_classes, dropout)
        self.num_features = last
        init_kaiming_(self, linear_std=0.01)

    def forward_features(self, x: Tensor) -> Tensor:
        """The last feature map ``[N, 1280, H/32, W/32]``."""
        return self.features(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


@register_model
def mobilenet_v1(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> MobileNetV1:
    """MobileNet v1, "MobileNets: Efficient CNNs for Mobile Vision Applications" (Howard et al., 2017)."""
    return MobileNetV1(num_classes, in_channels, **kwargs)


@register_model
def mobilenet_v2(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> MobileNetV2:
    """MobileNet v2, "MobileNetV2: Inverted Residuals and Linear Bottlenecks" (Sandler et al., CVPR 2018)."""
    return MobileNetV2(num_classes, in_channels, **kwargs)
