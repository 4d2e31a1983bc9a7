"""Layout: an animation's frames as scenes of plain shapes (rectangles, text, lines, dots).

One layout feeds both renderers (Pillow for GIF/PNG, SVG for HTML), so the two
pictures cannot disagree. Every size is fixed per animation, so all frames of
a GIF share one canvas.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Callable, Union

from .frames.records import BLANK, DATA, PAD, ZERO, Animation, ChannelAnimation, GridAnimation, PanelAnimation
from .frames.text import fmt

# Colours: distinct for colour-blind viewers (ColorBrewer-like), dark text on light fills.
BACKGROUND = "#ffffff"
INK = "#1a1a1a"
MUTED = "#6b6b6b"
GRID_LINE = "#9a9a9a"
FILL = {DATA: "#ffffff", PAD: "#d4d4d4", ZERO: "#fff0a8"}
TEXT = {DATA: INK, PAD: "#5e5e5e", ZERO: "#7a6400"}
KERNEL_FILL = "#c7e9c0"
WINDOW = "#1f5fbf"
OUT_DONE = "#fdd9b5"
HEAT_HIGH = "#b5430a"  # the darkest shade of a heat-shaded output
OUT_NOW = "#f28e2b"
POINT = "#d62728"  # sampling points: red rings, hollow so that the numbers under them stay legible
REGION = "#7b3294"  # a ROI bin / box outline (purple: apart from window blue and point red)
EDGE = "#d0d0d0"
GROUP_FILLS = ("#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5")
LEGEND_TEXT = {DATA: "input value", PAD: "padding", ZERO: "inserted zero"}


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str
    stroke: str = GRID_LINE
    width: float = 1
    dashed: bool = False


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    size: int
    fill: str = INK
    anchor: str = "middle"  # or "start", "end"
    bold: bool = False
    halo: str = ""  # a colour drawn around the glyphs, so the text stays legible over lines and rings


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str
    width: float = 1


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    r: float
    fill: str  # "none": a ring


Shape = Union[Rect, Text, Line, Dot]


@dataclass
class Scene:
    """One frame's picture, in three layers drawn in order.

    ``static`` is the same in every frame; ``persist`` is what this frame adds
    for good (an output cell once written stays written), shown in this and
    every later frame; ``now`` is shown in this frame only. ``shapes`` is the
    full picture of the frame: static, the persist layers of frames 0..n, now.
    """

    width: int
    height: int
    static: list = field(default_factory=list)
    persist: list = field(default_factory=list)
    now: list = field(default_factory=list)
    shapes: list = field(default_factory=list)


def _stack(width: int, height: int, static: list, layers: list[tuple[list, list]]) -> list[Scene]:
    """Scenes from per-frame (persist, now) layers: each frame shows every earlier persist layer."""
    out, kept = [], list(static)
    for persist, now in layers:
        kept += persist
        out.append(Scene(int(width), int(height), static, persist, now, kept + now))
    return out


def scenes(animation: Animation) -> list[Scene]:
    """One scene per frame of ``animation``."""
    if isinstance(animation, GridAnimation):
        return _grid_scenes(animation)
    if isinstance(animation, ChannelAnimation):
        return _channel_scenes(animation)
    if isinstance(animation, PanelAnimation):
        return _panel_scenes(animation)
    raise TypeError(f"viz: expected a GridAnimation, ChannelAnimation or PanelAnimation, got {type(animation).__name__}")


# --------------------------------------------------------------------------- shared pieces

MARGIN = 18
TITLE = 16
SMALL = 13


def _wrap(text: str, width_px: float, size: int) -> list[str]:
    # DejaVu Sans Mono advances 0.602 em per character.
    return textwrap.wrap(text, max(int(width_px / (0.61 * size)), 20), break_on_hyphens=False) or [""]


def _header(title: str, notes: tuple[str, ...], width: int) -> tuple[list[Shape], float]:
    shapes: list[Shape] = []
    y = MARGIN + TITLE / 2
    for line in _wrap(title, width - 2 * MARGIN, TITLE):
        shapes.append(Text(MARGIN, y, line, TITLE, anchor="start", bold=True))
        y += TITLE + 6
    for note in notes:
        for line in _wrap(note, width - 2 * MARGIN, SMALL):
            shapes.append(Text(MARGIN, y, line, SMALL, MUTED, anchor="start"))
            y += SMALL + 5
    return shapes, y + 8


def _caption(lines: list[str], y: float, size: int = 14) -> list[Shape]:
    return [Text(MARGIN, y + i * (size + 6) + size / 2, line, size, anchor="start") for i, line in enumerate(lines)]


# --------------------------------------------------------------------------- sliding-window grids


def _grid_scenes(a: GridAnimation) -> list[Scene]:
    ih, iw = a.input.shape
    kh, kw = a.kernel.shape if a.kernel else (0, 0)
    oh, ow = a.output.shape
    gap_cells = 1.6
    columns = iw + kw + ow + 2 * gap_cells
    cell = max(22, min(46, int(900 / columns)))
    gap = int(gap_cells * cell)
    labels_w = max((0.61 * SMALL * len(text) + 10 for _, text in a.output_labels), default=0)
    grids_w = cell * (iw + kw + ow) + 2 * gap + labels_w
    width = max(grids_w + 2 * MARGIN, 640)
    header, top = _header(a.title, a.notes, width)
    label_h = SMALL + 10
    grid_top = top + label_h
    grids_h = cell * max(ih, kh, oh)
    x_in = MARGIN
    x_k = x_in + cell * iw + gap
    x_out = x_k + cell * kw + gap if a.kernel else x_in + cell * iw + gap
    caption_size = 14
    wrapped = [_wrap(f.caption, width - 2 * MARGIN, caption_size) for f in a.frames]
    caption_lines = max(len(w) for w in wrapped) if wrapped else 1
    caption_top = grid_top + grids_h + 16
    legend_top = caption_top + caption_lines * (caption_size + 6) + 10
    legend, legend_h = _legend(a, legend_top, width)
    height = int(legend_top + legend_h + MARGIN)
    value_size = max(10, min(16, int(cell * 0.4)))

    static: list[Shape] = list(header)
    static.append(Text(x_in, top + SMALL / 2, f"{a.input.label} {ih}x{iw}" if ih > 1 else f"{a.input.label} ({iw})",
                       SMALL, MUTED, anchor="start"))
    if a.kernel:
        static.append(Text(x_k, top + SMALL / 2, a.kernel.label, SMALL, MUTED, anchor="start"))
        for i, row in enumerate(a.kernel.values):
            for j, v in enumerate(row):
                static += _cell_shapes(x_k + j * cell, grid_top + i * cell, cell, fmt(v), KERNEL_FILL, INK, value_size)
    blank = a.output.cells(BLANK) if a.output.kinds else set()
    shape = "" if blank else (f" {oh}x{ow}" if oh > 1 else f" ({ow})")
    static.append(Text(x_out, top + SMALL / 2, a.output.label + shape, SMALL, MUTED, anchor="start"))
    for row, text in a.output_labels:  # beside the row's last cell
        used = 1 + max((j for j in range(ow) if (row, j) not in blank), default=ow - 1)
        static.append(Text(x_out + used * cell + 8, grid_top + (row + 0.5) * cell, text, SMALL, MUTED, anchor="start"))
    static += legend

    kernel_taps = [v for row in a.kernel.values for v in row] if a.kernel else []
    for i, row in enumerate(a.input.values):
        for j, v in enumerate(row):
            kind = a.input.kind((i, j))
            static += _cell_shapes(x_in + j * cell, grid_top + i * cell, cell, fmt(v), FILL[kind], TEXT[kind], value_size,
                                   dashed=kind == PAD)
    for top, left, bottom, right in a.boxes:
        static.append(Rect(x_in + (left + 0.5) * cell, grid_top + (top + 0.5) * cell, (right - left) * cell,
                           (bottom - top) * cell, "none", REGION, 2, dashed=True))
    for i in range(oh):
        for j in range(ow):
            if (i, j) not in blank:
                static += _cell_shapes(x_out + j * cell, grid_top + i * cell, cell, "", FILL[DATA], INK, value_size)
    top_value = max((abs(v) for row in a.output.values for v in row), default=1.0) or 1.0
    layers = []
    for n, frame in enumerate(a.frames):
        now: list[Shape] = []
        # the window drawn over the input: a thick border per cell, and the tap's weight in its corner
        for t, (i, j) in enumerate(frame.window):
            x, y = x_in + j * cell, grid_top + i * cell
            now.append(Rect(x + 1.5, y + 1.5, cell - 3, cell - 3, "none", WINDOW, 3))
            if len(kernel_taps) == len(frame.window) and cell >= 30:
                tap = max(10, int(cell * 0.26))
                now.append(Text(x + cell - 5, y + 4 + tap * 0.6, f"×{fmt(kernel_taps[t])}", tap, WINDOW, anchor="end"))
        for (i, j), weight in zip(frame.window, frame.shade):
            if weight > 0:
                now.append(Rect(x_in + j * cell + 3, grid_top + i * cell + cell - 7, (cell - 6) * min(weight, 1.0), 4,
                                WINDOW, WINDOW, 1))
        if frame.region is not None:
            top, left, bottom, right = frame.region
            now.append(Rect(x_in + (left + 0.5) * cell, grid_top + (top + 0.5) * cell, (right - left) * cell,
                            (bottom - top) * cell, "none", REGION, 3))
        for i, j in frame.marked:
            now.append(Rect(x_in + j * cell + 5, grid_top + i * cell + 5, cell - 10, cell - 10, "none", POINT, 3))
        for r, c in frame.points:
            now.append(Dot(x_in + (c + 0.5) * cell, grid_top + (r + 0.5) * cell, max(4, cell * 0.13), "none"))
        if frame.points or frame.region is not None or a.boxes:
            # rings, bin and box outlines cross the cells' numbers: write the numbers again on top,
            # each with a halo of its cell's colour, so every number stays readable
            for i, row in enumerate(a.input.values):
                for j, v in enumerate(row):
                    kind, text = a.input.kind((i, j)), fmt(v)
                    now.append(Text(x_in + j * cell + cell / 2, grid_top + i * cell + cell / 2, text,
                                    _fit(text, value_size, cell), TEXT[kind], halo=FILL[kind]))
        persist: list[Shape] = []
        for (i, j), v in zip(frame.cells, frame.values):
            x, y = x_out + j * cell, grid_top + i * cell
            fill, ink = (_shade(v / top_value), INK if v / top_value < 0.6 else "#ffffff") if a.heat else (OUT_DONE, INK)
            persist += _cell_shapes(x, y, cell, fmt(v), fill, ink, value_size)
            now += _cell_shapes(x, y, cell, fmt(v), OUT_NOW, INK, value_size, bold=True)
            now.append(Rect(x + 1.5, y + 1.5, cell - 3, cell - 3, "none", INK, 3))
        now += _caption(wrapped[n], caption_top, caption_size)
        now.append(Text(width - MARGIN, height - MARGIN / 2 - 4, f"step {n + 1}/{len(a.frames)}", 11, MUTED, anchor="end"))
        layers.append((persist, now))
    return _stack(width, height, static, layers)


def _shade(t: float) -> str:
    """A colour between OUT_DONE (t = 0) and HEAT_HIGH (t = 1)."""
    lo = [int(OUT_DONE[i:i + 2], 16) for i in (1, 3, 5)]
    hi = [int(HEAT_HIGH[i:i + 2], 16) for i in (1, 3, 5)]
    t = min(max(t, 0.0), 1.0)
    return "#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(lo, hi))


def _fit(text: str, size: int, cell: float) -> int:
    """The font size at which ``text`` fits in a cell (monospace: 0.61 em per character)."""
    return max(8, min(size, int((cell - 8) / (0.62 * max(len(text), 1)))))


def _cell_shapes(x, y, cell, text, fill, ink, size, *, bold=False, dashed=False) -> list[Shape]:
    shapes: list[Shape] = [Rect(x, y, cell, cell, fill, GRID_LINE, 1, dashed)]
    if text:
        shapes.append(Text(x + cell / 2, y + cell / 2, text, _fit(text, size, cell), ink, bold=bold))
    return shapes


def _legend(a: GridAnimation, y: float, width: float) -> tuple[list[Shape], float]:
    """A key for every colour and mark the animation uses, wrapped onto as many rows as the width
    needs; returns shapes and height."""
    present = {k for row in a.input.kinds for k in row} if a.input.kinds else {DATA}
    # (swatch shapes at (x, top), label)
    items: list[tuple[Callable[[float, float], list[Shape]], str]] = [
        (_swatch(FILL[k], dashed=k == PAD), LEGEND_TEXT[k]) for k in a.legend if k in present]
    if a.kernel:
        items.append((_swatch(KERNEL_FILL), "kernel weight"))
    items += [(_swatch("none", WINDOW, 3), "window"), (_swatch(OUT_NOW), "output being written"),
              (_swatch(OUT_DONE), "output written")]
    if any(f.shade for f in a.frames):
        items.append((lambda x, top: [Rect(x, top + 10, 16, 4, WINDOW, WINDOW, 1)], a.shade_label or "weight (bar length)"))
    if any(f.points for f in a.frames):
        items.append((lambda x, top: [Dot(x + 8, top + 8, 6, "none")], a.point_label))
    if any(f.marked for f in a.frames):
        items.append((_swatch("none", POINT, 3), a.mark_label))
    if a.boxes:
        items.append((_swatch("none", REGION, 2, dashed=True), a.box_label))
    if any(f.region is not None for f in a.frames):
        items.append((_swatch("none", REGION, 3), "bin"))
    shapes: list[Shape] = []
    x, row = MARGIN, 0
    for draw, label in items:
        advance = 22 + 0.61 * 12 * len(label) + 18
        if x + advance > width - MARGIN and x > MARGIN:
            x, row = MARGIN, row + 1
        top = y + row * 24
        shapes += draw(x, top)
        shapes.append(Text(x + 22, top + 8, label, 12, MUTED, anchor="start"))
        x += advance
    return shapes, (row + 1) * 24


def _swatch(fill: str, stroke: str = GRID_LINE, width: float = 1, dashed: bool = False) -> Callable:
    return lambda x, top: [Rect(x, top, 16, 16, fill, stroke, width, dashed)]


# --------------------------------------------------------------------------- channel diagrams


def _channel_scenes(a: ChannelAnimation) -> list[Scene]:
    columns = [("input", a.inputs, a.input_groups)] + [(s.label, s.values, s.groups) for s in a.stages]
    node_w, node_h, row_h = 70, 30, 42
    col_gap = 190
    # room after the last column for its label
    width = max(MARGIN * 2 + node_w * len(columns) + col_gap * (len(columns) - 1) + 140, 640)
    header, top = _header(a.title, a.notes, width)
    label_lines = [_wrap(label, node_w + col_gap - 30, SMALL) for label, _, _ in columns]
    body_top = top + max(len(l) for l in label_lines) * (SMALL + 4) + 10
    rows = max(len(v) for _, v, _ in columns)
    caption_size = 14
    wrapped = [_wrap(f.caption, width - 2 * MARGIN, caption_size) for f in a.frames]
    caption_top = body_top + rows * row_h + 12
    legend_top = caption_top + max(len(w) for w in wrapped) * (caption_size + 6) + 10
    legend, legend_h = _legend_row(_channel_legend(a), legend_top, width)
    height = int(legend_top + legend_h + MARGIN)

    def xy(col: int, row: int, count: int) -> tuple[float, float]:
        offset = (rows - count) * row_h / 2  # centre short columns
        return MARGIN + col * (node_w + col_gap), body_top + offset + row * row_h

    static: list[Shape] = list(header) + legend
    for col, lines in enumerate(label_lines):
        x, _ = xy(col, 0, rows)
        for i, line in enumerate(lines):
            static.append(Text(x, top + i * (SMALL + 4) + SMALL / 2, line, SMALL, MUTED, anchor="start"))
    for si, stage in enumerate(a.stages):
        n_src, n_dst = len(columns[si][1]), len(stage.values)
        for src, dst, _ in stage.edges:
            x1, y1 = xy(si, src, n_src)
            x2, y2 = xy(si + 1, dst, n_dst)
            static.append(Line(x1 + node_w, y1 + node_h / 2, x2, y2 + node_h / 2, EDGE, 1))

    for c, (_, values, groups) in enumerate(columns):
        for r, v in enumerate(values):
            x, y = xy(c, r, len(values))
            fill = GROUP_FILLS[groups[r] % len(GROUP_FILLS)] if c == 0 else FILL[DATA]
            static.append(Rect(x, y, node_w, node_h, fill, GRID_LINE, 1))
            if c == 0:
                static.append(Text(x + node_w / 2, y + node_h / 2, fmt(v), 14, INK))
    layers = []
    for n, frame in enumerate(a.frames):
        col = frame.stage + 1
        n_src, n_dst = len(columns[col - 1][1]), len(columns[col][1])
        weights = {src: w for src, dst, w in a.stages[frame.stage].edges if dst == frame.dst}
        x2, y2 = xy(col, frame.dst, n_dst)
        fill = GROUP_FILLS[columns[col][2][frame.dst] % len(GROUP_FILLS)]
        persist: list[Shape] = [Rect(x2, y2, node_w, node_h, fill, GRID_LINE, 1),
                                Text(x2 + node_w / 2, y2 + node_h / 2, fmt(frame.value), 14, INK)]
        now: list[Shape] = []
        for src in frame.sources:
            x1, y1 = xy(col - 1, src, n_src)
            now.append(Line(x1 + node_w, y1 + node_h / 2, x2, y2 + node_h / 2, WINDOW, 3))
            now.append(Rect(x1, y1, node_w, node_h, "none", WINDOW, 3))
            # the weight near the source end, where the lines are still apart
            now.append(Text(x1 + node_w + 24, y1 + node_h / 2 + (y2 - y1) * 24 / col_gap - 8,
                            f"×{fmt(weights[src])}", 11, WINDOW))
        now.append(Rect(x2, y2, node_w, node_h, fill, INK, 3))
        now.append(Text(x2 + node_w / 2, y2 + node_h / 2, fmt(frame.value), 14, INK, bold=True))
        now += _caption(wrapped[n], caption_top, caption_size)
        now.append(Text(width - MARGIN, height - MARGIN / 2 - 4, f"step {n + 1}/{len(a.frames)}", 11, MUTED, anchor="end"))
        layers.append((persist, now))
    return _stack(width, height, static, layers)


def _channel_legend(a: ChannelAnimation) -> list[tuple[Callable[[float, float], list[Shape]], str]]:
    """Keys for a channel diagram: the group colours, the two kinds of line, the output being written."""
    groups = sorted({*a.input_groups, *(g for s in a.stages for g in s.groups)})
    items: list[tuple[Callable[[float, float], list[Shape]], str]] = []
    if len(groups) > 1:
        items += [(_swatch(GROUP_FILLS[g % len(GROUP_FILLS)]), f"group {g}") for g in groups]
        items[-1] = (items[-1][0], items[-1][1] + " (a channel keeps its group's colour)")
    items += [
        (lambda x, top: [Line(x, top + 8, x + 16, top + 8, EDGE, 2)], "connection (non-zero weight)"),
        (lambda x, top: [Line(x, top + 8, x + 16, top + 8, WINDOW, 3)], "read now (×w: its weight)"),
        (_swatch("none", INK, 3), "output being written"),
    ]
    return items


# --------------------------------------------------------------------------- panels


def _legend_row(items: list[tuple[Callable[[float, float], list[Shape]], str]], y: float, width: float
                ) -> tuple[list[Shape], float]:
    shapes: list[Shape] = []
    x, row = MARGIN, 0
    for draw, label in items:
        advance = 22 + 0.61 * 12 * len(label) + 18
        if x + advance > width - MARGIN and x > MARGIN:
            x, row = MARGIN, row + 1
        top = y + row * 24
        shapes += draw(x, top)
        shapes.append(Text(x + 22, top + 8, label, 12, MUTED, anchor="start"))
        x += advance
    return shapes, (row + 1) * 24


def _panel_scenes(a: PanelAnimation) -> list[Scene]:
    cell = 34
    value_size = 13
    label_h = SMALL + 8
    panel_gap = 12
    columns = sorted({p.column for p in a.panels})
    # a column is as wide as its widest grid or label
    col_w = {c: max(max(p.grid.shape[1] * cell, 0.61 * SMALL * len(p.grid.label) + 4)
                    for p in a.panels if p.column == c) for c in columns}
    headings = dict(zip(columns, a.column_labels))
    col_w = {c: max(w, 0.61 * SMALL * len(headings.get(c, "")) + 4) for c, w in col_w.items()}
    gap = 28
    width = int(max(MARGIN * 2 + sum(col_w.values()) + gap * (len(columns) - 1), 640))
    header, top = _header(a.title, a.notes, width)
    body_top = top + (label_h if a.column_labels else 0)
    x_of, x = {}, MARGIN
    for c in columns:
        x_of[c] = x
        x += col_w[c] + gap
    origin: list[tuple[float, float]] = []
    bottom = body_top
    heights = {c: 0.0 for c in columns}
    for p in a.panels:
        y = body_top + heights[p.column]
        origin.append((x_of[p.column], y + label_h))
        heights[p.column] += label_h + p.grid.shape[0] * cell + panel_gap
        bottom = max(bottom, body_top + heights[p.column])
    # centre each column vertically on the tallest one
    tallest = max(heights.values())
    shift = {c: (tallest - h) / 2 for c, h in heights.items()}
    origin = [(ox, oy + shift[p.column]) for (ox, oy), p in zip(origin, a.panels)]

    caption_size = 14
    wrapped = [_wrap(f.caption, width - 2 * MARGIN, caption_size) for f in a.frames]
    caption_top = bottom + 4
    legend_top = caption_top + max(len(w) for w in wrapped) * (caption_size + 6) + 10
    legend_items = [(_swatch(FILL[DATA]), "input value"), (_swatch(KERNEL_FILL), "weight"),
                    (_swatch("none", WINDOW, 3), "cells read / weights used"),
                    (_swatch(OUT_NOW), "output being written"), (_swatch(OUT_DONE), "output written")]
    legend, legend_h = _legend_row(legend_items, legend_top, width)
    height = int(legend_top + legend_h + MARGIN)

    static: list[Shape] = list(header) + legend
    for c in columns:
        if c in headings:
            static.append(Text(x_of[c], top + SMALL / 2, headings[c], SMALL, INK, anchor="start", bold=True))
    for p, (ox, oy) in zip(a.panels, origin):
        static.append(Text(ox, oy - label_h / 2 - 2, p.grid.label, SMALL, MUTED, anchor="start"))
        for i, row in enumerate(p.grid.values):
            for j, v in enumerate(row):
                if p.role == "output":
                    static += _cell_shapes(ox + j * cell, oy + i * cell, cell, "", FILL[DATA], INK, value_size)
                else:
                    kind = p.grid.kind((i, j))
                    fill = KERNEL_FILL if p.role == "weight" else FILL[kind]
                    static += _cell_shapes(ox + j * cell, oy + i * cell, cell, fmt(v), fill, TEXT[kind], value_size,
                                           dashed=kind == PAD)

    def at(ref: tuple[int, tuple[int, int]]) -> tuple[float, float]:
        (ox, oy), (i, j) = origin[ref[0]], ref[1]
        return ox + j * cell, oy + i * cell

    layers = []
    for n, frame in enumerate(a.frames):
        now: list[Shape] = []
        for ref in frame.window + frame.taps:
            cx, cy = at(ref)
            now.append(Rect(cx + 1.5, cy + 1.5, cell - 3, cell - 3, "none", WINDOW, 3))
        persist: list[Shape] = []
        for ref, v in zip(frame.cells, frame.values):
            cx, cy = at(ref)
            persist += _cell_shapes(cx, cy, cell, fmt(v), OUT_DONE, INK, value_size)
            now += _cell_shapes(cx, cy, cell, fmt(v), OUT_NOW, INK, value_size, bold=True)
            now.append(Rect(cx + 1.5, cy + 1.5, cell - 3, cell - 3, "none", INK, 3))
        now += _caption(wrapped[n], caption_top, caption_size)
        now.append(Text(width - MARGIN, height - MARGIN / 2 - 4, f"step {n + 1}/{len(a.frames)}", 11, MUTED, anchor="end"))
        layers.append((persist, now))
    return _stack(width, height, static, layers)
