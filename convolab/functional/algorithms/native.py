"""``"native"``: torch's own convolution kernels (oneDNN on CPU), after padding is resolved."""

from __future__ import annotations

from typing import Optional

from torch import Tensor

from .._lowered import conv_nd, native_conv, native_conv_transpose
from .._windows import dilate, pad_pairs
from . import Problem, register_algorithm



def transposed_weight(weight: Tensor, groups: int) -> Tensor:
    """Map a conv weight ``[C_out, C_in/g, *k]`` to the transposed-conv weight ``[C_in, C_out/g, *k]``
    that computes the same map on a zero-inserted input, and back (the map is an involution).

    It swaps the two channel axes within each group and flips the kernel in every spatial dim.
    """
    c0, c1, *k = weight.shape
    w = weight.reshape(groups, c0 // groups, c1, *k).transpose(1, 2).reshape(c1 * groups, c0 // groups, *k)
    return w.flip(list(range(2, weight.dim())))


class Native:
    name = "native"
    requirement = ""

    def supports(self, p: Problem) -> bool:
        return True

    def run(self, x: Tensor, weight: Tensor, bias: Optional[Tensor], p: Problem) -> Tensor:
        if any(f > 1 for f in p.input_dilation):
            return self._transposed(x, weight, bias, p)
        return native_conv(x, weight, bias, p.stride, p.padding, p.dilation, p.groups)

    def _transposed(self, x: Tensor, weight: Tensor, bias: Optional[Tensor], p: Problem) -> Tensor:
        if any(s != 1 for s in p.stride):  # not produced by the public ops; stay correct anyway
            x = pad_pairs(dilate(x, p.input_dilation), p.padding)
            return conv_nd(x, weight, bias, p.stride, [0] * p.ndim, p.dilation, p.groups)
        return self.run_transposed(x, transposed_weight(weight, p.groups), bias, p)

    def run_transposed(self, x: Tensor, wt: Tensor, bias: Optional[Tensor], p: Problem) -> Tensor:
        """The problem of a transposed conv, with its weight in torch's transposed layout
        ``[C_in, C_out/groups, *k]`` (what ``conv_transpose`` was given): torch's own kernel."""
        return native_conv_transpose(x, wt, bias, p.input_dilation, p.padding, p.dilation, p.groups)


register_algorithm(Native())
