"""Stacked Hourglass networks for human pose estimation (Newell, Yang & Deng, ECCV 2016).

Layout (the authors' Torch code, ``nModules = 1``, 256 features, depth 4):

- :class:`Residual`: pre-activation bottleneck BN-ReLU-1×1(C/2), BN-ReLU-3×3(C/2),
  BN-ReLU-1×1(C), plus the input (through a 1×1 conv when widths differ);
- :class:`Hourglass`: recursive encoder-decoder. At each of ``depth`` levels a
  skip branch (one Residual at the current resolution) and a low branch
  (2×2 max-pool, Residual, the next level — or a Residual at the bottom —,
  Residual, upsample ×2) are added. Upsampling is nearest-neighbour
  interpolation (the paper) or a learnt 2×2 stride-2 transposed conv;
- :class:`StackedHourglass`: stem 7×7/2 conv + BN + ReLU, Residual 64→128,
  2×2 max-pool, Residual 128→128, Residual 128→256 (input/4 resolution); then per
  stack an Hourglass, a Residual, a 1×1 conv + BN + ReLU, and a 1×1 "score" conv to
  the heatmaps. Between stacks the features and the heatmaps, each mapped back
  by a 1×1 conv, are added to the stack's input (intermediate supervision: every
  stack's heatmaps are returned and each gets a loss).

Not in the common model zoo. Parameters at 16 joints: 2 stacks 6,570,400;
8 stacks 25,434,112 (all convs with bias, as in the Torch original).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .._args import check_choice, positive_int
from ..nn import Conv2d, ConvTranspose2d
from ._registry import register_model
from .blocks import ConvNormAct, MaxPool2d

__all__ = ["UPSAMPLING", "Hourglass", "Residual", "StackedHourglass"]

UPSAMPLING = ("nearest", "transposed")


class Residual(nn.Module):
    """Pre-activation bottleneck residual module of the hourglass (BN-ReLU-conv ×3 + skip).

    Args:
        in_channels, out_channels (int): channels (``out_channels`` even).

    Shape:
        ``[N, in_channels, H, W] -> [N, out_channels, H, W]``.

    Example:
        >>> import torch
        >>> Residual(64, 128)(torch.randn(1, 64, 8, 8)).shape
        torch.Size([1, 128, 8, 8])
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if out_channels % 2:
            raise ValueError(f"Residual: out_channels must be even (bottleneck = half), got {out_channels}")
        mid = out_channels // 2
        self.bn1, self.conv1 = nn.BatchNorm2d(in_channels), Conv2d(in_channels, mid, 1)
        self.bn2, self.conv2 = nn.BatchNorm2d(mid), Conv2d(mid, mid, 3, padding=1)
        self.bn3, self.conv3 = nn.BatchNorm2d(mid), Conv2d(mid, out_channels, 1)
        self.relu = nn.ReLU(inplace=True)
        self.skip = Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return out + self.skip(x)


class Hourglass(nn.Module):
    """One hourglass: ``depth`` levels of pool-down / upsample-up with a skip branch at every resolution.

    Definition (recursive): ``H_d(x) = R(x) + up(R(H_{d-1}(R(pool(x)))))`` with
    ``H_0 = R`` (one :class:`Residual`), ``pool`` a 2×2 max-pool and ``up`` ×2
    upsampling back to the skip branch's size (so odd sizes work too).

    Args:
        depth (int): number of downsamplings (4 in the paper: 64×64 → 4×4).
        channels (int): width everywhere.
        upsample (str): "nearest" (the paper) or "transposed" (learnt 2×2 stride-2 transposed conv).

    Shape:
        ``[N, channels, H, W] -> [N, channels, H, W]``; needs ``H, W >= 2**depth``.

    Raises:
        ValueError: ``depth < 1``, unknown ``upsample``.

    Example:
        >>> import torch
        >>> Hourglass(2, 16, upsample="transposed")(torch.randn(1, 16, 9, 8)).shape
        torch.Size([1, 16, 9, 8])
    """

    def __init__(self, depth: int, channels: int, upsample: str = "nearest") -> None:
        super().__init__()
        depth = positive_int(depth, "depth", "Hourglass")
        check_choice(upsample, UPSAMPLING, "upsample", "Hourglass")
        self.depth, self.upsample = depth, upsample
        self.up1 = Residual(channels, channels)
        self.pool = MaxPool2d(2, stride=2)
        self.low1 = Residual(channels, channels)
        self.low2 = Hourglass(depth - 1, channels, upsample) if depth > 1 else Residual(channels, channels)
        self.low3 = Residual(channels, channels)
        if upsample == "transposed":
            self.up2 = ConvTranspose2d(channels, channels, 2, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        skip = self.up1(x)
        low = self.low3(self.low2(self.low1(self.pool(x))))
        size = [skip.shape[-2], skip.shape[-1]]  # odd sizes: pooling floored, so grow back to the skip's size
        if hasattr(self, "up2"):  # upsample == "transposed", spelled so TorchScript resolves it statically
            return skip + self.up2(low, output_size=size)
        return skip + F.interpolate(low, size=size, mode="nearest")

    def extra_repr(self) -> str:
        return f"depth={self.depth}, upsample={self.upsample!r}"


class StackedHourglass(nn.Module):
    """Stacked hourglasses with intermediate supervision: returns one heatmap tensor per stack.

    Args:
        num_stacks (int): hourglasses in sequence (2 and 8 in the paper).
        num_classes (int): heatmaps (joints; 16 on MPII).
        in_channels (int): image channels (default 3).
        channels (int): feature width (default 256).
        depth (int): downsamplings per hourglass (default 4).
        upsample (str): "nearest" (default) or "transposed".

    Returns:
        a list of ``num_stacks`` tensors ``[N, num_classes, H/4, W/4]``; the last is the prediction.

    Shape:
        ``[N, in_channels, H, W] -> num_stacks × [N, num_classes, ceil(H/4), ceil(W/4)]``;
        256×256 canonical (64×64 heatmaps); needs ``H, W >= 4 * 2**depth - 1`` (63 at depth 4).
    """

    default_input_size = (256, 256)
    head_names: tuple[str, ...] = ("score", "merge_scores")

    def __init__(
        self,
        num_stacks: int = 8,
        num_classes: int = 16,
        in_channels: int = 3,
        channels: int = 256,
        depth: int = 4,
        upsample: str = "nearest",
    ) -> None:
        super().__init__()
        num_stacks = positive_int(num_stacks, "num_stacks", "StackedHourglass")
        self.num_stacks = num_stacks
        # the stem (7x7/2 conv, 2x2 pool) must leave at least 2**depth pixels
        self.min_input_size = (4 * 2**depth - 1,) * 2
        self.stem = nn.Sequential(
            ConvNormAct(in_channels, 64, 7, stride=2, bias=True),
            Residual(64, 128),
            MaxPool2d(2, stride=2),
            Residual(128, 128),
            Residual(128, channels),
        )
        self.hourglass = nn.ModuleList(Hourglass(depth, channels, upsample) for _ in range(num_stacks))
        self.res = nn.ModuleList(Residual(channels, channels) for _ in range(num_stacks))
        self.lin = nn.ModuleList(ConvNormAct(channels, channels, 1, bias=True) for _ in range(num_stacks))
        self.score = nn.ModuleList(Conv2d(channels, num_classes, 1) for _ in range(num_stacks))
        self.merge_features = nn.ModuleList(Conv2d(channels, channels, 1) for _ in range(num_stacks - 1))
        self.merge_scores = nn.ModuleList(Conv2d(num_classes, channels, 1) for _ in range(num_stacks - 1))
        self.num_features = channels

    def _run(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        x = self.stem(x)
        scores: list[Tensor] = []
        y = x
        # zip and enumerate, not [i]: TorchScript indexes a ModuleList only with literals
        for i, (hourglass, res, lin, score) in enumerate(zip(self.hourglass, self.res, self.lin, self.score)):
            y = lin(res(hourglass(x)))
            scores.append(score(y))
            for j, (features, back) in enumerate(zip(self.merge_features, self.merge_scores)):
                if j == i:  # every stack but the last feeds the next
                    x = x + features(y) + back(scores[-1])
        return scores, y

    def forward_features(self, x: Tensor) -> Tensor:
        """The last stack's features ``[N, channels, H/4, W/4]`` (before its score conv)."""
        return self._run(x)[1]

    def forward(self, x: Tensor) -> list[Tensor]:
        return self._run(x)[0]


@register_model
def hourglass2(num_classes: int = 16, in_channels: int = 3, **kwargs) -> StackedHourglass:
    """2-stack Hourglass, "Stacked Hourglass Networks for Human Pose Estimation" (Newell et al., ECCV 2016)."""
    return StackedHourglass(2, num_classes, in_channels, **kwargs)


@register_model
def hourglass8(num_classes: int = 16, in_channels: int = 3, **kwargs) -> StackedHourglass:
    """8-stack Hourglass, "Stacked Hourglass Networks for Human Pose Estimation" (Newell et al., ECCV 2016)."""
    return StackedHourglass(8, num_classes, in_channels, **kwargs)
