"""``"native"``: torch's own convolution kernels (oneDNN on CPU), after padding is resolved."""

from __future__ import annotations

import math
from typing import Optional

from torch import Tensor

from .._lowered import conv_nd, native_conv, native_conv_transpose
from .._windows import dilate, pad_pairs
from . import _machine
from .._common import transposed_weight
from .registry import Problem, register_algorithm
from ._machine import bytes_in, bytes_out
from ._numerics import NATIVE


def native_seconds(p: Problem, channels_last: bool, backward: bool) -> float:
    """Predicted seconds of torch's own kernels on ``p``, in NCHW or channels-last memory
    (conversions counted when the input is not already in that layout)."""
    m = _machine.MACHINE
    macs = p.macs / math.prod(p.input_dilation)  # torch's transposed conv skips inserted zeros
    taps = math.prod(p.kernel)
    cg = p.in_channels // p.groups
    if cg == 1:  # depthwise-like: memory-bound, and NCHW kernels degrade with large kernels
        if channels_last:
            rate = m.depthwise_cl_efficiency * m.gemm_gmacs
        else:
            rate = m.depthwise_efficiency * m.gemm_gmacs
            if max(p.kernel) > m.depthwise_width:
                rate *= min(1.0, 49 / taps)
        # torch's depthwise backward is far slower than its forward; in channels-last it
        # keeps growing with the kernel (the weight gradient)
        grad_factor = 2 + (taps / 8 if channels_last else min(taps, 81) / 2.5)
    elif p.groups > 1:  # grouped (ResNeXt): few channels per group make short GEMMs
        rate = (m.grouped_cl_efficiency if channels_last else m.grouped_efficiency) * m.gemm_gmacs
        grad_factor = m.cl_grad_factor if channels_last else 2.0
    else:
        rate = m.dense_efficiency * m.gemm_gmacs
        if channels_last and any(d > 1 for d in p.input_dilation):
            rate *= m.transposed_cl_gain
        elif channels_last and p.channels_last:
            rate *= m.dense_cl_gain
        grad_factor = m.cl_grad_factor if channels_last else 2.0
    # no extra memory passes for NCHW 1x1 convs: on a quiet machine native 1x1 runs at 76-94%
    # of matmul peak and beats gemm/native_cl
    seconds = macs / (rate * 1e9) + (bytes_in(p) + bytes_out(p)) / (m.bandwidth_gbs * 1e9)
    if channels_last and not p.channels_last:  # the conversions: input in, output back
        seconds += 2 * (bytes_in(p) + bytes_out(p)) / (m.bandwidth_gbs * 1e9)
    return seconds * (1 + grad_factor if backward else 1)


class Native:
    name = "native"
    requirement = ""

    def supports(self, p: Problem) -> bool:
        return True

    def estimate(self, p: Problem, backward: bool) -> float:
        return native_seconds(p, p.channels_last, backward)

    def workspace(self, p: Problem, backward: bool) -> float:
        return 0.0  # the baseline: torch's own scratch is not counted against anyone

    def numerics(self, p: Problem) -> str:
        return NATIVE

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
