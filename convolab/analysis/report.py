"""The report of an analysis: one :class:`Row` per module call and a :class:`Summary` with the
totals, as plain data (``to_dict``, ``to_json``).

Text and Markdown come from a :class:`Renderer` the summary is given
(:data:`convolab.analysis.format.RENDERER` for those :func:`~convolab.analysis.summary` makes):
rendering reads the report, the report knows no rendering.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional, Union

from .._args import suggest
from ..arithmetic import ReceptiveField

__all__ = ["ZOO_KINDS", "Renderer", "Row", "Summary"]

ZOO_KINDS = ("conv", "matmul")  # what the published model-zoo GMACs count


@dataclass(frozen=True)
class Row:
    """One module call.

    Attributes:
        name: qualified module name (``""`` for the model itself).
        type: class name of the module.
        depth: nesting depth (0 for the model).
        output_shapes: shapes of the tensors the call returned.
        fields: receptive field per spatial dim of the first output (``None`` when it has no
            spatial meaning or is unknown; see ``problem``).
        problem: why the field is unknown (an op not analysed, misaligned branches).
        params, trainable: parameters of the module and its children.
        macs: multiply-accumulates of convolutions and matrix products in the call.
        macs_by_kind: every counted kind: conv, matmul, norm, pool.
        activation_bytes: bytes of the outputs.
        notes: conventions applied in this call (gates, misalignment).
    """

    name: str
    type: str
    depth: int
    output_shapes: tuple[tuple[int, ...], ...]
    fields: Optional[tuple[ReceptiveField, ...]]
    problem: Optional[str]
    params: int
    trainable: int
    macs_by_kind: dict[str, int]
    activation_bytes: int
    notes: tuple[str, ...] = ()

    @property
    def macs(self) -> int:
        return sum(self.macs_by_kind.get(k, 0) for k in ZOO_KINDS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "depth": self.depth,
            "output_shapes": [list(s) for s in self.output_shapes],
            "receptive_field": None if self.fields is None else [
                {"size": f.size, "jump": f.jump, "start": f.start, "padding": _clean(f.effective_padding)}
                for f in self.fields
            ],
            "problem": self.problem,
            "params": self.params,
            "trainable": self.trainable,
            "macs": self.macs,
            "macs_by_kind": dict(sorted(self.macs_by_kind.items())),
            "activation_bytes": self.activation_bytes,
            "notes": list(self.notes),
        }


def _clean(x: float) -> Union[int, float]:
    return int(x) if float(x).is_integer() else float(x)


class Renderer(NamedTuple):
    """How a :class:`Summary` becomes text.

    Attributes:
        text: ``text(summary, width)``, the terminal table at most ``width`` characters wide.
        markdown: ``markdown(summary)``, a Markdown table and the totals.
    """

    text: Callable[[Summary, Optional[int]], str]
    markdown: Callable[[Summary], str]


@dataclass(frozen=True)
class Summary:
    """The result of :func:`~convolab.analysis.summary`: rows (to ``depth``) and totals over the
    whole model.

    Render it with ``str(summary)`` (a table 100 columns wide), :meth:`to_markdown`,
    :meth:`to_dict` or :meth:`to_json`.
    """

    model: str
    input_shapes: tuple[tuple[int, ...], ...]
    rows: tuple[Row, ...]
    params: int
    trainable: int
    macs_by_kind: dict[str, int]
    activation_bytes: int
    input_bytes: int
    param_bytes: int
    not_analysed: tuple[tuple[str, str, str], ...] = ()
    warnings: tuple[str, ...] = ()
    depth: Optional[int] = None
    conventions: tuple[str, ...] = ()
    _all_rows: tuple[Row, ...] = field(default=(), repr=False, compare=False)
    _renderer: Optional[Renderer] = field(default=None, repr=False, compare=False)

    @property
    def macs(self) -> int:
        """Total MACs of convolutions and matrix products (the model-zoo convention)."""
        return sum(self.macs_by_kind.get(k, 0) for k in ZOO_KINDS)

    def row(self, name: str) -> Row:
        """The first call of the module named ``name`` (any depth)."""
        for r in self._all_rows or self.rows:
            if r.name == name:
                return r
        names = [r.name for r in self._all_rows or self.rows]
        raise ValueError(f"summary: no layer named {name!r}{suggest(name, names)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input_shapes": [list(s) for s in self.input_shapes],
            "depth": self.depth,
            "rows": [r.to_dict() for r in self.rows],
            "totals": {
                "params": self.params,
                "trainable": self.trainable,
                "macs": self.macs,
                "macs_by_kind": dict(sorted(self.macs_by_kind.items())),
                "activation_bytes": self.activation_bytes,
                "input_bytes": self.input_bytes,
                "param_bytes": self.param_bytes,
            },
            "not_analysed": [{"op": o, "layer": w, "reason": r} for o, w, r in self.not_analysed],
            "warnings": list(self.warnings),
            "conventions": list(self.conventions),
        }

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_markdown(self) -> str:
        """A GitHub Markdown table, then the totals as a list."""
        return self._render().markdown(self)

    def to_text(self, width: Optional[int] = 100) -> str:
        """The terminal table, at most ``width`` characters wide (``None``: the terminal's width)."""
        return self._render().text(self, width)

    def __str__(self) -> str:
        return self.to_text()

    def _render(self) -> Renderer:
        if self._renderer is None:
            raise ValueError("summary: this Summary has no renderer; give it _renderer=convolab.analysis.format"
                             ".RENDERER, or make it with convolab.analysis.summary()")
        return self._renderer
