"""The rule of every aten op the analysis knows: its field rule and its cost, registered together
once, in one module per kind of op.

- :mod:`.windows`: convolution, pooling, adaptive pooling, interpolation, pixel shuffle, unfold, padding;
- :mod:`.shapes`: views, permutations, squeezing, slicing, selecting, splitting; shape-only ops;
- :mod:`.merges`: copies, casts, normalisation, elementwise ops (by ATen's pointwise tag), cat, stack;
- :mod:`.reductions`: reductions, softmax-like ops along a dim, matrix products.

:data:`ATEN` is their union (an op registered in two of them is an error at import).
:class:`PadMode` runs beside the tracer: it sees ``F.pad`` whole, which aten only sees in pieces.
"""

from .._tracer import OpTable
from . import merges, reductions, shapes, windows
from .windows import PadMode

ATEN: OpTable = OpTable.union(windows.RULES, shapes.RULES, merges.RULES, reductions.RULES)

__all__ = ["ATEN", "PadMode"]
