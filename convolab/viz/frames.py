"""What each frame of an animation shows, as data (no drawing here).

Every number comes from convolab itself: the output values are the op's real
output, the padding cells are where :func:`convolab.arithmetic.resolve_padding`
puts them, and the cells under each window come from the same windowing
primitive that the im2col and pooling code use. The renderers
(:mod:`.render_gif`, :mod:`.render_html`) only draw these records, so a test on
the records is a test of the picture.

Two kinds of animation exist:

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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, Union

from .. import arithmetic
from .._args import PaddingArg, ntuple, positive_tuple

__all__ = [
    "ChannelAnimation",
    "ChannelFrame",
    "Frame",
    "Grid",
    "GridAnimation",
    "Panel",
    "PanelAnimation",
    "PanelFrame",
    "Stage",
    "channel_shuffle_animation",
    "checkerboard_animation",
    "conv_animation",
    "conv_transpose_animation",
    "depthwise_separable_animation",
    "grouped_conv_animation",
    "pointwise_animation",
]

Cell = tuple[int, int]

# Cell kinds of a grid: a value, padding, a zero inserted by a transposed conv, and no cell at all
# (a gap that lays out groups, e.g. SPP's levels).
DATA, PAD, ZERO, BLANK = "data", "pad", "zero", "blank"


def fmt(value: float) -> str:
    """A number as printed on a cell: integers without decimals, else 2 significant decimals."""
    if math.isinf(value):
        return "-∞" if value < 0 else "∞"
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


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
        return (len(self.values), len(self.values[0]) if self.values else 0)

    def kind(self, cell: Cell) -> str:
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


Animation = Union[GridAnimation, ChannelAnimation, PanelAnimation]


# --------------------------------------------------------------------------- helpers


def _size_tuple(input_size: Union[int, Sequence[int]], op: str) -> tuple[int, ...]:
    size = (input_size,) if isinstance(input_size, int) else tuple(input_size)
    if len(size) not in (1, 2):
        raise ValueError(f"{op}: input_size must have 1 or 2 spatial dims, got {size!r}")
    return positive_tuple(size, len(size), "input_size", op)


def _generator(seed: int):
    import torch

    return torch.Generator().manual_seed(int(seed))


def _rows(t) -> tuple[tuple[float, ...], ...]:
    """A 1-D or 2-D tensor as rows of floats (1-D becomes one row)."""
    t = t.detach().double()
    if t.dim() == 1:
        t = t.unsqueeze(0)
    return tuple(tuple(float(v) for v in row) for row in t.tolist())


def _kinds(code_rows: tuple[tuple[float, ...], ...], names: dict[int, str]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(names[int(c)] for c in row) for row in code_rows)


def _cell(flat: int, width: int) -> Cell:
    return (flat // width, flat % width)


def _window_cells(shape: tuple[int, ...], kernel, stride, dilation):
    """For every output position, the flat indices of the input cells under the window.

    Uses convolab's windowing primitive on a grid of cell indices, so the cells
    are exactly those the im2col and pooling code read. Returns a tensor
    ``[*out, prod(kernel)]``.
    """
    import torch

    from ..functional._windows import windows

    index = torch.arange(math.prod(shape)).reshape(shape)
    win = windows(index, kernel, stride, dilation)
    return win.reshape(*win.shape[: len(shape)], -1)


def _as_2d(shape: tuple[int, ...]) -> tuple[int, int]:
    return (1, shape[0]) if len(shape) == 1 else (shape[0], shape[1])


def _out_cell(index: tuple[int, ...]) -> Cell:
    return (0, index[0]) if len(index) == 1 else (index[0], index[1])


def _term(v: float) -> str:
    """A number as a factor: negatives in parentheses."""
    return fmt(v) if v >= 0 else f"({fmt(v)})"


def _products(values: Sequence[float], weights: Sequence[float]) -> str:
    return " + ".join(f"{_term(v)}·{_term(w)}" for v, w in zip(values, weights))


def _sample_ints(shape, low: int, high: int, gen, *, nonzero: bool = False):
    """Small integers (easy to check by hand) from ``[low, high]``; optionally never 0."""
    import torch

    if not nonzero:
        return torch.randint(low, high + 1, shape, generator=gen).double()
    choices = torch.tensor([v for v in range(low, high + 1) if v != 0], dtype=torch.float64)
    return choices[torch.randint(0, len(choices), shape, generator=gen)]


def _geometry(op: str, input_size, kernel_size, stride, dilation):
    """Validated (size, ndim, kernel, stride, dilation); ``stride=None`` means the kernel (pooling)."""
    size = _size_tuple(input_size, op)
    nd = len(size)
    k = positive_tuple(kernel_size, nd, "kernel_size", op)
    s = k if stride is None else positive_tuple(stride, nd, "stride", op)
    d = positive_tuple(dilation, nd, "dilation", op)
    return size, nd, k, s, d


def _label(cell: Cell, nd: int) -> str:
    return f"y{list(cell) if nd == 2 else [cell[1]]}"


def _window_frames(shown, y, kernel, stride, dilation, caption: Callable) -> list[Frame]:
    """One frame per output position of a window sliding over the ``shown`` grid.

    ``caption(label, values_under_window, value, index)`` returns the frame's text, or
    ``(text, marked_cells)``.
    """
    nd = y.dim()
    width = _as_2d(tuple(shown.shape))[1]
    cells = _window_cells(tuple(shown.shape), kernel, stride, dilation)
    flat_shown = shown.flatten()
    frames = []
    for index in _indices(tuple(y.shape)):
        flat = cells[index].tolist()
        value = float(y[index])
        out_cell = _out_cell(index)
        text = caption(_label(out_cell, nd), flat_shown[flat].tolist(), value, index)
        text, marked = text if isinstance(text, tuple) else (text, ())
        frames.append(Frame(window=tuple(_cell(f, width) for f in flat), cells=(out_cell,), values=(value,),
                            caption=text, marked=marked))
    return frames


def _conv_caption(taps: list[float], bias: float) -> Callable:
    return lambda label, vals, value, index: f"{label} = {_products(vals, taps)} + b({fmt(bias)}) = {fmt(value)}"


# --------------------------------------------------------------------------- sliding-window convs


def conv_animation(
    input_size: Union[int, Sequence[int]],
    kernel_size: Union[int, Sequence[int]] = 3,
    stride: Union[int, Sequence[int]] = 1,
    padding: PaddingArg = 0,
    dilation: Union[int, Sequence[int]] = 1,
    *,
    seed: int = 0,
) -> GridAnimation:
    """The sliding window of a 1-D or 2-D convolution, one frame per output position.

    A single-channel input of small integers and a small integer kernel and
    bias (seeded) go through :func:`convolab.functional.conv`; every frame is one
    output position: the window's cells on the padded input, the products, and
    the output value the op computed.

    Args:
        input_size (int or tuple): 1 or 2 spatial sizes (an int is 1-D).
        kernel_size, stride, dilation (int or tuple): per spatial dim.
        padding: any convolab padding spec (int, per-dim, per-side pairs, ``"same"``, ``"valid"``).
        seed (int): seed of the example values.

    Returns:
        GridAnimation with ``prod(output shape)`` frames.

    Shape:
        output per dim: ``floor((in + before + after - dilation*(kernel - 1) - 1) / stride) + 1``.

    Raises:
        ValueError: bad sizes, or an empty output (message from convolab.arithmetic).

    Example:
        >>> a = conv_animation((5, 5), 3, stride=2, padding=1)
        >>> a.input.shape, a.output.shape, len(a.frames)
        ((7, 7), (3, 3), 9)
    """
    import torch

    from ..functional import conv
    from ..functional._windows import pad_pairs

    op = "animate conv"
    size, nd, k, s, d = _geometry(op, input_size, kernel_size, stride, dilation)
    pads = arithmetic.resolve_padding(padding, size, k, s, d, op=op)
    out_shape = arithmetic.conv_output_shape(size, k, s, pads, d, op=op)

    gen = _generator(seed)
    x = _sample_ints((1, 1, *size), 0, 3, gen)
    w = _sample_ints((1, 1, *k), -1, 2, gen, nonzero=True)
    b = _sample_ints((1,), -1, 1, gen)
    y = conv(x, w, b, stride=s, padding=padding, dilation=d)[0, 0]
    if tuple(y.shape) != out_shape:  # the op and the arithmetic must agree
        raise RuntimeError(f"{op}: conv returned {tuple(y.shape)}, arithmetic says {out_shape}")

    shown = pad_pairs(x[0, 0], pads)
    kinds = pad_pairs(torch.ones_like(x[0, 0]), pads, value=0.0)
    bias = float(b)
    frames = _window_frames(shown, y, k, s, d, _conv_caption(w.flatten().tolist(), bias))
    dims = "x".join(map(str, size))
    notes = tuple(
        f"dim {j}: out = floor(({size[j]} + {pads[j][0]} + {pads[j][1]} - {d[j]}*({k[j]} - 1) - 1) / {s[j]}) + 1 = {out_shape[j]}"
        for j in range(nd)
    )
    title = (
        f"conv{nd}d: input {dims}, kernel {'x'.join(map(str, k))}, stride {_short(s)}, "
        f"padding {_pad_text(padding, pads)}, dilation {_short(d)}"
    )
    return GridAnimation(
        op=f"conv{nd}d",
        title=title,
        input=Grid("input (padded)" if any(sum(p) for p in pads) else "input", _rows(shown),
                   _kinds(_rows(kinds), {0: PAD, 1: DATA})),
        kernel=Grid(f"kernel, bias {fmt(bias)}", _rows(w[0, 0])),
        output=Grid("output", _rows(y)),
        frames=tuple(frames),
        notes=notes,
        bias=bias,
    )


def _indices(shape: tuple[int, ...]):
    import itertools

    return itertools.product(*(range(n) for n in shape))


def _short(t: tuple[int, ...]) -> str:
    return str(t[0]) if len(set(t)) == 1 else str(t)


def _pad_text(padding: PaddingArg, pads) -> str:
    if isinstance(padding, str):
        return f"'{padding}' = {_pairs_text(pads)}"
    return _pairs_text(pads)


def _pairs_text(pads) -> str:
    if all(a == b for a, b in pads) and len({a for a, _ in pads}) == 1:
        return str(pads[0][0])
    return str(pads[0]) if len(pads) == 1 else str(tuple(pads))


def conv_transpose_animation(
    input_size: Union[int, Sequence[int]],
    kernel_size: Union[int, Sequence[int]] = 3,
    stride: Union[int, Sequence[int]] = 1,
    padding: Union[int, Sequence[int]] = 0,
    output_padding: Union[int, Sequence[int]] = 0,
    dilation: Union[int, Sequence[int]] = 1,
    *,
    seed: int = 0,
) -> GridAnimation:
    """A transposed convolution shown as zero insertion + padding + conv with the flipped kernel.

    The grid shows the input with ``stride - 1`` zeros inserted between samples
    (marked ``"zero"``) and padded by
    :func:`convolab.arithmetic.conv_transpose_equivalent_padding` (marked
    ``"pad"``); the window slides with stride 1 and the values are those of
    :func:`convolab.functional.conv_transpose`.

    Returns:
        GridAnimation with one frame per output position.

    Shape:
        ``out = (in - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1``.

    Example:
        >>> a = conv_transpose_animation((2, 2), 3)          # Dumoulin & Visin's 2x2 -> 4x4
        >>> a.input.shape, a.output.shape, len(a.frames)
        ((6, 6), (4, 4), 16)
    """
    import torch

    from ..functional import conv_transpose
    from ..functional._windows import dilate, pad_pairs

    op = "animate conv_transpose"
    size, nd, k, s, d = _geometry(op, input_size, kernel_size, stride, dilation)
    p = ntuple(padding, nd, "padding", op)
    o = ntuple(output_padding, nd, "output_padding", op)
    out_shape = arithmetic.conv_transpose_output_shape(size, k, s, p, o, d, op=op)
    pads = tuple(arithmetic.conv_transpose_equivalent_padding(*args) for args in zip(k, p, o, d))

    gen = _generator(seed)
    x = _sample_ints((1, 1, *size), 1, 3, gen)
    w = _sample_ints((1, 1, *k), -1, 2, gen, nonzero=True)
    b = _sample_ints((1,), -1, 1, gen)
    y = conv_transpose(x, w, b, stride=s, padding=p, output_padding=o, dilation=d)[0, 0]
    if tuple(y.shape) != out_shape:
        raise RuntimeError(f"{op}: conv_transpose returned {tuple(y.shape)}, arithmetic says {out_shape}")

    shown = pad_pairs(dilate(x[0, 0], s), pads)
    # 2 = input sample, 1 = inserted zero, 0 = padding
    kinds = pad_pairs(dilate(torch.ones_like(x[0, 0]), s) + 1, pads, value=0.0)
    flipped = torch.flip(w[0, 0], dims=tuple(range(nd)))
    bias = float(b)
    frames = _window_frames(shown, y, k, (1,) * nd, d, _conv_caption(flipped.flatten().tolist(), bias))
    notes = (
        f"insert stride-1 = {_short(tuple(v - 1 for v in s))} zeros between inputs, pad {_pairs_text(pads)} "
        f"(= dilation*(k-1) - padding, + output_padding after), slide the flipped kernel with stride 1",
    ) + tuple(
        f"dim {j}: out = ({size[j]} - 1)*{s[j]} - 2*{p[j]} + {d[j]}*({k[j]} - 1) + {o[j]} + 1 = {out_shape[j]}"
        for j in range(nd)
    )
    return GridAnimation(
        op=f"conv_transpose{nd}d",
        title=(f"conv_transpose{nd}d: input {'x'.join(map(str, size))}, kernel {'x'.join(map(str, k))}, "
               f"stride {_short(s)}, padding {_short(p)}"
               + (f", output_padding {_short(o)}" if any(o) else "")
               + (f", dilation {_short(d)}" if any(v > 1 for v in d) else "")),
        input=Grid("zero-inserted, padded input", _rows(shown), _kinds(_rows(kinds), {0: PAD, 1: ZERO, 2: DATA})),
        kernel=Grid(f"flipped kernel, bias {fmt(bias)}", _rows(flipped)),
        output=Grid("output", _rows(y)),
        frames=tuple(frames),
        notes=notes,
        legend=(DATA, ZERO, PAD),
        bias=bias,
    )


def checkerboard_animation(
    input_size: Union[int, Sequence[int]] = (3, 3),
    kernel_size: Union[int, Sequence[int]] = 3,
    stride: Union[int, Sequence[int]] = 2,
) -> GridAnimation:
    """The checkerboard of a transposed conv: how many input samples overlap on each output cell.

    Each frame scatters one input sample (all ones) through an all-ones kernel:
    the footprint is what :func:`convolab.functional.conv_transpose` writes for
    that sample alone, and the running counts end equal to ``conv_transpose``
    of the all-ones input. With stride 2 and kernel 3 the counts alternate
    (1, 2, 1, 2, ... per dim): the checkerboard artifact of deconvolution.

    Example:
        >>> a = checkerboard_animation((3, 3), 3, 2)
        >>> a.output.values[0][:4], len(a.frames)
        ((1.0, 1.0, 2.0, 1.0), 9)
    """
    import torch

    from ..functional import conv_transpose

    op = "animate checkerboard"
    size = _size_tuple(input_size, op)
    nd = len(size)
    k = positive_tuple(kernel_size, nd, "kernel_size", op)
    s = positive_tuple(stride, nd, "stride", op)
    out_shape = arithmetic.conv_transpose_output_shape(size, k, s, op=op)
    ones = torch.ones(1, 1, *k, dtype=torch.float64)
    counts = conv_transpose(torch.ones(1, 1, *size, dtype=torch.float64), ones, stride=s)[0, 0]
    running = torch.zeros(out_shape, dtype=torch.float64)
    frames = []
    for index in _indices(size):
        one_hot = torch.zeros(1, 1, *size, dtype=torch.float64)
        one_hot[(0, 0, *index)] = 1
        footprint = conv_transpose(one_hot, ones, stride=s)[0, 0]
        running += footprint
        hit = [tuple(int(v) for v in c) for c in torch.nonzero(footprint).tolist()]
        frames.append(Frame(
            window=(_out_cell(index),),
            cells=tuple(_out_cell(c) for c in hit),
            values=tuple(float(running[c]) for c in hit),
            caption=f"input {list(index)} adds its {'x'.join(map(str, k))} footprint; "
                    f"cells written twice or more overlap (max so far {fmt(float(running.max()))})",
        ))
    x_rows = _rows(torch.ones(size))
    return GridAnimation(
        op="checkerboard",
        title=f"checkerboard: transposed conv, kernel {'x'.join(map(str, k))}, stride {_short(s)}, all-ones input and kernel",
        input=Grid("input (ones)", x_rows),
        kernel=Grid("kernel (ones)", _rows(ones[0, 0])),
        output=Grid("overlap count", _rows(counts)),
        frames=tuple(frames),
        notes=("kernel size not divisible by stride -> uneven overlap (Odena et al., 'Deconvolution and Checkerboard Artifacts')",),
        legend=(DATA,),
        heat=True,
    )


# --------------------------------------------------------------------------- channel diagrams


def _stage_from_op(fn: Callable, x, label: str, groups: int) -> tuple[Stage, object]:
    """Run ``fn`` on ``x`` ([C] values at one pixel); edges are the non-zero Jacobian entries."""
    import torch

    y = fn(x)
    jac = torch.autograd.functional.jacobian(fn, x)  # [C_out, C_in]
    bias = y - jac @ x  # every channel op here is affine
    c_out = y.numel()
    edges = tuple(
        (int(src), int(dst), float(jac[dst, src]))
        for dst, src in torch.nonzero(jac).tolist()
    )
    per_group = max(c_out // groups, 1)
    stage = Stage(
        label=label,
        edges=edges,
        values=tuple(float(v) for v in y),
        groups=tuple(min(c // per_group, groups - 1) for c in range(c_out)),
        bias=tuple(float(v) for v in bias),
    )
    return stage, y.detach()


def _channel_frames(stages: Sequence[Stage], first: Sequence[float]) -> tuple[ChannelFrame, ...]:
    frames = []
    previous = list(first)
    for si, stage in enumerate(stages):
        for dst, value in enumerate(stage.values):
            edges = [(src, w) for src, d, w in stage.edges if d == dst]
            terms = _products([previous[src] for src, _ in edges], [w for _, w in edges])
            b = stage.bias[dst] if stage.bias else 0.0
            bias = f" + b({fmt(b)})" if abs(b) > 1e-12 else ""
            frames.append(ChannelFrame(
                stage=si,
                dst=dst,
                sources=tuple(src for src, _ in edges),
                value=value,
                caption=f"{stage.label}: out[{dst}] = {terms}{bias} = {fmt(value)}",
            ))
        previous = list(stage.values)
    return tuple(frames)


def _channel_input(channels: int, gen):
    return _sample_ints((channels,), 0, 3, gen)


def _conv_stage(c_in: int, c_out: int, groups: int, gen, label: str, bias: bool = True):
    """A 1x1 (grouped) conv on one pixel through convolab.functional.conv."""
    from ..functional import conv

    w = _sample_ints((c_out, c_in // groups, 1, 1), -2, 2, gen, nonzero=True)
    b = _sample_ints((c_out,), -1, 1, gen) if bias else None

    def fn(v):
        return conv(v.view(1, c_in, 1, 1), w, b, groups=groups)[0, :, 0, 0]

    return fn, label


def _check_channels(c_in: int, c_out: int, groups: int, op: str) -> None:
    from .._args import check_groups

    for name, v in (("in_channels", c_in), ("out_channels", c_out)):
        if not isinstance(v, int) or v < 1 or v > 64:
            raise ValueError(f"{op}: {name} must be an int in [1, 64] for a readable diagram, got {v!r}")
    check_groups(c_in, c_out, groups, op)


def grouped_conv_animation(
    in_channels: int = 4, out_channels: int = 4, groups: int = 2, *, shuffle: bool = False, seed: int = 0
) -> ChannelAnimation:
    """Which input channels feed which output channels in a grouped conv (channel view, one pixel).

    With ``shuffle=True`` the diagram is ShuffleNet's unit: grouped conv,
    :func:`convolab.functional.channel_shuffle`, grouped conv, so information
    crosses the groups.

    Example:
        >>> a = grouped_conv_animation(4, 4, 2)
        >>> len(a.stages[0].edges), len(a.frames)     # each output reads C_in/groups = 2 inputs
        (8, 4)
    """
    import torch

    from ..functional import channel_shuffle

    op = "animate grouped"
    _check_channels(in_channels, out_channels, groups, op)
    gen = _generator(seed)
    x = _channel_input(in_channels, gen)
    specs = [_conv_stage(in_channels, out_channels, groups, gen, f"grouped conv (groups={groups})")]
    if shuffle:
        specs.append((lambda v: channel_shuffle(v.view(1, -1, 1), groups)[0, :, 0], f"channel shuffle (groups={groups})"))
        specs.append(_conv_stage(out_channels, out_channels, groups, gen, f"grouped conv (groups={groups})"))
    stages, v = [], x
    for fn, label in specs:
        stage, v = _stage_from_op(fn, v, label, groups)
        stages.append(stage)
    if shuffle:  # a shuffled channel keeps the colour of the group it came from
        src_of = {dst: src for src, dst, _ in stages[1].edges}
        stages[1] = Stage(stages[1].label, stages[1].edges, stages[1].values,
                          tuple(stages[0].groups[src_of[c]] for c in range(out_channels)), stages[1].bias)
    weights = arithmetic.conv_params(in_channels, out_channels, 1, groups, bias=False)
    dense = arithmetic.conv_params(in_channels, out_channels, 1, 1, bias=False)
    return ChannelAnimation(
        op="shuffle" if shuffle else "grouped",
        title=(f"{'ShuffleNet unit: ' if shuffle else ''}grouped 1x1 conv, {in_channels} -> {out_channels} "
               f"channels, groups={groups}" + (" + channel shuffle" if shuffle else "")),
        inputs=tuple(float(t) for t in x),
        input_groups=tuple(c // (in_channels // groups) for c in range(in_channels)),
        stages=tuple(stages),
        frames=_channel_frames(stages, x.tolist()),
        notes=(f"parameters{' of the first grouped conv' if shuffle else ''}: C_out*(C_in/groups) + C_out biases = "
               f"{out_channels}*{in_channels // groups} + {out_channels} = {weights + out_channels} "
               f"(dense 1x1: {dense + out_channels})",),
    )


def channel_shuffle_animation(channels: int = 6, groups: int = 2, *, seed: int = 0) -> ChannelAnimation:
    """Where :func:`convolab.functional.channel_shuffle` sends every channel.

    Example:
        >>> [e[:2] for e in channel_shuffle_animation(6, 2).stages[0].edges]
        [(0, 0), (3, 1), (1, 2), (4, 3), (2, 4), (5, 5)]
    """
    from ..functional import channel_shuffle

    op = "animate shuffle"
    _check_channels(channels, channels, groups, op)
    gen = _generator(seed)
    x = _channel_input(channels, gen)
    stage, _ = _stage_from_op(lambda v: channel_shuffle(v.view(1, -1, 1), groups)[0, :, 0], x,
                              f"channel shuffle (groups={groups})", groups)
    per = channels // groups
    src_of = {dst: src for src, dst, _ in stage.edges}
    stage = Stage(stage.label, stage.edges, stage.values, tuple(src_of[c] // per for c in range(channels)), stage.bias)
    return ChannelAnimation(
        op="shuffle",
        title=f"channel shuffle: {channels} channels in {groups} groups (reshape to [{groups}, {per}], transpose, flatten)",
        inputs=tuple(float(t) for t in x),
        input_groups=tuple(c // per for c in range(channels)),
        stages=(stage,),
        frames=_channel_frames([stage], x.tolist()),
    )


def pointwise_animation(in_channels: int = 4, out_channels: int = 3, *, seed: int = 0) -> ChannelAnimation:
    """A 1x1 conv: at every pixel, each output channel is a weighted sum of all input channels.

    Example:
        >>> a = pointwise_animation(4, 3)
        >>> len(a.stages[0].edges), len(a.frames)
        (12, 3)
    """
    op = "animate pointwise"
    _check_channels(in_channels, out_channels, 1, op)
    gen = _generator(seed)
    x = _channel_input(in_channels, gen)
    fn, label = _conv_stage(in_channels, out_channels, 1, gen, "1x1 conv")
    stage, _ = _stage_from_op(fn, x, label, 1)
    return ChannelAnimation(
        op="pointwise",
        title=f"1x1 conv: {in_channels} -> {out_channels} channels (a per-pixel fully connected layer)",
        inputs=tuple(float(t) for t in x),
        input_groups=(0,) * in_channels,
        stages=(stage,),
        frames=_channel_frames([stage], x.tolist()),
        notes=(f"weights: {out_channels}*{in_channels} + bias {out_channels} = "
               f"{arithmetic.conv_params(in_channels, out_channels, 1)}",),
    )


def depthwise_separable_animation(
    in_channels: int = 2,
    out_channels: int = 3,
    kernel_size: int = 3,
    input_size: Union[int, Sequence[int]] = 4,
    *,
    seed: int = 0,
) -> PanelAnimation:
    """A depthwise-separable conv, spatially: each channel's own k x k filter, then 1x1 across channels.

    Both steps run through :func:`convolab.functional.depthwise_separable_conv`: its
    ``between`` hook captures the depthwise output (the middle column), and the last column
    is the op's output. First one frame per depthwise output cell (the window on that
    channel only), then one per output cell of the pointwise step (the same pixel of every
    depthwise channel, one row of the 1x1 weights).

    Args:
        in_channels, out_channels (int): channel counts, 1 to 6 (a readable picture).
        kernel_size (int): the depthwise kernel (square).
        input_size (int or (H, W)): spatial size of the input, at most 8 per side.
        seed (int): seed of the example values.

    Returns:
        PanelAnimation with ``(in_channels + out_channels) * H_out * W_out`` frames.

    Shape:
        ``H_out = H - kernel_size + 1`` (no padding, stride 1), the same for the pointwise step.

    Example:
        >>> a = depthwise_separable_animation(2, 3, 3, 4)
        >>> len(a.frames), a.notes[0]
        (20, 'weights: depthwise 2*3*3 + 2 biases = 20, pointwise 3*2 + 3 biases = 9: 29 in all  vs  standard 3x3 conv 3*2*3*3 + 3 biases = 57')
    """
    import torch

    from ..functional import depthwise_separable_conv

    op = "animate depthwise-separable"
    for name, v in (("in_channels", in_channels), ("out_channels", out_channels)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 6:
            raise ValueError(f"{op}: {name} must be an int in [1, 6] for a readable picture, got {v!r}")
    k = positive_tuple(kernel_size, 1, "kernel_size", op)[0]
    size = _size_tuple((input_size, input_size) if isinstance(input_size, int) else input_size, op)
    if len(size) != 2 or max(size) > 8:
        raise ValueError(f"{op}: input_size must be an int or (H, W) with sides <= 8, got {input_size!r}")
    mid_shape = arithmetic.conv_output_shape(size, k, op=op)
    gen = _generator(seed)
    x = _sample_ints((1, in_channels, *size), 0, 3, gen)
    wd = _sample_ints((in_channels, 1, k, k), -1, 1, gen, nonzero=True)
    bd = _sample_ints((in_channels,), -1, 1, gen)
    wp = _sample_ints((out_channels, in_channels, 1, 1), -2, 2, gen, nonzero=True)
    bp = _sample_ints((out_channels,), -1, 1, gen)
    mids = []
    y = depthwise_separable_conv(x, wd, wp, bd, bp, between=lambda m: mids.append(m) or m)[0]
    mid = mids[0][0]
    if tuple(mid.shape[1:]) != mid_shape or tuple(y.shape[1:]) != mid_shape:  # the op and the arithmetic agree
        raise RuntimeError(f"{op}: the op gives {tuple(y.shape[1:])}, arithmetic says {mid_shape}")

    panels: list[Panel] = []
    for c in range(in_channels):
        panels.append(Panel(Grid(f"input channel {c}", _rows(x[0, c])), "input", 0))
    for c in range(in_channels):
        panels.append(Panel(Grid(f"filter {c}, bias {fmt(float(bd[c]))}", _rows(wd[c, 0])), "weight", 1))
    for c in range(in_channels):
        panels.append(Panel(Grid(f"depthwise channel {c}", _rows(mid[c])), "output", 2))
    weights = len(panels)
    panels.append(Panel(Grid("1x1 weights: row o, column c", _rows(wp[:, :, 0, 0])), "weight", 3))
    panels.append(Panel(Grid("biases", _rows(bp.view(-1, 1))), "weight", 3))
    for o in range(out_channels):
        panels.append(Panel(Grid(f"output channel {o}", _rows(y[o])), "output", 4))
    first_mid, first_out = 2 * in_channels, weights + 2

    frames = []
    kernel_cells = tuple((i, j) for i in range(k) for j in range(k))
    for c in range(in_channels):
        cells = _window_cells(size, (k, k), (1, 1), (1, 1))
        taps = wd[c, 0].flatten().tolist()
        for index in _indices(mid_shape):
            window = [_cell(f, size[1]) for f in cells[index].tolist()]
            vals = [float(x[0, c, i, j]) for i, j in window]
            value = float(mid[c][index])
            frames.append(PanelFrame(
                window=tuple((c, cell) for cell in window),
                taps=tuple((in_channels + c, t) for t in kernel_cells),
                cells=((first_mid + c, index),), values=(value,),
                caption=(f"depthwise, channel {c} alone: d{c}{list(index)} = {_products(vals, taps)} "
                         f"+ b({fmt(float(bd[c]))}) = {fmt(value)}"),
            ))
    for o in range(out_channels):
        row = wp[o, :, 0, 0].tolist()
        for index in _indices(mid_shape):
            vals = [float(mid[c][index]) for c in range(in_channels)]
            value = float(y[o][index])
            frames.append(PanelFrame(
                window=tuple((first_mid + c, index) for c in range(in_channels)),
                taps=tuple((weights, (o, c)) for c in range(in_channels)) + ((weights + 1, (o, 0)),),
                cells=((first_out + o, index),), values=(value,),
                caption=(f"pointwise 1x1, output {o}: y{o}{list(index)} = {_products(vals, row)} "
                         f"+ b({fmt(float(bp[o]))}) = {fmt(value)}"),
            ))
    dw = arithmetic.conv_params(in_channels, in_channels, k, groups=in_channels)
    pw = arithmetic.conv_params(in_channels, out_channels, 1)
    full = arithmetic.conv_params(in_channels, out_channels, k)
    if dw + pw != arithmetic.depthwise_separable_params(in_channels, out_channels, k):
        raise RuntimeError(f"{op}: the parameter counts disagree")
    return PanelAnimation(
        op="depthwise-separable",
        title=(f"depthwise-separable conv: {in_channels} -> {out_channels} channels, {k}x{k} depthwise "
               f"(one filter per channel) + 1x1 pointwise, input {size[0]}x{size[1]}"),
        panels=tuple(panels),
        frames=tuple(frames),
        notes=(f"weights: depthwise {in_channels}*{k}*{k} + {in_channels} biases = {dw}, pointwise "
               f"{out_channels}*{in_channels} + {out_channels} biases = {pw}: {dw + pw} in all  vs  standard "
               f"{k}x{k} conv {out_channels}*{in_channels}*{k}*{k} + {out_channels} biases = {full}",),
        column_labels=("input", "depthwise filters", "depthwise output", "pointwise 1x1", "output"),
    )
