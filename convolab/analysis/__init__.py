"""Model analysis: shapes, receptive fields, parameters and MACs of any network, layer by layer,
computed on meta tensors (no arithmetic, no activation memory), and the empirical
(gradient-based) effective receptive field.

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(*[nn.Conv2d(1, 1, 3) for _ in range(3)])     # three stacked 3x3 convs
>>> [r.fields[0].size for r in summary(net, (1, 1, 16, 16)).rows[1:]]
[3, 5, 7]
"""

from .erf import effective_receptive_field
from .summary import Row, Summary, receptive_field, register_window_layer, summary

__all__ = [
    "Row",
    "Summary",
    "effective_receptive_field",
    "receptive_field",
    "register_window_layer",
    "summary",
]
