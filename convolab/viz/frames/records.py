"""What each frame of an animation shows, as data: the records the renderers draw.

Three kinds of animation exist:

- :class:`GridAnimation`: a sliding window over a grid (1-D data is one row):
  the input as shown (padding and inserted zeros marked), the kernel, the
  output; each :class:`Frame` lists the input cells under the window and the
  output cells it writes, with their values.
- :class:`ChannelAnimation`: a channel diagram (grouped, 1x1 conv, channel
  shuffle) at one pixel: columns of channels, and for each stage the edges
  (input channel -> output channel, weight) found from the op's Jacobian, so a
  missing edge means the op really does not connect them.
- :class:`PanelAnimation`: several grids side by side (e.g. every channel of a
  depthwise-separable conv, spatially); each frame reads cells of some panels
  and writes cells of another.

The records are plain values (no tensors, no drawing): the builders of
:mod:`convolab.viz.frames` fill them from convolab's ops, the layout
(:mod:`convolab.viz._scene`) and the renderers only read them, so a test on the
records is a test of the picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

__all__ = [
    "BLANK",
    "DATA",
    "PAD",
    "ZERO",
    "Animation",
    "Cell",
    "ChannelAnimation",
    "ChannelFrame",
    "Frame",
    "Grid",
    "GridAnimation",
    "Panel",
    "PanelAnimation",
    "PanelCell",
    "PanelFrame",
    "Stage",
]

Cell = tuple[int, int]  # (row, column) on a grid

# Cell kinds of a grid: a value, padding, a zero inserted by a transposed conv, and no cell at all
# (a gap that lays out groups, e.g. SPP's levels).
DATA, PAD, ZERO, BLANK = "data", "pad", "zero", "blank"


@dataclass(frozen=True)
class Grid:
    """A 2-D grid of numbers drawn as cells (1-D data is a single row).

    Attributes:
        label: caption above the grid.
        values: rows of cell values.
        kinds: rows of cell kinds: ``"data"``, ``"pad"`` (padding), ``"zero"``
            (a zero inserted by a transposed conv) or ``"blank"`` (no cell: a gap in
            the layout, its value is meaningless); same shape as ``values``.
    """

    label: str
    values: tuple[tuple[float, ...], ...]
    kinds: tuple[tuple[str, ...], ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return (len(self.values), len(self.values[0]) if self.values else 0)

    def kind(self, cell: Cell) -> str:
        """The kind of one cell (``"data"`` where the grid marks no kinds)."""
        return self.kinds[cell[0]][cell[1]] if self.kinds else DATA

    def cells(self, kind: str) -> set[Cell]:
        """Every cell of one kind."""
        return {(i, j) for i, row in enumerate(self.kinds) for j, k in enumerate(row) if k == kind}


@dataclass(frozen=True)
class Frame:
    """One step of a grid animation.

    Attributes:
        window: input-grid cells under the window (in the order they pair with the kernel taps).
        cells: output cells written in this step.
        values: the value of each written cell after this step (the op's output).
        caption: the arithmetic of this step, checkable by hand.
        points: optional fractional (row, col) sampling points on the input grid.
        marked: optional input cells to single out (e.g. the maximum a max-pool picked).
        region: optional ``(top, left, bottom, right)`` rectangle on the input grid in
            pixel-centre coordinates (cell ``(i, j)`` is centred on ``(i, j)``), e.g. a ROI bin.
        shade: optional weight per ``window`` cell (e.g. bilinear weights), drawn as intensity.
    """

    window: tuple[Cell, ...]
    cells: tuple[Cell, ...]
    values: tuple[float, ...]
    caption: str
    points: tuple[tuple[float, float], ...] = ()
    marked: tuple[Cell, ...] = ()
    region: tuple[float, float, float, float] | None = None
    shade: tuple[float, ...] = ()


@dataclass(frozen=True)
class GridAnimation:
    """A sliding-window animation: input (as shown), kernel, output, frames.

    ``output`` holds the op's full output; after the last frame every written
    cell shows its value there.
    """

    op: str
    title: str
    input: Grid
    kernel: Grid | None
    output: Grid
    frames: tuple[Frame, ...]
    notes: tuple[str, ...] = ()
    legend: tuple[str, ...] = (DATA, PAD)
    bias: float = 0.0
    point_label: str = "sampling point"
    mark_label: str = "picked"
    heat: bool = False  # shade written output cells by value (e.g. overlap counts)
    boxes: tuple[tuple[float, float, float, float], ...] = ()  # fixed rectangles (pixel-centre coordinates)
    box_label: str = "box"
    output_labels: tuple[tuple[int, str], ...] = ()  # (row, text) written right of the output grid
    shade_label: str = ""  # what the bars under window cells (Frame.shade) mean, for the legend


@dataclass(frozen=True)
class Stage:
    """One column transition of a channel diagram.

    Attributes:
        label: name of the produced column (e.g. ``"grouped conv g=2"``).
        edges: ``(src, dst, weight)`` triples: output channel ``dst`` of this stage
            reads input channel ``src`` of the previous column with that weight.
        values: the produced channel values (the op's output at the pixel shown).
        groups: group index of each produced channel (for colour).
        bias: bias per produced channel (zeros for parameter-free stages).
    """

    label: str
    edges: tuple[tuple[int, int, float], ...]
    values: tuple[float, ...]
    groups: tuple[int, ...]
    bias: tuple[float, ...] = ()


@dataclass(frozen=True)
class ChannelFrame:
    """One step of a channel diagram: output channel ``dst`` of stage ``stage`` is written."""

    stage: int
    dst: int
    sources: tuple[int, ...]
    value: float
    caption: str


@dataclass(frozen=True)
class ChannelAnimation:
    """A channel diagram: the input column, then one column per stage."""

    op: str
    title: str
    inputs: tuple[float, ...]
    input_groups: tuple[int, ...]
    stages: tuple[Stage, ...]
    frames: tuple[ChannelFrame, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Panel:
    """One grid of a :class:`PanelAnimation`.

    Attributes:
        grid: the values (for an ``"output"`` panel, the op's output, shown once written).
        role: ``"input"`` (shown from the start, padding marked), ``"weight"`` (shown from the
            start, green) or ``"output"`` (empty until a frame writes it).
        column: panels of one column are stacked top to bottom, columns left to right.
    """

    grid: Grid
    role: str
    column: int


PanelCell = tuple[int, Cell]  # (panel index, cell)


@dataclass(frozen=True)
class PanelFrame:
    """One step: the cells read (``window``), the weights used (``taps``), the cells written."""

    window: tuple[PanelCell, ...]
    taps: tuple[PanelCell, ...]
    cells: tuple[PanelCell, ...]
    values: tuple[float, ...]
    caption: str


@dataclass(frozen=True)
class PanelAnimation:
    """Several grids side by side; each frame reads some cells and writes others."""

    op: str
    title: str
    panels: tuple[Panel, ...]
    frames: tuple[PanelFrame, ...]
    notes: tuple[str, ...] = ()
    column_labels: tuple[str, ...] = ()  # a heading above each column


Animation = Union[GridAnimation, ChannelAnimation, PanelAnimation]  # what every builder returns and every renderer draws
