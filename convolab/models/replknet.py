"""RepLKNet (Ding et al. 2022, "Scaling Up Your Kernels to 31x31: Revisiting Large Kernel Design in CNNs").

A few very large **depthwise** kernels (31×31, 29×29, 27×27, 13×13 per
stage) instead of stacks of 3×3 ones, made trainable by **structural
re-parameterisation**: during training each large depthwise conv has a
parallel small-kernel (5×5) depthwise conv, each branch with its own batch
norm, and the two outputs are added (:class:`ReparamLargeKernelConv`). At
inference both branches are linear, so they merge into ONE large depthwise
conv with a bias: fold each batch norm into its conv (``w·γ/σ``, ``β - μ·γ/σ``),
zero-pad the small kernel to the large size, centred, and add the kernels
and biases (:meth:`ReparamLargeKernelConv.fuse`, :meth:`RepLKNet.fuse`).

Network: a stem (3×3/2 conv, 3×3 depthwise, 1×1 conv, 3×3/2 depthwise; each
conv-BN-ReLU), then per stage ``layers[i]`` pairs of

- :class:`RepLKBlock`: ``x + drop_path(pw2(relu(lk(pw1(bn(x))))))`` — BN, 1×1
  conv-BN-ReLU, the large-kernel depthwise conv, ReLU, 1×1 conv-BN;
- :class:`ConvFFN`: ``x + drop_path(pw2(gelu(pw1(bn(x)))))`` — BN, 1×1 to
  ``ffn_ratio·C`` (conv-BN), GELU, 1×1 back (conv-BN);

with transitions (1×1 conv-BN-ReLU to the next width, 3×3/2 depthwise
conv-BN-ReLU) between stages, then BN, global average pooling and a linear head.

Layout and state_dict keys are the official PyTorch release's (``stem.*``,
``stages.i.blocks.j.*``, ``transitions.*``, ``norm``, ``head``; merged large
kernels as ``large_kernel.lkb_reparam``); RepLKNet-31B has 79,864,168
parameters at 1000 classes (published: 79M; 79.86M in the OpenMMLab table).
Every conv is convolab's :class:`~convolab.nn.Conv2d` with ``algorithm="auto"``:
large depthwise kernels are where torch's own kernels are slowest, and where
``auto`` trains about ten times faster.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._args import positive_int
from ..nn import Conv2d, fuse_conv_bn
from ._registry import register_model
from .blocks import AdaptiveAvgPool2d, ConvNormAct, StochasticDepth

__all__ = ["ConvFFN", "RepLKBlock", "RepLKNet", "RepLKNetStage", "ReparamLargeKernelConv"]

# (large kernel, blocks, channels) per stage and the small kernel, as the paper and its release give them
_CONFIGS = {
    "31b": ((31, 29, 27, 13), (2, 2, 18, 2), (128, 256, 512, 1024), 5),
    # the toy network: one stage of two 31x31 blocks at C=128 (on a 32x32 map at its 128x128 input)
    "tiny": ((31,), (2,), (128,), 5),
}
_NAMES = ("conv", "bn", "nonlinear")  # the release's child names of its conv_bn / conv_bn_relu


def _conv_bn(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1, relu: bool = False
) -> ConvNormAct:
    """conv (no bias) + BN [+ ReLU], children ``conv``, ``bn`` [, ``nonlinear``], padding ``k // 2``."""
    return ConvNormAct(
        in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, groups=groups, bias=False,
        act_layer=nn.ReLU if relu else None, names=_NAMES,
    )  # fmt: skip


def _check_odd(value: object, name: str, op: str) -> int:
    if positive_int(value, name, op) % 2 == 0:
        raise ValueError(f"{op}: {name} must be odd (centred kernels keep the size), got {value}")
    return value  # type: ignore[return-value]


def _folded(branch: nn.Sequential) -> Conv2d:
    """A new conv with bias equal to ``branch`` (conv, bn) in eval mode.

    The batch norm may already be folded (an ``nn.Identity`` left by
    :func:`convolab.nn.fuse`); then the conv alone is the branch.
    """
    if isinstance(branch.bn, nn.modules.batchnorm._BatchNorm):
        return fuse_conv_bn(branch.conv, branch.bn)
    conv = copy.deepcopy(branch.conv)
    if conv.bias is None:
        conv.bias = nn.Parameter(conv.weight.new_zeros(conv.out_channels))
    return conv


class ReparamLargeKernelConv(nn.Module):
    """A large depthwise conv + BN with a parallel small depthwise conv + BN, mergeable into one conv.

    Training form: ``bn_L(conv_L(x)) + bn_S(conv_S(x))`` with depthwise kernels
    ``k × k`` and ``s × s`` (``s <= k``, both odd, padding ``k//2`` and ``s//2``, so
    both keep the size and their windows share a centre). The small branch
    eases the optimisation of the large kernel (the paper's guideline 2).

    Inference form (after :meth:`fuse`): one depthwise ``k × k`` conv with a bias,
    ``lkb_reparam``, whose kernel is ``W_L·γ_L/σ_L + pad(W_S·γ_S/σ_S)`` (the small
    kernel zero-padded by ``(k - s)/2`` on each side) and bias
    ``β_L - μ_L·γ_L/σ_L + β_S - μ_S·γ_S/σ_S`` — equal to the training form in eval mode.

    Args:
        channels (int): ``C`` (depthwise: ``groups = C``).
        kernel_size (int): odd large kernel size ``k``.
        small_kernel (int or None): odd small kernel size ``s <= k``; None for no small branch.
        merged (bool): build the inference form directly (to load merged weights).

    Shape:
        ``[N, C, H, W] -> [N, C, H, W]``.

    Raises:
        ValueError: ``channels`` < 1; kernel sizes not odd ints >= 1; ``small_kernel > kernel_size``.

    Example:
        >>> import torch
        >>> m = ReparamLargeKernelConv(4, 31, 5).eval()
        >>> x = torch.randn(1, 4, 12, 12)
        >>> fused = m.fuse()
        >>> list(fused.state_dict()), bool(torch.allclose(fused(x), m(x), atol=1e-5))
        (['lkb_reparam.weight', 'lkb_reparam.bias'], True)
    """

    def __init__(
        self, channels: int, kernel_size: int, small_kernel: Optional[int] = 5, merged: bool = False
    ) -> None:
        super().__init__()
        op = "ReparamLargeKernelConv"
        positive_int(channels, "channels", op)
        _check_odd(kernel_size, "kernel_size", op)
        if small_kernel is not None:
            _check_odd(small_kernel, "small_kernel", op)
            if small_kernel > kernel_size:
                raise ValueError(
                    f"{op}: small_kernel ({small_kernel}) must not exceed kernel_size ({kernel_size})"
                )
        self.channels, self.kernel_size, self.small_kernel = channels, kernel_size, small_kernel
        if merged:
            self.lkb_reparam = Conv2d(
                channels, channels, kernel_size, padding=kernel_size // 2, groups=channels
            )
        else:
            self.lkb_origin = _conv_bn(channels, channels, kernel_size, groups=channels)
            if small_kernel is not None:
                self.small_conv = _conv_bn(channels, channels, small_kernel, groups=channels)

    __jit_unused_properties__ = ["merged"]

    @property
    def merged(self) -> bool:
        """Whether this is the inference form (one conv)."""
        return hasattr(self, "lkb_reparam")

    def forward(self, input: Tensor) -> Tensor:
        if hasattr(self, "lkb_reparam"):  # self.merged, spelled so TorchScript resolves it statically
            return self.lkb_reparam(input)
        out = self.lkb_origin(input)
        if hasattr(self, "small_conv"):
            out = out + self.small_conv(input)
        return out

    def fused_conv(self) -> Conv2d:
        """A new depthwise ``k × k`` conv with bias equal to this module in eval mode (see the class)."""
        if self.merged:
            return copy.deepcopy(self.lkb_reparam)
        conv = _folded(self.lkb_origin)
        if self.small_kernel is not None:
            small = _folded(self.small_conv)
            pad = (self.kernel_size - self.small_kernel) // 2
            with torch.no_grad():
                conv.weight.add_(F.pad(small.weight, [pad] * 4))
                conv.bias.add_(small.bias)
        return conv

    def fuse(self, inplace: bool = False) -> "ReparamLargeKernelConv":
        """The inference form: both branches and their batch norms merged into ``lkb_reparam``.

        Uses the batch norms' running statistics, so the result equals this
        module in eval mode; it is returned in eval mode.

        Args:
            inplace (bool): change this module instead of returning a new one (default False).
        """
        target = self if inplace else copy.deepcopy(self)
        if not target.merged:
            conv = target.fused_conv()
            del target.lkb_origin
            if target.small_kernel is not None:
                del target.small_conv
            target.lkb_reparam = conv
        return target.eval()

    def extra_repr(self) -> str:
        return f"{self.channels}, kernel_size={self.kernel_size}, small_kernel={self.small_kernel}" + (
            ", merged=True" if self.merged else ""
        )


class RepLKBlock(nn.Module):
    """RepLKNet's large-kernel block: ``x + drop_path(pw2(relu(large_kernel(pw1(prelkb_bn(x))))))``.

    Children (the release's names): ``prelkb_bn``, ``pw1`` (1×1 conv-BN-ReLU to
    ``dw_channels``), ``large_kernel`` (:class:`ReparamLargeKernelConv`),
    ``lk_nonlinear`` (ReLU), ``pw2`` (1×1 conv-BN back), ``drop_path``.

    Args:
        in_channels (int): ``C``.
        dw_channels (int): channels of the depthwise part.
        kernel_size (int): odd large kernel size.
        small_kernel (int or None): odd small kernel size of the parallel branch.
        drop_path (float): stochastic-depth probability of the branch (default 0).
        merged (bool): build the large kernel in its inference form.

    Shape:
        ``[N, C, H, W] -> [N, C, H, W]``.

    Example:
        >>> import torch
        >>> RepLKBlock(8, 8, 13, 5)(torch.randn(2, 8, 6, 6)).shape
        torch.Size([2, 8, 6, 6])
    """

    def __init__(
        self,
        in_channels: int,
        dw_channels: int,
        kernel_size: int,
        small_kernel: Optional[int] = 5,
        drop_path: float = 0.0,
        merged: bool = False,
    ) -> None:
        super().__init__()
        self.pw1 = _conv_bn(in_channels, dw_channels, 1, relu=True)
        self.pw2 = _conv_bn(dw_channels, in_channels, 1)
        self.large_kernel = ReparamLargeKernelConv(dw_channels, kernel_size, small_kernel, merged)
        self.lk_nonlinear = nn.ReLU(inplace=True)
        self.prelkb_bn = nn.BatchNorm2d(in_channels)
        self.drop_path = StochasticDepth(drop_path)

    def forward(self, input: Tensor) -> Tensor:
        out = self.pw1(self.prelkb_bn(input))
        out = self.pw2(self.lk_nonlinear(self.large_kernel(out)))
        return input + self.drop_path(out)


class ConvFFN(nn.Module):
    """RepLKNet's feed-forward block: ``x + drop_path(pw2(gelu(pw1(preffn_bn(x)))))``.

    Children: ``preffn_bn``, ``pw1`` (1×1 conv-BN to ``hidden_channels``),
    ``nonlinear`` (GELU), ``pw2`` (1×1 conv-BN back), ``drop_path``.

    Args:
        in_channels (int): ``C``.
        hidden_channels (int): width of the hidden layer (``ffn_ratio · C``).
        drop_path (float): stochastic-depth probability of the branch (default 0).

    Shape:
        ``[N, C, H, W] -> [N, C, H, W]``.
    """

    def __init__(self, in_channels: int, hidden_channels: int, drop_path: float = 0.0) -> None:
        super().__init__()
        self.preffn_bn = nn.BatchNorm2d(in_channels)
        self.pw1 = _conv_bn(in_channels, hidden_channels, 1)
        self.pw2 = _conv_bn(hidden_channels, in_channels, 1)
        self.nonlinear = nn.GELU()
        self.drop_path = StochasticDepth(drop_path)

    def forward(self, input: Tensor) -> Tensor:
        out = self.pw2(self.nonlinear(self.pw1(self.preffn_bn(input))))
        return input + self.drop_path(out)


class RepLKNetStage(nn.Module):
    """``num_blocks`` pairs of (:class:`RepLKBlock`, :class:`ConvFFN`) in ``blocks``, at one width.

    Args:
        channels (int): ``C``.
        num_blocks (int): pairs.
        kernel_size (int): large kernel size of the stage.
        small_kernel (int or None): small kernel size.
        drop_path (sequence of float): one stochastic-depth probability per pair.
        dw_ratio (float): depthwise width ``int(C · dw_ratio)`` (default 1).
        ffn_ratio (float): hidden width of the FFN ``int(C · ffn_ratio)`` (default 4).
        merged (bool): large kernels in their inference form.

    Shape:
        ``[N, C, H, W] -> [N, C, H, W]``.
    """

    def __init__(
        self,
        channels: int,
        num_blocks: int,
        kernel_size: int,
        small_kernel: Optional[int],
        drop_path: Sequence[float],
        dw_ratio: float = 1.0,
        ffn_ratio: float = 4.0,
        merged: bool = False,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        for i in range(num_blocks):
            dw = int(channels * dw_ratio)
            blocks.append(RepLKBlock(channels, dw, kernel_size, small_kernel, drop_path[i], merged))
            blocks.append(ConvFFN(channels, int(channels * ffn_ratio), drop_path[i]))
        self.blocks = nn.Sequential(*blocks)

    def forward(self, input: Tensor) -> Tensor:
        return self.blocks(input)


class RepLKNet(nn.Module):
    """RepLKNet in the official release's layout: ``stem``, ``stages``, ``transitions``, ``norm``, ``head``.

    Args:
        large_kernel_sizes (sequence of int): odd large kernel size per stage.
        layers (sequence of int): (RepLK block, FFN) pairs per stage.
        channels (sequence of int): width per stage.
        small_kernel (int or None): odd small kernel size of the parallel branches (default 5).
        num_classes (int): outputs (default 1000).
        in_channels (int): image channels (default 3).
        drop_path_rate (float): stochastic-depth rate of the last pair; pair ``i``
            of ``n`` drops with ``drop_path_rate · i / (n - 1)`` (default 0).
        dw_ratio (float): depthwise width per stage width (default 1).
        ffn_ratio (float): FFN hidden width per stage width (default 4).
        small_kernel_merged (bool): build the inference form (one large kernel per block)
            to load merged weights (default False).

    Shape:
        ``[N, in_channels, H, W] -> [N, num_classes]`` for any ``H, W >= 1``; the
        stem has stride 4 and each transition 2 (all ``ceil``); 224×224 canonical.

    Raises:
        ValueError: the three per-stage sequences empty or of different lengths;
            entries < 1; kernel sizes not odd or smaller than ``small_kernel``;
            ``dw_ratio``/``ffn_ratio`` giving no channel; ``drop_path_rate`` outside [0, 1].
    """

    default_input_size = (224, 224)
    min_input_size = (1, 1)
    head_names: tuple[str, ...] = ("head",)

    def __init__(
        self,
        large_kernel_sizes: Sequence[int] = _CONFIGS["31b"][0],
        layers: Sequence[int] = _CONFIGS["31b"][1],
        channels: Sequence[int] = _CONFIGS["31b"][2],
        small_kernel: Optional[int] = 5,
        num_classes: int = 1000,
        in_channels: int = 3,
        drop_path_rate: float = 0.0,
        dw_ratio: float = 1.0,
        ffn_ratio: float = 4.0,
        small_kernel_merged: bool = False,
    ) -> None:
        super().__init__()
        op = "RepLKNet"
        kernels, layers, channels = tuple(large_kernel_sizes), tuple(layers), tuple(channels)
        if not layers or not len(kernels) == len(layers) == len(channels):
            raise ValueError(
                f"{op}: large_kernel_sizes, layers and channels must be non-empty and of equal length "
                f"(one per stage), got {kernels!r}, {layers!r}, {channels!r}"
            )
        for name, values in (("layers", layers), ("channels", channels)):
            for v in values:
                positive_int(v, f"{name} entry", op)
        for k in kernels:
            _check_odd(k, "large_kernel_sizes entry", op)
        if small_kernel is not None:
            _check_odd(small_kernel, "small_kernel", op)
            if small_kernel > min(kernels):
                raise ValueError(
                    f"{op}: small_kernel ({small_kernel}) must not exceed any large kernel, got {kernels!r}"
                )
        for name, ratio in (("dw_ratio", dw_ratio), ("ffn_ratio", ffn_ratio)):
            if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or int(min(channels) * ratio) < 1:
                raise ValueError(
                    f"{op}: {name} must be a number giving >= 1 channel in every stage, got {ratio!r}"
                )
        if not isinstance(drop_path_rate, (int, float)) or not 0.0 <= drop_path_rate <= 1.0:
            raise ValueError(f"{op}: drop_path_rate must be a number in [0, 1], got {drop_path_rate!r}")

        width = channels[0]
        self.stem = nn.Sequential(
            _conv_bn(in_channels, width, 3, stride=2, relu=True),
            _conv_bn(width, width, 3, groups=width, relu=True),
            _conv_bn(width, width, 1, relu=True),
            _conv_bn(width, width, 3, stride=2, groups=width, relu=True),
        )
        total = sum(layers)
        rates = [drop_path_rate * i / (total - 1) if total > 1 else 0.0 for i in range(total)]
        self.stages = nn.ModuleList()
        self.transitions = nn.ModuleList()
        for i, (k, n, c) in enumerate(zip(kernels, layers, channels)):
            first = sum(layers[:i])
            stage_rates = rates[first : first + n]
            self.stages.append(
                RepLKNetStage(c, n, k, small_kernel, stage_rates, dw_ratio, ffn_ratio, small_kernel_merged)
            )
            if i + 1 < len(layers):
                nxt = channels[i + 1]
                down = _conv_bn(nxt, nxt, 3, stride=2, groups=nxt, relu=True)
                self.transitions.append(nn.Sequential(_conv_bn(c, nxt, 1, relu=True), down))
        self.norm = nn.BatchNorm2d(channels[-1])
        self.avgpool = AdaptiveAvgPool2d(1)
        self.head = nn.Linear(channels[-1], num_classes)
        self.num_features = channels[-1]

    def forward_features(self, x: Tensor) -> Tensor:
        """The last stage's map ``[N, channels[-1], H/32, W/32]`` (four stages), before ``norm``."""
        x = self.stem(x)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            for j, transition in enumerate(self.transitions):  # transitions[i]: TorchScript cannot
                if j == i:  # index a ModuleList with a variable
                    x = transition(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.avgpool(self.norm(self.forward_features(x))).flatten(1))

    def fuse(self, inplace: bool = False) -> "RepLKNet":
        """The inference form: every :class:`ReparamLargeKernelConv` merged into one large conv.

        Equal to this network in eval mode (the batch norms' running statistics
        are folded in); returned in eval mode. The state_dict keys become the
        release's merged layout (``large_kernel.lkb_reparam.*``), which
        ``small_kernel_merged=True`` builds directly. The remaining conv + BN
        pairs fold with :func:`convolab.nn.fuse` if wanted.

        Args:
            inplace (bool): change this network instead of returning a new one (default False).

        Example:
            >>> import torch
            >>> net = RepLKNet((13,), (1,), (8,), small_kernel=3, num_classes=4).eval()
            >>> x = torch.randn(1, 3, 32, 32)
            >>> bool(torch.allclose(net.fuse()(x), net(x), atol=1e-5))
            True
        """
        target = self if inplace else copy.deepcopy(self)
        for m in target.modules():
            if isinstance(m, ReparamLargeKernelConv):
                m.fuse(inplace=True)
        return target.eval()


def _replknet(variant: str, num_classes: int, in_channels: int, **kwargs) -> RepLKNet:
    kernels, layers, channels, small = _CONFIGS[variant]
    return RepLKNet(kernels, layers, channels, small, num_classes, in_channels, **kwargs)


@register_model
def replknet_31b(
    num_classes: int = 1000, in_channels: int = 3, drop_path_rate: float = 0.3, **kwargs
) -> RepLKNet:
    """RepLKNet-31B, "Scaling Up Your Kernels to 31x31: Revisiting Large Kernel Design in CNNs" (Ding et al., CVPR 2022)."""
    return _replknet("31b", num_classes, in_channels, drop_path_rate=drop_path_rate, **kwargs)


@register_model
def replknet_tiny(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> RepLKNet:
    """A one-stage 31x31 toy of "Scaling Up Your Kernels to 31x31" (Ding et al., CVPR 2022): two blocks at C=128."""
    return _replknet("tiny", num_classes, in_channels, **kwargs)
