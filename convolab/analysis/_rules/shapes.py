"""Ops that move, fold or cut dims without reading across units: views and reshapes, permutations,
squeezing, broadcasting views, slicing, selecting and splitting; and ops whose result depends on
shapes only. A dim keeps its field when the op keeps it whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import torch
from torch import Tensor

from .._fields import DimInfo, Field, Info, Merged, NoField, span, with_reduced
from .._tracer import OpTable, Tracer, first, tensor_outputs

aten = torch.ops.aten

RULES = OpTable()

RULES.constant(
    "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like",
    "new_zeros", "new_ones", "new_empty", "new_full", "sym_size", "sym_stride", "sym_numel",
    "_local_scalar_dense", "is_nonzero",
)


# --------------------------------------------------------------------------- views


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


@RULES.rule("view", "_unsafe_view", "reshape", "_reshape_alias", "view_copy")
def _view(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    x = first(named)
    info = tracer.require(x)
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
        raise NoField(
            f"view {list(x.shape)} -> {list(out.shape)} splits or regroups a spatial dim: "
            f"no single field"
        )
    return with_reduced(dims, reduced, info)


# --------------------------------------------------------------------------- moving and cutting dims


@RULES.rule("permute")
def _permute(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    info = tracer.require(first(named))
    n = len(info.dims)
    return Info(tuple(info.dims[int(k) % n] for k in named["dims"]), info.reduced)


@RULES.rule("transpose")
def _transpose(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    info = tracer.require(first(named))
    n = len(info.dims)
    dims = list(info.dims)
    a, b = named["dim0"] % n, named["dim1"] % n
    dims[a], dims[b] = dims[b], dims[a]
    return Info(tuple(dims), info.reduced)


@RULES.rule("t")
def _t(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    info = tracer.require(first(named))
    return Info(tuple(reversed(info.dims)), info.reduced)


@RULES.rule("unsqueeze")
def _unsqueeze(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    info = tracer.require(first(named))
    dims = list(info.dims)
    dims.insert(named["dim"] % out.dim(), None)
    return Info(tuple(dims), info.reduced)


@RULES.rule("squeeze")
def _squeeze(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    x = first(named)
    info = tracer.require(x)
    if "dim" in named:
        wanted = named["dim"]
        wanted = {int(d) % max(x.dim(), 1) for d in (wanted if isinstance(wanted, (list, tuple)) else [wanted])}
    else:
        wanted = set(range(x.dim()))
    gone = [k for k in range(x.dim()) if k in wanted and x.shape[k] == 1]
    kept = tuple(d for k, d in enumerate(info.dims) if k not in gone)
    return with_reduced(kept, [f for k in gone for f in span(info.dims[k], 1)], info)


@RULES.rule("expand")
def _expand(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    x = first(named)
    info = tracer.require(x)
    shift = out.dim() - x.dim()
    dims: list[DimInfo] = [None] * shift
    for k, d in enumerate(info.dims):
        dims.append(d if x.shape[k] == out.shape[shift + k] else None)
    return Info(tuple(dims), info.reduced)


@RULES.rule("slice")
def _slice(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    x = first(named)
    info = tracer.require(x)
    k = named.get("dim", 0) % x.dim()
    d = info.dims[k]
    if isinstance(d, Field):
        begin = named.get("start") or 0
        begin = max(begin + x.shape[k], 0) if begin < 0 else min(begin, x.shape[k])
        dims = list(info.dims)
        dims[k] = Field(d.axis, d.rf.slice(begin, int(named.get("step") or 1)))
        return Info(tuple(dims), info.reduced)
    if isinstance(d, Merged) and out.shape[k] != x.shape[k]:
        raise NoField(f"slicing a folded dim {k}: no single field")
    return info


@RULES.rule("select")
def _select(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    x = first(named)
    info = tracer.require(x)
    k = named["dim"] % x.dim()
    d = info.dims[k]
    reduced = []
    if isinstance(d, Field):
        reduced = [Field(d.axis, d.rf.slice(named["index"] % x.shape[k]))]
    elif isinstance(d, Merged):
        raise NoField(f"selecting from a folded dim {k}: no single field")
    return with_reduced(info.dims[:k] + info.dims[k + 1:], reduced, info)


@RULES.rule("split", "split_with_sizes", "unbind", "unsafe_split", "unsafe_split_with_sizes", "chunk")
def _split(tracer: Tracer, func: Any, named: dict[str, Any], out: Any) -> list[Optional[Info]]:
    x = first(named)
    info = tracer.require(x)
    k = named.get("dim", 0) % x.dim()
    outs = tensor_outputs(out)
    d = info.dims[k]
    result: list[Optional[Info]] = []
    offset = 0
    for t in outs:
        if func.overloadpacket is aten.unbind:
            result.append(with_reduced(
                info.dims[:k] + info.dims[k + 1:],
                [Field(d.axis, d.rf.slice(offset))] if isinstance(d, Field) else [], info))
            offset += 1
            continue
        dims = list(info.dims)
        if isinstance(d, Field):
            dims[k] = Field(d.axis, d.rf.slice(offset))
        elif isinstance(d, Merged):
            raise NoField(f"splitting a folded dim {k}: no single field")
        result.append(Info(tuple(dims), info.reduced))
        offset += t.shape[k]
    return result
