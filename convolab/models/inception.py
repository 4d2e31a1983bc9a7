"""Inception blocks v1/v2/v3 and Inception v3 (Szegedy et al. 2015, 2016).

Blocks, in the order of the papers:

- :class:`InceptionNaive`: parallel 1×1, 3×3, 5×5 convs and a 3×3 max-pool, concatenated;
- :class:`InceptionV1`: the same with 1×1 reductions before the 3×3 and 5×5 and
  after the pool (GoogLeNet's inception (3a): 387,072 → 157,184 weights);
- :class:`InceptionV2`: the 5×5 factorised into two 3×3 (Figure 5 of Szegedy et al. 2016);
- :class:`InceptionC` (alias :data:`InceptionV3`): n×n factorised into 1×n then n×1 (Figure 6);
- :class:`InceptionB`, :class:`InceptionD`: grid reductions (Figure 10: stride-2
  convs in parallel with a stride-2 pool, concatenated);
- :class:`InceptionA`, :class:`InceptionE`: the 35×35 and 8×8 blocks of Inception v3.

:class:`Inception3` and the A-E blocks follow the model zoo's layout, so its
weights load unchanged (27,161,264 parameters with the auxiliary head).
"""

from __future__ import annotations

from collections import namedtuple
from functools import partial
from typing import Optional, Union

import torch
from torch import Tensor, nn

from ._registry import register_model
from .blocks import AdaptiveAvgPool2d, AvgPool2d, ConvNormAct, MaxPool2d, init_trunc_normal_

__all__ = [
    "BasicConv2d",
    "transform_input",
    "Inception3",
    "InceptionA",
    "InceptionAux",
    "InceptionB",
    "InceptionC",
    "InceptionD",
    "InceptionE",
    "InceptionNaive",
    "InceptionOutputs",
    "InceptionV1",
    "InceptionV2",
    "InceptionV3",
]

Size = Union[int, tuple[int, int]]


def BasicConv2d(
    in_channels: int, out_channels: int, kernel_size: Size, stride: Size = 1, padding: Size = 0
) -> ConvNormAct:
    """Conv (no bias) + BN (eps 0.001) + ReLU with children ``conv``, ``bn``, ``relu``: the zoo's Inception unit.

    Unlike :class:`ConvNormAct`, padding defaults to 0, as in the papers' tables.

    Example:
        >>> list(BasicConv2d(3, 8, 3).state_dict())[:3]
        ['conv.weight', 'bn.weight', 'bn.bias']
    """
    return ConvNormAct(
        in_channels, out_channels, kernel_size, stride, padding,
        norm_layer=partial(nn.BatchNorm2d, eps=0.001), names=("conv", "bn", "relu"),
    )  # fmt: skip


def transform_input(x: Tensor) -> Tensor:
    """Map ImageNet mean/std-normalised RGB to ``(rgb - 0.5) / 0.5``, the scaling of the original Inception weights.

    Example:
        >>> rgb = torch.rand(1, 3, 2, 2)
        >>> mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        >>> std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        >>> torch.allclose(transform_input((rgb - mean) / std), (rgb - 0.5) / 0.5, atol=1e-6)
        True
    """
    if not torch.jit.is_scripting() and isinstance(x, Tensor) and (x.dim() != 4 or x.shape[1] != 3):
        raise ValueError(f"transform_input: expected RGB input [N, 3, H, W], got shape {list(x.shape)}")
    # the constants spelled out: TorchScript cannot read module-level tuples
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return x * (std / 0.5) + (mean - 0.5) / 0.5


class _Branches(nn.Module):
    """Runs the child branches on the same input and concatenates along channels (subclasses add children)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([branch(x) for branch in self.children()], dim=1)


def _reduced_branches(
    block: nn.Module,
    in_channels: int,
    ch1x1: int,
    ch3x3red: int,
    ch3x3: int,
    pool_proj: int,
    branch3: nn.Module,
) -> None:
    """Give an Inception module its four branches in concatenation order: 1×1 | 1×1→3×3 | branch3 | pool→1×1."""
    block.branch1 = BasicConv2d(in_channels, ch1x1, 1)
    block.branch2 = nn.Sequential(
        BasicConv2d(in_channels, ch3x3red, 1), BasicConv2d(ch3x3red, ch3x3, 3, padding=1)
    )
    block.branch3 = branch3
    block.branch4 = nn.Sequential(
        MaxPool2d(3, stride=1, padding=1, ceil_mode=True), BasicConv2d(in_channels, pool_proj, 1)
    )


class InceptionNaive(_Branches):
    """The naive Inception module: 1×1, 3×3 and 5×5 convs and a 3×3 max-pool side by side, concatenated.

    Paddings 0, 1, 2 (and 1 on the pool) keep every branch at the input size,
    so they concatenate; the pool passes its ``in_channels`` through.

    Args:
        in_channels (int): input channels.
        ch1x1, ch3x3, ch5x5 (int): output channels of each conv branch.

    Shape:
        ``[N, in_channels, H, W] -> [N, ch1x1 + ch3x3 + ch5x5 + in_channels, H, W]``.

    Example:
        >>> m = InceptionNaive(192, 64, 128, 32)   # GoogLeNet's inception (3a) without reductions
        >>> m(torch.randn(1, 192, 4, 4)).shape
        torch.Size([1, 416, 4, 4])
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3: int, ch5x5: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, 1)
        self.branch2 = BasicConv2d(in_channels, ch3x3, 3, padding=1)
        self.branch3 = BasicConv2d(in_channels, ch5x5, 5, padding=2)
        self.branch4 = MaxPool2d(3, stride=1, padding=1)


class InceptionV1(_Branches):
    """GoogLeNet's Inception module: 1×1 reductions before the 3×3 and 5×5 convs and after the max-pool.

    Args:
        in_channels (int): input channels.
        ch1x1 (int): the 1×1 branch.
        ch3x3red, ch3x3 (int): reduction and output of the 3×3 branch.
        ch5x5red, ch5x5 (int): reduction and output of the 5×5 branch.
        pool_proj (int): 1×1 projection after the 3×3 max-pool.
        branch3_kernel (int): kernel of the "5×5" branch: 5 as in the paper; the
            model zoo's GoogLeNet (and its weight files) uses 3.

    Shape:
        ``[N, in_channels, H, W] -> [N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W]``.

    Example:
        >>> m = InceptionV1(192, 64, 96, 128, 16, 32, 32)   # GoogLeNet 3a
        >>> m(torch.randn(1, 192, 4, 4)).shape
        torch.Size([1, 256, 4, 4])
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        branch3_kernel: int = 5,
    ) -> None:
        if branch3_kernel not in (3, 5):
            raise ValueError(f"InceptionV1: branch3_kernel must be 3 or 5, got {branch3_kernel!r}")
        super().__init__()
        _reduced_branches(
            self,
            in_channels,
            ch1x1,
            ch3x3red,
            ch3x3,
            pool_proj,
            branch3=nn.Sequential(
                BasicConv2d(in_channels, ch5x5red, 1),
                BasicConv2d(ch5x5red, ch5x5, branch3_kernel, padding=branch3_kernel // 2),
            ),
        )


class InceptionV2(_Branches):
    """Inception v2 module: the v1 module with its 5×5 conv factorised into two 3×3 (same receptive field).

    Two stacked 3×3 convs see 5×5 with ``2 * 9 / 25 = 72%`` of the weights when they keep the
    width (C -> C -> C; Szegedy et al. 2016, Figure 5). Here the branch is ch5x5red -> ch5x5 ->
    ch5x5, so with a narrow reduction (GoogLeNet 3a's 16 -> 32) it has *more* weights than the
    5×5 it replaces: 16*32*9 + 32*32*9 = 13,824 against 16*32*25 = 12,800.

    Args:
        in_channels, ch1x1, ch3x3red, ch3x3, pool_proj: as :class:`InceptionV1`.
        ch5x5red, ch5x5 (int): reduction and output of the double-3×3 branch.

    Shape:
        ``[N, in_channels, H, W] -> [N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W]``.

    Example:
        >>> InceptionV2(192, 64, 96, 128, 16, 32, 32)(torch.randn(1, 192, 4, 4)).shape
        torch.Size([1, 256, 4, 4])
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
    ) -> None:
        super().__init__()
        _reduced_branches(
            self,
            in_channels,
            ch1x1,
            ch3x3red,
            ch3x3,
            pool_proj,
            branch3=nn.Sequential(
                BasicConv2d(in_channels, ch5x5red, 1),
                BasicConv2d(ch5x5red, ch5x5, 3, padding=1),
                BasicConv2d(ch5x5, ch5x5, 3, padding=1),
            ),
        )


# The Inception v3 blocks keep the zoo's flat attribute names (branch5x5_1, ...) so
# its weights load; forward wires them as the paper's figures do.


class InceptionA(nn.Module):
    """Inception v3's 35×35 block: 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avg-pool→1×1.

    Shape:
        ``[N, in_channels, H, W] -> [N, 224 + pool_features, H, W]``.

    Example:
        >>> InceptionA(192, pool_features=32)(torch.randn(1, 192, 5, 5)).shape
        torch.Size([1, 256, 5, 5])
    """

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.avg_pool = AvgPool2d(3, stride=1, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(self.avg_pool(x)),
            ],
            dim=1,
        )


class InceptionB(nn.Module):
    """Grid reduction 35×35 → 17×17: 3×3/2 | 1×1→3×3→3×3/2 | 3×3/2 max-pool, concatenated.

    Reducing with parallel stride-2 branches avoids both the representational
    bottleneck of pooling first and the cost of expanding first (Figure 10).

    Shape:
        ``[N, in_channels, H, W] -> [N, 480 + in_channels, (H - 3) // 2 + 1, (W - 3) // 2 + 1]``.

    Example:
        >>> InceptionB(288)(torch.randn(1, 288, 35, 35)).shape
        torch.Size([1, 768, 17, 17])
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)
        self.max_pool = MaxPool2d(3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.max_pool(x),
            ],
            dim=1,
        )


class InceptionC(nn.Module):
    """Inception v3's factorised 17×17 block: every 7×7 becomes 1×7 then 7×1 (Figure 6).

    1×7 + 7×1 see 7×7 with ``14 / 49 ≈ 29%`` of the weights; branches
    1×1 | 1×1→1×7→7×1 | 1×1→7×1→1×7→7×1→1×7 | avg-pool→1×1, each 192 wide.

    Args:
        in_channels (int): input channels.
        channels_7x7 (int): width inside the factorised branches.

    Shape:
        ``[N, in_channels, H, W] -> [N, 768, H, W]``.

    Example:
        >>> InceptionC(768, channels_7x7=128)(torch.randn(1, 768, 5, 5)).shape
        torch.Size([1, 768, 5, 5])
    """

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.avg_pool = AvgPool2d(3, stride=1, padding=1)
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_2(self.branch7x7dbl_1(x))
        d = self.branch7x7dbl_5(self.branch7x7dbl_4(self.branch7x7dbl_3(d)))
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(self.avg_pool(x))], dim=1)


InceptionV3 = InceptionC
"""The Inception v3 factorisation block (n×n → 1×n then n×1) is :class:`InceptionC`."""


class InceptionD(nn.Module):
    """Grid reduction 17×17 → 8×8: 1×1→3×3/2 | 1×1→1×7→7×1→3×3/2 | 3×3/2 max-pool.

    Shape:
        ``[N, in_channels, H, W] -> [N, 512 + in_channels, (H - 3) // 2 + 1, (W - 3) // 2 + 1]``.

    Example:
        >>> InceptionD(768)(torch.randn(1, 768, 17, 17)).shape
        torch.Size([1, 1280, 8, 8])
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)
        self.max_pool = MaxPool2d(3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, self.max_pool(x)], dim=1)


class InceptionE(nn.Module):
    """Inception v3's 8×8 block with expanded filter banks: 3×3 split into parallel 1×3 and 3×1 (Figure 7).

    Shape:
        ``[N, in_channels, H, W] -> [N, 2048, H, W]``.

    Example:
        >>> InceptionE(1280)(torch.randn(1, 1280, 3, 3)).shape
        torch.Size([1, 2048, 3, 3])
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.avg_pool = AvgPool2d(3, stride=1, padding=1)
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(b3),
                self.branch3x3_2b(b3),
                self.branch3x3dbl_3a(d),
                self.branch3x3dbl_3b(d),
                self.branch_pool(self.avg_pool(x)),
            ],
            dim=1,
        )


class InceptionAux(nn.Module):
    """Inception v3's auxiliary classifier on the 17×17 map: 5×5/3 avg-pool, 1×1 conv, 5×5 conv, GAP, linear.

    Shape:
        ``[N, in_channels, H, W] -> [N, num_classes]``; needs ``H, W >= 5``.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.avg_pool = AvgPool2d(5, stride=3)
        self.conv0 = BasicConv2d(in_channels, 128, 1)
        self.conv1 = BasicConv2d(128, 768, 5)
        self.conv1.conv.stddev = 0.01  # the zoo's init reads these
        self.gap = AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(768, num_classes)
        self.fc.stddev = 0.001

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.gap(self.conv1(self.conv0(self.avg_pool(x)))).flatten(1))


InceptionOutputs = namedtuple("InceptionOutputs", ["logits", "aux_logits"])
InceptionOutputs.__doc__ = "Inception v3's training-mode output: main logits and the auxiliary head's."


class Inception3(nn.Module):
    """Inception v3: factorised stem, 3× InceptionA, reduction B, 4× InceptionC, reduction D, 2× InceptionE.

    Attribute names follow the model zoo (``Conv2d_1a_3x3`` … ``Mixed_7c``,
    ``AuxLogits``, ``fc``). In training mode with ``aux_logits`` the forward
    returns :data:`InceptionOutputs` ``(logits, aux_logits)``, else the logits.

    Args:
        num_classes (int): outputs (default 1000).
        in_channels (int): image channels (default 3).
        aux_logits (bool): build the auxiliary head (default True).
        transform_input (bool): map inputs normalised with ImageNet mean/std to
            the [-1, 1] scaling the original weights expect (RGB only).
        dropout (float): dropout before ``fc`` (default 0.5).

    Shape:
        ``[N, in_channels, H, W] -> [N, num_classes]``; 299×299 canonical; at
        least 75×75, or 299×299 in training mode with the auxiliary head (its 5×5/3 pool and 5×5 conv need the 17×17 map).
    """

    default_input_size = (299, 299)
    head_names: tuple[str, ...] = ("fc",)

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = True,
        transform_input: bool = False,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if transform_input and in_channels != 3:
            raise ValueError(f"Inception3: transform_input needs in_channels=3 (RGB), got {in_channels}")
        self.transform_input = transform_input
        self.aux_logits = aux_logits
        self.min_input_size = (299, 299) if aux_logits else (75, 75)
        self.Conv2d_1a_3x3 = BasicConv2d(in_channels, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool1 = MaxPool2d(3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.maxpool2 = MaxPool2d(3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.AuxLogits: Optional[InceptionAux] = InceptionAux(768, num_classes) if aux_logits else None
        if aux_logits:
            self.head_names = ("fc", "AuxLogits.fc")
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048)
        self.avgpool = AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(2048, num_classes)
        self.num_features = 2048
        init_trunc_normal_(self, std=0.1)

    def _stem(self, x: Tensor) -> Tensor:
        if self.transform_input:
            x = transform_input(x)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(self.maxpool1(x)))
        x = self.maxpool2(x)
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))
        return self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(self.Mixed_6a(x)))))

    def forward_features(self, x: Tensor) -> Tensor:
        """The last feature map ``[N, 2048, h, w]`` (8×8 at 299×299)."""
        return self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(self._stem(x))))

    def forward(self, x: Tensor) -> Union[Tensor, InceptionOutputs]:
        x = self._stem(x)
        aux = self.AuxLogits(x) if (self.AuxLogits is not None and self.training) else None
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        logits = self.fc(self.dropout(self.avgpool(x).flatten(1)))
        return InceptionOutputs(logits, aux) if aux is not None else logits


@register_model
def inception_v3(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> Inception3:
    """Inception v3, "Rethinking the Inception Architecture for Computer Vision" (Szegedy et al., CVPR 2016)."""
    return Inception3(num_classes, in_channels, **kwargs)
