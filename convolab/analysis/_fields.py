"""What the analysis knows about a tensor's dims, and how the fields of several maps merge.

Per tensor, an :class:`Info` keeps, for each tensor dim, one of

- a :class:`Field`: a spatial dim of an input, with the :class:`ReceptiveField`
  of its units and which input axis it measures;
- a :class:`Merged`: several dims a ``view`` folded into one (a linear layer on
  a channels-last map folds ``N*H*W``); a later view that splits them again
  restores the fields;
- ``None``: no spatial meaning (batch, channels, features).

Fields of dims that were reduced away (global pooling, a linear layer after a
flatten) live on in ``Info.reduced``: the field of such a unit is the union
over the whole map. Where no single field exists, a rule raises
:class:`NoField` and the tensor carries the reason instead of a guess.

The conventions at the end are the choices a rule makes where the field is a
matter of definition; each leaves a note on the layer, and the summary's legend
states the ones that apply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Optional, Union

from ..arithmetic import ReceptiveField

Axis = tuple[int, int]  # (input index, spatial dim index)


@dataclass(frozen=True)
class Field:
    """A tensor dim that is a spatial axis of an input, with the field of its units."""

    axis: Axis
    rf: ReceptiveField


@dataclass(frozen=True)
class Merged:
    """Dims folded into one by a view: ``(size, Field or None)`` per folded dim, outermost first."""

    parts: tuple[tuple[int, Optional[Field]], ...]


DimInfo = Union[Field, Merged, None]


@dataclass(frozen=True)
class Info:
    """What the analysis knows about one tensor computed from the inputs.

    Attributes:
        dims: per tensor dim, a :class:`Field`, a :class:`Merged` or ``None``.
        reduced: fields of dims reduced away (global pooling, a linear layer after a flatten).
        problem: why the fields are unknown (an op not analysed, misaligned branches).
    """

    dims: tuple[DimInfo, ...]
    reduced: tuple[Field, ...] = ()
    problem: Optional[str] = None

    def fields(self) -> tuple[Field, ...]:
        """The spatial fields of a unit of this tensor, ordered by input axis."""
        out = {d.axis: d for d in self.dims if isinstance(d, Field)}
        for f in self.reduced:
            out.setdefault(f.axis, f)
        return tuple(out[a] for a in sorted(out))


class NoField(Exception):
    """No single field exists (branches with different jumps, a window over a folded dim, ...)."""


def merge_dim(infos: Sequence[DimInfo]) -> DimInfo:
    """One dim of several branches (add, cat): the union of their fields.

    Raises:
        NoField: the branches measure different input axes, are folded in different ways, or
            have fields no single field holds (different jumps).
    """
    fields = [d for d in infos if isinstance(d, Field)]
    if not fields:
        merged = [d for d in infos if isinstance(d, Merged)]
        if not merged:
            return None
        sizes = [s for s, _ in merged[0].parts]
        if any([s for s, _ in m.parts] != sizes for m in merged):
            raise NoField("merges maps folded in different ways: no single field")
        return Merged(tuple(
            (size, merge_dim([m.parts[k][1] for m in merged])) for k, size in enumerate(sizes)
        ))  # type: ignore[arg-type]
    axis = fields[0].axis
    if any(f.axis != axis for f in fields):
        raise NoField(
            f"merges fields of different input axes {sorted({f.axis for f in fields})}: no single field"
        )
    first = fields[0].rf
    try:
        rf = first.union(*(f.rf for f in fields[1:]))
    except ValueError as exc:
        raise NoField(str(exc).replace("receptive_field: ", "")) from None
    return Field(axis, rf)


def merge(
    infos: Sequence[Info], dims: Sequence[Sequence[DimInfo]], op: str, warn: Callable[[str], None]
) -> Info:
    """Info of a merge whose output dim ``k`` combines ``dims[k]``.

    Branches whose field centres differ still merge (the union of their fields), and
    ``warn`` reports them: a residual add of misaligned maps is usually a mistake.
    """
    out: list[DimInfo] = []
    for column in dims:
        merged = merge_dim(column)
        fields = [d for d in column if isinstance(d, Field)]
        if len(fields) > 1 and not all(f.rf.aligned_with(fields[0].rf) for f in fields):
            centres = sorted({f"{f.rf.start:g}" for f in fields})
            warn(
                f"{op}: misaligned branches along spatial dim {fields[0].axis[1]} (field centres at "
                f"{', '.join(centres)} px): the field is the union of theirs"
            )
        out.append(merged)
    present = {d.axis for d in out if isinstance(d, Field)}
    reduced: dict[Axis, Field] = {}
    for info in infos:
        for f in info.reduced:
            if f.axis in present:
                continue
            reduced[f.axis] = merge_dim([reduced[f.axis], f]) if f.axis in reduced else f  # type: ignore[assignment]
    return Info(tuple(out), tuple(reduced.values()))


def span(d: DimInfo, size: int) -> list[Field]:
    """Fields of the units of a dim reduced to one unit (global pooling along it)."""
    if isinstance(d, Field):
        return [Field(d.axis, d.rf.adaptive_pool(max(size, 1), 1))]
    if isinstance(d, Merged):
        return [f for s, p in d.parts for f in span(p, s)]
    return []


def with_reduced(dims: Sequence[DimInfo], reduced: Iterable[Field], base: Info) -> Info:
    """``Info(dims)`` whose reduced fields are ``base``'s joined with ``reduced`` (union per axis)."""
    extra: dict[Axis, Field] = {f.axis: f for f in base.reduced}
    for f in reduced:
        extra[f.axis] = merge_dim([extra[f.axis], f]) if f.axis in extra else f  # type: ignore[assignment]
    return Info(tuple(dims), tuple(extra.values()))


# Notes a rule leaves on the layers where a convention decides the number shown; the summary's
# legend states each one that applies to the model (and only those).
GATE_NOTE = "a 1-wide map broadcast over a spatial dim is treated as a gate"
RESAMPLE_NOTE = "up-sampling: the field is the smallest window on evenly spaced centres that holds every unit's inputs"
CONCAT_NOTE = "flattened maps joined: the field is the union of the units' bins"
CONVENTIONS = {
    GATE_NOTE: (
        "Gates are treated as constants: a map 1 wide along a spatial dim that multiplies a wider one "
        "(squeeze-and-excitation, attention scales) does not widen the field, although its value depends "
        "on the whole map."
    ),
    CONCAT_NOTE: (
        "Flattened maps joined into one vector (spatial pyramid pooling) have units that see different bins; "
        "the field shown after the join is their union, the whole map, as for a linear layer after a flatten."
    ),
    RESAMPLE_NOTE: (
        "After up-sampling (transposed conv, interpolation, pixel shuffle, uneven adaptive pooling) the RF is "
        "the smallest window, centred on evenly spaced unit centres, that holds every unit's inputs; one "
        "unit's exact support can be smaller (a stride-2 conv then ConvTranspose2d(k=4, s=2): RF 6, each "
        "unit depends on 5 pixels)."
    ),
}
