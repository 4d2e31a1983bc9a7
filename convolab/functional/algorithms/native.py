"""``"native"``: torch's own convolution kernels (oneDNN on CPU), after padding is resolved."""

from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from .._windows import dilate, pad_pairs
from . import Problem, register_algorithm

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


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
        padding = p.symmetric_padding
        if padding is None:
            x, padding = pad_pairs(x, p.padding), 0
        return _CONV[p.ndim](x, weight, bias, p.stride, padding, p.dilation, p.groups)

    def _transposed(self, x: Tensor, weight: Tensor, bias: Optional[Tensor], p: Problem) -> Tensor:
        if any(s != 1 for s in p.stride):  # not produced by the public ops; stay correct anyway
            x = pad_pairs(dilate(x, p.input_dilation), p.padding)
            return _CONV[p.ndim](x, weight, bias, p.stride, 0, p.dilation, p.groups)
        return self.run_transposed(x, transposed_weight(weight, p.groups), bias, p)

    def run_transposed(self, x: Tensor, wt: Tensor, bias: Optional[Tensor], p: Problem) -> Tensor:
        """The problem of a transposed conv, with its weight in torch's transposed layout
        ``[C_in, C_out/groups, *k]`` (what ``conv_transpose`` was given): torch's own kernel."""
        full = [d * (k - 1) for k, d in zip(p.kernel, p.dilation)]
        # conv_transpose(padding=q, output_padding=o) equals zero insertion, then padding
        # (full - q, full - q + o), then conv with the flipped weight.
        q = [f - b for f, (b, _) in zip(full, p.padding)]
        o = [a - b for b, a in p.padding]
        if all(qq >= 0 for qq in q) and all(0 <= oo < max(s, d) for oo, s, d in zip(o, p.input_dilation, p.dilation)):
            return _CONV_T[p.ndim](x, wt, bias, p.input_dilation, q, o, p.groups, p.dilation)
        # Otherwise compute with the largest symmetric crop torch accepts and finish by hand.
        qs = [max(min(f - b, f - a), 0) for f, (b, a) in zip(full, p.padding)]
        y = _CONV_T[p.ndim](x, wt, None, p.input_dilation, qs, 0, p.groups, p.dilation)
        y = pad_pairs(y, [(b - (f - qq), a - (f - qq)) for f, qq, (b, a) in zip(full, qs, p.padding)])
        if bias is not None:
            y = y + bias.view(-1, *([1] * p.ndim))
        return y


register_algorithm(Native())
