"""Channel shuffle module."""

from __future__ import annotations

from torch import Tensor, nn

from ..functional.shuffle import channel_shuffle

__all__ = ["ChannelShuffle"]


class ChannelShuffle(nn.Module):
    """Module form of :func:`convolab.functional.channel_shuffle`.

    Shape:
        ``[N, C, *spatial]`` -> same shape; ``groups`` must divide C.
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
            raise ValueError(f"ChannelShuffle: groups must be an int >= 1, got {groups!r}")
        self.groups = groups

    def forward(self, input: Tensor) -> Tensor:
        return channel_shuffle(input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
