"""``"gemm"``: a 1x1 convolution is a matrix product over channels, nothing else.

``out[n, o, p] = sum_c w[o, c] * x[n, c, p]`` for every position ``p``. In
channels-last memory the input already *is* the ``[N * positions, C]`` matrix,
so the whole conv is one GEMM and the result comes out channels-last with no
copy; in NCHW it is one batched GEMM ``w [O, C] @ x[n] [C, positions]``.
Either way the bias is fused into the GEMM (``addmm`` / ``baddbmm``). Stride
subsamples the input first (a 1x1 window never overlaps), padding and input
dilation are applied before, groups become a batch of GEMMs.

Numerics: an input NaN or +-Inf reaches exactly the outputs torch's kernels reach, and each
output's error has native's form, ``gamma_K sum_t |w_t| |x_(p+t)|`` (another summation
order). torch's oneDNN kernels skip padding and the zeros of transposed convs (its fallback
kernels, for small or float64 problems, multiply them); this algorithm materialises the zero
padding and the inserted zeros, so a NaN or +-Inf *weight* also meets those zeros: ``Inf * 0
= NaN`` on the padded border (outputs that read only padding), and on every output of its
channel in a transposed conv with a stride (oneDNN: +-Inf or finite there). So "auto" uses
it only with finite weights.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from .._windows import dilate, pad_pairs
from . import _machine
from .registry import Problem, register_algorithm
from ._machine import bytes_in, bytes_out
from ._numerics import FINITE_WEIGHTS, NATIVE, no_implicit_zeros


def _is_channels_last(x: Tensor) -> bool:
    """Whether the channel axis is the innermost one in memory (so ``[N*positions, C]`` is a view)."""
    return x.dim() >= 3 and x.shape[1] > 1 and x.movedim(1, -1).is_contiguous()


class Gemm:
    name = "gemm"
    requirement = "the gemm algorithm needs a 1x1 kernel (any stride, padding, groups)"

    def supports(self, p: Problem) -> bool:
        return all(k == 1 for k in p.kernel)

    def estimate(self, p: Problem, backward: bool) -> float:
        m = _machine.MACHINE
        seconds = p.macs / (0.8 * m.gemm_gmacs * 1e9) + (bytes_in(p) + bytes_out(p)) / (m.bandwidth_gbs * 1e9)
        return seconds * (9.0 if backward else 1)  # its autograd backward: batched GEMMs of expanded weights

    def workspace(self, p: Problem, backward: bool) -> float:
        # a padded, zero-inserted or subsampled copy of the input, when there is one
        reshaped = any(b or a for b, a in p.padding) or any(f > 1 for f in p.input_dilation)
        return bytes_in(p) * math.prod(p.input_dilation) if reshaped else 0.0

    def numerics(self, p: Problem) -> str:
        return NATIVE if no_implicit_zeros(p) else FINITE_WEIGHTS

    def run(self, x: Tensor, weight: Tensor, bias: Optional[Tensor], p: Problem) -> Tensor:
        x = pad_pairs(dilate(x, p.input_dilation), p.padding)
        if any(s > 1 for s in p.stride):
            x = x[(Ellipsis, *(slice(None, None, s) for s in p.stride))]
        n, c, out = x.shape[0], x.shape[1], tuple(x.shape[2:])
        o, g = p.out_channels, p.groups
        w = weight.reshape(o, c // g)
        if g == 1 and _is_channels_last(x):
            rows = x.movedim(1, -1).reshape(-1, c)  # a view: channels are contiguous
            y = rows @ w.t() if bias is None else torch.addmm(bias, rows, w.t())
            return y.view(n, *out, o).movedim(-1, 1)  # channels-last result, no copy
        cols = x.reshape(n, g, c // g, math.prod(out))  # [N, g, C/g, positions]
        wg = w.view(g, o // g, c // g)
        if g == 1:
            cols, length = cols[:, 0], cols.shape[-1]
            if bias is None:
                y = torch.matmul(wg[0], cols)
            else:
                y = torch.baddbmm(bias.view(1, o, 1).expand(n, o, length), wg.expand(n, o, c), cols)
        else:
            y = torch.matmul(wg, cols)  # [N, g, O/g, positions]
            if bias is not None:
                y = y + bias.view(1, g, o // g, 1)
        return y.reshape(n, o, *out)


register_algorithm(Gemm())
