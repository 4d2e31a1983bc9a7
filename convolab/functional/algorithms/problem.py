"""The record of one convolution problem: everything an algorithm needs to decide and run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

__all__ = ["Problem", "symmetric_padding"]


@dataclass(frozen=True)
class Problem:
    """Everything an algorithm needs to decide and run; hashable, so it can key a cache.

    Attributes:
        ndim: number of spatial dims (1-3).
        batch, in_channels, out_channels, groups: sizes.
        input_size: spatial size of the (unpadded, undilated) input.
        kernel, stride, dilation: per-dim.
        padding: per-dim (before, after) zero padding still to apply.
        input_dilation: per-dim zero insertion factor (1 = none).
        output_size: spatial size of the result.
        dtype, device: as strings, for cache keys.
        channels_last: whether the input is in channels-last memory format.
        guard: set by ``"auto"`` when the algorithm it picked does not keep native's numerics
            on every input: the algorithm then runs behind the checks of :mod:`._numerics`
            (falling back to native). Not part of equality, hash or repr.
    """

    ndim: int
    batch: int
    in_channels: int
    out_channels: int
    groups: int
    input_size: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    input_dilation: tuple[int, ...]
    output_size: tuple[int, ...]
    dtype: str = "torch.float32"
    device: str = "cpu"
    channels_last: bool = False
    guard: bool = field(default=False, compare=False, repr=False)

    @property
    def symmetric_padding(self) -> Optional[tuple[int, ...]]:
        """Per-dim padding when it is symmetric and non-negative (what torch's kernels take), else None."""
        return symmetric_padding(self.padding)

    @property
    def depthwise(self) -> bool:
        return self.groups == self.in_channels and self.groups > 1

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the useful work (what GFLOP/s is quoted against)."""
        from ...arithmetic import conv_macs

        return conv_macs(
            self.in_channels, self.out_channels, self.kernel, self.output_size, self.groups, self.batch
        )


def symmetric_padding(pairs: tuple[tuple[int, int], ...]) -> Optional[tuple[int, ...]]:
    """Per-dim padding when every ``(before, after)`` pair is symmetric and non-negative (what
    torch's kernels take), else None."""
    if all(b == a and b >= 0 for b, a in pairs):
        return tuple(b for b, _ in pairs)
    return None
