"""AlexNet (Krizhevsky et al. 2012): the model zoo's single tower, and the published two-tower network.

- :class:`AlexNet` (``alexnet``): the single-tower form of the model zoo
  ("one weird trick", 2014). Five convs (11×11/4, 5×5, 3×3 ×3) of widths
  64/192/384/256/256 with three 3×3/2 max-pools, a 6×6 adaptive average pool,
  and a flatten + FC 4096-4096 head with dropout before each hidden layer.
  Parameter count (61,100,840) and state_dict keys equal the zoo's.
- :class:`AlexNetGrouped` (``alexnet_grouped``): the network of the paper's
  Figure 2, trained on two GPUs. Each GPU held half of every layer's kernels,
  and conv2, conv4 and conv5 saw only the maps of their own GPU — which is a
  grouped convolution with ``groups=2``, the origin of grouped convolution.
  Widths 96/256/384/384/256, local response normalisation after conv1 and
  conv2, overlapping 3×3/2 max-pools; 60,965,224 parameters (see the class).
"""

from __future__ import annotations

from torch import Tensor, nn

from ..nn import Conv2d
from ._registry import register_model
from .blocks import AdaptiveAvgPool2d, FlattenLinear, MaxPool2d

__all__ = ["AlexNet", "AlexNetGrouped"]


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


class AlexNetGrouped(nn.Module):
    """AlexNet as published: two towers as ``groups=2`` in conv2, conv4 and conv5; LRN; 227×227 input.

    ``features`` (indices fixed whether LRN is on or off):

    ====  =====================================  ===============  ==============
    idx   layer                                  weight           output (227²)
    ====  =====================================  ===============  ==============
    0-2   conv1 11×11/4, 96; ReLU; LRN           [96, 3, 11, 11]  96×55×55
    3     max-pool 3×3/2                                          96×27×27
    4-6   conv2 5×5 pad 2, 256, groups 2; ReLU;  [256, 48, 5, 5]  256×27×27
          LRN
    7     max-pool 3×3/2                                          256×13×13
    8-9   conv3 3×3 pad 1, 384 (both towers)     [384, 256, 3, 3] 384×13×13
    10-11 conv4 3×3 pad 1, 384, groups 2         [384, 192, 3, 3] 384×13×13
    12-13 conv5 3×3 pad 1, 256, groups 2         [256, 192, 3, 3] 256×13×13
    14    max-pool 3×3/2                                          256×6×6
    ====  =====================================  ===============  ==============

    then ``avgpool`` (adaptive to 6×6: the identity at 227², there so other sizes
    work) and ``classifier``: dropout, FC 9216→4096, ReLU, dropout, FC 4096→4096,
    ReLU, FC 4096→``num_classes`` (children numbered as :class:`AlexNet`'s).

    Input 227×227, not the paper's "224×224": an 11×11 kernel at stride 4
    gives the paper's 55×55 map only from 227 pixels, ``(227 - 11)/4 + 1 = 55``,
    with no padding (224 would need 3 pixels of padding, which the paper does
    not mention); 227 is what the reference re-implementations use.

    Local response normalisation (the paper's section 3.3, after the ReLU of
    conv1 and conv2): ``b = a / (k + α·Σ a²)^β`` over ``n = 5`` adjacent
    channels, ``k = 2``, ``α = 1e-4``, ``β = 0.75``. torch's
    ``nn.LocalResponseNorm`` divides its ``alpha`` by ``n``, so it gets ``α·n``.

    Parameters at 1000 classes: convs 2,334,080 (34,944 + 307,456 + 885,120 +
    663,936 + 442,624) and FCs 58,631,144 (37,752,832 + 16,781,312 + 4,097,000),
    60,965,224 in all — the paper's "60 million". Without the towers
    (``groups=1`` everywhere) it would be 62,378,344; the zoo's single tower
    (narrower convs) has 61,100,840.

    Args:
        num_classes (int): outputs (default 1000).
        in_channels (int): image channels (default 3).
        dropout (float): dropout of the classifier (default 0.5, the paper's).
        lrn (bool): local response normalisation after conv1 and conv2 (default True);
            off, an ``nn.Identity`` keeps the indices.
        paper_init (bool): the paper's initialisation (weights ``N(0, 0.01²)``; biases
            1 in conv2, conv4, conv5 and the hidden FCs, 0 elsewhere) instead of
            torch's default (default False: the paper's needs its long schedule).

    Shape:
        ``[N, in_channels, H, W] -> [N, num_classes]``; 227×227 canonical, at least
        67×67 (the last max-pool needs a 3×3 map).
    """

    default_input_size = (227, 227)
    min_input_size = (67, 67)
    head_names: tuple[str, ...] = ("classifier",)

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.5,
        lrn: bool = True,
        paper_init: bool = False,
    ) -> None:
        super().__init__()
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        # torch's LRN divides alpha by size: alpha = 1e-4 * 5 gives the paper's k + 1e-4 * sum(a^2)
        norm = lambda: (  # noqa: E731
            nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0) if lrn else nn.Identity()
        )
        self.features = nn.Sequential(
            Conv2d(in_channels, 96, kernel_size=11, stride=4), relu(), norm(),
            MaxPool2d(kernel_size=3, stride=2),
            Conv2d(96, 256, kernel_size=5, padding=2, groups=2), relu(), norm(),
            MaxPool2d(kernel_size=3, stride=2),
            Conv2d(256, 384, kernel_size=3, padding=1), relu(),
            Conv2d(384, 384, kernel_size=3, padding=1, groups=2), relu(),
            Conv2d(384, 256, kernel_size=3, padding=1, groups=2), relu(),
            MaxPool2d(kernel_size=3, stride=2),
        )  # fmt: skip
        self.avgpool = AdaptiveAvgPool2d((6, 6))
        self.classifier = FlattenLinear(256 * 6 * 6, num_classes, (4096, 4096), dropout, dropout_first=True)
        self.num_features = 256
        if paper_init:
            self._paper_init()

    def _paper_init(self) -> None:
        ones = {self.features[4], self.features[10], self.features[12]}
        linears = [m for m in self.classifier if isinstance(m, nn.Linear)]
        ones.update(linears[:-1])  # the hidden FCs
        for m in self.modules():
            if isinstance(m, (Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.constant_(m.bias, 1.0 if m in ones else 0.0)

    def forward_features(self, x: Tensor) -> Tensor:
        """The last conv feature map ``[N, 256, h, w]`` (6×6 at 227²)."""
        return self.features(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(self.features(x)))


@register_model
def alexnet_grouped(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> AlexNetGrouped:
    """AlexNet with its two towers as groups=2, "ImageNet Classification with Deep Convolutional Neural Networks" (Krizhevsky et al., NeurIPS 2012)."""
    return AlexNetGrouped(num_classes, in_channels, **kwargs)
