"""Separable and 1x1 convolution modules, thin holders of parameters over :mod:`convolab.functional.separable`.

Each reports its parameter count through :mod:`convolab.arithmetic` (``depthwise_separable_params``,
``spatially_separable_params``, ``flattened_conv_params``), which equals ``sum(p.numel())``.
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Tuple

import torch
from torch import Tensor, nn

from .. import arithmetic
from .._args import IntOrTuple, check_choice, check_groups, normalize_padding, positive_int, positive_tuple
from ..functional._checks import check_module_dtype
from ..functional.algorithms import available_algorithms
from ..functional._common import PADDING_MODES
from ..functional._lowered import flat_padding, native_conv, same_pairs
from ..functional.separable import flattened_conv, spatially_separable_conv
from .conv import Conv1d, Conv2d, Conv3d

__all__ = [
    "DepthwiseSeparableConv1d",
    "DepthwiseSeparableConv2d",
    "DepthwiseSeparableConv3d",
    "FlattenedConv1d",
    "FlattenedConv2d",
    "FlattenedConv3d",
    "PointwiseConv1d",
    "PointwiseConv2d",
    "PointwiseConv3d",
    "SpatiallySeparableConv2d",
    "SpatiallySeparableConv3d",
]

_CONV = {1: Conv1d, 2: Conv2d, 3: Conv3d}


def _layer(spec: Any, channels: Optional[int], name: str, op: str) -> Optional[nn.Module]:
    """A norm/activation given as a module instance, or a module class built with ``channels`` (norm) or nothing."""
    if spec is None or isinstance(spec, nn.Module):
        return spec
    if isinstance(spec, type) and issubclass(spec, nn.Module):
        return spec(channels) if channels is not None else spec()
    raise TypeError(f"{op}: {name} must be an nn.Module, an nn.Module class or None, got {spec!r}")


def _init_like_conv(weight: Tensor, bias: Optional[Tensor]) -> None:
    """torch.nn.Conv's initialisation: Kaiming-uniform weights, biases uniform in +-1/sqrt(fan_in)."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1 / math.sqrt(weight[0].numel())
        nn.init.uniform_(bias, -bound, bound)


class _DepthwiseSeparableConvNd(nn.Module):
    ndim = 2
    __jit_unused_properties__ = ["kernel_size", "stride", "padding", "dilation", "effective_kernel_size"]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrTuple,
        stride: IntOrTuple = 1,
        padding: Any = 0,
        dilation: IntOrTuple = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
        *,
        depth_multiplier: int = 1,
        norm: Any = None,
        activation: Any = None,
        algorithm: str = "auto",
    ) -> None:
        super().__init__()
        op = type(self).__name__
        check_module_dtype(op, dtype)
        positive_int(in_channels, "in_channels", op)
        positive_int(out_channels, "out_channels", op)
        m = positive_int(depth_multiplier, "depth_multiplier", op)
        # check here so that errors name this module, not its depthwise submodule
        for name, value in (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
            positive_tuple(value, self.ndim, name, op)
        normalize_padding(padding, self.ndim, op)
        check_choice(padding_mode, PADDING_MODES, "padding_mode", op)
        check_choice(algorithm, available_algorithms(), "algorithm", op)
        conv = _CONV[self.ndim]
        mid = in_channels * m
        self.in_channels, self.out_channels, self.depth_multiplier = in_channels, out_channels, m
        self.depthwise = conv(
            in_channels, mid, kernel_size, stride, padding, dilation, in_channels, bias, padding_mode,
            device, dtype, algorithm=algorithm,
        )
        self.norm = _layer(norm, mid, "norm", op)
        self.act = _layer(activation, None, "activation", op)
        self.pointwise = conv(mid, out_channels, 1, bias=bias, device=device, dtype=dtype, algorithm=algorithm)
        # errors at call time name this module, as :func:`convolab.functional.depthwise_separable_conv` does
        self.depthwise._name = self.pointwise._name = op

    kernel_size = property(lambda self: self.depthwise.kernel_size)
    stride = property(lambda self: self.depthwise.stride)
    padding = property(lambda self: self.depthwise.padding)
    dilation = property(lambda self: self.depthwise.dilation)
    effective_kernel_size = property(lambda self: self.depthwise.effective_kernel_size)

    def forward(self, input: Tensor) -> Tensor:
        # :func:`convolab.functional.depthwise_separable_conv`, spelled as its two convs
        y = self.depthwise(input)
        if self.norm is not None:
            y = self.norm(y)
        if self.act is not None:
            y = self.act(y)
        return self.pointwise(y)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        return s + (f", depth_multiplier={self.depth_multiplier}" if self.depth_multiplier != 1 else "")


class DepthwiseSeparableConv1d(_DepthwiseSeparableConvNd):
    """1-D depthwise separable conv; see :class:`DepthwiseSeparableConv2d`."""

    ndim = 1


class DepthwiseSeparableConv2d(_DepthwiseSeparableConvNd):
    """Depthwise separable conv (MobileNet): depthwise ``k x k`` (groups = C_in), [norm, activation], 1x1.

    Arguments as ``torch.nn.Conv2d`` (stride/padding/dilation/padding_mode apply to the depthwise
    conv; ``bias`` to both), plus ``depth_multiplier`` (depthwise filters per input channel),
    ``norm`` (an nn.Module class called with the depthwise channel count, e.g. ``nn.BatchNorm2d``,
    or a module) and ``activation`` (a class called without arguments, e.g. ``nn.ReLU``, or a
    module). Submodules ``depthwise`` and ``pointwise`` are :class:`convolab.nn.Conv2d`.
    Parameters (without the norm's): :func:`convolab.arithmetic.depthwise_separable_params`.

    Example:
        >>> m = DepthwiseSeparableConv2d(32, 64, 3, padding=1, norm=nn.BatchNorm2d, activation=nn.ReLU)
        >>> m(torch.randn(2, 32, 14, 14)).shape
        torch.Size([2, 64, 14, 14])
    """

    ndim = 2


class DepthwiseSeparableConv3d(_DepthwiseSeparableConvNd):
    """3-D depthwise separable conv; see :class:`DepthwiseSeparableConv2d`."""

    ndim = 3


class _FactorisedConvNd(nn.Module):
    """Shared holder of per-dim 1-D filters (spatially separable and flattened convs)."""

    ndim = 2
    __jit_unused_properties__ = ["effective_kernel_size"]

    def _common(
        self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple,
        padding: Any, dilation: IntOrTuple, padding_mode: str, algorithm: str,
    ) -> None:
        op, n = type(self).__name__, self.ndim
        self.in_channels = positive_int(in_channels, "in_channels", op)
        self.out_channels = positive_int(out_channels, "out_channels", op)
        self.kernel_size = positive_tuple(kernel_size, n, "kernel_size", op)
        self.stride = positive_tuple(stride, n, "stride", op)
        self.dilation = positive_tuple(dilation, n, "dilation", op)
        static = arithmetic.static_padding(padding, n, self.kernel_size, self.stride, self.dilation, op=op)
        self.padding = padding
        self.padding_mode = check_choice(padding_mode, PADDING_MODES, "padding_mode", op)
        self.algorithm = check_choice(algorithm, available_algorithms(), "algorithm", op)
        self._name = op
        # for the TorchScript forward: the dense conv's per-side padding, or 'same' from the size
        self._pairs: List[Tuple[int, int]] = list(static if static is not None else ((0, 0),) * n)
        self._size_dependent = static is None

    def _pass_shape(self, c_out: int, c_in: int, i: int) -> tuple[int, ...]:
        return (c_out, c_in, *(k if j == i else 1 for j, k in enumerate(self.kernel_size)))

    @property
    def effective_kernel_size(self) -> tuple[int, ...]:
        """Extent of the equivalent dense kernel per dim: ``dilation*(kernel_size - 1) + 1``."""
        return tuple(arithmetic.effective_kernel_size(k, d) for k, d in zip(self.kernel_size, self.dilation))

    def _scripted_passes(self, x: Tensor, weights: List[Tensor], groups: int) -> Tensor:
        """The passes of :func:`convolab.functional.spatially_separable_conv` on torch's kernels:
        pass ``i`` pads, strides and dilates dim ``i`` alone."""
        nd = len(self.kernel_size)
        unbatched = x.dim() == nd + 1
        y = x.unsqueeze(0) if unbatched else x
        pairs = self._pairs
        if self._size_dependent:
            pairs = same_pairs(y.shape[2:], [k for k in self.kernel_size], [s for s in self.stride],
                               [d for d in self.dilation])
        for i in range(nd):
            stride = [1] * nd
            dilation = [1] * nd
            pass_pairs: List[Tuple[int, int]] = [(0, 0)] * nd
            stride[i] = self.stride[i]
            dilation[i] = self.dilation[i]
            pass_pairs[i] = pairs[i]
            if self.padding_mode != "zeros":
                y = torch.nn.functional.pad(y, flat_padding(pass_pairs), mode=self.padding_mode)
                pass_pairs = [(0, 0)] * nd
            y = native_conv(y, weights[i], self.bias if i == nd - 1 else None, stride, pass_pairs, dilation, groups)
        return y.squeeze(0) if unbatched else y

    def _repr_tail(self) -> str:
        s = f"kernel_size={self.kernel_size}, stride={self.stride}"
        for name, default in (("padding", 0), ("dilation", (1,) * self.ndim), ("padding_mode", "zeros"), ("algorithm", "auto")):
            value = getattr(self, name)
            if value != default and value != (default,) * self.ndim:
                s += f", {name}={value!r}"
        return s + (", bias=False" if self.bias is None else "")


class _SpatiallySeparableConvNd(_FactorisedConvNd):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrTuple,
        stride: IntOrTuple = 1,
        padding: Any = 0,
        dilation: IntOrTuple = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
        *,
        mid_channels: Optional[int] = None,
        algorithm: str = "auto",
    ) -> None:
        super().__init__()
        op = type(self).__name__
        check_module_dtype(op, dtype)
        self._common(in_channels, out_channels, kernel_size, stride, padding, dilation, padding_mode, algorithm)
        mid = out_channels if mid_channels is None else positive_int(mid_channels, "mid_channels", op)
        chain = [in_channels] + [mid] * (self.ndim - 1) + [out_channels]
        for a, b in zip(chain, chain[1:]):
            check_groups(a, b, groups, op)
        self.mid_channels, self.groups = mid, groups
        factory = {"device": device, "dtype": dtype}
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(self._pass_shape(chain[i + 1], chain[i] // groups, i), **factory))
            for i in range(self.ndim)
        )
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for i, w in enumerate(self.weights):
            _init_like_conv(w, self.bias if i == self.ndim - 1 else None)

    def forward(self, input: Tensor) -> Tensor:
        if torch.jit.is_scripting():
            weights: List[Tensor] = []
            for w in self.weights:
                weights.append(w)
            return self._scripted_passes(input, weights, self.groups)
        return spatially_separable_conv(
            input, list(self.weights), self.bias, self.stride, self.padding, self.dilation, self.groups,
            padding_mode=self.padding_mode, algorithm=self.algorithm, _op=self._name,
        )

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, "
        if self.mid_channels != self.out_channels:
            s += f"mid_channels={self.mid_channels}, "
        if self.groups != 1:
            s += f"groups={self.groups}, "
        return s + self._repr_tail()


class SpatiallySeparableConv2d(_SpatiallySeparableConvNd):
    """Spatially separable conv: ``kH x 1`` (C_in -> mid), then ``1 x kW`` (mid -> C_out).

    Arguments as ``torch.nn.Conv2d``, plus ``mid_channels`` (default C_out). With one channel
    (or ``groups`` = all channels) it is exactly the dense conv with the outer-product kernel.
    Parameters ``weights[0]``, ``weights[1]`` and ``bias``; count:
    :func:`convolab.arithmetic.spatially_separable_params`. See
    :func:`convolab.functional.spatially_separable_conv`.

    Example:
        >>> SpatiallySeparableConv2d(16, 16, 7, padding="same")(torch.randn(1, 16, 12, 12)).shape
        torch.Size([1, 16, 12, 12])
    """

    ndim = 2


class SpatiallySeparableConv3d(_SpatiallySeparableConvNd):
    """3-D spatially separable conv: three 1-D passes (depth, height, width); see :class:`SpatiallySeparableConv2d`."""

    ndim = 3


class _FlattenedConvNd(_FactorisedConvNd):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrTuple,
        stride: IntOrTuple = 1,
        padding: Any = 0,
        dilation: IntOrTuple = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
        *,
        algorithm: str = "auto",
    ) -> None:
        super().__init__()
        check_module_dtype(type(self).__name__, dtype)
        self._common(in_channels, out_channels, kernel_size, stride, padding, dilation, padding_mode, algorithm)
        factory = {"device": device, "dtype": dtype}
        self.channel_weight = nn.Parameter(torch.empty(out_channels, in_channels, *(1,) * self.ndim, **factory))
        self.spatial_weights = nn.ParameterList(
            nn.Parameter(torch.empty(self._pass_shape(out_channels, 1, i), **factory)) for i in range(self.ndim)
        )
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _init_like_conv(self.channel_weight, None)
        for i, w in enumerate(self.spatial_weights):
            _init_like_conv(w, self.bias if i == self.ndim - 1 else None)

    def forward(self, input: Tensor) -> Tensor:
        if torch.jit.is_scripting():
            weights: List[Tensor] = []
            for w in self.spatial_weights:
                weights.append(w)
            nd = len(self.kernel_size)
            mixed = native_conv(input, self.channel_weight, None, [1] * nd, [(0, 0)] * nd, [1] * nd, 1)
            return self._scripted_passes(mixed, weights, self.out_channels)
        return flattened_conv(
            input, self.channel_weight, list(self.spatial_weights), self.bias, self.stride, self.padding,
            self.dilation, padding_mode=self.padding_mode, algorithm=self.algorithm, _op=self._name,
        )

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, " + self._repr_tail()


class FlattenedConv1d(_FlattenedConvNd):
    """1-D flattened conv (channel filter, then a depthwise 1-D filter); see :class:`FlattenedConv2d`."""

    ndim = 1


class FlattenedConv2d(_FlattenedConvNd):
    """Flattened conv (Jin et al., 2014): 1x1 across channels, then depthwise ``kH x 1`` and ``1 x kW``.

    Arguments as ``torch.nn.Conv2d``. Every output channel's filter is the rank-1 product of its
    three 1-D filters; parameters ``channel_weight``, ``spatial_weights[0..1]``, ``bias``, count
    :func:`convolab.arithmetic.flattened_conv_params`. See :func:`convolab.functional.flattened_conv`.

    Example:
        >>> FlattenedConv2d(3, 16, 3, padding=1)(torch.randn(1, 3, 8, 8)).shape
        torch.Size([1, 16, 8, 8])
    """

    ndim = 2


class FlattenedConv3d(_FlattenedConvNd):
    """3-D flattened conv (channel filter, then three depthwise 1-D filters); see :class:`FlattenedConv2d`."""

    ndim = 3


def _pointwise(ndim: int, base: type) -> type:
    class PointwiseConv(base):  # type: ignore[valid-type, misc]
        def __init__(
            self,
            in_channels: int,
            out_channels: int,
            groups: int = 1,
            bias: bool = True,
            device: Any = None,
            dtype: Any = None,
            *,
            algorithm: str = "auto",
        ) -> None:
            super().__init__(
                in_channels, out_channels, 1, groups=groups, bias=bias, device=device, dtype=dtype,
                algorithm=algorithm,
            )

    name = f"PointwiseConv{ndim}d"
    PointwiseConv.__name__ = PointwiseConv.__qualname__ = name
    PointwiseConv.__doc__ = (
        f"{ndim}-D 1x1 (pointwise) convolution: a per-position linear mix of channels, "
        f"``groups`` > 1 gives pointwise group convolution (ShuffleNet). A "
        f":class:`convolab.nn.Conv{ndim}d` with ``kernel_size=1``; parameters "
        f"``C_out*C_in/groups (+ C_out)``."
    )
    return PointwiseConv


PointwiseConv1d = _pointwise(1, Conv1d)
PointwiseConv2d = _pointwise(2, Conv2d)
PointwiseConv3d = _pointwise(3, Conv3d)
PointwiseConv1d.__module__ = PointwiseConv2d.__module__ = PointwiseConv3d.__module__ = __name__
