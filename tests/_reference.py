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
