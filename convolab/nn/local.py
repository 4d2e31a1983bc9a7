"""Locally connected modules: a conv's windows, a separate filter bank at every output position.

Thin holders of parameters over :func:`convolab.functional.locally_connected` (the maths and
the layout live there). torch has no such layer to subclass; the arguments are a conv's, plus
the spatial ``input_size`` the layer is built for, since its weights belong to one grid of
output positions.
"""

from __future__ import annotations

import math
from typing import Any, List, Tuple

import torch
from torch import Tensor, nn

from .. import arithmetic
from .._args import IntOrTuple, positive_tuple
from ..functional.local import _layout, locally_connected, local_nd
from ._base import conv_spec, repr_arguments

__all__ = ["LocallyConnected1d", "LocallyConnected2d", "LocallyConnected3d"]



class _LocallyConnectedNd(nn.Module):
    """Shared logic; subclasses only set ``ndim``."""

    ndim = 2
    __jit_unused_properties__ = ["effective_kernel_size"]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrTuple,
        input_size: IntOrTuple,
        stride: IntOrTuple = 1,
        padding: Any = 0,
        dilation: IntOrTuple = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        op = type(self).__name__
        spec = conv_spec(op, self.ndim, in_channels, out_channels, kernel_size, stride, padding, dilation, 1,
                         padding_mode)
        self.in_channels, self.out_channels = spec.in_channels, spec.out_channels
        self.kernel_size, self.stride, self.dilation = spec.kernel_size, spec.stride, spec.dilation
        self.padding_mode = spec.padding_mode
        self.input_size = positive_tuple(input_size, self.ndim, "input_size", op)
        pairs = arithmetic.resolve_padding(padding, self.input_size, self.kernel_size, self.stride, self.dilation, op=op)
        self.output_size = tuple(
            arithmetic.conv_output_size(i, k, s, p, d, op=op, dim=j + 2)
            for j, (i, k, s, p, d) in enumerate(zip(self.input_size, self.kernel_size, self.stride, pairs, self.dilation))
        )
        self.padding = spec.shown_padding(padding)
        # the TorchScript forward's typed copy of the per-side padding (static: the size is fixed)
        self._pairs: List[Tuple[int, int]] = [(int(b), int(a)) for b, a in pairs]
        self._name = op
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(*self.output_size, self.out_channels, self.in_channels,
                                               *self.kernel_size, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_channels, *self.output_size, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Each position's filters as ``torch.nn.Conv`` initialises its one bank: uniform in
        ``+-1/sqrt(fan_in)`` (Kaiming-uniform with ``a=sqrt(5)``), ``fan_in = C_in * prod(kernel)``."""
        bound = 1 / math.sqrt(self.in_channels * math.prod(self.kernel_size))
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    @property
    def effective_kernel_size(self) -> tuple[int, ...]:
        """Extent of the dilated kernel per dim: ``dilation*(kernel_size - 1) + 1``."""
        return tuple(arithmetic.effective_kernel_size(k, d) for k, d in zip(self.kernel_size, self.dilation))

    def forward(self, input: Tensor) -> Tensor:
        if torch.jit.is_scripting():
            nd = len(self.kernel_size)
            unbatched = input.dim() == nd + 1
            x = input.unsqueeze(0) if unbatched else input
            y = local_nd(x, self.weight, self.bias, [s for s in self.stride], self._pairs,
                         [d for d in self.dilation], self.padding_mode, 0)
            return y.squeeze(0) if unbatched else y
        return locally_connected(
            input, self.weight, self.bias, self.stride, self._pairs, self.dilation,
            padding_mode=self.padding_mode, _op=self._name, _input_size=self.input_size,
        )

    def extra_repr(self) -> str:
        n = self.ndim
        head = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"input_size={self.input_size}, stride={self.stride}")
        defaults = {"padding": (0,) * n, "dilation": (1,) * n, "padding_mode": "zeros"}
        return repr_arguments(self, defaults, head) + f", output_size={self.output_size}"


_SHAPE = """
    Shape:
        input ``{inp}`` -> output ``{out}``, the conv's output size
        (``out = floor((in + before + after - dilation*(k - 1) - 1) / stride) + 1``).
        ``weight``: ``{layout}``, one ``[C_out, C_in, *kernel]`` filter bank per output position;
        ``bias``: ``[C_out, *out]``. Parameters: ``prod(out) * (prod(kernel)*C_in + 1) * C_out``
        (:func:`convolab.arithmetic.locally_connected_params`).
"""


class LocallyConnected1d(_LocallyConnectedNd):
    ndim = 1
    __doc__ = ("1-D locally connected layer; see :class:`LocallyConnected2d` and "
               ":func:`convolab.functional.locally_connected`.\n"
               + _SHAPE.format(inp="[N, C_in, L]", out="[N, C_out, L_out]", layout=_layout(1)))


class LocallyConnected2d(_LocallyConnectedNd):
    ndim = 2
    __doc__ = ("""2-D locally connected layer: convolution's locality without weight sharing.

    Arguments as :class:`convolab.nn.Conv2d` (every padding form; no groups), plus
    ``input_size`` ``(H, W)``: the layer owns one filter bank per output position, so it is
    built for one input size (a different size is refused with the one it was built for).
    The maths: :func:`convolab.functional.locally_connected`.
""" + _SHAPE.format(inp="[N, C_in, H, W]", out="[N, C_out, H_out, W_out]", layout=_layout(2)) + """
    Example:
        >>> m = LocallyConnected2d(1, 4, 3, input_size=28)
        >>> m(torch.randn(2, 1, 28, 28)).shape, m.weight.shape, sum(p.numel() for p in m.parameters())
        (torch.Size([2, 4, 26, 26]), torch.Size([26, 26, 4, 1, 3, 3]), 27040)
""")


class LocallyConnected3d(_LocallyConnectedNd):
    ndim = 3
    __doc__ = ("3-D locally connected layer; see :class:`LocallyConnected2d` and "
               ":func:`convolab.functional.locally_connected`.\n"
               + _SHAPE.format(inp="[N, C_in, D, H, W]", out="[N, C_out, D_out, H_out, W_out]", layout=_layout(3)))
