"""AlexNet (Krizhevsky et al. 2012), in the single-tower form of the model zoo ("one weird trick", 2014).

Five convs (11×11/4, 5×5, 3×3 ×3) with three 3×3/2 max-pools, a 6×6 adaptive
average pool, and a flatten + FC 4096-4096 head with dropout before each hidden
layer. Parameter count (61,100,840) and state_dict keys equal the zoo's.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..nn import Conv2d
from ._registry import register_model
from .blocks import AdaptiveAvgPool2d, FlattenLinear, MaxPool2d

__all__ = ["AlexNet"]


class AlexNet(nn.Module):
    """AlexNet: ``features`` (convs + pools), ``avgpool`` (to 6×6), ``classifier`` (flatten + FC).

    Args:
        num_classes (int): outputs (default 1000).
        in_channels (int): image channels (default 3).
        dropout (float): dropout of the classifier (default 0.5).

    Shape:
        ``[N, in_channels, H, W] -> [N, num_classes]``; 224×224 canonical, at
        least 63×63 (the last max-pool needs a 3×3 map).
    """

    default_input_size = (224, 224)
    min_input_size = (63, 63)
    head_names: tuple[str, ...] = ("classifier",)

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        self.features = nn.Sequential(
            Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2), relu(),
            MaxPool2d(kernel_size=3, stride=2),
            Conv2d(64, 192, kernel_size=5, padding=2), relu(),
            MaxPool2d(kernel_size=3, stride=2),
            Conv2d(192, 384, kernel_size=3, padding=1), relu(),
            Conv2d(384, 256, kernel_size=3, padding=1), relu(),
            Conv2d(256, 256, kernel_size=3, padding=1), relu(),
            MaxPool2d(kernel_size=3, stride=2),
        )  # fmt: skip
        self.avgpool = AdaptiveAvgPool2d((6, 6))
        self.classifier = FlattenLinear(256 * 6 * 6, num_classes, (4096, 4096), dropout, dropout_first=True)
        self.num_features = 256

    def forward_features(self, x: Tensor) -> Tensor:
        """The last conv feature map ``[N, 256, h, w]``."""
        return self.features(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(self.features(x)))


@register_model
def alexnet(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> AlexNet:
    """AlexNet, "ImageNet Classification with Deep Convolutional Neural Networks" (Krizhevsky et al., NeurIPS 2012)."""
    return AlexNet(num_classes, in_channels, **kwargs)
