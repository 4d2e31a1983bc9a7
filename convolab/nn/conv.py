"""Convolution modules: ``torch.nn.Conv*d`` / ``ConvTranspose*d`` with every padding form.

Each class subclasses the matching torch class (as timm's ``Conv2dSame`` subclasses
``nn.Conv2d``): ``isinstance(m, torch.nn.Conv2d)`` holds, argument names, defaults, parameter
shapes, initialisation and ``state_dict`` keys are torch's, so torch weights load unchanged
and tools that walk a model for ``nn.Conv2d`` (init, fusion, FLOP counters) see these layers.
What they add: every padding form of :func:`convolab.functional.conv` (per-side pairs, "same"
with any stride), ``flip`` and ``algorithm``. What ``.padding`` holds is described in
:mod:`convolab.nn._base`. The maths lives on the functional ops.

``dtype`` (like torch's) is None or a floating dtype, checked at construction (convolab's
dtype rule: :mod:`convolab.functional._checks`).

Under ``torch.jit.script`` the modules run :mod:`convolab.functional._lowered` (torch's own
kernels); everywhere else the functional op, which picks an algorithm in eager mode.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import torch
from torch import Tensor, nn

from .. import arithmetic
from .._args import IntOrTuple
from ..functional._lowered import flat_padding, flip_kernel, native_conv, native_conv_transpose, same_pairs
from ..functional._checks import check_module_dtype
from ..functional.algorithms import check_algorithm
from ..functional.convolution import conv, conv_transpose
from ._base import conv_spec, repr_arguments
from .fuse import fuse_conv_bn

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]



class _ConvNd(nn.modules.conv._ConvNd):
    """Shared logic of every conv module; subclasses only set ``ndim`` (and ``transposed``)."""

    ndim = 2
    transposed = False
    __jit_unused_properties__ = ["effective_kernel_size"]  # Python-side only: not for TorchScript

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
        op = type(self).__name__
        check_module_dtype(op, dtype)  # torch's own check comes later and names no module
        spec = conv_spec(
            op, self.ndim, in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
            padding_mode, output_padding, transposed=self.transposed,
        )
        torch_padding = spec.torch_padding(padding)
        nn.modules.conv._ConvNd.__init__(
            self, spec.in_channels, spec.out_channels, spec.kernel_size, spec.stride,
            torch_padding if torch_padding is not None else (0,) * self.ndim, spec.dilation, self.transposed,
            spec.output_padding, spec.groups, bias, spec.padding_mode, device, dtype,
        )
        self.padding = spec.shown_padding(padding)
        # what the TorchScript forward needs, typed for it: per-side pairs (zeros when 'same'
        # with a stride computes them from the input size) and that flag
        self._pairs: List[Tuple[int, int]] = list(spec.pairs)
        self._size_dependent = spec.size_dependent
        self._reversed_padding_repeated_twice = flat_padding(self._pairs)
        self.flip = bool(flip)
        self.algorithm = check_algorithm(algorithm, op)
        self._name = op

    @property
    def effective_kernel_size(self) -> tuple[int, ...]:
        """Extent of the dilated (atrous) kernel per dim: ``dilation*(kernel_size - 1) + 1``.

        >>> Conv2d(1, 1, 3, dilation=2).effective_kernel_size
        (5, 5)
        """
        return tuple(arithmetic.effective_kernel_size(k, d) for k, d in zip(self.kernel_size, self.dilation))

    def fuse(self, bn: nn.Module) -> "_ConvNd":
        """A new conv equal to ``bn(self(x))`` in inference (batch norm folded into the weights).

        See :func:`convolab.nn.fuse_conv_bn`.
        """

        return fuse_conv_bn(self, bn)

    def _scripted_pairs(self, x: Tensor) -> List[Tuple[int, int]]:
        if self._size_dependent:
            return same_pairs(x.shape[2:], [k for k in self.kernel_size], [s for s in self.stride],
                              [d for d in self.dilation])
        return self._pairs

    def extra_repr(self) -> str:
        n = self.ndim
        defaults = {
            "padding": (0,) * n, "dilation": (1,) * n, "output_padding": (0,) * n, "groups": 1,
            "padding_mode": "zeros", "flip": False, "algorithm": "auto",
        }
        return repr_arguments(self, defaults)


class _Conv(_ConvNd):
    def forward(self, input: Tensor) -> Tensor:
        if torch.jit.is_scripting():
            return self._scripted(input)
        return conv(
            input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
            padding_mode=self.padding_mode, flip=self.flip, algorithm=self.algorithm, _op=self._name,
        )

    def _scripted(self, input: Tensor) -> Tensor:
        nd = len(self.kernel_size)  # class attributes such as ndim do not exist in TorchScript
        unbatched = input.dim() == nd + 1
        x = input.unsqueeze(0) if unbatched else input
        pairs = self._scripted_pairs(x)
        weight = flip_kernel(self.weight) if self.flip else self.weight
        if self.padding_mode != "zeros":
            x = torch.nn.functional.pad(x, flat_padding(pairs), mode=self.padding_mode)
            pairs = [(0, 0)] * nd
        y = native_conv(x, weight, self.bias, [s for s in self.stride], pairs, [d for d in self.dilation], self.groups)
        return y.squeeze(0) if unbatched else y


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

    def forward(self, input: Tensor, output_size: Optional[List[int]] = None) -> Tensor:
        if torch.jit.is_scripting():
            return self._scripted(input, output_size)
        return conv_transpose(
            input, self.weight, self.bias, self.stride, self.padding, self.output_padding, self.groups,
            self.dilation, output_size=output_size, algorithm=self.algorithm, _op=self._name,
        )

    def _scripted(self, input: Tensor, output_size: Optional[List[int]]) -> Tensor:
        nd = len(self.kernel_size)
        unbatched = input.dim() == nd + 1
        x = input.unsqueeze(0) if unbatched else input
        general: List[Tuple[int, int]] = []
        for j in range(nd):
            b, a = self._pairs[j]
            full = self.dilation[j] * (self.kernel_size[j] - 1)
            extra = self.output_padding[j]
            if output_size is not None:  # torch's rule: the size asked for, within one stride
                size = output_size[len(output_size) - nd + j]
                extra = size - ((x.shape[2 + j] - 1) * self.stride[j] - b - a + full + 1)
            general.append((full - b, full - a + extra))
        y = native_conv_transpose(x, self.weight, self.bias, [s for s in self.stride], general,
                                  [d for d in self.dilation], self.groups)
        return y.squeeze(0) if unbatched else y


class Conv1d(_Conv, nn.Conv1d):
    """1-D convolution module, drop-in for ``torch.nn.Conv1d``; see :func:`convolab.functional.conv`.

    Shape:
        input ``[N, C_in, L]`` -> output ``[N, C_out, L_out]``.
    """

    ndim = 1


class Conv2d(_Conv, nn.Conv2d):
    """2-D convolution module, drop-in for ``torch.nn.Conv2d``; see :func:`convolab.functional.conv`.

    Shape:
        input ``[N, C_in, H, W]`` -> output ``[N, C_out, H_out, W_out]`` with
        ``H_out = floor((H + before + after - dilation*(kH - 1) - 1) / stride) + 1``.

    Example:
        >>> Conv2d(3, 2, 3, stride=2, padding="same")(torch.randn(1, 3, 10, 11)).shape
        torch.Size([1, 2, 5, 6])
        >>> isinstance(Conv2d(3, 2, 3), torch.nn.Conv2d)
        True
    """

    ndim = 2


class Conv3d(_Conv, nn.Conv3d):
    """3-D convolution module, drop-in for ``torch.nn.Conv3d``; see :func:`convolab.functional.conv`.

    Shape:
        input ``[N, C_in, D, H, W]`` -> output ``[N, C_out, D_out, H_out, W_out]``.
    """

    ndim = 3


class ConvTranspose1d(_ConvTranspose, nn.ConvTranspose1d):
    """1-D transposed convolution, drop-in for ``torch.nn.ConvTranspose1d``; see
    :func:`convolab.functional.conv_transpose`."""

    ndim = 1


class ConvTranspose2d(_ConvTranspose, nn.ConvTranspose2d):
    """2-D transposed convolution, drop-in for ``torch.nn.ConvTranspose2d``.

    Shape:
        ``H_out = (H - 1)*stride - 2*padding + dilation*(kH - 1) + output_padding + 1``.

    Example:
        >>> ConvTranspose2d(4, 2, 4, stride=2, padding=1)(torch.randn(1, 4, 7, 7)).shape
        torch.Size([1, 2, 14, 14])
    """

    ndim = 2


class ConvTranspose3d(_ConvTranspose, nn.ConvTranspose3d):
    """3-D transposed convolution, drop-in for ``torch.nn.ConvTranspose3d``; see
    :func:`convolab.functional.conv_transpose`."""

    ndim = 3
