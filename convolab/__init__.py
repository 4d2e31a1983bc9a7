"""convolab: every convolution and pooling concept of CNNs, on PyTorch.

>>> import torch, convolab
>>> convolab.conv2d(torch.randn(1, 3, 5, 5), torch.randn(2, 3, 3, 3), stride=2, padding=1).shape
torch.Size([1, 2, 3, 3])
"""

from . import arithmetic, functional, nn
from .functional.algorithms import autotune
from .functional import (
    conv,
    conv1d,
    conv2d,
    conv3d,
    conv_transpose,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "arithmetic",
    "autotune",
    "conv",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "functional",
    "nn",
]
