"""``"im2col"``: unfold every window into a column matrix, then one GEMM (the classic vectorisation).

Works for 1, 2 and 3 spatial dims through the shared windowing view. The column
buffer holds ``N * prod(out) * C_in * prod(k)`` elements.

Numerics: an input NaN or +-Inf reaches exactly the outputs torch's kernels reach, and each
output's error has native's form, ``gamma_K sum_t |w_t| |x_(p+t)|`` (another summation
order). torch's oneDNN kernels skip padding and the zeros of transposed convs (its fallback
kernels, for small or float64 problems, multiply them); this algorithm materialises the zero
padding and the inserted zeros in its columns, so a NaN or +-Inf *weight* also meets those
zeros: ``Inf * 0 = NaN`` on the outputs whose windows overlap the padding, and on every
output of its channel in a transposed conv with a stride (oneDNN: +-Inf or finite there). So
"auto" uses it only with finite weights.
"""

from __future__ import annotations

import math
from typing import Optional

from torch import Tensor

from .._windows import dilate, pad_pairs, windows
from .registry import Problem, register_algorithm
from ._machine import itemsize
from ._numerics import FINITE_WEIGHTS, NATIVE, no_implicit_zeros


class Im2col:
    name = "im2col"
    requirement = ""

    def supports(self, p: Problem) -> bool:
        return True

    def workspace(self, p: Problem, backward: bool) -> float:
        # the column matrix: every window of every output position
        columns = p.batch * p.in_channels * math.prod(p.output_size) * math.prod(p.kernel) * itemsize(p)
        return columns * (2 if backward else 1)

    def numerics(self, p: Problem) -> str:
        return NATIVE if no_implicit_zeros(p) else FINITE_WEIGHTS

    def run(self, x: Tensor, weight: Tensor, bias: Optional[Tensor], p: Problem) -> Tensor:
        x = pad_pairs(dilate(x, p.input_dilation), p.padding)
        n, g, nd = x.shape[0], p.groups, p.ndim
        cg, og = p.in_channels // g, p.out_channels // g
        length, taps = 1, 1
        for o, k in zip(p.output_size, p.kernel):
            length, taps = length * o, taps * k
        cols = windows(x, p.kernel, p.stride, p.dilation)  # [N, C, *out, *k] (a view)
        cols = cols.reshape(n, g, cg, *p.output_size, *p.kernel)
        # -> [N, g, *out, C/g, *k] -> [N, g, L, C/g * K]: the column matrix
        order = (0, 1, *range(3, 3 + nd), 2, *range(3 + nd, 3 + 2 * nd))
        cols = cols.permute(order).reshape(n, g, length, cg * taps)
        w = weight.reshape(g, og, cg * taps)
        if cg * og == 1:  # depthwise: g tiny GEMMs of inner size 1 are far slower than multiply-sum
            out = (cols * w.reshape(g, 1, taps)).sum(-1, keepdim=True)
        else:
            out = cols @ w.transpose(1, 2)  # [N, g, L, O/g]
        out = out.transpose(2, 3).reshape(n, p.out_channels, *p.output_size)
        if bias is not None:
            out = out + bias.view(-1, *([1] * nd))
        return out


register_algorithm(Im2col())
