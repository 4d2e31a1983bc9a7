"""Receptive fields and MACs through every aten op of a forward pass (on meta tensors).

A :class:`Tracer` is a ``TorchDispatchMode``: each aten op runs (on meta
tensors it only computes shapes), then a *rule* maps the field information of
its inputs to its outputs. Per tensor, an :class:`Info` keeps, for each tensor
dim, one of

- a :class:`Field` — a spatial dim of an input: the :class:`ReceptiveField`
  of its units and which input axis it measures;
- a :class:`Merged` — several dims a ``view`` folded into one (a linear layer
  on a channels-last map folds ``N*H*W``); a later view that splits them
  again restores the fields;
- ``None`` — no spatial meaning (batch, channels, features).

Fields of dims that were reduced away (global pooling, a linear layer after a
flatten) live on in ``Info.reduced``: the field of such a unit is the union
over the whole map. Ops without a rule (and not tagged pointwise by ATen) are
listed as not analysed, and every tensor computed from them carries the reason
instead of a guess. All formulas come from :mod:`convolab.arithmetic`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Optional, Union

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from .. import arithmetic as A
from ..arithmetic import ReceptiveField

aten = torch.ops.aten

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
    """What the tracer knows about one tensor computed from the inputs."""

    dims: tuple[DimInfo, ...]
    reduced: tuple[Field, ...] = ()  # fields of dims reduced away (global pooling, FC after flatten)
    problem: Optional[str] = None  # why the fields are unknown (an op not analysed, misalignment)

    def fields(self) -> tuple[Field, ...]:
        """The spatial fields of a unit of this tensor, ordered by input axis."""
        out = {d.axis: d for d in self.dims if isinstance(d, Field)}
        for f in self.reduced:
            out.setdefault(f.axis, f)
        return tuple(out[a] for a in sorted(out))


# --------------------------------------------------------------------------- conventions

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


class _Phases(ReceptiveField):
    """A field whose resampling also records whether it was exact (see :func:`_resampled`)."""

    exact: list[bool] = []  # class-level scratch: the analysis runs one op at a time

    def resample(self, rate, taps, period):  # type: ignore[no-untyped-def, override]
        a = Fraction(rate)
        spans = []
        for o in range(period):
            t = [Fraction(v) for v in taps(o)]
            spans.append((max(t) - min(t), (max(t) + min(t)) / 2 - a * o) if t else None)
        # exact: every unit reads a window of the same width at the same offset from its centre
        _Phases.exact.append(None not in spans and len(set(spans)) == 1)
        return ReceptiveField.resample(self, rate, taps, period)


def _resampled(tracer: "Tracer", rf: ReceptiveField, step: Callable[[ReceptiveField], ReceptiveField]) -> ReceptiveField:
    """``step(rf)`` for a resampling step (transposed conv, interpolation, adaptive pooling); notes
    the convention on the layer when the evenly spaced field is wider than some unit's support."""
    _Phases.exact = []
    out = step(_Phases(rf.size, rf.jump, rf.start))
    if not all(_Phases.exact):
        tracer.note(RESAMPLE_NOTE)
    return ReceptiveField(out.size, out.jump, out.start)


# Circular padding wraps the map around: a unit at a border reads the far side (unit 0 of a
# 5-wide conv on 32 columns reads columns 30, 31, 0, 1, 2), which no window describes.
CIRCULAR_OP = "circular padding"
CIRCULAR_REASON = "wraps the map around: a border unit reads the far side, not a window"


# --------------------------------------------------------------------------- the mode


@dataclass
class Frame:
    """One module call in progress: MACs by kind and notes, inclusive of its children."""

    macs: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Tracer(TorchDispatchMode):
    """Runs every aten op and propagates :class:`Info` from inputs to outputs.

    ``infos`` maps ``id(tensor)`` to ``(tensor, Info)``; holding the tensor keeps
    the id from being reused during the pass (meta tensors cost no memory).
    """

    def __init__(self) -> None:
        super().__init__()
        self.infos: dict[int, tuple[Tensor, Info]] = {}
        self.frames: list[Frame] = [Frame()]
        self.where: list[str] = [""]
        self.not_analysed: list[tuple[str, str, str]] = []  # (op, module, reason)
        self.warnings: list[str] = []
        self.frozen: int = 0  # > 0 inside a module whose field a layer rule sets

    # -- bookkeeping
    def get(self, t: Any) -> Optional[Info]:
        entry = self.infos.get(id(t)) if isinstance(t, Tensor) else None
        return entry[1] if entry is not None and entry[0] is t else None

    def set(self, t: Tensor, info: Info) -> None:
        self.infos[id(t)] = (t, info)

    def start_input(self, t: Tensor, index: int) -> None:
        nd = t.dim() - 2
        dims = (None, None, *(Field((index, j), ReceptiveField()) for j in range(nd)))
        self.set(t, Info(dims[: t.dim()] if nd >= 0 else (None,) * t.dim()))

    def add_macs(self, kind: str, n: int) -> None:
        if n:
            macs = self.frames[-1].macs
            macs[kind] = macs.get(kind, 0) + int(n)

    def note(self, text: str) -> None:
        notes = self.frames[-1].notes
        if text not in notes:
            notes.append(text)

    def circular(self) -> str:
        """Report circular padding (not analysed) and return the reason a field after it is unknown."""
        self.not_analysed.append((CIRCULAR_OP, self.where[-1], CIRCULAR_REASON))
        return f"after {CIRCULAR_OP} (not analysed)"

    def warn(self, text: str) -> None:
        where = self.where[-1] or "<model>"
        message = f"{where}: {text}"
        if message not in self.warnings:
            self.warnings.append(message)
        self.note(text)

    # -- the dispatch hook
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        packet = func.overloadpacket
        fast = _FAST_META.get(packet)
        out = fast(args, kwargs) if fast is not None else None
        if out is None:
            out = func(*args, **kwargs)
        cost = _COSTS.get(packet)
        if cost is not None:
            kind, n = cost(func, args, kwargs, out)
            self.add_macs(kind, n)
        if self.frozen:
            return out
        tracked = [i for i in map(self.get, _tensors(args, kwargs)) if i is not None]
        if not tracked or packet in _CONSTANT:
            return out
        problem = next((i.problem for i in tracked if i.problem), None)
        outs = _tensor_outputs(out)
        if problem is None:
            rule = _RULES.get(packet)
            if rule is None and torch.Tag.pointwise in func.tags:
                rule = _pointwise
            if rule is None:
                problem = f"after {_op_name(func)} (not analysed)"
                self.not_analysed.append((_op_name(func), self.where[-1], "no receptive-field rule"))
            else:
                try:
                    result = rule(self, func, _named(func, args, kwargs), out)
                    if isinstance(result, list):
                        infos = result
                    else:  # one Info for the outputs of its rank (not batch norm's saved statistics)
                        infos = [result if result is not None and len(result.dims) == t.dim() else None
                                 for t in outs]
                        infos[:1] = [result] if outs else []
                    if any(i is not None and len(i.dims) != t.dim() for t, i in zip(outs, infos)):
                        raise IndexError("the rule's dims do not match the output's rank")
                except _NoField as exc:
                    problem = str(exc)
                    self.warn(problem)
                except (IndexError, KeyError, TypeError, ValueError, AttributeError) as exc:
                    # a call form the rule does not know: report it, never guess or crash
                    problem = f"after {_op_name(func)} (not analysed)"
                    self.not_analysed.append((_op_name(func), self.where[-1], f"rule failed: {exc}"))
                else:
                    for t, info in zip(outs, infos):
                        if info is not None:
                            self.set(t, info)
                    return out
        for t in outs:
            self.set(t, Info((None,) * t.dim(), problem=problem))
        return out


class PadMode(TorchFunctionMode):
    """Sees ``F.pad`` whole: circular padding reaches aten as slices copied into a new tensor.

    Runs inside a :class:`Tracer`; after the call it sets the output's field by the padding rule.
    """

    def __init__(self, tracer: Tracer) -> None:
        super().__init__()
        self.tracer = tracer

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func is torch.nn.functional.pad or func is getattr(torch._C._nn, "pad", None):
            x = args[0] if args else kwargs.get("input")
            pad = args[1] if len(args) > 1 else kwargs.get("pad")
            mode = args[2] if len(args) > 2 else kwargs.get("mode", "constant")
            info = self.tracer.get(x)
            if info is not None and info.problem is None and isinstance(out, Tensor):
                try:
                    if mode == "circular" and any(pad):
                        self.tracer.set(out, Info((None,) * out.dim(), problem=self.tracer.circular()))
                    else:
                        self.tracer.set(out, _pad_dims(info, x, pad))
                except _NoField as exc:
                    self.tracer.set(out, Info((None,) * out.dim(), problem=str(exc)))
                self.tracer.not_analysed[:] = [
                    n for n in self.tracer.not_analysed if n[0] != "aten.copy_ into a view"
                ]
        return out


class _NoField(Exception):
    """No single field exists (branches with different jumps, a window over a folded dim, ...)."""


def _op_name(func: Any) -> str:
    return str(func).replace(".default", "")


def _tensors(args: Sequence[Any], kwargs: dict[str, Any]) -> Iterable[Tensor]:
    for a in (*args, *kwargs.values()):
        if isinstance(a, Tensor):
            yield a
        elif isinstance(a, (list, tuple)):
            yield from (t for t in a if isinstance(t, Tensor))


def _tensor_outputs(out: Any) -> list[Tensor]:
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for t in out if isinstance(t, Tensor)]
    return []


def _named(func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Arguments by schema name, defaults filled in (robust across overloads and call styles)."""
    named: dict[str, Any] = {}
    for i, a in enumerate(func._schema.arguments):
        if i < len(args):
            named[a.name] = args[i]
        elif a.name in kwargs:
            named[a.name] = kwargs[a.name]
        elif a.has_default_value():
            named[a.name] = a.default_value
    return named


def _first(named: dict[str, Any]) -> Tensor:
    return named.get("self", named.get("input"))  # type: ignore[return-value]


def _info(tracer: "Tracer", x: Tensor) -> "Info":
    info = tracer.get(x)
    if info is None:  # e.g. a conv whose weight, not its input, is computed from the model input
        raise _NoField("the field flows through an operand that has no rule here")
    return info


# --------------------------------------------------------------------------- merging


def _merge_dim(infos: Sequence[DimInfo]) -> DimInfo:
    """One dim of several branches (add, cat): the union of their fields, alignment checked."""
    fields = [d for d in infos if isinstance(d, Field)]
    if not fields:
        merged = [d for d in infos if isinstance(d, Merged)]
        if not merged:
            return None
        sizes = [s for s, _ in merged[0].parts]
        if any([s for s, _ in m.parts] != sizes for m in merged):
            raise _NoField("merges maps folded in different ways: no single field")
        return Merged(tuple(
            (size, _merge_dim([m.parts[k][1] for m in merged])) for k, size in enumerate(sizes)
        ))  # type: ignore[arg-type]
    axis = fields[0].axis
    if any(f.axis != axis for f in fields):
        raise _NoField(
            f"merges fields of different input axes {sorted({f.axis for f in fields})}: no single field"
        )
    first = fields[0].rf
    try:
        rf = first.union(*(f.rf for f in fields[1:]))
    except ValueError as exc:
        raise _NoField(str(exc).replace("receptive_field: ", "")) from None
    return Field(axis, rf)


def _merge(tracer: Tracer, infos: Sequence[Info], dims: Sequence[Sequence[DimInfo]], op: str) -> Info:
    """Info of a merge whose output dim ``k`` combines ``dims[k]``; reports misaligned centres."""
    out: list[DimInfo] = []
    for k, column in enumerate(dims):
        merged = _merge_dim(column)
        fields = [d for d in column if isinstance(d, Field)]
        if len(fields) > 1 and not all(f.rf.aligned_with(fields[0].rf) for f in fields):
            centres = sorted({_fmt(f.rf.start) for f in fields})
            tracer.warn(
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
            reduced[f.axis] = _merge_dim([reduced[f.axis], f]) if f.axis in reduced else f  # type: ignore[assignment]
    return Info(tuple(out), tuple(reduced.values()))


def _fmt(x: float) -> str:
    return f"{x:g}"


def _span(d: DimInfo, size: int) -> list[Field]:
    """Fields of the units of a dim reduced to one unit (global pooling along it)."""
    if isinstance(d, Field):
        return [Field(d.axis, d.rf.adaptive_pool(max(size, 1), 1))]
    if isinstance(d, Merged):
        return [f for s, p in d.parts for f in _span(p, s)]
    return []


def _with_reduced(info_dims: Sequence[DimInfo], reduced: Iterable[Field], base: Info) -> Info:
    extra: dict[Axis, Field] = {f.axis: f for f in base.reduced}
    for f in reduced:
        extra[f.axis] = _merge_dim([extra[f.axis], f]) if f.axis in extra else f  # type: ignore[assignment]
    return Info(tuple(info_dims), tuple(extra.values()))


# --------------------------------------------------------------------------- fast meta kernels


def _fast_batch_norm(args: Sequence[Any], kwargs: dict[str, Any]) -> Optional[tuple[Tensor, Tensor, Tensor]]:
    """Shapes of ``native_batch_norm`` on meta without torch's Python meta kernel (ms per call).

    Only for the plain float32/float64 case; anything else returns None and runs the real kernel.
    A test compares both on every case it takes.
    """
    x = args[0] if args else None
    if (kwargs or len(args) != 8 or not isinstance(x, Tensor) or not x.is_meta
            or x.dtype not in (torch.float32, torch.float64) or x.dim() < 2):
        return None
    for t in args[1:5]:
        if t is not None and (not isinstance(t, Tensor) or not t.is_meta or t.dtype != x.dtype
                              or tuple(t.shape) != (x.shape[1],)):
            return None
    stats = torch.empty(x.shape[1], dtype=x.dtype, device="meta")
    return torch.empty_like(x), stats, torch.empty_like(stats)


_FAST_META: dict[Any, Callable[[Sequence[Any], dict[str, Any]], Any]] = {
    aten.native_batch_norm: _fast_batch_norm,
}


# --------------------------------------------------------------------------- rules

Rule = Callable[[Tracer, Any, dict[str, Any], Any], Union[Info, list[Optional[Info]], None]]
_RULES: dict[Any, Rule] = {}
_COSTS: dict[Any, Callable[[Any, Sequence[Any], dict[str, Any], Any], tuple[str, int]]] = {}

# Ops whose result does not depend on their tensor inputs' values (only shapes/dtypes).
_CONSTANT = {
    getattr(aten, n)
    for n in ("zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like",
              "new_zeros", "new_ones", "new_empty", "new_full", "sym_size", "sym_stride", "sym_numel",
              "_local_scalar_dense", "is_nonzero")
    if hasattr(aten, n)
}


def _rule(*names: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for n in names:
            if hasattr(aten, n):
                _RULES[getattr(aten, n)] = fn
        return fn

    return register


def _cost(*names: str):  # type: ignore[no-untyped-def]
    def register(fn):  # type: ignore[no-untyped-def]
        for n in names:
            if hasattr(aten, n):
                _COSTS[getattr(aten, n)] = fn
        return fn

    return register


def _same(tracer: Tracer, func: Any, named: dict[str, Any], out: Any) -> Optional[Info]:
    """Ops that keep every dim's meaning: copies, dtype casts, normalisation."""
    return tracer.get(_first(named))


_rule(
    "clone", "_to_copy", "alias", "detach", "lift_fresh", "lift_fresh_copy", "contiguous",
    "native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
    "_native_batch_norm_legit_functional", "native_layer_norm", "native_group_norm",
    "dropout", "native_dropout", "feature_dropout", "alpha_dropout", "_to_dense", "clamp",
    "_weight_norm", "channel_shuffle", "native_channel_shuffle",
)(_same)


@_rule("copy_", "copy")
def _copy(tracer: Tracer, func: Any, named: dict[str, Any], out: Any) -> Optional[Info]:
    src = tracer.get(named.get("src"))
    if src is None:
        return tracer.get(named.get("self"))
    base = getattr(named["self"], "_base", None)
    if base is not None and func.overloadpacket is aten.copy_:
        # a write through a view (x[..., 1:-1] = y): the base now holds y's units at an offset
        # this rule cannot see; mark it instead of leaving it looking like a constant
        problem = "written through a view by aten.copy_ (not analysed)"
        tracer.not_analysed.append(("aten.copy_ into a view", tracer.where[-1], "in-place write through a view"))
        tracer.set(base, Info((None,) * base.dim(), problem=problem))
    return _broadcast(tracer, [src], [named["src"]], out)


def _pointwise(tracer: Tracer, func: Any, named: dict[str, Any], out: Any) -> Info:
    tensors = [t for t in _tensors(list(named.values()), {}) if tracer.get(t) is not None]
    return _broadcast(tracer, [tracer.get(t) for t in tensors], tensors, out)  # type: ignore[misc]


def _broadcast(tracer: Tracer, infos: Sequence[Info], tensors: Sequence[Tensor], out: Any) -> Info:
    """Elementwise merge with numpy broadcasting (dims aligned from the right).

    An operand that is 1 wide along a spatial dim the output spans (a squeeze-and-
    excitation gate, an attention scale) is treated as a per-map constant: it does
    not widen the field. That is the convention of receptive-field tables; a note says so.
    """
    o = _tensor_outputs(out)[0]
    n = o.dim()
    columns: list[list[DimInfo]] = [[] for _ in range(n)]
    for info, t in zip(infos, tensors):
        shift = n - t.dim()
        for k, d in enumerate(info.dims):
            if t.shape[k] == 1 and o.shape[shift + k] != 1:
                if isinstance(d, Field) or any(isinstance(f, Field) for f in columns[shift + k]):
                    tracer.note(GATE_NOTE)
                continue
            columns[shift + k].append(d)
    for k in range(n):
        if not columns[k] and o.shape[k] != 1:
            # every operand was broadcast along k: a gate times a gate, no spatial meaning
            columns[k] = [None]
    gated = [i for i, t in zip(infos, tensors) if t.dim() < n or any(
        t.shape[k] == 1 and o.shape[n - t.dim() + k] != 1 for k in range(t.dim()))]
    merged = _merge(tracer, infos, columns, "merge")
    if gated and any(isinstance(d, Field) for d in merged.dims):
        present = {d.axis for d in merged.dims if isinstance(d, Field)}
        merged = Info(merged.dims, tuple(f for f in merged.reduced if f.axis not in present))
    return merged


@_rule("cat")
def _cat(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    tensors = [t for t in named["tensors"] if t.numel() or t.dim() > 1]
    n = out.dim()
    dim = named.get("dim", 0) % n
    infos = [tracer.get(t) or Info((None,) * t.dim()) for t in tensors]
    columns = [[i.dims[k] for i in infos] for k in range(n)]
    joined = columns[dim]
    if any(isinstance(d, Field) for d in joined):
        raise _NoField(f"cat along spatial dim {dim}: the joined map has no single field")
    if any(isinstance(d, Merged) for d in joined):
        # flattened maps joined into one vector (spatial pyramid pooling's levels): each unit
        # sees its bin; the vector's field is their union, as for a flattened map after a linear layer
        spans = [f for d, t in zip(joined, tensors) for f in _span(d, t.shape[dim])]
        tracer.note(CONCAT_NOTE)
        columns[dim] = [None] * len(joined)
        merged = _merge(tracer, infos, columns, "cat")
        return _with_reduced(merged.dims, spans, merged)
    return _merge(tracer, infos, columns, "cat")


@_rule("stack")
def _stack(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    tensors = named["tensors"]
    dim = named.get("dim", 0) % out.dim()
    infos = [tracer.get(t) or Info((None,) * t.dim()) for t in tensors]
    # Maps that each saw a different part of an input axis (the steps of a recurrent layer, a
    # loop over rows) stacked into a new dim: its units see different regions, and no
    # (size, jump, start) describes them. Never report their union as everyone's field.
    by_axis: dict[Axis, list[ReceptiveField]] = {}
    for info in infos:
        for f in info.reduced:
            by_axis.setdefault(f.axis, []).append(f.rf)
    for axis, rfs in by_axis.items():
        if len(rfs) != len(infos) or not all(rf == rfs[0] for rf in rfs):
            raise _NoField(
                f"aten.stack joins maps that saw different parts of input axis {axis[1]} (e.g. the steps of a "
                f"recurrent layer such as nn.LSTM, each reading the positions before it): the stacked dim has no "
                f"single field (not analysed)"
            )
    columns = [[i.dims[k] for i in infos] for k in range(tensors[0].dim())]
    merged = _merge(tracer, infos, columns, "stack")
    dims = list(merged.dims)
    dims.insert(dim, None)
    return Info(tuple(dims), merged.reduced)


def _window_dims(
    info: Info, x: Tensor, nd: int, step: Callable[[ReceptiveField, int], ReceptiveField],
    mixes_channels: bool = False,
) -> Info:
    """Apply a per-spatial-dim field map to the last ``nd`` dims (a conv also mixes channels)."""
    dims = list(info.dims)
    lead = x.dim() - nd
    for j in range(nd):
        d = dims[lead + j]
        if isinstance(d, Field):
            dims[lead + j] = Field(d.axis, step(d.rf, j))
        elif isinstance(d, Merged):
            raise _NoField(f"a window slides over a folded dim {lead + j}: no single field")
    if lead >= 1 and mixes_channels:
        dims[lead - 1] = None
    return Info(tuple(dims), info.reduced)


def _tuple(v: Any, n: int, default: Sequence[int]) -> tuple[int, ...]:
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        v = default
    if isinstance(v, int):
        return (v,) * n
    v = tuple(int(x) for x in v)
    return v * n if len(v) == 1 else v


@_rule("convolution", "_convolution", "convolution_overrideable")
def _conv(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    x, w = named["input"], named["weight"]
    nd = w.dim() - 2
    k = tuple(w.shape[2:])
    s = _tuple(named["stride"], nd, (1,))
    p = _tuple(named["padding"], nd, (0,))
    d = _tuple(named["dilation"], nd, (1,))
    info = _info(tracer, x)
    if named["transposed"]:
        return _window_dims(info, x, nd, lambda rf, j: _resampled(
            tracer, rf, lambda f: f.transposed_conv(k[j], s[j], p[j], d[j])), True)
    return _window_dims(info, x, nd, lambda rf, j: rf.conv(k[j], s[j], p[j], d[j]), True)


@_cost("convolution", "_convolution", "convolution_overrideable")
def _conv_cost(func: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Tensor) -> tuple[str, int]:
    named = _named(func, args, kwargs)
    x, w, g = named["input"], named["weight"], named["groups"]
    batch = x.shape[0] if x.dim() == w.dim() else 1
    if named["transposed"]:
        return "conv", A.conv_transpose_macs(
            w.shape[0], w.shape[1] * g, tuple(w.shape[2:]), tuple(x.shape[-(w.dim() - 2):]), g, batch
        )
    return "conv", A.conv_macs(
        w.shape[1] * g, w.shape[0], tuple(w.shape[2:]), tuple(out.shape[-(w.dim() - 2):]), g, batch
    )


_POOL_ND = {
    "max_pool1d": 1, "max_pool2d": 2, "max_pool3d": 3, "max_pool1d_with_indices": 1,
    "max_pool2d_with_indices": 2, "max_pool3d_with_indices": 3, "avg_pool1d": 1, "avg_pool2d": 2,
    "avg_pool3d": 3, "_adaptive_avg_pool2d": 2, "_adaptive_avg_pool3d": 3, "adaptive_avg_pool1d": 1,
    "adaptive_max_pool1d": 1, "adaptive_max_pool2d": 2, "adaptive_max_pool3d": 3,
}


def _nd(func: Any) -> int:
    return _POOL_ND[func.overloadpacket.__name__]


@_rule("max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
       "max_pool3d_with_indices", "avg_pool1d", "avg_pool2d", "avg_pool3d")
def _pool(tracer: Tracer, func: Any, named: dict[str, Any], out: Any) -> Info:
    x = _first(named)
    nd = _nd(func)
    k = _tuple(named["kernel_size"], nd, (1,))
    s = _tuple(named.get("stride"), nd, k)
    p = _tuple(named.get("padding", 0), nd, (0,))
    d = _tuple(named.get("dilation", 1), nd, (1,))
    info = _info(tracer, x)
    return _window_dims(info, x, nd, lambda rf, j: rf.conv(k[j], s[j], p[j], d[j]))


@_cost("avg_pool1d", "avg_pool2d", "avg_pool3d")
def _avg_pool_cost(func: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Tensor) -> tuple[str, int]:
    named = _named(func, args, kwargs)
    return "pool", A.avg_pool_macs(out.numel(), _tuple(named["kernel_size"], _nd(func), (1,)))


@_rule("_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_avg_pool1d", "adaptive_max_pool1d",
       "adaptive_max_pool2d", "adaptive_max_pool3d")
def _adaptive(tracer: Tracer, func: Any, named: dict[str, Any], out: Any) -> Info:
    x = _first(named)
    nd = _nd(func)
    o = _tensor_outputs(out)[0]
    info = _info(tracer, x)
    n, m = x.shape[-nd:], o.shape[-nd:]
    return _window_dims(info, x, nd, lambda rf, j: _resampled(tracer, rf, lambda f: f.adaptive_pool(n[j], m[j])))


@_cost("_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_avg_pool1d")
def _adaptive_cost(func: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Tensor) -> tuple[str, int]:
    x = args[0]
    nd = _nd(func)
    lead = math.prod(out.shape[:-nd])
    return "pool", lead * A.adaptive_pool_macs(tuple(x.shape[-nd:]), tuple(out.shape[-nd:]))


def _pad_dims(info: Info, x: Tensor, pad: Sequence[int]) -> Info:
    dims = list(info.dims)
    for i in range(len(pad) // 2):
        k = x.dim() - 1 - i
        d = dims[k]
        if isinstance(d, Field):
            dims[k] = Field(d.axis, d.rf.slice(-int(pad[2 * i])))
        elif isinstance(d, Merged) and (pad[2 * i] or pad[2 * i + 1]):
            raise _NoField(f"padding a folded dim {k}: no single field")
    return Info(tuple(dims), info.reduced)


@_rule("constant_pad_nd", "reflection_pad1d", "reflection_pad2d", "reflection_pad3d",
       "replication_pad1d", "replication_pad2d", "replication_pad3d", "_pad_circular", "pad")
def _pad(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    # reflect and replicate read pixels inside the window's span (mirrored or repeated border
    # pixels): the window's field holds them. Circular reads the far side: no field.
    x = _first(named)
    pad = named.get("pad", named.get("padding"))
    circular = func.overloadpacket.__name__ == "_pad_circular" or (
        func.overloadpacket is aten.pad and named.get("mode") == "circular")
    if circular and any(pad):
        return Info((None,) * out.dim(), problem=tracer.circular())
    return _pad_dims(_info(tracer, x), x, pad)


_INTERP = {
    "upsample_nearest1d": "nearest", "upsample_nearest2d": "nearest", "upsample_nearest3d": "nearest",
    "_upsample_nearest_exact1d": "nearest-exact", "_upsample_nearest_exact2d": "nearest-exact",
    "_upsample_nearest_exact3d": "nearest-exact", "upsample_linear1d": "linear",
    "upsample_bilinear2d": "linear", "upsample_trilinear3d": "linear", "upsample_bicubic2d": "cubic",
}


@_rule(*_INTERP)
def _interpolate(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    x = _first(named)
    nd = out.dim() - 2
    mode = _INTERP[func.overloadpacket.__name__]
    align = bool(named.get("align_corners") or False)
    scales = named.get("scale_factors")
    if scales is None:
        keys = {1: ("scales",), 2: ("scales_h", "scales_w"), 3: ("scales_d", "scales_h", "scales_w")}[nd]
        scales = [named.get(key) for key in keys]
    scales = list(scales) * nd if len(scales) == 1 else list(scales)
    info = _info(tracer, x)
    n, m = x.shape[2:], out.shape[2:]
    return _window_dims(info, x, nd, lambda rf, j: _resampled(
        tracer, rf, lambda f: f.interpolate(n[j], m[j], mode, align, scales[j])))


@_rule("pixel_shuffle", "pixel_unshuffle")
def _pixel_shuffle(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    """Depth-to-space by ``r`` reads like nearest up-sampling by ``r``; space-to-depth like an
    ``r x r`` window of stride ``r`` (each output unit holds ``r*r`` input units in its channels)."""
    x = _first(named)
    info = _info(tracer, x)
    if func.overloadpacket is aten.pixel_shuffle:
        return _window_dims(info, x, 2, lambda rf, j: _resampled(
            tracer, rf, lambda f: f.interpolate(x.shape[-2 + j], out.shape[-2 + j], "nearest")), True)
    r = int(named["downscale_factor"])
    return _window_dims(info, x, 2, lambda rf, j: rf.conv(r, r), True)


# -- views: a dim keeps its field when the view keeps it whole


def _view_blocks(src: Sequence[int], dst: Sequence[int]) -> list[tuple[list[int], list[int]]]:
    """Group source and destination dims into the smallest blocks of equal element count."""
    blocks: list[tuple[list[int], list[int]]] = []
    i = j = 0
    while i < len(src) or j < len(dst):
        bi: list[int] = []
        bj: list[int] = []
        pi = pj = 1
        if i < len(src):
            bi.append(i)
            pi *= src[i]
            i += 1
        if j < len(dst):
            bj.append(j)
            pj *= dst[j]
            j += 1
        while pi != pj and (i < len(src) or j < len(dst)):
            if (pi < pj and i < len(src)) or j >= len(dst):
                bi.append(i)
                pi *= src[i]
                i += 1
            else:
                bj.append(j)
                pj *= dst[j]
                j += 1
        blocks.append((bi, bj))
    return blocks


def _parts(d: DimInfo, size: int) -> tuple[tuple[int, Optional[Field]], ...]:
    if isinstance(d, Merged):
        return d.parts
    return ((size, d),)


def _group_parts(parts: Sequence[tuple[int, Optional[Field]]], sizes: Sequence[int]):  # type: ignore[no-untyped-def]
    """Split folded parts, in order, into groups whose sizes multiply to ``sizes`` (else None)."""
    groups, i = [], 0
    for size in sizes:
        group, prod = [], 1
        while i < len(parts) and prod < size:
            group.append(parts[i])
            prod *= parts[i][0]
            i += 1
        if prod != size or not group:
            return None
        groups.append(group)
    return groups if i == len(parts) else None


@_rule("view", "_unsafe_view", "reshape", "_reshape_alias", "view_copy")
def _view(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    x = _first(named)
    info = _info(tracer, x)
    dims: list[DimInfo] = [None] * out.dim()
    reduced: list[Field] = []
    for bi, bj in _view_blocks(tuple(x.shape), tuple(out.shape)):
        ins = [info.dims[i] for i in bi]
        if all(d is None for d in ins):
            continue
        parts = tuple(p for i in bi for p in _parts(info.dims[i], x.shape[i]))
        if not bj:  # only 1-wide dims vanish: their units' fields live on
            reduced += [f for _, f in parts if f is not None]
            continue
        if len(bi) == 1 and len(bj) == 1:
            dims[bj[0]] = ins[0]
            continue
        if len(bj) == 1:
            live = [(s, f) for s, f in parts if s != 1 or f is not None]
            wide = [(s, f) for s, f in parts if s != 1]
            if len(live) == 1:
                dims[bj[0]] = live[0][1]
            elif all(f is None for s, f in wide):
                # only 1-wide fields fold with wide non-spatial dims: keep them as reduced
                reduced += [f for s, f in parts if f is not None]
            else:
                dims[bj[0]] = Merged(parts)
            continue
        groups = _group_parts([p for p in parts if p[0] != 1], [out.shape[j] for j in bj if out.shape[j] != 1])
        if groups is not None:
            for j, group in zip([j for j in bj if out.shape[j] != 1], groups):
                fields_in = [f for _, f in group if f is not None]
                dims[j] = (group[0][1] if len(group) == 1 else Merged(tuple(group)) if fields_in else None)
            reduced += [f for s, f in parts if s == 1 and f is not None]
            continue
        raise _NoField(
            f"view {list(x.shape)} -> {list(out.shape)} splits or regroups a spatial dim: "
            f"no single field"
        )
    return _with_reduced(dims, reduced, info)


@_rule("unfold")
def _unfold(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    """``x.unfold(d, size, step)``: dim ``d`` indexes windows (a window of ``size``, stride
    ``step``: the conv rule), a new last dim holds the offsets inside a window (no own field)."""
    x = _first(named)
    info = _info(tracer, x)
    k = named["dimension"] % max(x.dim(), 1)
    d = info.dims[k]
    dims = list(info.dims)
    if isinstance(d, Field):
        dims[k] = Field(d.axis, d.rf.conv(int(named["size"]), int(named["step"])))
    elif isinstance(d, Merged):
        raise _NoField(f"unfolding a folded dim {k}: no single field")
    return Info((*dims, None), info.reduced)


@_rule("permute")
def _permute(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    info = _info(tracer, _first(named))
    n = len(info.dims)
    return Info(tuple(info.dims[int(k) % n] for k in named["dims"]), info.reduced)


@_rule("transpose")
def _transpose(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    info = _info(tracer, _first(named))
    n = len(info.dims)
    dims = list(info.dims)
    a, b = named["dim0"] % n, named["dim1"] % n
    dims[a], dims[b] = dims[b], dims[a]
    return Info(tuple(dims), info.reduced)


@_rule("t")
def _t(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    info = _info(tracer, _first(named))
    return Info(tuple(reversed(info.dims)), info.reduced)


@_rule("unsqueeze")
def _unsqueeze(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    info = _info(tracer, _first(named))
    dims = list(info.dims)
    dims.insert(named["dim"] % out.dim(), None)
    return Info(tuple(dims), info.reduced)


@_rule("squeeze")
def _squeeze(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    x = _first(named)
    info = _info(tracer, x)
    if "dim" in named:
        wanted = named["dim"]
        wanted = {int(d) % max(x.dim(), 1) for d in (wanted if isinstance(wanted, (list, tuple)) else [wanted])}
    else:
        wanted = set(range(x.dim()))
    gone = [k for k in range(x.dim()) if k in wanted and x.shape[k] == 1]
    kept = tuple(d for k, d in enumerate(info.dims) if k not in gone)
    return _with_reduced(kept, [f for k in gone for f in _span(info.dims[k], 1)], info)


@_rule("expand")
def _expand(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    x = _first(named)
    info = _info(tracer, x)
    shift = out.dim() - x.dim()
    dims: list[DimInfo] = [None] * shift
    for k, d in enumerate(info.dims):
        dims.append(d if x.shape[k] == out.shape[shift + k] else None)
    return Info(tuple(dims), info.reduced)


@_rule("slice")
def _slice(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    x = _first(named)
    info = _info(tracer, x)
    k = named.get("dim", 0) % x.dim()
    d = info.dims[k]
    if isinstance(d, Field):
        begin = named.get("start") or 0
        begin = max(begin + x.shape[k], 0) if begin < 0 else min(begin, x.shape[k])
        dims = list(info.dims)
        dims[k] = Field(d.axis, d.rf.slice(begin, int(named.get("step") or 1)))
        return Info(tuple(dims), info.reduced)
    if isinstance(d, Merged) and out.shape[k] != x.shape[k]:
        raise _NoField(f"slicing a folded dim {k}: no single field")
    return info


@_rule("select")
def _select(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    x = _first(named)
    info = _info(tracer, x)
    k = named["dim"] % x.dim()
    d = info.dims[k]
    reduced = []
    if isinstance(d, Field):
        reduced = [Field(d.axis, d.rf.slice(named["index"] % x.shape[k]))]
    elif isinstance(d, Merged):
        raise _NoField(f"selecting from a folded dim {k}: no single field")
    return _with_reduced(info.dims[:k] + info.dims[k + 1:], reduced, info)


@_rule("split", "split_with_sizes", "unbind", "unsafe_split", "unsafe_split_with_sizes", "chunk")
def _split(tracer: Tracer, func: Any, named: dict[str, Any], out: Any) -> list[Optional[Info]]:
    x = _first(named)
    info = _info(tracer, x)
    k = named.get("dim", 0) % x.dim()
    outs = _tensor_outputs(out)
    d = info.dims[k]
    result: list[Optional[Info]] = []
    offset = 0
    for t in outs:
        if func.overloadpacket is aten.unbind:
            result.append(_with_reduced(
                info.dims[:k] + info.dims[k + 1:],
                [Field(d.axis, d.rf.slice(offset))] if isinstance(d, Field) else [], info))
            offset += 1
            continue
        dims = list(info.dims)
        if isinstance(d, Field):
            dims[k] = Field(d.axis, d.rf.slice(offset))
        elif isinstance(d, Merged):
            raise _NoField(f"splitting a folded dim {k}: no single field")
        result.append(Info(tuple(dims), info.reduced))
        offset += t.shape[k]
    return result


# -- reductions: a reduced spatial dim sees the whole map


def _reduce_dims(x: Tensor, named: dict[str, Any]) -> list[int]:
    dim = named.get("dim")
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return list(range(x.dim()))
    dims = dim if isinstance(dim, (list, tuple)) else [dim]
    return sorted({int(d) % max(x.dim(), 1) for d in dims})


@_rule("mean", "sum", "amax", "amin", "max", "min", "var", "std", "var_mean", "std_mean", "logsumexp",
       "prod", "norm", "linalg_vector_norm", "argmax", "argmin", "nansum", "nanmean", "all", "any")
def _reduce(tracer: Tracer, func: Any, named: dict[str, Any], out: Any) -> Info:
    x = _first(named)
    info = _info(tracer, x)
    if x.dim() == 0:
        return info
    o = _tensor_outputs(out)[0]
    gone = _reduce_dims(x, named)
    if func.overloadpacket in (aten.max, aten.min) and "dim" not in named and "other" in named:
        return _pointwise(tracer, func, named, out)  # max(a, b) is elementwise
    keep = o.dim() == x.dim()
    spans = [f for k in gone for f in _span(info.dims[k], x.shape[k])]
    if keep:
        dims = tuple(
            (spans_k[0] if (spans_k := _span(d, x.shape[k])) and isinstance(d, Field) else None)
            if k in gone else d
            for k, d in enumerate(info.dims)
        )
        return _with_reduced(dims, [f for f in spans if f.axis not in {getattr(d, "axis", None) for d in dims}], info)
    return _with_reduced(tuple(d for k, d in enumerate(info.dims) if k not in gone), spans, info)


@_cost("mean", "sum")
def _reduce_cost(func: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> tuple[str, int]:
    x = args[0]
    return ("pool", x.numel()) if isinstance(x, Tensor) and func.overloadpacket is aten.mean else ("pool", 0)


@_rule("_softmax", "_log_softmax", "softmax", "log_softmax", "cumsum", "cumprod", "logcumsumexp")
def _along(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    x = _first(named)
    info = _info(tracer, x)
    k = named["dim"] % max(x.dim(), 1)
    if isinstance(info.dims[k], (Field, Merged)):
        raise _NoField(f"{_op_name(func)} along spatial dim {k}: every unit sees the whole map")
    return info


# -- matrix products: the contracted dim is summed over


def _contract(a: Info, a_dim: int, b: Optional[Info], b_dim: int, a_t: Tensor, b_t: Tensor) -> list[Field]:
    spans = _span(a.dims[a_dim], a_t.shape[a_dim])
    if b is not None:
        spans += _span(b.dims[b_dim], b_t.shape[b_dim])
    return spans


def _matmul_info(tracer: Tracer, a_t: Tensor, b_t: Tensor, out: Tensor) -> Info:
    a, b = tracer.get(a_t), tracer.get(b_t)
    empty_a = a or Info((None,) * a_t.dim())
    empty_b = b or Info((None,) * b_t.dim())
    spans = _contract(empty_a, a_t.dim() - 1, b, b_t.dim() - 2, a_t, b_t)
    lead = [[empty_a.dims[k]] + ([empty_b.dims[k]] if b is not None else []) for k in range(a_t.dim() - 2)]
    base = _merge(tracer, [i for i in (a, b) if i is not None], lead, "matmul")
    dims = (*base.dims, empty_a.dims[-2], empty_b.dims[-1] if b is not None else None)
    return _with_reduced(dims, spans, base)


@_rule("mm", "bmm")
def _mm(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    return _matmul_info(tracer, _first(named), named["mat2"], out)


@_rule("addmm", "baddbmm", "_addmm_activation")
def _addmm(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    a, b = (named["mat1"], named["mat2"]) if "mat1" in named else (named["batch1"], named["batch2"])
    if tracer.get(a) is None and tracer.get(b) is None:
        return tracer.get(_first(named))  # type: ignore[return-value]
    return _matmul_info(tracer, a, b, out)


@_cost("mm", "bmm", "addmm", "baddbmm", "_addmm_activation")
def _mm_cost(func: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Tensor) -> tuple[str, int]:
    named = _named(func, args, kwargs)
    a = named.get("mat1", named.get("batch1", named.get("self")))
    b = named.get("mat2", named.get("batch2"))
    batch = a.shape[0] if a.dim() == 3 else 1
    return "matmul", A.matmul_macs(a.shape[-2], a.shape[-1], b.shape[-1], batch)


@_cost("native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
       "_native_batch_norm_legit_functional", "native_layer_norm", "native_group_norm")
def _norm_cost(func: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> tuple[str, int]:
    return "norm", A.norm_macs(args[0].numel())


@_cost("max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
       "max_pool3d_with_indices", "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d")
def _max_pool_cost(func: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> tuple[str, int]:
    return "pool", 0
