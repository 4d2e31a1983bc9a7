"""Rendering of a :class:`~convolab.analysis.summary.Summary`: a terminal table and Markdown.

Data and rendering are separate: both renderers read the same cells
(:func:`cells`), so the table and the Markdown always agree. The terminal
table uses ``rich`` when it is installed (``pip install convolab[cli]``) and
a plain fixed-width layout otherwise.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Optional, Union

if TYPE_CHECKING:
    from .summary import Row, Summary

__all__ = ["HEADERS", "cells", "footer", "number", "to_markdown", "to_text"]

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


def cells(row: "Row") -> tuple[str, ...]:
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


def footer(s: "Summary") -> list[str]:
    """Totals and reports under the table."""
    lines = [
        f"Input {', '.join(str(list(x)) for x in s.input_shapes)}; rows to depth "
        f"{'all' if s.depth is None else s.depth}; RF/Jump/Start/Pad in input pixels "
        f"(size, effective stride, centre of the first unit, effective padding); — no single "
        f"field (a flattened map), ? unknown (see below).",
        f"Params: {number(s.params)} (trainable {number(s.trainable)}, {_bytes(s.param_bytes)})",
        f"MACs (conv + matmul, the model-zoo convention): {number(s.macs)} ({_si(s.macs)})",
    ]
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


def to_markdown(s: "Summary") -> str:
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


def to_text(s: "Summary", width: int = 100) -> str:
    """The terminal table, ``width`` columns wide (numbers right-aligned)."""
    try:
        from rich import box
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is in the cli extra
        return _plain(s, width)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 0), show_edge=False)
    for h in HEADERS:
        numeric = h in _NUMERIC
        table.add_column(
            h, justify="right" if numeric else "left", no_wrap=True, overflow="ellipsis",
            max_width=16 if h == "Type" else None, min_width=12 if h == "Layer" else None,
        )
    for row in s.rows:
        table.add_row(*cells(row))
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False,
                      legacy_windows=False, emoji=False, highlight=False)
    console.print(table)
    for line in footer(s):
        console.print(line, soft_wrap=False, overflow="fold", markup=False)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines()) + "\n"


def _plain(s: "Summary", width: Optional[int] = None) -> str:
    rows = [HEADERS] + [cells(r) for r in s.rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    lines = []
    for r in rows:
        lines.append("  ".join(
            v.rjust(w) if h in _NUMERIC else v.ljust(w) for v, w, h in zip(r, widths, HEADERS)
        ).rstrip())
    return "\n".join(lines + footer(s)) + "\n"
