"""A small MNIST CNN: two 3x3 conv-BN-ReLU stages with 2x2 max-pooling, three fully connected layers.

The two-conv digit classifier of many PyTorch tutorials (25 and 50 filters, then
1250-1024-128-10), kept layer for layer so that every number the guide and the demo
compute about it can be checked by hand. Registered as ``mnist_cnn``; the name
``seed_cnn`` of earlier releases still works.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..nn import Conv2d, MaxPool2d, SpatialPyramidPool
from ._registry import register_alias, register_model


class MnistCNN(nn.Module):
    """conv 25 3x3 + BN + ReLU, max-pool 2, conv 50 3x3 + BN + ReLU, max-pool 2, FC 1250-1024-128-10.

    Shape:
        input ``[N, in_channels, 28, 28]`` -> logits ``[N, num_classes]``.
    """

    default_input_size = (28, 28)  # the only size: the first linear layer expects 50 x 5 x 5

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


SeedCNN = MnistCNN  # the class's name in earlier releases


class MnistSPP(MnistCNN):
    """:class:`MnistCNN` with a spatial pyramid pooling head (He et al., "Spatial Pyramid Pooling in
    Deep Convolutional Networks for Visual Recognition", ECCV 2014): the last feature map is
    max-pooled into 4x4, 2x2 and 1x1 bins (21 per channel, 1,050 numbers), so the classifier
    takes images of any size from 10x10 up, and the network can be trained at several sizes.

    Shape:
        input ``[N, in_channels, H, W]`` with ``H, W >= 10`` -> logits ``[N, num_classes]``.
    """

    default_input_size = (28, 28)

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__(num_classes, in_channels)
        self.spp = SpatialPyramidPool((4, 2, 1))
        self.fc[0] = nn.Linear(self.spp.output_features(50), 1024)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.spp(self.features(x)))


@register_model
def mnist_cnn(num_classes: int = 10, in_channels: int = 1) -> MnistCNN:
    """A small MNIST CNN: 2 conv-BN-ReLU + max-pool stages (25, 50 filters), 3 FC layers (1.4 M params)."""
    return MnistCNN(num_classes, in_channels)


@register_model
def mnist_spp(num_classes: int = 10, in_channels: int = 1) -> MnistSPP:
    """mnist_cnn with a spatial pyramid pooling head (4x4, 2x2, 1x1 bins; He et al., ECCV 2014): any input size."""
    return MnistSPP(num_classes, in_channels)


register_alias("seed_cnn", "mnist_cnn")
