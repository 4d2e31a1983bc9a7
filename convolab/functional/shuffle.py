"""Channel shuffle (ShuffleNet): let information cross the groups of a grouped conv."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .._args import positive_int
from ._dispatch import overridable
from ._tracing import exporting

_TORCH_DTYPES = (
    torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16, torch.bfloat16,
    torch.float32, torch.float64, torch.complex64, torch.complex128,
)


@overridable
def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """Interleave channels across ``groups``: ``[g0c0, g0c1, g1c0, g1c1] -> [g0c0, g1c0, g0c1, g1c1]``.

    Every dtype is supported (a permutation of channels), and the output has the input's dtype.

    Args:
        input (Tensor[N, C, *spatial]): any number of spatial dims.
        groups (int): must divide C.

    Shape:
        output has the input's shape.

    Raises:
        TypeError: ``input`` not a tensor.
        ValueError: ``groups`` not an int >= 1 dividing the channels, or an input without a
            channel dim.

    Example:
        >>> import torch
        >>> channel_shuffle(torch.arange(6.).view(1, 6, 1), 2).flatten().tolist()
        [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"channel_shuffle: input must be a torch.Tensor, got {type(input).__name__}")
    groups = positive_int(groups, "groups", "channel_shuffle")
    if input.dim() < 2:
        raise ValueError(f"channel_shuffle: expected input [N, C, *spatial], got shape {list(input.shape)}")
    n, c, *rest = input.shape
    if c % groups:
        raise ValueError(f"channel_shuffle: groups ({groups}) must divide channels ({c})")
    if rest and not exporting() and input.dtype in _TORCH_DTYPES:
        # torch's kernel (same result, one pass); it refuses inputs without spatial dims and the
        # unsigned dtypes wider than 8 bits, and the TorchScript ONNX exporter has no mapping for it
        return F.channel_shuffle(input, groups)
    # the definition: split channels into [groups, C/groups] and transpose the two axes
    return input.reshape(n, groups, c // groups, *rest).transpose(1, 2).reshape(input.shape)
