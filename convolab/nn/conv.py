"""Convolution modules: drop-in replacements for ``torch.nn.Conv*d`` / ``ConvTranspose*d``.

Same argument names, defaults, parameter shapes, initialisation and
``state_dict`` keys as torch, so torch weights load unchanged; plus every
padding form of :func:`convolab.functional.conv` (per-side pairs, "same" with
any stride), ``flip`` and ``algorithm``. The maths lives on the functional ops.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Optional, Union

import torch
from torch import Tensor, nn

from .. import arithmetic
from .._args import (
    check_choice,
    check_groups,
    normalize_padding,
    ntuple,
    positive_tuple,
)
from ..functional.conv import PADDING_MODES, conv, conv_transpose
from ..functional.algorithms import available_algorithms

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]

IntOrTuple = Union[int, Sequence[int]]


class _ConvNd(nn.Module):
    """Shared logic of every conv module; subclasses only set ``ndim`` (and ``transposed``)."""

    ndim: int = 2
    transposed: bool = False
    __constants__ = ["stride", "padding", "dilation", "groups", "padding_mode", "output_padding"]

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
        output_padding: IntOrTuple = 0,
        flip: bool = False,
        algorithm: str = "auto",
    ) -> None:
        super().__init__()
        op, n = type(self).__name__, self.ndim
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{op}: {name} must be an int >= 1, got {value!r}")
        check_groups(in_channels, out_channels, groups, op)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = positive_tuple(kernel_size, n, "kernel_size", op)
        self.stride = positive_tuple(stride, n, "stride", op)
        self.dilation = positive_tuple(dilation, n, "dilation", op)
        pads = normalize_padding(padding, n, op)
        if self.transposed and pads == "same":
            raise ValueError(f"{op}: padding='same' is not defined for transposed convolution")
        # keep torch's spelling for the symmetric case so repr/state match torch.nn
        self.padding = (
            padding.lower()
            if isinstance(padding, str)
            else tuple(b for b, _ in pads) if all(b == a for b, a in pads) else pads
        )
        self.output_padding = ntuple(output_padding, n, "output_padding", op)
        if self.transposed:
            for o, s, d in zip(self.output_padding, self.stride, self.dilation):
                if o < 0 or (o >= s and o >= d):
                    raise ValueError(
                        f"{op}: output_padding ({self.output_padding}) must be smaller than "
                        f"stride ({self.stride}) or dilation ({self.dilation}) in every dim"
                    )
        self.padding_mode = check_choice(
            padding_mode, ("zeros",) if self.transposed else PADDING_MODES, "padding_mode", op
        )
        self.flip = bool(flip)
        self.algorithm = check_choice(algorithm, available_algorithms(), "algorithm", op)
        factory = {"device": device, "dtype": dtype}
        shape = (
            (in_channels, out_channels // groups) if self.transposed else (out_channels, in_channels // groups)
        )
        self.weight = nn.Parameter(torch.empty(*shape, *self.kernel_size, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    @property
    def effective_kernel_size(self) -> tuple[int, ...]:
        """Extent of the dilated (atrous) kernel per dim: ``dilation*(kernel_size - 1) + 1``.

        >>> Conv2d(1, 1, 3, dilation=2).effective_kernel_size
        (5, 5)
        """
        return tuple(arithmetic.effective_kernel_size(k, d) for k, d in zip(self.kernel_size, self.dilation))

    def reset_parameters(self) -> None:
        """torch.nn's initialisation, call for call, so equal seeds give equal weights."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            if fan_in:
                bound = 1 / math.sqrt(fan_in)
                nn.init.uniform_(self.bias, -bound, bound)

    def fuse(self, bn: nn.Module) -> "_ConvNd":
        """A new conv equal to ``bn(self(x))`` in inference (batch norm folded into the weights).

        See :func:`convolab.nn.fuse_conv_bn`.
        """
        from .fuse import fuse_conv_bn  # fuse imports this module

        return fuse_conv_bn(self, bn)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        defaults = {
            "padding": (0,) * self.ndim,
            "dilation": (1,) * self.ndim,
            "output_padding": (0,) * self.ndim,
            "groups": 1,
            "padding_mode": "zeros",
            "flip": False,
            "algorithm": "auto",
        }
        for name, default in defaults.items():
            value = getattr(self, name)
            if value != default:
                s += f", {name}={value!r}"
        if self.bias is None:
            s += ", bias=False"
        return s


class _Conv(_ConvNd):
    def forward(self, input: Tensor) -> Tensor:
        return conv(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            padding_mode=self.padding_mode,
            flip=self.flip,
            algorithm=self.algorithm,
            _op=type(self).__name__,
        )


class _ConvTranspose(_ConvNd):
    transposed = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrTuple,
        stride: IntOrTuple = 1,
        padding: Any = 0,
        output_padding: IntOrTuple = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: IntOrTuple = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
        *,
        algorithm: str = "auto",
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
            padding_mode, device, dtype, output_padding=output_padding, algorithm=algorithm,
        )

    def forward(self, input: Tensor, output_size: Optional[Sequence[int]] = None) -> Tensor:
        return conv_transpose(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.output_padding,
            self.groups,
            self.dilation,
            output_size=output_size,
            algorithm=self.algorithm,
            _op=type(self).__name__,
        )


class Conv1d(_Conv):
    """1-D convolution module; see :func:`convolab.functional.conv` for the contract.

    Shape:
        input ``[N, C_in, L]`` -> output ``[N, C_out, L_out]``.
    """

    ndim = 1


class Conv2d(_Conv):
    """2-D convolution module, drop-in for ``torch.nn.Conv2d``; see :func:`convolab.functional.conv`.

    Shape:
        input ``[N, C_in, H, W]`` -> output ``[N, C_out, H_out, W_out]`` with
        ``H_out = floor((H + before + after - dilation*(kH - 1) - 1) / stride) + 1``.

    Example:
        >>> Conv2d(3, 2, 3, stride=2, padding="same")(torch.randn(1, 3, 10, 11)).shape
        torch.Size([1, 2, 5, 6])
    """

    ndim = 2


class Conv3d(_Conv):
    """3-D convolution module; see :func:`convolab.functional.conv`.

    Shape:
        input ``[N, C_in, D, H, W]`` -> output ``[N, C_out, D_out, H_out, W_out]``.
    """

    ndim = 3


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution; see :func:`convolab.functional.conv_transpose`."""

    ndim = 1


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution, drop-in for ``torch.nn.ConvTranspose2d``.

    Shape:
        ``H_out = (H - 1)*stride - 2*padding + dilation*(kH - 1) + output_padding + 1``.

    Example:
        >>> ConvTranspose2d(4, 2, 4, stride=2, padding=1)(torch.randn(1, 4, 7, 7)).shape
        torch.Size([1, 2, 14, 14])
    """

    ndim = 2


class ConvTranspose3d(_ConvTranspose):
    """3-D transposed convolution; see :func:`convolab.functional.conv_transpose`."""

    ndim = 3
