"""Blocks shared by the network families: conv + norm + activation, the heads, initialisation.

Family-specific blocks (residual, inception, shuffle, mobile, hourglass) live in
their family's file; this module holds what several families use:

- :class:`ConvNormAct`: convolution, batch norm and activation in either order
  ("conv-bn-act", or "conv-act-bn" as practice often places BN after the
  activation), norm and activation pluggable;
- heads: :class:`FlattenLinear` (flatten + fully connected, needs a fixed
  input size), :class:`GlobalPoolLinear` (global average pool + linear, any
  input size) and :class:`SPPLinear` (spatial pyramid pooling + linear, any
  input size, keeps some spatial layout);
- :class:`LayerNorm2d` (layer norm over the channels of an NCHW map) and
  :class:`StochasticDepth` (drop a residual branch per sample), which the
  modern families (ConvNeXt, RepLKNet) share;
- the pooling modules every family builds (one import to swap);
- the weight initialisations the model zoo uses, so fresh models start alike.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from functools import partial
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# The one place that chooses pooling modules for every model family, so
# Every family takes its pooling layers from here: convolab's own (drop-in for torch.nn's).
from ..nn import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d  # noqa: F401

from .._args import check_choice, positive_int, positive_tuple
from ..arithmetic import effective_kernel_size
from ..nn import Conv2d, ConvTranspose2d

__all__ = [
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "AvgPool2d",
    "ConvNormAct",
    "FlattenLinear",
    "GlobalPoolLinear",
    "LayerNorm2d",
    "MaxPool2d",
    "ORDERS",
    "SPPLinear",
    "StochasticDepth",
    "init_kaiming_",
    "init_trunc_normal_",
]

ORDERS = ("conv-bn-act", "conv-act-bn")

Layer = Callable[..., nn.Module]


def _build_act(act_layer: Optional[Layer], inplace: bool) -> Optional[nn.Module]:
    if act_layer is None:
        return None
    params = inspect.signature(act_layer).parameters if not isinstance(act_layer, partial) else {}
    return act_layer(inplace=inplace) if "inplace" in params else act_layer()


class ConvNormAct(nn.Sequential):
    """A convolution followed by batch norm and an activation, in a selectable order.

    ``order="conv-bn-act"`` is the original placement (Ioffe & Szegedy 2015);
    ``"conv-act-bn"`` normalises the activation's output instead. Either part
    can be switched off (``norm_layer=None`` / ``act_layer=None``).

    The children are numbered ``0, 1, 2`` in call order, as torch's
    ``nn.Sequential(conv, bn, act)`` (the state_dict keys of the model zoo's
    ``Conv2dNormActivation``), or named by ``names`` (e.g. ``("conv", "bn",
    "relu")`` for GoogLeNet/Inception's ``BasicConv2d``).

    Args:
        in_channels, out_channels (int): channels.
        kernel_size, stride, dilation, groups: as :class:`convolab.nn.Conv2d`.
        padding: any padding :class:`convolab.nn.Conv2d` accepts; default
            ``dilation * (kernel_size - 1) // 2`` per dim ("same" at stride 1
            for odd kernels).
        bias (bool or None): conv bias; default: only when no norm directly
            follows the conv (a BN right after the conv absorbs any bias).
        order (str): "conv-bn-act" (default) or "conv-act-bn".
        norm_layer: ``callable(num_channels) -> Module``; default ``nn.BatchNorm2d``.
        act_layer: ``callable() -> Module``; default ``nn.ReLU``.
        inplace (bool): build the activation in place when it takes ``inplace`` (default True).
        names (tuple of 3 str or None): child names for conv, norm, act.

    Shape:
        ``[N, C_in, H, W] -> [N, C_out, H_out, W_out]`` with
        ``H_out = floor((H + 2*padding - dilation*(k - 1) - 1) / stride) + 1``.

    Raises:
        ValueError: unknown ``order``; bad conv arguments (from the conv).

    Example:
        >>> import torch
        >>> m = ConvNormAct(3, 8, 3, stride=2, order="conv-act-bn")
        >>> [type(c).__name__ for c in m], m(torch.randn(1, 3, 9, 9)).shape
        (['Conv2d', 'ReLU', 'BatchNorm2d'], torch.Size([1, 8, 5, 5]))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Union[int, tuple[int, int]] = 3,
        stride: Union[int, tuple[int, int]] = 1,
        padding: object = None,
        dilation: Union[int, tuple[int, int]] = 1,
        groups: int = 1,
        bias: Optional[bool] = None,
        *,
        order: str = "conv-bn-act",
        norm_layer: Optional[Layer] = nn.BatchNorm2d,
        act_layer: Optional[Layer] = nn.ReLU,
        inplace: bool = True,
        names: Optional[Sequence[str]] = None,
    ) -> None:
        check_choice(order, ORDERS, "order", "ConvNormAct")
        if names is not None and len(names) != 3:
            raise ValueError(f"ConvNormAct: names must be 3 names (conv, norm, act), got {names!r}")
        if padding is None:  # half the dilated kernel: "same" at stride 1 for odd kernels
            ks = positive_tuple(kernel_size, 2, "kernel_size", "ConvNormAct")
            ds = positive_tuple(dilation, 2, "dilation", "ConvNormAct")
            padding = tuple((effective_kernel_size(k, d) - 1) // 2 for k, d in zip(ks, ds))
        if bias is None:
            bias = norm_layer is None or order != "conv-bn-act"
        conv = Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        norm = norm_layer(out_channels) if norm_layer is not None else None
        act = _build_act(act_layer, inplace)
        parts = [("conv", conv), ("norm", norm), ("act", act)]
        if order == "conv-act-bn":
            parts = [parts[0], parts[2], parts[1]]
        kept = [(kind, m) for kind, m in parts if m is not None]
        if names is None:
            super().__init__(*(m for _, m in kept))
        else:
            by_kind = dict(zip(("conv", "norm", "act"), names))
            super().__init__()
            for kind, m in kept:
                self.add_module(by_kind[kind], m)
        self.order = order
        self.out_channels = out_channels


def _check_dropout(p: float, op: str) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout must be in [0, 1], got {p!r}")
    return float(p)


class FlattenLinear(nn.Sequential):
    """Flatten + fully connected layers: the classic head (AlexNet, VGG); needs a fixed input size.

    Definition: ``x.flatten(1)`` then ``Linear -> ReLU -> Dropout`` for each
    hidden width, then ``Linear(·, num_classes)``. With ``dropout_first``
    (AlexNet) each Dropout comes *before* its Linear instead. The children are
    numbered exactly as the model zoo's ``classifier`` Sequential (flattening
    happens in ``forward``, not as a child), so its weights load unchanged.

    Args:
        in_features (int): ``C * H * W`` of the feature map.
        num_classes (int): outputs.
        hidden (sequence of int): hidden widths (default none: one Linear).
        dropout (float): dropout probability (0 keeps the Dropout modules out).
        dropout_first (bool): Dropout before each hidden Linear (AlexNet) or after its ReLU (VGG).

    Shape:
        ``[N, *] -> [N, num_classes]`` where ``*`` has ``in_features`` elements.

    Raises:
        ValueError: ``in_features``/``num_classes`` < 1, ``dropout`` outside [0, 1];
            at call time, an input whose size does not flatten to ``in_features``.

    Example:
        >>> import torch
        >>> head = FlattenLinear(8 * 2 * 2, 10, hidden=(16,))
        >>> head(torch.randn(3, 8, 2, 2)).shape
        torch.Size([3, 10])
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: Sequence[int] = (),
        dropout: float = 0.5,
        dropout_first: bool = False,
    ) -> None:
        op = "FlattenLinear"
        positive_int(in_features, "in_features", op)
        positive_int(num_classes, "num_classes", op)
        p = _check_dropout(dropout, op)
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            positive_int(h, "hidden width", op)
            if dropout_first and p:
                layers.append(nn.Dropout(p))
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            if not dropout_first and p:
                layers.append(nn.Dropout(p))
            width = h
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)
        self.in_features = in_features

    def forward(self, input: Tensor) -> Tensor:
        x = input.flatten(1)
        if not torch.jit.is_scripting() and isinstance(x, Tensor) and x.shape[1] != self.in_features:
            raise ValueError(
                f"FlattenLinear: expected {self.in_features} features per sample after flattening, "
                f"got {x.shape[1]} (input shape {list(input.shape)}); this head needs a fixed input size"
            )
        for layer in self:  # not super().forward(): TorchScript cannot call it
            x = layer(x)
        return x


class GlobalPoolLinear(nn.Sequential):
    """Global average pooling + linear classifier: accepts any input size.

    Definition: average each channel over all spatial positions, then
    ``[Dropout ->] Linear(C, num_classes)``. Children are ``0: Dropout, 1: Linear``
    when ``dropout > 0`` (the model zoo's MobileNet ``classifier``), else ``0: Linear``.

    Args:
        in_channels (int): channels of the feature map.
        num_classes (int): outputs.
        dropout (float): dropout before the linear layer (default 0).

    Shape:
        ``[N, C, *spatial] -> [N, num_classes]`` for any spatial size.

    Example:
        >>> import torch
        >>> head = GlobalPoolLinear(8, 10, dropout=0.2)
        >>> head(torch.randn(2, 8, 7, 7)).shape, head(torch.randn(2, 8, 3, 5)).shape
        (torch.Size([2, 10]), torch.Size([2, 10]))
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.0) -> None:
        op = "GlobalPoolLinear"
        positive_int(in_channels, "in_channels", op)
        positive_int(num_classes, "num_classes", op)
        p = _check_dropout(dropout, op)
        layers: list[nn.Module] = [nn.Dropout(p)] if p else []
        super().__init__(*layers, nn.Linear(in_channels, num_classes))

    def forward(self, input: Tensor) -> Tensor:
        # checked in eager mode; tracers pass proxies, TorchScript compiles the rest only
        if not torch.jit.is_scripting() and isinstance(input, Tensor) and input.dim() < 3:
            raise ValueError(
                f"GlobalPoolLinear: expected input [N, C, *spatial], got shape {list(input.shape)}"
            )
        x = input.flatten(2).mean(dim=2)
        for layer in self:  # not super().forward(): TorchScript cannot call it
            x = layer(x)
        return x


class SPPLinear(nn.Module):
    """Spatial pyramid pooling + linear classifier (He et al. 2014): any input size, fixed-length vector.

    Definition: max-pool the feature map into an ``n × n`` grid of bins for
    every pyramid level ``n`` (bins cover the map as adaptive pooling does),
    concatenate the ``C * sum(n²)`` values and apply ``Linear``. SPP-net's
    pyramid is ``(4, 2, 1)``: 21 bins per channel.

    Args:
        in_channels (int): channels of the feature map.
        num_classes (int): outputs.
        levels (sequence of int): bins per side of each level (default ``(4, 2, 1)``).
        dropout (float): dropout before the linear layer (default 0).

    Shape:
        ``[N, C, H, W] -> [N, num_classes]`` for any ``H, W >= 1``; the pooled
        vector has ``C * sum(n * n for n in levels)`` features.

    Example:
        >>> import torch
        >>> head = SPPLinear(8, 10)
        >>> head.in_features, head(torch.randn(2, 8, 13, 13)).shape, head(torch.randn(2, 8, 5, 9)).shape
        (168, torch.Size([2, 10]), torch.Size([2, 10]))
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        levels: Sequence[int] = (4, 2, 1),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        op = "SPPLinear"
        positive_int(in_channels, "in_channels", op)
        positive_int(num_classes, "num_classes", op)
        if not levels:
            raise ValueError(f"{op}: levels must name at least one pyramid level, got {levels!r}")
        self.levels = tuple(positive_int(n, "levels entry", op) for n in levels)
        self.pools = nn.ModuleList(AdaptiveMaxPool2d(n) for n in self.levels)
        p = _check_dropout(dropout, op)
        self.dropout = nn.Dropout(p) if p else nn.Identity()
        self.in_features = in_channels * sum(n * n for n in self.levels)
        self.fc = nn.Linear(self.in_features, num_classes)

    def pool(self, input: Tensor) -> Tensor:
        """The fixed-length pyramid vector ``[N, C * sum(n²)]``."""
        if not torch.jit.is_scripting() and isinstance(input, Tensor) and input.dim() != 4:
            raise ValueError(f"SPPLinear: expected input [N, C, H, W], got shape {list(input.shape)}")
        return torch.cat([p(input).flatten(1) for p in self.pools], dim=1)

    def forward(self, input: Tensor) -> Tensor:
        return self.fc(self.dropout(self.pool(input)))

    def extra_repr(self) -> str:
        return f"levels={self.levels}"


def _convs_and_linears(model: nn.Module):
    for m in model.modules():
        if isinstance(m, (Conv2d, ConvTranspose2d, nn.Conv2d, nn.ConvTranspose2d)):
            yield "conv", m
        elif isinstance(m, nn.Linear):
            yield "linear", m
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            yield "norm", m


def init_kaiming_(model: nn.Module, linear_std: Optional[float] = 0.01) -> nn.Module:
    """The zoo's init for ResNet/VGG/MobileNet: He-normal (fan_out, ReLU) convs, zero biases, unit norms.

    Linear layers get ``N(0, linear_std²)`` weights and zero biases, or keep
    torch's default when ``linear_std`` is None. Returns ``model``.
    """
    for kind, m in _convs_and_linears(model):
        if kind == "conv":
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif kind == "norm":
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif linear_std is not None:
            nn.init.normal_(m.weight, 0.0, linear_std)
            nn.init.zeros_(m.bias)
    return model


def init_trunc_normal_(model: nn.Module, std: float = 0.1) -> nn.Module:
    """GoogLeNet/Inception's init: conv and linear weights ~ N(0, std²) cut at ±2 (as the zoo), unit norms.

    A module's own ``stddev`` attribute overrides ``std`` (Inception v3's aux head).
    Biases keep torch's default.
    """
    for kind, m in _convs_and_linears(model):
        if kind == "norm":
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        else:
            nn.init.trunc_normal_(m.weight, mean=0.0, std=float(getattr(m, "stddev", std)), a=-2.0, b=2.0)
    return model


class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels of an ``[N, C, H, W]`` map, at every position.

    Definition: ``y[n, :, h, w] = (x - mean) / sqrt(var + eps) * weight + bias``
    with the mean and (biased) variance taken over the ``C`` values of one
    position: the "channels_first" LayerNorm of the ConvNeXt reference and the
    model zoo's ``LayerNorm2d`` (a ``torch.nn.LayerNorm`` subclass, so its
    ``weight``/``bias`` keys are the same). Computed as torch's layer norm on a
    channels-last view, which reads an NCHW tensor once and needs no copy when
    the input is already channels-last in memory.

    Args:
        num_channels (int): ``C``.
        eps (float): added to the variance (default 1e-6, ConvNeXt's).

    Shape:
        ``[N, C, H, W] -> [N, C, H, W]``.

    Raises:
        ValueError: at call time, an input that is not ``[N, num_channels, H, W]``.

    Example:
        >>> import torch
        >>> x = torch.randn(2, 4, 3, 5)
        >>> y = LayerNorm2d(4)(x)
        >>> y.shape, bool(y.mean(dim=1).abs().max() < 1e-5)
        (torch.Size([2, 4, 3, 5]), True)
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        positive_int(num_channels, "num_channels", "LayerNorm2d")
        super().__init__(num_channels, eps=eps)

    def forward(self, input: Tensor) -> Tensor:
        if not torch.jit.is_scripting() and isinstance(input, Tensor) and (
            input.dim() != 4 or input.shape[1] != self.normalized_shape[0]
        ):
            raise ValueError(
                f"LayerNorm2d: expected input [N, {self.normalized_shape[0]}, H, W], "
                f"got shape {list(input.shape)}"
            )
        x = F.layer_norm(input.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


STOCHASTIC_DEPTH_MODES = ("row", "batch")


class StochasticDepth(nn.Module):
    """Stochastic depth (Huang et al. 2016, "Deep Networks with Stochastic Depth"), a.k.a. drop path.

    Definition: in training, the input (a residual branch's output) is zeroed
    with probability ``p`` — per sample (``mode="row"``, as ConvNeXt and
    RepLKNet use it) or for the whole batch (``"batch"``) — and the kept
    values are scaled by ``1 / (1 - p)`` so the expectation is unchanged; in
    eval mode it is the identity. Applied to a residual branch, a dropped
    sample sees that block as the identity: a shallower network per step.

    Args:
        p (float): drop probability in [0, 1].
        mode (str): "row" (default) or "batch".

    Shape:
        ``[N, *] -> [N, *]``.

    Raises:
        ValueError: ``p`` outside [0, 1]; unknown ``mode``.

    Example:
        >>> import torch
        >>> sd = StochasticDepth(0.5)
        >>> y = sd(torch.ones(1000, 3))
        >>> sorted(set(y[:, 0].tolist())), bool(torch.equal(sd.eval()(y), y))
        ([0.0, 2.0], True)
    """

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
            raise ValueError(f"StochasticDepth: p must be a number in [0, 1], got {p!r}")
        self.p = float(p)
        self.mode = check_choice(mode, STOCHASTIC_DEPTH_MODES, "mode", "StochasticDepth")

    def forward(self, input: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return input
        keep = 1.0 - self.p
        shape = (input.shape[0],) + (1,) * (input.dim() - 1) if self.mode == "row" else (1,) * input.dim()
        mask = torch.empty(shape, dtype=input.dtype, device=input.device).bernoulli_(keep)
        if keep > 0.0:  # p == 1 drops everything; nothing to rescale
            mask.div_(keep)
        return input * mask

    def extra_repr(self) -> str:
        return f"p={self.p}" + ("" if self.mode == "row" else f", mode={self.mode!r}")
