"""Slow, obviously correct references (plain loops over NumPy float64 arrays).

They follow the definitions literally and share no code with convolab, so a test that
compares against them checks convolab, not convolab against itself. Keep inputs tiny.
"""

from __future__ import annotations

import itertools

import numpy as np


def _per_dim(nd, stride, dilation, padding):
    """Per-dim stride and dilation tuples and (before, after) padding pairs."""
    stride = (stride,) * nd if np.isscalar(stride) else tuple(stride)
    dilation = (dilation,) * nd if np.isscalar(dilation) else tuple(dilation)
    if np.isscalar(padding):
        return stride, dilation, [(padding, padding)] * nd
    return stride, dilation, [(p, p) if np.isscalar(p) else tuple(p) for p in padding]


def conv_loop(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1, flip=False):
    """Cross-correlation by definition.

    x: [N, C, *S]; w: [O, C/groups, *K]; padding: int, per-dim ints or per-dim (before, after)
    pairs (zeros); returns [N, O, *out] as float64.
    """
    x, w = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    nd = w.ndim - 2
    stride, dilation, pads = _per_dim(nd, stride, dilation, padding)
    if flip:
        w = w[(Ellipsis, *([slice(None, None, -1)] * nd))]
    n, c = x.shape[:2]
    o, cg = w.shape[:2]
    kernel = w.shape[2:]
    xp = np.zeros((n, c, *(s + b + a for s, (b, a) in zip(x.shape[2:], pads))))
    xp[(slice(None), slice(None), *(slice(b, b + s) for s, (b, _) in zip(x.shape[2:], pads)))] = x
    out_size = [
        (xp.shape[2 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(nd)
    ]
    out = np.zeros((n, o, *out_size))
    og = o // groups
    for b in range(n):
        for oc in range(o):
            g = oc // og
            for pos in itertools.product(*(range(s) for s in out_size)):
                total = 0.0 if bias is None else float(bias[oc])
                for ic in range(cg):
                    for tap in itertools.product(*(range(k) for k in kernel)):
                        where = tuple(p * s + t * d for p, s, t, d in zip(pos, stride, tap, dilation))
                        total += xp[(b, g * cg + ic, *where)] * w[(oc, ic, *tap)]
                out[(b, oc, *pos)] = total
    return out


def conv_transpose_loop(x, w, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution as a scatter: every input element adds ``x * w`` into the output.

    x: [N, C_in, *S]; w: [C_in, C_out/groups, *K]; padding int, per-dim or per-dim pairs.
    """
    x, w = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    nd = w.ndim - 2
    stride, dilation, pads = _per_dim(nd, stride, dilation, padding)
    output_padding = (output_padding,) * nd if np.isscalar(output_padding) else tuple(output_padding)
    n, cin = x.shape[:2]
    og = w.shape[1]
    cg = cin // groups
    kernel = w.shape[2:]
    full = [(s - 1) * st + d * (k - 1) + 1 + op for s, st, d, k, op in zip(x.shape[2:], stride, dilation, kernel, output_padding)]
    big = np.zeros((n, og * groups, *full))
    for b in range(n):
        for ic in range(cin):
            g = ic // cg
            for pos in itertools.product(*(range(s) for s in x.shape[2:])):
                for oc in range(og):
                    for tap in itertools.product(*(range(k) for k in kernel)):
                        where = tuple(p * s + t * d for p, s, t, d in zip(pos, stride, tap, dilation))
                        big[(b, g * og + oc, *where)] += x[(b, ic, *pos)] * w[(ic, oc, *tap)]
    crop = tuple(slice(bf, f - af) for f, (bf, af) in zip(full, pads))
    out = big[(slice(None), slice(None), *crop)]
    if bias is not None:
        out = out + np.asarray(bias, dtype=np.float64).reshape(-1, *([1] * nd))
    return out


def same_pads_tf(size, kernel, stride, dilation):
    """TensorFlow's SAME padding, written from its documentation (independent of convolab)."""
    eff = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + eff - size)
    return total // 2, total - total // 2


# --- pooling (issue 3): torch's documented semantics, written out -----------------------------


def _pool_per_dim(value, nd):
    return (value,) * nd if np.isscalar(value) else tuple(value)


def _pool_pad_pairs(padding, nd):
    if np.isscalar(padding):
        return [(padding, padding)] * nd
    return [(p, p) if np.isscalar(p) else tuple(p) for p in padding]


def pool_loop(
    x,
    kernel,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode=False,
    mode="max",
    count_include_pad=True,
    divisor_override=None,
    reduce=None,
    pad_value=0.0,
):
    """Pooling by definition over [N, C, *S]; returns (values, flat argmax indices or None).

    mode: "max" (padding never wins; indices are the first maximum in scan order, flat over
    the unpadded spatial dims), "avg" (torch's divisor rule), "reduce" (``reduce(values)`` of
    the window's elements in row-major order, padding = ``pad_value``), "lp" (sum of x**p
    over the window, ``reduce`` = p, then the p-th root).
    """
    x = np.asarray(x, dtype=np.float64)
    nd = len(kernel)
    stride = tuple(kernel) if stride is None else _pool_per_dim(stride, nd)
    dilation = _pool_per_dim(dilation, nd)
    pads = _pool_pad_pairs(padding, nd)
    spatial = x.shape[2:]
    out_size = []
    for i in range(nd):
        span = spatial[i] + sum(pads[i]) - dilation[i] * (kernel[i] - 1) - 1
        o = (-(-span // stride[i]) if ceil_mode else span // stride[i]) + 1
        if ceil_mode and (o - 1) * stride[i] >= spatial[i] + pads[i][0]:
            o -= 1
        out_size.append(o)
    n, c = x.shape[:2]
    out = np.zeros((n, c, *out_size))
    idx = np.zeros((n, c, *out_size), dtype=np.int64) if mode == "max" else None
    for b, ch in itertools.product(range(n), range(c)):
        for pos in itertools.product(*(range(o) for o in out_size)):
            best, best_i, total, inside, counted, values = -np.inf, -1, 0.0, 0, 1, []
            for i in range(nd):  # torch counts padding up to the padded input's end, per dim
                start = pos[i] * stride[i] - pads[i][0]
                counted *= min(start + kernel[i], spatial[i] + pads[i][1]) - start
            for tap in itertools.product(*(range(k) for k in kernel)):
                q = [p * s - pb + t * d for p, s, (pb, _), t, d in zip(pos, stride, pads, tap, dilation)]
                ok = all(0 <= qq < sz for qq, sz in zip(q, spatial))
                v = x[(b, ch, *q)] if ok else pad_value
                values.append(v)
                if not ok:
                    continue
                inside += 1
                total += v if mode != "lp" else v ** reduce
                if v > best:
                    best = v
                    best_i = int(np.ravel_multi_index(q, spatial))
            if mode == "max":
                out[(b, ch, *pos)], idx[(b, ch, *pos)] = best, best_i
            elif mode == "avg":
                div = divisor_override or (counted if count_include_pad else inside)
                out[(b, ch, *pos)] = total / div
            elif mode == "lp":
                out[(b, ch, *pos)] = total ** (1.0 / reduce)
            else:
                out[(b, ch, *pos)] = reduce(np.array(values))
    return out, idx


def adaptive_pool_loop(x, output_size, mode="max"):
    """Adaptive pooling by definition: bin i spans [floor(i*in/out), ceil((i+1)*in/out))."""
    x = np.asarray(x, dtype=np.float64)
    nd = len(output_size)
    spatial = x.shape[2:]
    out = np.zeros((*x.shape[:2], *output_size))
    for pos in itertools.product(*(range(o) for o in output_size)):
        region = tuple(
            slice(int(np.floor(p * s / o)), int(np.ceil((p + 1) * s / o)))
            for p, s, o in zip(pos, spatial, output_size)
        )
        block = x[(slice(None), slice(None), *region)].reshape(*x.shape[:2], -1)
        out[(slice(None), slice(None), *pos)] = block.max(-1) if mode == "max" else block.mean(-1)
    assert nd == len(spatial)
    return out
