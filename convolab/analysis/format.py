"""Rendering of a :class:`~convolab.analysis.report.Summary`: a terminal table and Markdown.

Data and rendering are separate: this module reads the report, the report knows
no rendering (a summary renders through the :data:`RENDERER` it is given). Both
renderers read the same cells (:func:`cells`), so the table and the Markdown
always agree. The terminal table uses ``rich`` when it is installed
(``pip install convolab[cli]``) and a plain fixed-width layout otherwise.
"""

from __future__ import annotations

import io
from typing import Optional, Union

from .report import Renderer, Row, Summary

__all__ = ["DROP_ORDER", "HEADERS", "RENDERER", "cells", "footer", "layout", "number", "to_markdown", "to_text"]

HEADERS = ("Layer", "Type", "Output shape", "RF", "Jump", "Start", "Pad", "Params", "MACs")
_NUMERIC = {"RF", "Jump", "Start", "Pad", "Params", "MACs"}


def number(x: Union[int, float]) -> str:
    """Thousands separators; at most 2 decimals, none when whole.

    >>> number(4089184256), number(-0.5), number(1.6666666), number(212.0)
    ('4,089,184,256', '-0.5', '1.67', '212')
    """
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def _per_dim(values: list[float]) -> str:
    texts = [number(v) for v in values]
    return texts[0] if len(set(texts)) == 1 else "×".join(texts)


def _shape(shapes: tuple[tuple[int, ...], ...]) -> str:
    if not shapes:
        return "—"
    text = "×".join(str(v) for v in shapes[0]) or "scalar"
    return text + (f" +{len(shapes) - 1}" if len(shapes) > 1 else "")


def cells(row: Row) -> tuple[str, ...]:
    """The text of one row, in :data:`HEADERS` order (``?`` where the field is unknown)."""
    if row.fields:
        rf = (
            _per_dim([f.size for f in row.fields]),
            _per_dim([f.jump for f in row.fields]),
            _per_dim([f.start for f in row.fields]),
            _per_dim([f.effective_padding for f in row.fields]),
        )
    else:
        rf = ("?",) * 4 if row.problem else ("—",) * 4
    name = row.name.rsplit(".", 1)[-1] if row.name else "(model)"
    return (
        "  " * max(row.depth - 1, 0) + name,
        row.type,
        _shape(row.output_shapes),
        *rf,
        number(row.params),
        number(row.macs),
    )


def footer(s: Summary) -> list[str]:
    """Totals and reports under the table."""
    lines = [
        f"Input {', '.join(str(list(x)) for x in s.input_shapes)}; rows to depth "
        f"{'all' if s.depth is None else s.depth}; RF/Jump/Start/Pad in input pixels "
        f"(size, effective stride, centre of the first unit, effective padding); — no single "
        f"field (a flattened map), ? unknown (see below).",
        f"Params: {number(s.params)} (trainable {number(s.trainable)}, {_bytes(s.param_bytes)})",
        f"MACs (conv + matmul, the model-zoo convention): {number(s.macs)} ({_si(s.macs)})",
    ]
    lines[1:1] = [f"Convention: {c}" for c in s.conventions]
    if any(len(r.output_shapes) > 1 for r in s.rows):
        lines[0] += (" A shape followed by +N: the layer returns N more tensors (e.g. auxiliary outputs); "
                     "the shape shown is the first one's.")
    other = {k: v for k, v in sorted(s.macs_by_kind.items()) if k not in ("conv", "matmul") and v}
    if other:
        lines.append("Other MACs: " + ", ".join(f"{k} {number(v)}" for k, v in other.items()))
    lines.append(f"Activations (outputs of leaf layers): {_bytes(s.activation_bytes)}; "
                 f"input {_bytes(s.input_bytes)}")
    for op, where, reason in s.not_analysed:
        lines.append(f"Not analysed: {op} in {where or '<model>'} ({reason}); fields after it are unknown (?)")
    for w in s.warnings:
        lines.append(f"Warning: {w}")
    return lines


def _si(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)


def _bytes(n: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= size:
            return f"{n / size:,.2f} {unit}"
    return f"{n} B"


def to_markdown(s: Summary) -> str:
    """A GitHub Markdown table, then the totals as a list."""
    right = [h in _NUMERIC for h in HEADERS]
    lines = [
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---:" if r else ":---" for r in right) + "|",
    ]
    for row in s.rows:
        c = list(cells(row))
        c[0] = c[0].replace("  ", "&nbsp;&nbsp;")
        lines.append("| " + " | ".join(v.replace("|", "\\|") for v in c) + " |")
    return "\n".join(lines + [""] + [f"- {line}" for line in footer(s)]) + "\n"


# Columns given up, in this order, when the table is wider than asked: the least needed first.
# Layer, Output shape and Params always stay; a number is never cut.
DROP_ORDER = ("Pad", "Start", "Jump", "Type", "RF", "MACs")
TYPE_MIN = 8  # the Type column (a class name) is shortened with "…" down to this before any column goes


def layout(s: Summary, width: int) -> tuple[list[str], dict[str, int]]:
    """The columns that fit in ``width`` characters and the width of each.

    Every column gets its widest cell, except Type, which may be shortened (with a visible
    "…") to :data:`TYPE_MIN`; if that is not enough, columns are left out in
    :data:`DROP_ORDER`. The result may be wider than ``width`` only with the three kept columns.
    """
    rows = [HEADERS] + [cells(r) for r in s.rows]
    natural = {h: max(len(r[i]) for r in rows) for i, h in enumerate(HEADERS)}
    natural["Type"] = min(natural["Type"], 16)  # a long class name says little more after 16 characters
    natural["Layer"] = max(natural["Layer"], 12)  # room to read the nesting
    shown = list(HEADERS)

    def total() -> int:
        return sum(natural[h] for h in shown) + len(shown) - 1  # one space between columns

    if total() > width:
        natural["Type"] = max(TYPE_MIN, natural["Type"] - (total() - width))
    for h in DROP_ORDER:
        if total() <= width:
            break
        shown.remove(h)
    return shown, natural


def to_text(s: Summary, width: Optional[int] = 100) -> str:
    """The terminal table, at most ``width`` columns wide (numbers right-aligned, never cut).

    ``width=None`` takes the terminal's width (``COLUMNS``, else 80 when not a terminal). When
    the table cannot fit, columns are left out (:data:`DROP_ORDER`) and a line says which.
    """
    try:
        from rich import box
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is in the cli extra
        return _plain(s, width)
    if width is None:
        width = Console().width
    shown, widths = layout(s, width)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 0), show_edge=False)
    for h in shown:
        table.add_column(h, justify="right" if h in _NUMERIC else "left", no_wrap=True, overflow="ellipsis",
                         width=widths[h])
    index = [HEADERS.index(h) for h in shown]
    for row in s.rows:
        c = cells(row)
        table.add_row(*(c[i] for i in index))
    out = io.StringIO()
    table_width = sum(widths[h] for h in shown) + len(shown) - 1
    console = Console(file=out, width=max(width, table_width), color_system=None, force_terminal=False,
                      legacy_windows=False, emoji=False, highlight=False)
    console.print(table)
    lines = footer(s)
    left_out = [h for h in HEADERS if h not in shown]
    if left_out:
        lines.insert(0, f"Left out to fit {width} characters: {', '.join(left_out)} (widen the terminal or "
                        f"ask for a larger width).")
    footer_console = Console(file=out, width=width, color_system=None, force_terminal=False,
                             legacy_windows=False, emoji=False, highlight=False)
    for line in lines:
        footer_console.print(line, soft_wrap=False, overflow="fold", markup=False)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines()) + "\n"


def _plain(s: Summary, width: Optional[int] = None) -> str:
    rows = [HEADERS] + [cells(r) for r in s.rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    lines = []
    for r in rows:
        lines.append("  ".join(
            v.rjust(w) if h in _NUMERIC else v.ljust(w) for v, w, h in zip(r, widths, HEADERS)
        ).rstrip())
    return "\n".join(lines + footer(s)) + "\n"


RENDERER = Renderer(text=to_text, markdown=to_markdown)
"""The renderer of every summary :func:`~convolab.analysis.summary` makes."""
