"""``"direct"``: the definition, vectorised — a sum over kernel taps of strided input slices.

No column buffer: the working set is one output-sized slice per tap.

Numerics: an input NaN or +-Inf reaches exactly the outputs torch's kernels reach, and each
output's error has native's form, ``gamma_K sum_t |w_t| |x_(p+t)|`` (another summation
order). torch's oneDNN kernels skip padding and the zeros of transposed convs (its fallback
kernels, for small or float64 problems, multiply them); this algorithm materialises the zero
padding and the inserted zeros, so a NaN or +-Inf *weight* also meets those zeros: ``Inf * 0
= NaN`` on the outputs whose windows overlap the padding, and on every output of its channel
in a transposed conv with a stride (oneDNN: +-Inf or finite there). So "auto" uses it only
with finite weights.
"""

from __future__ import annotations

import itertools
import math
from typing import Optional

from torch import Tensor

from .._windows import dilate, pad_pairs
from .registry import Problem, register_algorithm
from ._machine import bytes_in, bytes_out
from ._numerics import FINITE_WEIGHTS, NATIVE, no_implicit_zeros


class Direct:
    name = "direct"
    requirement = ""

    def supports(self, p: Problem) -> bool:
        return True

    def workspace(self, p: Problem, backward: bool) -> float:
        # the padded input, a product per tap and the sum; autograd keeps every tap's slice
        taps = math.prod(p.kernel)
        return bytes_in(p) * math.prod(p.input_dilation) + 2 * bytes_out(p) + (
            taps * bytes_out(p) * p.in_channels / max(p.out_channels, 1) if backward else 0
        )

    def numerics(self, p: Problem) -> str:
        return NATIVE if no_implicit_zeros(p) else FINITE_WEIGHTS

    def run(self, x: Tensor, weight: Tensor, bias: Optional[Tensor], p: Problem) -> Tensor:
        x = pad_pairs(dilate(x, p.input_dilation), p.padding)
        n, g = x.shape[0], p.groups
        cg, og = p.in_channels // g, p.out_channels // g
        length = 1
        for o in p.output_size:
            length *= o
        w = weight.reshape(g, og, cg, -1)  # [g, O/g, C/g, taps]
        acc = None
        for t, tap in enumerate(itertools.product(*(range(k) for k in p.kernel))):
            index = tuple(
                slice(i * d, i * d + (o - 1) * s + 1, s)
                for i, d, s, o in zip(tap, p.dilation, p.stride, p.output_size)
            )
            xs = x[(Ellipsis, *index)].reshape(n, g, cg, length)
            wt = w[..., t]
            # depthwise (one input channel per group) is a broadcast multiply, not a GEMM
            term = xs * wt if cg == 1 else wt @ xs
            acc = term if acc is None else acc + term
        out = acc.reshape(n, p.out_channels, *p.output_size)
        if bias is not None:
            out = out + bias.view(-1, *([1] * p.ndim))
        return out


register_algorithm(Direct())
