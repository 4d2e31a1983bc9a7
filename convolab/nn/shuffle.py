"""Channel shuffle module."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._args import positive_int
from ..functional.shuffle import channel_shuffle

__all__ = ["ChannelShuffle"]


class ChannelShuffle(nn.Module):
    """Module form of :func:`convolab.functional.channel_shuffle`.

    Shape:
        ``[N, C, *spatial]`` -> same shape; ``groups`` must divide C.
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = positive_int(groups, "groups", "ChannelShuffle")

    def forward(self, input: Tensor) -> Tensor:
        if torch.jit.is_scripting():  # the definition: [N, g, C/g, ...] with the two group axes swapped
            shape = input.shape
            split = [shape[0], self.groups, shape[1] // self.groups] + shape[2:]
            return input.reshape(split).transpose(1, 2).reshape(shape)
        return channel_shuffle(input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
