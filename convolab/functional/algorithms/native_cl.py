"""``"native_cl"``: torch's own kernels, run in channels-last memory (converting if needed).

oneDNN's channels-last kernels are much faster for some problems even counting
the conversion: depthwise convs with large kernels (10x and more in forward)
and transposed convs. The result comes back in the memory format torch's own
conv would return for the operands (contiguous for contiguous input and
weight), so the algorithm is invisible to the code after it; values and shape
are those of every other algorithm. Whether converting pays is the chooser's
decision (the cost model counts both conversions).

Numerics: torch's own kernels, so native's NaN/Inf pattern and error bound for any input;
but oneDNN's channels-last kernels skip zero padding where some of torch's NCHW kernels
multiply it, so a NaN/Inf *weight* may reach fewer border outputs than ``"native"`` in NCHW
(``"auto"`` uses it with padding only when the weight is finite).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .registry import Problem, register_algorithm
from ._machine import bytes_in, bytes_out
from ._numerics import FINITE_WEIGHTS, NATIVE, no_implicit_zeros
from .native import Native, native_seconds


class NativeChannelsLast(Native):
    name = "native_cl"
    requirement = "native_cl needs 2 or 3 spatial dims (channels-last memory formats exist only there)"

    def supports(self, p: Problem) -> bool:
        return p.ndim in (2, 3)

    def estimate(self, p: Problem, backward: bool) -> float:
        return native_seconds(p, True, backward)

    def workspace(self, p: Problem, backward: bool) -> float:
        if p.channels_last:
            return 0.0
        # the converted input and the channels-last output (and their gradients)
        return (bytes_in(p) + bytes_out(p)) * (2 if backward else 1)

    def numerics(self, p: Problem) -> str:
        # torch's own kernels in another layout; but oneDNN's channels-last kernels skip padding
        # where some NCHW kernels multiply it: a NaN weight can reach fewer outputs than native's
        return NATIVE if no_implicit_zeros(p) else FINITE_WEIGHTS

    def run(self, x: Tensor, weight: Tensor, bias: Optional[Tensor], p: Problem) -> Tensor:
        if torch._C._are_functorch_transforms_active():
            # inside vmap a memory format cannot even be queried (functorch's NYI); the values
            # are native's either way, so the layout is left to torch there
            return super().run(x, weight, bias, p)
        fmt = _format(p)
        y = super().run(x.contiguous(memory_format=fmt), weight.contiguous(memory_format=fmt), bias, p)
        return _like_torch(y, x, weight, fmt)

    def run_transposed(self, x: Tensor, wt: Tensor, bias: Optional[Tensor], p: Problem) -> Tensor:
        if torch._C._are_functorch_transforms_active():
            return super().run_transposed(x, wt, bias, p)
        fmt = _format(p)
        y = super().run_transposed(x.contiguous(memory_format=fmt), wt.contiguous(memory_format=fmt), bias, p)
        return _like_torch(y, x, wt, fmt)


def _format(p: Problem) -> torch.memory_format:
    return torch.channels_last if p.ndim == 2 else torch.channels_last_3d


def _like_torch(y: Tensor, x: Tensor, weight: Tensor, fmt: torch.memory_format) -> Tensor:
    """The output in the memory format torch's own conv returns for these operands: channels-last
    when the input or the weight is, else contiguous (code after a conv may ``.view()`` it)."""
    if x.is_contiguous(memory_format=fmt) and not x.is_contiguous():
        return y
    if weight.is_contiguous(memory_format=fmt) and not weight.is_contiguous():
        return y
    return y.contiguous()


register_algorithm(NativeChannelsLast())
