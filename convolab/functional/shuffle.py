"""Channel shuffle (ShuffleNet): let information cross the groups of a grouped conv."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """Interleave channels across ``groups``: ``[g0c0, g0c1, g1c0, g1c1] -> [g0c0, g1c0, g0c1, g1c1]``.

    Args:
        input (Tensor[N, C, *spatial]): any number of spatial dims.
        groups (int): must divide C.

    Shape:
        output has the input's shape.

    Example:
        >>> import torch
        >>> channel_shuffle(torch.arange(6.).view(1, 6, 1), 2).flatten().tolist()
        [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    """
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"channel_shuffle: groups must be an int >= 1, got {groups!r}")
    if input.dim() < 2:
        raise ValueError(f"channel_shuffle: expected input [N, C, *spatial], got shape {list(input.shape)}")
    n, c, *rest = input.shape
    if c % groups:
        raise ValueError(f"channel_shuffle: groups ({groups}) must divide channels ({c})")
    if rest:  # torch's kernel (same result, one pass); it refuses inputs without spatial dims
        return F.channel_shuffle(input, groups)
    # the definition: split channels into [groups, C/groups] and transpose the two axes
    return input.reshape(n, groups, c // groups).transpose(1, 2).reshape(input.shape)
