"""Ops that sum or compare over dims: reductions (a reduced spatial dim sees the whole map),
softmax-like ops along a dim, and matrix products (the contracted dim is summed over).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import torch
from torch import Tensor

from ... import arithmetic
from .._fields import Field, Info, Merged, NoField, merge, span, with_reduced
from .._tracer import OpTable, Tracer, first, named_args, op_name, tensor_outputs
from .merges import pointwise

aten = torch.ops.aten

RULES = OpTable()


def _reduce_dims(x: Tensor, named: dict[str, Any]) -> list[int]:
    dim = named.get("dim")
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return list(range(x.dim()))
    dims = dim if isinstance(dim, (list, tuple)) else [dim]
    return sorted({int(d) % max(x.dim(), 1) for d in dims})


def _mean_cost(func: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> tuple[str, int]:
    """One accumulate per input element, counted as pooling (a global average pool is a mean)."""
    x = args[0]
    return "pool", x.numel() if isinstance(x, Tensor) else 0


@RULES.rule("mean", cost=_mean_cost)
@RULES.rule("sum", "amax", "amin", "max", "min", "var", "std", "var_mean", "std_mean", "logsumexp",
            "prod", "norm", "linalg_vector_norm", "argmax", "argmin", "nansum", "nanmean", "all", "any")
def _reduce(tracer: Tracer, func: Any, named: dict[str, Any], out: Any) -> Info:
    x = first(named)
    info = tracer.require(x)
    if x.dim() == 0:
        return info
    o = tensor_outputs(out)[0]
    gone = _reduce_dims(x, named)
    if func.overloadpacket in (aten.max, aten.min) and "dim" not in named and "other" in named:
        return pointwise(tracer, func, named, out)  # max(a, b) is elementwise
    keep = o.dim() == x.dim()
    spans = [f for k in gone for f in span(info.dims[k], x.shape[k])]
    if keep:
        dims = tuple(
            (spans_k[0] if (spans_k := span(d, x.shape[k])) and isinstance(d, Field) else None)
            if k in gone else d
            for k, d in enumerate(info.dims)
        )
        return with_reduced(dims, [f for f in spans if f.axis not in {getattr(d, "axis", None) for d in dims}], info)
    return with_reduced(tuple(d for k, d in enumerate(info.dims) if k not in gone), spans, info)


@RULES.rule("_softmax", "_log_softmax", "softmax", "log_softmax", "cumsum", "cumprod", "logcumsumexp")
def _along(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    x = first(named)
    info = tracer.require(x)
    k = named["dim"] % max(x.dim(), 1)
    if isinstance(info.dims[k], (Field, Merged)):
        raise NoField(f"{op_name(func)} along spatial dim {k}: every unit sees the whole map")
    return info


# --------------------------------------------------------------------------- matrix products


def _matmul_info(tracer: Tracer, a_t: Tensor, b_t: Tensor) -> Info:
    """``a @ b``: batch dims merge, the rows of ``a`` and columns of ``b`` keep their fields, the
    contracted dim (``a``'s last, ``b``'s second to last) is reduced away."""
    a, b = tracer.get(a_t), tracer.get(b_t)
    empty_a = a or Info((None,) * a_t.dim())
    empty_b = b or Info((None,) * b_t.dim())
    spans = span(empty_a.dims[-1], a_t.shape[-1])
    if b is not None:
        spans += span(b.dims[-2], b_t.shape[-2])
    lead = [[empty_a.dims[k]] + ([empty_b.dims[k]] if b is not None else []) for k in range(a_t.dim() - 2)]
    base = merge([i for i in (a, b) if i is not None], lead, "matmul", tracer.warn)
    dims = (*base.dims, empty_a.dims[-2], empty_b.dims[-1] if b is not None else None)
    return with_reduced(dims, spans, base)


def _matmul_cost(func: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Tensor) -> tuple[str, int]:
    named = named_args(func, args, kwargs)
    a = named.get("mat1", named.get("batch1", named.get("self")))
    b = named.get("mat2", named.get("batch2"))
    batch = a.shape[0] if a.dim() == 3 else 1
    return "matmul", arithmetic.matmul_macs(a.shape[-2], a.shape[-1], b.shape[-1], batch)


@RULES.rule("mm", "bmm", cost=_matmul_cost)
def _mm(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    return _matmul_info(tracer, first(named), named["mat2"])


@RULES.rule("addmm", "baddbmm", "_addmm_activation", cost=_matmul_cost)
def _addmm(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Optional[Info]:
    a, b = (named["mat1"], named["mat2"]) if "mat1" in named else (named["batch1"], named["batch2"])
    if tracer.get(a) is None and tracer.get(b) is None:
        return tracer.get(first(named))
    return _matmul_info(tracer, a, b)
