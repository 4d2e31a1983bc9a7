"""``"native_cl"``: torch's own kernels, run in channels-last memory (converting if needed).

oneDNN's channels-last kernels are much faster for some problems even counting
the conversion: depthwise convs with large kernels (10x and more in forward)
and grouped convs (several times). The result stays channels-last, as torch's
own conv returns for channels-last input; values and shape are those of every
other algorithm. Whether converting pays is the chooser's decision.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from . import Problem, register_algorithm
from .native import Native


class NativeChannelsLast(Native):
    name = "native_cl"
    requirement = "native_cl needs 2 or 3 spatial dims (channels-last memory formats exist only there)"

    def supports(self, p: Problem) -> bool:
        return p.ndim in (2, 3)

    def run(self, x: Tensor, weight: Tensor, bias: Optional[Tensor], p: Problem) -> Tensor:
        fmt = torch.channels_last if p.ndim == 2 else torch.channels_last_3d
        return super().run(x.contiguous(memory_format=fmt), weight.contiguous(memory_format=fmt), bias, p)

    def run_transposed(self, x: Tensor, wt: Tensor, bias: Optional[Tensor], p: Problem) -> Tensor:
        fmt = torch.channels_last if p.ndim == 2 else torch.channels_last_3d
        return super().run_transposed(
            x.contiguous(memory_format=fmt), wt.contiguous(memory_format=fmt), bias, p
        )


register_algorithm(NativeChannelsLast())
