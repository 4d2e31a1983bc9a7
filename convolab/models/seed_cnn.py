"""The CNN of the seeds' PyTorch example (1x28x28 digits -> 10 classes)."""

from __future__ import annotations

from torch import Tensor, nn

from ..nn import Conv2d, MaxPool2d
from ._registry import register_model


class SeedCNN(nn.Module):
    """conv 25 3x3 + BN + ReLU, max-pool 2, conv 50 3x3 + BN + ReLU, max-pool 2, FC 1250-1024-128-10.

    Shape:
        input ``[N, in_channels, 28, 28]`` -> logits ``[N, num_classes]``.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.layer1 = nn.Sequential(Conv2d(in_channels, 25, kernel_size=3), nn.BatchNorm2d(25), nn.ReLU(inplace=True))
        self.layer2 = nn.Sequential(MaxPool2d(kernel_size=2, stride=2))
        self.layer3 = nn.Sequential(Conv2d(25, 50, kernel_size=3), nn.BatchNorm2d(50), nn.ReLU(inplace=True))
        self.layer4 = nn.Sequential(MaxPool2d(kernel_size=2, stride=2))
        self.fc = nn.Sequential(
            nn.Linear(50 * 5 * 5, 1024),
            nn.ReLU(inplace=True),
            nn.Linear(1024, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, num_classes),
        )

    def features(self, x: Tensor) -> Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).flatten(1))


@register_model
def seed_cnn(num_classes: int = 10, in_channels: int = 1) -> SeedCNN:
    """The seeds' example network (seed 003)."""
    return SeedCNN(num_classes, in_channels)
