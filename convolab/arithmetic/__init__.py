"""The arithmetic of convolution: every formula of convolab lives here, once.

Pure Python (no torch: the package imports only :mod:`convolab._args` and the standard
library), so it can be used to plan a network, to check a student's hand computation, and by
the ops, the analysis and the pictures alike. Every function validates its input and raises a
``ValueError`` that names the parameter, its value and the rule. Everything public is
importable from here (``from convolab.arithmetic import conv_output_size``); the files:

- ``sizes.py``: output sizes and padding of convolution, transposed convolution and pooling
  ('same', ``ceil_mode``, ``output_padding``, the passes of a spatially separable conv);
- ``receptive_field.py``: :class:`ReceptiveField` (size, jump, start) through every window,
  transposed conv, interpolation and adaptive pooling; the recursion over a chain of windows;
- ``costs.py``: parameters and MACs of every layer; :func:`make_divisible`, the channel widths
  of a width multiplier;
- ``pooling.py``: the divisor of each average-pooling window, adaptive bins, the spatial
  pyramid's windows and feature length.

Example:
    >>> conv_output_size(5, kernel_size=3, stride=2, padding=1)
    3
    >>> same_padding(10, kernel_size=3, stride=2)
    (0, 1)
    >>> [rf.size for rf in receptive_fields([(3, 1, 0)] * 3)]
    [3, 5, 7]
"""

from . import costs, pooling, receptive_field, sizes
from .costs import *  # noqa: F403  (each file's __all__ is its public part)
from .pooling import *  # noqa: F403
from .receptive_field import *  # noqa: F403
from .sizes import *  # noqa: F403

__all__ = [*sizes.__all__, *receptive_field.__all__, *costs.__all__, *pooling.__all__]
