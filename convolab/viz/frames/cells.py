"""Tensors as grid cells: rows of values, cell kinds, flat indices and positions, windows as frames.

The cells under each window come from the windowing primitive that the im2col and pooling
code use (:func:`convolab.functional._windows.windows`, run on a grid of cell indices), so a
frame shows exactly the cells the op reads.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Callable, Union

import torch
from torch import Tensor

from ...functional._windows import pad_pairs, windows
from .records import DATA, PAD, Cell, Frame, Grid

__all__ = [
    "Caption",
    "as_2d",
    "cell_of",
    "indices",
    "kinds",
    "output_cell",
    "output_label",
    "padded_input",
    "rows",
    "window_cells",
    "window_frames",
]

Rows = tuple[tuple[float, ...], ...]
# caption(label, values under the window, output value, output index) -> text, or (text, marked cells)
Caption = Callable[[str, list, float, tuple], Union[str, tuple[str, tuple[Cell, ...]]]]


def rows(t: Tensor) -> Rows:
    """A 1-D or 2-D tensor as rows of floats (1-D becomes one row)."""
    t = t.detach().double()
    if t.dim() == 1:
        t = t.unsqueeze(0)
    return tuple(tuple(float(v) for v in row) for row in t.tolist())


def kinds(code_rows: Rows, names: Mapping[int, str]) -> tuple[tuple[str, ...], ...]:
    """Rows of numeric codes as rows of cell kinds (``names`` maps each code to its kind)."""
    return tuple(tuple(names[int(c)] for c in row) for row in code_rows)


def padded_input(x: Tensor, pads: Sequence[tuple[int, int]], fill: float = 0.0) -> tuple[Tensor, Grid]:
    """The input as the window sees it: padded with ``fill`` by ``pads``, the padding cells marked.

    Returns:
        (the padded tensor, its grid labelled ``"input (padded)"`` or ``"input"``).
    """
    shown = pad_pairs(x, pads, value=fill)
    marks = pad_pairs(torch.ones_like(x), pads, value=0.0)
    label = "input (padded)" if any(sum(p) for p in pads) else "input"
    return shown, Grid(label, rows(shown), kinds(rows(marks), {0: PAD, 1: DATA}))


def cell_of(flat: int, width: int) -> Cell:
    """The (row, column) of a row-major flat index on a grid ``width`` cells wide."""
    return (flat // width, flat % width)


def as_2d(shape: tuple[int, ...]) -> tuple[int, int]:
    """A 1-D or 2-D shape as (rows, columns): 1-D data is one row."""
    return (1, shape[0]) if len(shape) == 1 else (shape[0], shape[1])


def output_cell(index: tuple[int, ...]) -> Cell:
    """The grid cell of a 1-D or 2-D output index."""
    return (0, index[0]) if len(index) == 1 else (index[0], index[1])


def output_label(cell: Cell, nd: int) -> str:
    """How a caption names an output cell: ``y[i, j]`` in 2-D, ``y[j]`` in 1-D."""
    return f"y{list(cell) if nd == 2 else [cell[1]]}"


def indices(shape: Sequence[int]) -> Iterator[tuple[int, ...]]:
    """Every index of ``shape``, row-major."""
    return itertools.product(*(range(n) for n in shape))


def window_cells(shape: tuple[int, ...], kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]) -> Tensor:
    """For every output position, the flat indices of the input cells under the window.

    Returns:
        A tensor ``[*out, prod(kernel)]``.
    """
    index = torch.arange(math.prod(shape)).reshape(shape)
    win = windows(index, kernel, stride, dilation)
    return win.reshape(*win.shape[: len(shape)], -1)


def window_frames(
    shown: Tensor, y: Tensor, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int], caption: Caption
) -> list[Frame]:
    """One frame per output position of a window sliding over the ``shown`` grid.

    Args:
        shown: the input as drawn (already padded, zeros inserted).
        y: the op's output.
        kernel, stride, dilation: the window's geometry on ``shown``.
        caption: ``caption(label, values_under_window, value, index)`` returns the frame's
            text, or ``(text, marked_cells)``.
    """
    nd = y.dim()
    width = as_2d(tuple(shown.shape))[1]
    cells = window_cells(tuple(shown.shape), kernel, stride, dilation)
    flat_shown = shown.flatten()
    frames = []
    for index in indices(tuple(y.shape)):
        flat = cells[index].tolist()
        value = float(y[index])
        out_cell = output_cell(index)
        text = caption(output_label(out_cell, nd), flat_shown[flat].tolist(), value, index)
        text, marked = text if isinstance(text, tuple) else (text, ())
        frames.append(Frame(window=tuple(cell_of(f, width) for f in flat), cells=(out_cell,), values=(value,),
                            caption=text, marked=marked))
    return frames
