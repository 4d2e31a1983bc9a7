"""Deformable convolution modules (v1 and v2, 1-3 spatial dims); the maths is on
:func:`convolab.functional.deform_conv`.

- ``DeformConv1d/2d/3d`` (v1) and ``ModulatedDeformConv1d/2d/3d`` (v2) own their
  offset (and mask) predictor: a regular conv with the same kernel, stride,
  padding and dilation, initialised to zero, so a fresh module computes exactly
  the regular convolution (v1) or half of it plus the bias (v2: the mask starts
  at sigmoid(0) = 0.5, as in DCNv2).
- ``PlainDeformConv1d/2d/3d`` take ``offset`` (and optionally ``mask``) as forward
  inputs, like torchvision's ``ops.DeformConv2d`` (same parameters and
  ``state_dict`` keys ``weight``, ``bias``).

The forward is plain tensor code around one call of the ``convolab::deform_conv``
custom op, so the modules compile in one graph, export (also to ONNX ``DeformConv``),
trace, vmap and autocast. For ``torch.fx.symbolic_trace`` the functional op is a leaf
(``torch.fx.wrap``): the graph shows one ``deform_conv`` call per module.
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Tuple

import torch
from torch import Tensor, nn

from .._args import IntOrTuple, check_choice, positive_int
from ..functional._lowered import same_pairs
from ..functional.deform import DEFORM_ALGORITHMS, deform_conv
from ._base import conv_spec, repr_arguments
from .conv import Conv1d, Conv2d, Conv3d

# fx leaves: symbolic tracing records one call instead of tracing the op's argument checks
torch.fx.wrap("deform_conv")

__all__ = [
    "DeformConv1d",
    "DeformConv2d",
    "DeformConv3d",
    "ModulatedDeformConv1d",
    "ModulatedDeformConv2d",
    "ModulatedDeformConv3d",
    "PlainDeformConv1d",
    "PlainDeformConv2d",
    "PlainDeformConv3d",
]

_CONVS = {1: Conv1d, 2: Conv2d, 3: Conv3d}


class _DeformConvNd(nn.Module):
    """Shared logic; subclasses set ``ndim``, ``predicts`` (own the offset conv) and ``modulated``.

    The arguments are checked as every conv module's (:func:`convolab.nn._base.conv_spec`).
    Under ``torch.jit.script`` the forward calls the ``convolab::deform_conv`` custom op
    directly (its autograd, autocast and vmap rules come with it).
    """

    ndim = 2
    predicts = True
    modulated = False

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
        offset_groups: int = 1,
        device: Any = None,
        dtype: Any = None,
        *,
        algorithm: str = "auto",
    ) -> None:
        super().__init__()
        op, n = type(self).__name__, self.ndim
        spec = conv_spec(op, n, in_channels, out_channels, kernel_size, stride, padding, dilation, groups)
        self.offset_groups = positive_int(offset_groups, "offset_groups", op)
        if in_channels % offset_groups:
            raise ValueError(f"{op}: offset_groups ({offset_groups}) must divide in_channels ({in_channels})")
        self.in_channels, self.out_channels, self.groups = spec.in_channels, spec.out_channels, spec.groups
        self.kernel_size, self.stride, self.dilation = spec.kernel_size, spec.stride, spec.dilation
        self.padding = spec.shown_padding(padding)
        self.algorithm = check_choice(algorithm, DEFORM_ALGORITHMS, "algorithm", op)
        # what the TorchScript forward needs, typed for it (as the conv modules keep)
        self._pairs: List[Tuple[int, int]] = list(spec.pairs)
        self._size_dependent = spec.size_dependent
        self._taps = math.prod(self.kernel_size) * self.offset_groups  # offsets per position, per dim
        self._modulated = self.modulated  # class attributes do not exist in TorchScript
        self._name = op
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels, **factory))
        else:
            self.register_parameter("bias", None)
        self._reset_weight()  # before the predictor exists, so equal seeds give torch.nn.Conv's weights
        if self.predicts:
            self.conv_offset = _CONVS[n](
                in_channels, self._taps * (n + (1 if self.modulated else 0)), self.kernel_size, self.stride,
                self.padding, self.dilation, bias=True, **factory,
            )  # fmt: skip
            self._reset_predictor()

    def reset_parameters(self) -> None:
        """torch.nn's conv initialisation for the weight; zeros for the offset (and mask) predictor."""
        self._reset_weight()
        self._reset_predictor()

    def _reset_weight(self) -> None:
        # torch.nn.Conv's initialisation, call for call
        nn.modules.conv._ConvNd.reset_parameters(self)  # type: ignore[arg-type]

    def _reset_predictor(self) -> None:
        if self.predicts:
            nn.init.zeros_(self.conv_offset.weight)
            nn.init.zeros_(self.conv_offset.bias)

    def _deform(self, input: Tensor, offset: Tensor, mask: Optional[Tensor]) -> Tensor:
        if torch.jit.is_scripting():
            return self._scripted(input, offset, mask)
        return deform_conv(
            input, offset, self.weight, self.bias, mask=mask, stride=self.stride, padding=self.padding,
            dilation=self.dilation, groups=self.groups, offset_groups=self.offset_groups,
            algorithm=self.algorithm, _op=self._name,
        )  # fmt: skip

    def _scripted(self, input: Tensor, offset: Tensor, mask: Optional[Tensor]) -> Tensor:
        nd = len(self.kernel_size)
        unbatched = input.dim() == nd + 1
        if unbatched:
            input, offset = input.unsqueeze(0), offset.unsqueeze(0)
            if mask is not None:
                mask = mask.unsqueeze(0)
        pairs = self._pairs
        if self._size_dependent:
            pairs = same_pairs(input.shape[2:], [k for k in self.kernel_size], [s for s in self.stride],
                               [d for d in self.dilation])
        pads = [b for b, _ in pairs] + [a for _, a in pairs]  # the op takes ONNX's order
        out = torch.ops.convolab.deform_conv(
            input, offset, mask, self.weight, self.bias, [s for s in self.stride], pads,
            [d for d in self.dilation], self.groups, self.offset_groups,
        )  # fmt: skip
        return out.squeeze(0) if unbatched else out

    def forward(self, input: Tensor) -> Tensor:
        pred = self.conv_offset(input)
        nd = len(self.kernel_size)
        # the channel dim counted from the end serves batched and unbatched input alike, and
        # needs no branch on input.dim() (tracers that cannot branch on values follow it)
        ch = -nd - 1
        offset = pred.narrow(ch, 0, nd * self._taps)
        mask = torch.sigmoid(pred.narrow(ch, nd * self._taps, self._taps)) if self._modulated else None
        return self._deform(input, offset, mask)

    def extra_repr(self) -> str:
        n = self.ndim
        return repr_arguments(
            self, {"padding": (0,) * n, "dilation": (1,) * n, "groups": 1, "offset_groups": 1, "algorithm": "auto"}
        )


class _PlainDeformConvNd(_DeformConvNd):
    predicts = False

    def forward(self, input: Tensor, offset: Tensor, mask: Optional[Tensor] = None) -> Tensor:  # type: ignore[override]
        return self._deform(input, offset, mask)


class DeformConv1d(_DeformConvNd):
    """1-D deformable conv v1 with its own zero-initialised offset predictor.

    Shape:
        input ``[N, C_in, L]`` -> output ``[N, C_out, L_out]``; see :func:`convolab.functional.deform_conv`.
    """

    ndim = 1


class DeformConv2d(_DeformConvNd):
    """2-D deformable conv v1 (Dai et al., 2017) with its own offset predictor (``conv_offset``).

    ``forward(x)`` predicts ``offset = conv_offset(x)`` (``2*offset_groups*kH*kW`` channels,
    (dy, dx) per tap) and returns ``deform_conv(x, offset, weight, bias, ...)``. A fresh
    module equals ``Conv2d`` with the same weight and bias.

    Shape:
        input ``[N, C_in, H, W]`` -> output ``[N, C_out, H_out, W_out]`` with the regular
        conv's ``H_out = floor((H + before + after - dilation*(kH - 1) - 1) / stride) + 1``.

    Example:
        >>> DeformConv2d(4, 8, 3, padding=1)(torch.randn(2, 4, 9, 9)).shape
        torch.Size([2, 8, 9, 9])
    """

    ndim = 2


class DeformConv3d(_DeformConvNd):
    """3-D deformable conv v1 with its own offset predictor ((dz, dy, dx) per tap).

    Shape:
        input ``[N, C_in, D, H, W]`` -> output ``[N, C_out, D_out, H_out, W_out]``.
    """

    ndim = 3


class ModulatedDeformConv1d(_DeformConvNd):
    """1-D deformable conv v2: own offset and mask predictor, mask = sigmoid (0.5 when fresh)."""

    ndim = 1
    modulated = True


class ModulatedDeformConv2d(_DeformConvNd):
    """2-D deformable conv v2 (Zhu et al., 2019): predicts offsets and a sigmoid modulation mask.

    ``conv_offset`` outputs ``3*offset_groups*kH*kW`` channels: the offsets, then the
    mask logits. Both start at zero, so a fresh module is half the regular conv plus the bias.

    Example:
        >>> ModulatedDeformConv2d(4, 8, 3, stride=2, padding=1)(torch.randn(1, 4, 9, 9)).shape
        torch.Size([1, 8, 5, 5])
    """

    ndim = 2
    modulated = True


class ModulatedDeformConv3d(_DeformConvNd):
    """3-D deformable conv v2 with its own offset and mask predictor."""

    ndim = 3
    modulated = True


class PlainDeformConv1d(_PlainDeformConvNd):
    """1-D deformable conv taking ``forward(input, offset, mask=None)``."""

    ndim = 1


class PlainDeformConv2d(_PlainDeformConvNd):
    """2-D deformable conv taking ``forward(input, offset, mask=None)``, like torchvision's ``DeformConv2d``.

    Example:
        >>> m = PlainDeformConv2d(4, 8, 3, padding=1)
        >>> m(torch.randn(2, 4, 9, 9), torch.zeros(2, 18, 9, 9), torch.ones(2, 9, 9, 9)).shape
        torch.Size([2, 8, 9, 9])
    """

    ndim = 2


class PlainDeformConv3d(_PlainDeformConvNd):
    """3-D deformable conv taking ``forward(input, offset, mask=None)``."""

    ndim = 3
