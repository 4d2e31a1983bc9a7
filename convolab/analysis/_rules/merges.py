"""Ops that line maps up unit by unit: copies, casts and normalisation (one map keeps its
fields), elementwise arithmetic with broadcasting, concatenation and stacking (several maps:
the union of their fields, misaligned branches reported).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import torch
from torch import Tensor

from ... import arithmetic
from ...arithmetic import ReceptiveField
from .._fields import CONCAT_NOTE, GATE_NOTE, Axis, DimInfo, Field, Info, Merged, NoField, merge, span, with_reduced
from .._tracer import OpTable, Tracer, first, tensor_outputs, tensors

aten = torch.ops.aten

RULES = OpTable()

# How the copy rule reports a write through a view; PadMode withdraws the ones F.pad makes.
COPY_INTO_VIEW = "aten.copy_ into a view"


def fast_batch_norm(args: Sequence[Any], kwargs: dict[str, Any]) -> Optional[tuple[Tensor, Tensor, Tensor]]:
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


def _norm_cost(func: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> tuple[str, int]:
    return "norm", arithmetic.norm_macs(args[0].numel())


def _same(tracer: Tracer, func: Any, named: dict[str, Any], out: Any) -> Optional[Info]:
    """Ops that keep every dim's meaning: copies, dtype casts, normalisation (its statistics are
    treated as constants)."""
    return tracer.get(first(named))


RULES.rule(
    "clone", "_to_copy", "alias", "detach", "lift_fresh", "lift_fresh_copy", "contiguous",
    "dropout", "native_dropout", "feature_dropout", "alpha_dropout", "_to_dense", "clamp",
    "_weight_norm", "channel_shuffle", "native_channel_shuffle",
)(_same)
RULES.rule("native_batch_norm", cost=_norm_cost, meta=fast_batch_norm)(_same)
RULES.rule(
    "_native_batch_norm_legit", "_native_batch_norm_legit_no_training", "_native_batch_norm_legit_functional",
    "native_layer_norm", "native_group_norm", cost=_norm_cost,
)(_same)


@RULES.rule("copy_", "copy")
def _copy(tracer: Tracer, func: Any, named: dict[str, Any], out: Any) -> Optional[Info]:
    src = tracer.get(named.get("src"))
    if src is None:
        return tracer.get(named.get("self"))
    base = getattr(named["self"], "_base", None)
    if base is not None and func.overloadpacket is aten.copy_:
        # a write through a view (x[..., 1:-1] = y): the base now holds y's units at an offset
        # this rule cannot see; mark it instead of leaving it looking like a constant
        problem = "written through a view by aten.copy_ (not analysed)"
        tracer.not_analysed.append((COPY_INTO_VIEW, tracer.where[-1], "in-place write through a view"))
        tracer.set(base, Info((None,) * base.dim(), problem=problem))
    return broadcast(tracer, [src], [named["src"]], out)


@RULES.tagged(torch.Tag.pointwise)
def pointwise(tracer: Tracer, func: Any, named: dict[str, Any], out: Any) -> Info:
    """Elementwise ops without a rule of their own (ATen tags them pointwise): :func:`broadcast`."""
    operands = [t for t in tensors(list(named.values()), {}) if tracer.get(t) is not None]
    return broadcast(tracer, [tracer.get(t) for t in operands], operands, out)  # type: ignore[misc]


def broadcast(tracer: Tracer, infos: Sequence[Info], operands: Sequence[Tensor], out: Any) -> Info:
    """Elementwise merge with numpy broadcasting (dims aligned from the right).

    An operand that is 1 wide along a spatial dim the output spans (a squeeze-and-
    excitation gate, an attention scale) is treated as a per-map constant: it does
    not widen the field. That is the convention of receptive-field tables; a note says so.
    """
    o = tensor_outputs(out)[0]
    n = o.dim()
    columns: list[list[DimInfo]] = [[] for _ in range(n)]
    for info, t in zip(infos, operands):
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
    gated = [i for i, t in zip(infos, operands) if t.dim() < n or any(
        t.shape[k] == 1 and o.shape[n - t.dim() + k] != 1 for k in range(t.dim()))]
    merged = merge(infos, columns, "merge", tracer.warn)
    if gated and any(isinstance(d, Field) for d in merged.dims):
        present = {d.axis for d in merged.dims if isinstance(d, Field)}
        merged = Info(merged.dims, tuple(f for f in merged.reduced if f.axis not in present))
    return merged


@RULES.rule("cat")
def _cat(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    joined_tensors = [t for t in named["tensors"] if t.numel() or t.dim() > 1]
    n = out.dim()
    dim = named.get("dim", 0) % n
    infos = [tracer.get(t) or Info((None,) * t.dim()) for t in joined_tensors]
    columns = [[i.dims[k] for i in infos] for k in range(n)]
    joined = columns[dim]
    if any(isinstance(d, Field) for d in joined):
        raise NoField(f"cat along spatial dim {dim}: the joined map has no single field")
    if any(isinstance(d, Merged) for d in joined):
        # flattened maps joined into one vector (spatial pyramid pooling's levels): each unit
        # sees its bin; the vector's field is their union, as for a flattened map after a linear layer
        spans = [f for d, t in zip(joined, joined_tensors) for f in span(d, t.shape[dim])]
        tracer.note(CONCAT_NOTE)
        columns[dim] = [None] * len(joined)
        merged = merge(infos, columns, "cat", tracer.warn)
        return with_reduced(merged.dims, spans, merged)
    return merge(infos, columns, "cat", tracer.warn)


@RULES.rule("stack")
def _stack(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    stacked = named["tensors"]
    dim = named.get("dim", 0) % out.dim()
    infos = [tracer.get(t) or Info((None,) * t.dim()) for t in stacked]
    # Maps that each saw a different part of an input axis (the steps of a recurrent layer, a
    # loop over rows) stacked into a new dim: its units see different regions, and no
    # (size, jump, start) describes them. Never report their union as everyone's field.
    by_axis: dict[Axis, list[ReceptiveField]] = {}
    for info in infos:
        for f in info.reduced:
            by_axis.setdefault(f.axis, []).append(f.rf)
    for axis, rfs in by_axis.items():
        if len(rfs) != len(infos) or not all(rf == rfs[0] for rf in rfs):
            raise NoField(
                f"aten.stack joins maps that saw different parts of input axis {axis[1]} (e.g. the steps of a "
                f"recurrent layer such as nn.LSTM, each reading the positions before it): the stacked dim has no "
                f"single field (not analysed)"
            )
    columns = [[i.dims[k] for i in infos] for k in range(stacked[0].dim())]
    merged = merge(infos, columns, "stack", tracer.warn)
    dims = list(merged.dims)
    dims.insert(dim, None)
    return Info(tuple(dims), merged.reduced)
