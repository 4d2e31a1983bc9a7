"""The per-machine constants every algorithm's cost estimate reads, and the byte counts they share.

Each algorithm carries its own ``estimate(problem, backward)`` (predicted seconds) and
``workspace(problem, backward)`` (bytes of temporaries); they read :data:`MACHINE` at call
time, so :func:`convolab.functional.algorithms.set_machine` changes every model at once.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from .problem import Problem

__all__ = ["MACHINE", "Machine", "bytes_in", "bytes_out", "bytes_weight", "itemsize"]


def _physical_memory() -> float:
    """Bytes of RAM (8 GiB when the system does not say)."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return 8.0 * 2**30


@dataclass(frozen=True)
class Machine:
    """Per-machine constants of the cost model (defaults measured on the 2-core CI box).

    Attributes:
        gemm_gmacs: float32 GEMM throughput, GMAC/s (half the matmul GFLOP/s).
        fft_gunits: real-FFT throughput in G(elements x log2 length)/s.
        bandwidth_gbs: copy bandwidth (read + write), GB/s.
        dense_efficiency: fraction of GEMM throughput torch's conv reaches on dense convs.
        depthwise_efficiency: same for depthwise convs (NCHW).
        depthwise_cl_efficiency: channels-last depthwise forward, any kernel size.
        grouped_efficiency, grouped_cl_efficiency: grouped convs (more than one channel
            per group), NCHW and channels-last; equal: on a quiet machine the NCHW forward
            of ResNeXt's g32 3x3 took 0.7 ms in one run and 1.1 ms in the next, against
            1.0 ms channels-last (conversion included), so neither layout wins reliably.
        dense_cl_gain: how much faster oneDNN's channels-last kernels run dense convs whose
            input is *already* channels-last (1.2-1.4x measured); converting NCHW input to
            channels-last for one conv never paid on the ResNet-50 shapes, so no gain then.
        transposed_cl_gain: the same for transposed convs; these gain even when converting
            (forward 5-6% faster overall, measured).
        cl_grad_factor: backward / forward time of channels-last dense, grouped and
            transposed convs (NCHW: 2); oneDNN's channels-last backward measured 1.2-1.4x
            slower than NCHW's on ResNet shapes.
        depthwise_width: kernel extent up to which depthwise NCHW kernels keep their
            efficiency; wider kernels run ``taps / 49`` times slower (measured: fine at
            13x13, 8x slower than channels-last at 31x31, 5-20x slower than FFT at 257 taps).
        margin: another algorithm must be predicted this much faster than native.
        layout_margin: the margin for native_cl, which runs the same kernels as native in
            another memory layout: a wrong pick costs little, so a small predicted gain is
            enough.
        workspace_bytes: a ceiling on the temporary memory ``"auto"`` lets an algorithm use
            beyond native's (its input, output and weight): the limit for a problem is
            ``min(max(1 GiB, 16 x (input + output + weight bytes)), workspace_bytes)``
            (an FFT of a 31x31 kernel on a 32x32 map needs ~15x the problem's bytes: the
            blocks are twice the map in each dim). Default: a quarter of this machine's
            memory (2 GiB when it cannot be read). An explicitly named algorithm is not
            limited.
    """

    gemm_gmacs: float = 60.0
    fft_gunits: float = 2.0
    bandwidth_gbs: float = 12.0
    dense_efficiency: float = 0.6
    depthwise_efficiency: float = 0.5
    depthwise_cl_efficiency: float = 0.35
    grouped_efficiency: float = 0.3
    grouped_cl_efficiency: float = 0.3
    dense_cl_gain: float = 1.2
    transposed_cl_gain: float = 1.1
    cl_grad_factor: float = 2.5
    depthwise_width: int = 15
    margin: float = 0.75
    layout_margin: float = 0.97
    workspace_bytes: float = field(default_factory=lambda: _physical_memory() / 4)


MACHINE = Machine()


def itemsize(p: Problem) -> int:
    """Bytes per element of the problem's dtype."""
    return {"torch.float64": 8, "torch.float16": 2, "torch.bfloat16": 2}.get(p.dtype, 4)


def bytes_in(p: Problem) -> float:
    """Bytes of the (unpadded) input."""
    return p.batch * p.in_channels * math.prod(p.input_size) * itemsize(p)


def bytes_out(p: Problem) -> float:
    """Bytes of the output."""
    return p.batch * p.out_channels * math.prod(p.output_size) * itemsize(p)


def bytes_weight(p: Problem) -> float:
    """Bytes of the weight."""
    return p.out_channels * p.in_channels // p.groups * math.prod(p.kernel) * itemsize(p)
