"""GoogLeNet (Inception v1, Szegedy et al. 2015) in the model zoo's layout.

Stem (7×7/2, max-pool, 1×1, 3×3, max-pool), nine :class:`~convolab.models.inception.InceptionV1`
modules (3a-b, 4a-e, 5a-b) with max-pools between the groups, global average
pool, dropout 0.2 and a linear classifier; two optional auxiliary heads on 4a
and 4d. Differences from the paper that the zoo (and its weight files) keep:
BN after every conv, and a 3×3 conv in the "5×5" branch. Without the
auxiliary heads the parameter count is the zoo's 6,624,904 (13,004,888 with
them). The zoo's published file carries the auxiliary heads: load it with
``create_model("googlenet", aux_logits=True, weights=path)``.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Optional, Union

import torch
from torch import Tensor, nn

from ._registry import register_model
from .blocks import AdaptiveAvgPool2d, MaxPool2d, init_trunc_normal_
from .inception import BasicConv2d, InceptionV1, transform_input

__all__ = ["GoogLeNet", "GoogLeNetAux", "GoogLeNetOutputs"]

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])
GoogLeNetOutputs.__doc__ = "GoogLeNet's training-mode output with auxiliary heads (the zoo's field order)."

# (in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) of the paper's Table 1
_TABLE1 = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}


class GoogLeNetAux(nn.Module):
    """Auxiliary classifier: 4×4 adaptive avg-pool, 1×1 conv 128, FC 1024 + ReLU, dropout 0.7, FC.

    Shape:
        ``[N, in_channels, H, W] -> [N, num_classes]``.
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.pool = AdaptiveAvgPool2d((4, 4))
        self.conv = BasicConv2d(in_channels, 128, 1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(self.pool(x)).flatten(1)
        return self.fc2(self.dropout(torch.relu(self.fc1(x))))


class GoogLeNet(nn.Module):
    """GoogLeNet (Inception v1) with the zoo's attribute names (``conv1`` … ``inception5b``, ``fc``).

    In training mode with ``aux_logits`` the forward returns
    :data:`GoogLeNetOutputs` ``(logits, aux_logits2, aux_logits1)``, else the logits.

    Args:
        num_classes (int): outputs (default 1000).
        in_channels (int): image channels (default 3).
        aux_logits (bool): build the two auxiliary heads (default False).
        transform_input (bool): map ImageNet-normalised RGB to the [-1, 1]
            scaling the original weights expect.
        dropout (float): dropout before ``fc`` (default 0.2).
        dropout_aux (float): dropout inside the auxiliary heads (default 0.7).

    Shape:
        ``[N, in_channels, H, W] -> [N, num_classes]``; 224×224 canonical, at least 15×15.
    """

    default_input_size = (224, 224)
    min_input_size = (15, 15)
    head_names: tuple[str, ...] = ("fc",)

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = False,
        transform_input: bool = False,
        dropout: float = 0.2,
        dropout_aux: float = 0.7,
    ) -> None:
        super().__init__()
        if transform_input and in_channels != 3:
            raise ValueError(f"GoogLeNet: transform_input needs in_channels=3 (RGB), got {in_channels}")
        self.transform_input = transform_input
        self.conv1 = BasicConv2d(in_channels, 64, 7, stride=2, padding=3)
        self.maxpool1 = MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        self.maxpool2 = MaxPool2d(3, stride=2, ceil_mode=True)
        for name in ("inception3a", "inception3b"):
            self.add_module(name, InceptionV1(*_TABLE1[name], branch3_kernel=3))
        self.maxpool3 = MaxPool2d(3, stride=2, ceil_mode=True)
        for name in ("inception4a", "inception4b", "inception4c", "inception4d", "inception4e"):
            self.add_module(name, InceptionV1(*_TABLE1[name], branch3_kernel=3))
        self.maxpool4 = MaxPool2d(2, stride=2, ceil_mode=True)
        for name in ("inception5a", "inception5b"):
            self.add_module(name, InceptionV1(*_TABLE1[name], branch3_kernel=3))
        self.aux1: Optional[GoogLeNetAux] = (
            GoogLeNetAux(512, num_classes, dropout_aux) if aux_logits else None
        )
        self.aux2: Optional[GoogLeNetAux] = (
            GoogLeNetAux(528, num_classes, dropout_aux) if aux_logits else None
        )
        if aux_logits:
            self.head_names = ("fc", "aux1.fc2", "aux2.fc2")
        self.avgpool = AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)
        self.num_features = 1024
        init_trunc_normal_(self, std=0.01)

    def _run(self, x: Tensor, aux: bool) -> tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
        aux = aux and self.aux1 is not None and self.training
        if self.transform_input:
            x = transform_input(x)
        x = self.conv3(self.conv2(self.maxpool1(self.conv1(x))))
        x = self.maxpool3(self.inception3b(self.inception3a(self.maxpool2(x))))
        x = self.inception4a(x)
        # spelled so TorchScript skips the heads a model without them lacks
        aux1: Optional[Tensor] = None
        if self.aux1 is not None and aux:
            aux1 = self.aux1(x)
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2: Optional[Tensor] = None
        if self.aux2 is not None and aux:
            aux2 = self.aux2(x)
        x = self.maxpool4(self.inception4e(x))
        return self.inception5b(self.inception5a(x)), aux1, aux2

    def forward_features(self, x: Tensor) -> Tensor:
        """The last feature map ``[N, 1024, h, w]`` (7×7 at 224×224)."""
        return self._run(x, aux=False)[0]

    def forward(self, x: Tensor) -> Union[Tensor, GoogLeNetOutputs]:
        x, aux1, aux2 = self._run(x, aux=True)
        logits = self.fc(self.dropout(self.avgpool(x).flatten(1)))
        if aux1 is not None and aux2 is not None:
            return GoogLeNetOutputs(logits, aux2, aux1)
        return logits


@register_model
def googlenet(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> GoogLeNet:
    """GoogLeNet, "Going Deeper with Convolutions" (Szegedy et al., CVPR 2015)."""
    return GoogLeNet(num_classes, in_channels, **kwargs)
