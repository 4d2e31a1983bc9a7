"""The campaign's oracle: what an op must do with given arguments, from the contract in
DESIGN.md and the ops' docstrings, written without convolab's code.

Each ``*_expect`` function either raises :class:`Invalid` (the contract says: refuse with a
clear error) or returns the expected result in float64 (plus the expected dtype). Values come
from torch's own kernels in float64 on explicitly padded input, or from the loop references
of ``tests/_reference.py``; the argument rules (padding forms, 'same' for any stride, the
per-side pooling limit, the dtype rule, 32-bit window arguments) are restated here.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tests._reference import adaptive_pool_loop, pool_loop, same_pads_tf

FLOATING = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
INTEGER = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
INT32_MAX = 2**31 - 1
CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


class Invalid(Exception):
    """The arguments break the contract: the op must refuse them with a clear error."""


# ----------------------------------------------------------------------------- arguments


def as_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise Invalid(f"{name} is a bool")
    try:
        v = operator.index(value)
    except TypeError:
        raise Invalid(f"{name} is not an int: {value!r}") from None
    if v > INT32_MAX:
        raise Invalid(f"{name} beyond 32 bits")
    return v


def per_dim(value: Any, nd: int, name: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or value is None:
        raise Invalid(f"{name} {value!r}")
    if isinstance(value, Sequence):
        items = list(value)
        if len(items) == 1 and nd > 1:
            items = items * nd
        if len(items) != nd:
            raise Invalid(f"{name} has {len(items)} entries for {nd} dims")
        return tuple(as_int(v, name) for v in items)
    return (as_int(value, name),) * nd


def positive(value: Any, nd: int, name: str) -> tuple[int, ...]:
    out = per_dim(value, nd, name)
    if any(v < 1 for v in out):
        raise Invalid(f"{name} < 1")
    return out


def pad_pairs(padding: Any, nd: int, spatial: Sequence[int], k: Sequence[int], s: Sequence[int],
              d: Sequence[int], same_ok: bool = True) -> list[tuple[int, int]]:
    """Per-side padding of every form: int, per-dim ints, per-dim pairs, 'valid', 'same' (TF rule)."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return [(0, 0)] * nd
        if mode == "same" and same_ok:
            return [same_pads_tf(i, kk, ss, dd) for i, kk, ss, dd in zip(spatial, k, s, d)]
        raise Invalid(f"padding {padding!r}")
    if isinstance(padding, Sequence) and padding and all(
        isinstance(p, Sequence) and not isinstance(p, str) for p in padding
    ):
        if len(padding) != nd or any(len(p) != 2 for p in padding):
            raise Invalid("padding pairs of the wrong length")
        pairs = [(as_int(a, "padding"), as_int(b, "padding")) for a, b in padding]
    else:
        pairs = [(p, p) for p in per_dim(padding, nd, "padding")]
    if any(v < 0 for pair in pairs for v in pair):
        raise Invalid("negative padding")
    return pairs


def check_tensor(t: Any, name: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise Invalid(f"{name} is not a tensor")
    return t


def batched(x: Tensor, nd: int) -> tuple[Tensor, bool]:
    if x.dim() == nd + 2:
        return x, False
    if x.dim() == nd + 1:
        return x.unsqueeze(0), True
    raise Invalid(f"input rank {x.dim()} for {nd} spatial dims")


def flat(pairs: Sequence[tuple[int, int]]) -> list[int]:
    out: list[int] = []
    for b, a in reversed(pairs):
        out += [b, a]
    return out


def f64(t: Tensor) -> Tensor:
    return (t.real if t.is_complex() else t).to(torch.float64)


# ----------------------------------------------------------------------------- convolution


def conv_expect(x: Any, w: Any, b: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                groups: Any = 1, padding_mode: str = "zeros", flip: bool = False) -> tuple[Tensor, torch.dtype]:
    """Expected ``conv`` (float64) and its dtype."""
    check_tensor(x, "input")
    check_tensor(w, "weight")
    if w.dim() not in (3, 4, 5):
        raise Invalid("weight rank")
    nd = w.dim() - 2
    x, unbatched = batched(x, nd)
    if x.dtype not in FLOATING or w.dtype != x.dtype or (b is not None and (not isinstance(b, Tensor) or b.dtype != x.dtype)):
        raise Invalid("dtype")
    s = positive(stride, nd, "stride")
    d = positive(dilation, nd, "dilation")
    g = as_int(groups, "groups")
    c_in, c_out, k = x.shape[1], w.shape[0], tuple(w.shape[2:])
    if g < 1 or w.shape[1] * g != c_in or c_out % g or c_in % g:
        raise Invalid("channels/groups")
    if b is not None and tuple(b.shape) != (c_out,):
        raise Invalid("bias shape")
    if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
        raise Invalid("padding_mode")
    spatial = tuple(x.shape[2:])
    pairs = pad_pairs(padding, nd, spatial, k, s, d)
    for (pb, pa), i in zip(pairs, spatial):
        if padding_mode == "reflect" and max(pb, pa) >= i and (pb or pa):
            raise Invalid("reflect padding >= size")
        if padding_mode == "circular" and max(pb, pa) > i:
            raise Invalid("circular padding > size")
    out = [(i + pb + pa - dd * (kk - 1) - 1) // ss + 1 for i, (pb, pa), kk, ss, dd in zip(spatial, pairs, k, s, d)]
    if any(o < 1 for o in out):
        raise Invalid("output size < 1")
    xx, ww = f64(x), f64(w)
    if flip:
        ww = ww.flip(list(range(2, ww.dim())))
    if any(pb or pa for pb, pa in pairs):
        mode = "constant" if padding_mode == "zeros" else padding_mode
        xx = F.pad(xx, flat(pairs), mode=mode)
    y = CONV[nd](xx, ww, None if b is None else f64(b), s, 0, d, g)
    return (y.squeeze(0) if unbatched else y), x.dtype


def conv_transpose_expect(x: Any, w: Any, b: Any = None, stride: Any = 1, padding: Any = 0,
                          output_padding: Any = 0, groups: Any = 1, dilation: Any = 1) -> tuple[Tensor, torch.dtype]:
    """Expected ``conv_transpose``: torch's without padding, then the per-side crop."""
    check_tensor(x, "input")
    check_tensor(w, "weight")
    if w.dim() not in (3, 4, 5):
        raise Invalid("weight rank")
    nd = w.dim() - 2
    x, unbatched = batched(x, nd)
    if x.dtype not in FLOATING or w.dtype != x.dtype or (b is not None and b.dtype != x.dtype):
        raise Invalid("dtype")
    s = positive(stride, nd, "stride")
    d = positive(dilation, nd, "dilation")
    g = as_int(groups, "groups")
    c_in = x.shape[1]
    if g < 1 or w.shape[0] != c_in or c_in % g:
        raise Invalid("channels/groups")
    c_out = w.shape[1] * g
    if b is not None and tuple(b.shape) != (c_out,):
        raise Invalid("bias shape")
    k, spatial = tuple(w.shape[2:]), tuple(x.shape[2:])
    pairs = pad_pairs(padding, nd, spatial, k, s, d, same_ok=False)
    op = per_dim(output_padding, nd, "output_padding")
    if any(o < 0 or (o >= ss and o >= dd) for o, ss, dd in zip(op, s, d)):
        raise Invalid("output_padding")
    full = [(i - 1) * ss + dd * (kk - 1) + 1 + o for i, ss, dd, kk, o in zip(spatial, s, d, k, op)]
    out = [f - pb - pa for f, (pb, pa) in zip(full, pairs)]
    if any(o < 1 for o in out):
        raise Invalid("output size < 1")
    y = CONV_T[nd](f64(x), f64(w), None, s, 0, op, g, d)
    y = y[(Ellipsis, *(slice(pb, pb + o) for (pb, _), o in zip(pairs, out)))]
    if b is not None:
        y = y + f64(b).view(-1, *([1] * nd))
    return (y.squeeze(0) if unbatched else y), x.dtype


# ----------------------------------------------------------------------------- pooling


def _window_args(x: Tensor, nd: int, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool):
    k = positive(kernel_size, nd, "kernel_size")
    s = k if stride is None or (isinstance(stride, Sequence) and len(stride) == 0) else positive(stride, nd, "stride")
    d = positive(dilation, nd, "dilation")
    spatial = tuple(x.shape[-nd:])
    pairs = pad_pairs(padding, nd, spatial, k, s, d)
    for (pb, pa), kk, dd in zip(pairs, k, d):
        if max(pb, pa) > (dd * (kk - 1) + 1) // 2:
            raise Invalid("padding over half the window")
    for i, kk, ss, dd, (pb, pa) in zip(spatial, k, s, d, pairs):
        span = i + pb + pa - dd * (kk - 1) - 1
        o = (-(-span // ss) if ceil_mode else span // ss) + 1
        if ceil_mode and (o - 1) * ss >= i + pb:
            o -= 1
        if o < 1:
            raise Invalid("output size < 1")
        for q in range(o):  # a window that reads only padding (a dilation stepping over the input)
            if not any(0 <= q * ss - pb + t * dd < i for t in range(kk)):
                raise Invalid("a window in the padding only")
    return k, s, d, pairs


def pool_nd(x: Any, kernel_size: Any, nd: Optional[int]) -> int:
    check_tensor(x, "input")
    if nd is None:
        nd = len(kernel_size) if isinstance(kernel_size, Sequence) and len(kernel_size) > 1 else x.dim() - 2
    if not 1 <= nd <= 3 or x.dim() not in (nd + 1, nd + 2):
        raise Invalid("input rank")
    return nd


def _lead(x: Tensor, nd: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """The input as [N*C, 1, *spatial] float64 NumPy (for the loop references), and its lead shape."""
    lead = tuple(x.shape[:-nd])
    return f64(x).reshape(-1, 1, *x.shape[-nd:]).numpy(), lead


def _back(a: np.ndarray, lead: tuple[int, ...], dtype=torch.float64) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).reshape(*lead, *a.shape[2:]).to(dtype)


def max_pool_expect(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                    ceil_mode: bool = False, return_indices: bool = False, nd: Optional[int] = None):
    nd = pool_nd(x, kernel_size, nd)
    if x.dtype not in FLOATING + INTEGER:
        raise Invalid("dtype")
    k, s, d, pairs = _window_args(x, nd, kernel_size, stride, padding, dilation, ceil_mode)
    a, lead = _lead(x, nd)
    # np.max propagates NaN as torch's max pooling does; padding never wins
    values, _ = pool_loop(a, k, s, pairs, d, ceil_mode, mode="reduce", reduce=np.max, pad_value=-np.inf)
    y = _back(values, lead)
    if not return_indices:
        return y, x.dtype
    if not bool(torch.isfinite(f64(x)).all()):
        return (y, None), x.dtype
    _, idx = pool_loop(a, k, s, pairs, d, ceil_mode, mode="max")
    return (y, _back(idx, lead, torch.int64)), x.dtype


def avg_pool_expect(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                    count_include_pad: bool = True, divisor_override: Any = None, nd: Optional[int] = None):
    nd = pool_nd(x, kernel_size, nd)
    if divisor_override is not None and (isinstance(divisor_override, bool) or as_int(divisor_override, "divisor") == 0):
        raise Invalid("divisor_override")
    if x.dtype not in FLOATING:
        raise Invalid("dtype")
    k, s, _, pairs = _window_args(x, nd, kernel_size, stride, padding, 1, ceil_mode)
    a, lead = _lead(x, nd)
    values, _ = pool_loop(a, k, s, pairs, 1, ceil_mode, mode="avg", count_include_pad=count_include_pad,
                          divisor_override=divisor_override)
    return _back(values, lead), x.dtype


def lp_pool_expect(x: Any, norm_type: Any, kernel_size: Any, stride: Any = None, ceil_mode: bool = False,
                   nd: Optional[int] = None):
    nd = pool_nd(x, kernel_size, nd)
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)) or norm_type == 0 or math.isnan(norm_type):
        raise Invalid("norm_type")
    if x.dtype not in FLOATING:
        raise Invalid("dtype")
    k, s, _, _ = _window_args(x, nd, kernel_size, stride, 0, 1, ceil_mode)
    a, lead = _lead(x, nd)
    if math.isinf(norm_type):
        mag = np.abs(a) if norm_type > 0 else -np.abs(a)
        values, _ = pool_loop(mag, k, s, 0, 1, ceil_mode, mode="reduce", reduce=np.max, pad_value=-np.inf)
        return _back(values if norm_type > 0 else -values, lead), x.dtype
    with np.errstate(all="ignore"):
        # the p-th root of the sum of x**p over the part of the window inside the input
        values, _ = pool_loop(a, k, s, 0, 1, ceil_mode, mode="lp", reduce=norm_type)
    return _back(values, lead), x.dtype


def adaptive_size(x: Tensor, output_size: Any, nd: int) -> list[int]:
    if output_size is None or (not isinstance(output_size, Sequence)):
        sizes = [output_size] * nd
    elif isinstance(output_size, str):
        raise Invalid("output_size str")
    else:
        sizes = list(output_size)
        if len(sizes) == 1 and nd > 1:
            sizes = sizes * nd
    if len(sizes) != nd:
        raise Invalid("output_size length")
    out = []
    for v, i in zip(sizes, x.shape[-nd:]):
        if v is None:
            out.append(i)
            continue
        v = as_int(v, "output_size")
        if v < 1:
            raise Invalid("output_size < 1")
        out.append(v)
    if any(i == 0 for i in x.shape[-nd:]):
        raise Invalid("empty spatial dim")
    return out


def adaptive_expect(x: Any, output_size: Any, mode: str, return_indices: bool = False, nd: Optional[int] = None):
    nd = pool_nd(x, output_size, nd)
    sizes = adaptive_size(x, output_size, nd)
    if x.dtype not in (FLOATING + INTEGER if mode == "max" else FLOATING):
        raise Invalid("dtype")
    a, lead = _lead(x, nd)
    if a.shape[0] == 0:  # an empty batch: the loop reference cannot reshape it
        y = torch.zeros(*lead, *sizes, dtype=torch.float64)
    else:
        y = _back(adaptive_pool_loop(a, sizes, mode), lead)
    if not return_indices:
        return y, x.dtype
    xb = f64(x)
    if xb.numel() == 0:
        return (y, torch.zeros(y.shape, dtype=torch.int64)), x.dtype
    fn = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}[nd]
    # torch's kernel is the reference for which of equal maxima is indexed (the first)
    return (y, fn(xb, sizes, True)[1]), x.dtype


def global_expect(x: Any, mode: str, keepdim: bool = False):
    check_tensor(x, "input")
    if x.dim() < 3 or any(v == 0 for v in x.shape[2:]):
        raise Invalid("input rank or empty")
    if x.dtype not in (FLOATING + INTEGER if mode == "max" else FLOATING):
        raise Invalid("dtype")
    dims = tuple(range(2, x.dim()))
    xx = f64(x)
    y = xx.amax(dims, keepdim) if mode == "max" else xx.mean(dims, keepdim)
    return y, x.dtype


def generic_pool_expect(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, *, reduce: str,
                        dilation: Any = 1, pad_value: Any = None):
    nd = pool_nd(x, kernel_size, None)
    if reduce not in ("max", "min", "mean", "sum"):
        raise Invalid("reduce")
    if x.dtype not in (FLOATING + INTEGER if reduce in ("max", "min") else FLOATING):
        raise Invalid("dtype")
    k, s, d, pairs = _window_args(x, nd, kernel_size, stride, padding, dilation, False)
    default = {"max": -np.inf, "min": np.inf}.get(reduce, 0.0)
    value = default if pad_value is None else float(pad_value)
    if pad_value is not None and not x.is_floating_point() and not math.isinf(value):
        info = torch.iinfo(x.dtype)
        if math.isnan(value) or not value.is_integer() or not info.min <= pad_value <= info.max:
            raise Invalid("pad_value an integer input cannot hold")
    if not x.is_floating_point() and math.isinf(value):
        info = torch.iinfo(x.dtype)
        value = info.min if value < 0 else info.max
    fn = {"max": np.max, "min": np.min, "mean": np.mean, "sum": np.sum}[reduce]
    a, lead = _lead(x, nd)
    values, _ = pool_loop(a, k, s, pairs, d, False, mode="reduce", reduce=fn, pad_value=value)
    return _back(values, lead), x.dtype


def spp_expect(x: Any, levels: Any, mode: str = "max", bins: str = "adaptive"):
    check_tensor(x, "input")
    nd = x.dim() - 2
    if not 1 <= nd <= 3 or mode not in ("max", "avg") or bins not in ("adaptive", "paper"):
        raise Invalid("rank, mode or bins")
    if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence) or not levels:
        raise Invalid("levels")
    if any(v == 0 for v in x.shape[2:]):
        raise Invalid("empty")
    if x.dtype not in (FLOATING + INTEGER if mode == "max" else FLOATING):
        raise Invalid("dtype")
    pieces = []
    for level in levels:
        n = positive(level, nd, "levels")
        if bins == "adaptive":
            y, _ = adaptive_expect(x, n, mode)
        else:
            k, s = [], []
            for a, m in zip(x.shape[2:], n):
                if a < m:
                    raise Invalid("level larger than the input")
                w, st = -(-a // m), a // m
                if (a - w) // st + 1 != m:
                    raise Invalid("paper bins do not fit")
                k.append(w)
                s.append(st)
            if mode == "max":
                y, _ = max_pool_expect(x, tuple(k), tuple(s), 0, 1, False, False, nd)
            else:
                y, _ = avg_pool_expect(x, tuple(k), tuple(s), 0, False, True, None, nd)
        pieces.append(y.flatten(1))
    return torch.cat(pieces, 1), x.dtype


def shuffle_expect(x: Any, groups: Any):
    check_tensor(x, "input")
    g = as_int(groups, "groups")
    if g < 1 or x.dim() < 2 or x.shape[1] % g:
        raise Invalid("groups")
    n, c, *rest = x.shape
    return x.reshape(n, g, c // g, *rest).transpose(1, 2).reshape(x.shape), x.dtype


def depthwise_separable_expect(x: Any, dw: Any, pw: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                               padding_mode: str = "zeros"):
    check_tensor(x, "input")
    check_tensor(dw, "depthwise_weight")
    check_tensor(pw, "pointwise_weight")
    nd = dw.dim() - 2
    if not 1 <= nd <= 3 or x.dim() not in (nd + 1, nd + 2):
        raise Invalid("ranks")
    c_in = x.shape[-nd - 1]
    if dw.shape[1] != 1 or dw.shape[0] == 0 or dw.shape[0] % c_in:
        raise Invalid("depthwise shape")
    if pw.dim() != nd + 2 or pw.shape[1] != dw.shape[0] or any(v != 1 for v in pw.shape[2:]):
        raise Invalid("pointwise shape")
    if pw.dtype != x.dtype:
        raise Invalid("pointwise dtype")
    mid, _ = conv_expect(x, dw, None, stride, padding, dilation, c_in, padding_mode)
    out, _ = conv_expect(mid, f64(pw))
    return out, x.dtype
