"""Numbers and settings as the pictures write them: on cells, in captions, titles and notes.

One spelling for every picture and for the worked arithmetic of :mod:`convolab.viz.explain`,
so a number read off a cell is the number in the caption.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..._args import PaddingArg

__all__ = ["fmt", "pad_text", "pairs_text", "products", "short", "term"]


def fmt(value: float) -> str:
    """A number as printed on a cell: integers without decimals, else 2 significant decimals.

    Example:
        >>> fmt(3.0), fmt(-0.125), fmt(float("-inf"))
        ('3', '-0.12', '-∞')
    """
    if math.isinf(value):
        return "-∞" if value < 0 else "∞"
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def term(value: float) -> str:
    """A number as a factor of a product: negatives in parentheses.

    Example:
        >>> term(2.0), term(-1.0)
        ('2', '(-1)')
    """
    return fmt(value) if value >= 0 else f"({fmt(value)})"


def products(values: Sequence[float], weights: Sequence[float]) -> str:
    """The sum of products ``v·w`` as a caption writes it.

    Example:
        >>> products([1.0, 2.0], [3.0, -1.0])
        '1·3 + 2·(-1)'
    """
    return " + ".join(f"{term(v)}·{term(w)}" for v, w in zip(values, weights))


def short(values: tuple[int, ...]) -> str:
    """A per-dim setting: one number when every dim has it, else the tuple."""
    return str(values[0]) if len(set(values)) == 1 else str(values)


def pairs_text(pads: Sequence[tuple[int, int]]) -> str:
    """Per-dim ``(before, after)`` padding: one number when it is the same on every side."""
    if all(a == b for a, b in pads) and len({a for a, _ in pads}) == 1:
        return str(pads[0][0])
    return str(pads[0]) if len(pads) == 1 else str(tuple(pads))


def pad_text(padding: PaddingArg, pads: Sequence[tuple[int, int]]) -> str:
    """The padding as asked (``'same'``, ...) and as resolved into per-side amounts."""
    if isinstance(padding, str):
        return f"'{padding}' = {pairs_text(pads)}"
    return pairs_text(pads)
