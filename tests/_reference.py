"""Slow, obviously correct references (plain loops over NumPy float64 arrays), and the comparison helper.

They follow the definitions literally and share no code with convolab, so a test that
compares against them checks convolab, not convolab against itself. Keep inputs tiny.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from torch import Tensor


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


# --------------------------------------------------------------------------------------------
# deformable convolution (issue 4)


def _interp_zero(img: list, size: tuple[int, ...], point: list[float]) -> float:
    """N-linear interpolation of a nested list ``img`` at a real point, zero outside."""
    total = 0.0
    lows = [math.floor(p) for p in point]
    for corner in itertools.product((0, 1), repeat=len(size)):
        weight, inside, value = 1.0, True, img
        for d, bit in enumerate(corner):
            i = lows[d] + bit
            frac = point[d] - lows[d]
            weight *= frac if bit else 1.0 - frac
            inside = inside and 0 <= i < size[d]
        if not inside or weight == 0.0:
            continue
        for d, bit in enumerate(corner):
            value = value[lows[d] + bit]
        total += weight * value
    return total


def deform_conv_reference(
    x: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    mask: Tensor | None = None,
    stride: tuple[int, ...] = (1,),
    padding: tuple[tuple[int, int], ...] = ((0, 0),),
    dilation: tuple[int, ...] = (1,),
    groups: int = 1,
    offset_groups: int = 1,
) -> Tensor:
    """out[n, o, p] = b[o] + sum_{c, t} w[o, c, t] * m * X_c(p*s - pad + t*d + offset) (DCN v1/v2)."""
    n_batch, c_in = x.shape[:2]
    spatial = tuple(x.shape[2:])
    nd = len(spatial)
    c_out, cig = weight.shape[:2]
    kernel = tuple(weight.shape[2:])
    out_size = tuple(offset.shape[2:])
    taps = list(itertools.product(*[range(k) for k in kernel]))
    og_channels = c_in // offset_groups
    xs, offs, ws = x.tolist(), offset.tolist(), weight.tolist()
    ms = None if mask is None else mask.tolist()
    out = torch.zeros(n_batch, c_out, *out_size, dtype=x.dtype)
    for n, o in itertools.product(range(n_batch), range(c_out)):
        g = o // (c_out // groups)
        for p in itertools.product(*[range(s) for s in out_size]):
            acc = 0.0 if bias is None else float(bias[o])
            for ci in range(cig):
                c = g * cig + ci
                og = c // og_channels
                for k, t in enumerate(taps):
                    point = []
                    for d in range(nd):
                        delta = offs[n][(og * len(taps) + k) * nd + d]
                        for q in p:
                            delta = delta[q]
                        point.append(p[d] * stride[d] - padding[d][0] + t[d] * dilation[d] + delta)
                    m = 1.0
                    if ms is not None:
                        m = ms[n][og * len(taps) + k]
                        for q in p:
                            m = m[q]
                    w = ws[o][ci]
                    for q in t:
                        w = w[q]
                    acc += w * m * _interp_zero(xs[n][c], spatial, point)
            out[(n, o, *p)] = acc
    return out


# --------------------------------------------------------------------------------------------
# ROI align and ROI pool (issue 4), as in Mask R-CNN / Fast R-CNN and their common CPU kernels


def _bilinear_roi(img: list, height: int, width: int, y: float, x: float) -> float:
    """ROI align's bilinear rule: 0 beyond one pixel outside, else clamp to the border."""
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_high = y_low = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_high = x_low = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    return (
        hy * hx * img[y_low][x_low]
        + hy * lx * img[y_low][x_high]
        + ly * hx * img[y_high][x_low]
        + ly * lx * img[y_high][x_high]
    )


def roi_align_reference(
    x: Tensor,
    boxes: Tensor,
    output_size: tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """Average of sampling_ratio**2 (or adaptive ceil(roi/bins)) bilinear samples per bin; boxes [K, 5]."""
    oh, ow = output_size
    _, channels, height, width = x.shape
    xs = x.tolist()
    out = torch.zeros(boxes.shape[0], channels, oh, ow, dtype=x.dtype)
    off = 0.5 if aligned else 0.0
    for k, (b, x1, y1, x2, y2) in enumerate(boxes.tolist()):
        start_w, start_h = x1 * spatial_scale - off, y1 * spatial_scale - off
        roi_w, roi_h = x2 * spatial_scale - off - start_w, y2 * spatial_scale - off - start_h
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / oh, roi_w / ow
        grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / oh)
        grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / ow)
        count = max(grid_h * grid_w, 1)
        for c in range(channels):
            img = xs[int(b)][c]
            for ph, pw in itertools.product(range(oh), range(ow)):
                total = 0.0
                for iy, ix in itertools.product(range(grid_h), range(grid_w)):
                    y = start_h + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                    xx = start_w + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                    total += _bilinear_roi(img, height, width, y, xx)
                out[k, c, ph, pw] = total / count
    return out


def _round_half_away(v: float) -> int:
    return int(math.floor(v + 0.5)) if v >= 0 else -int(math.floor(-v + 0.5))


def roi_pool_reference(
    x: Tensor, boxes: Tensor, output_size: tuple[int, int], spatial_scale: float = 1.0
) -> tuple[Tensor, Tensor]:
    """Max over quantised bins (Fast R-CNN); returns (output, argmax as flat h*W + w, -1 if empty)."""
    oh, ow = output_size
    _, channels, height, width = x.shape
    xs = x.tolist()
    out = torch.zeros(boxes.shape[0], channels, oh, ow, dtype=x.dtype)
    arg = torch.full((boxes.shape[0], channels, oh, ow), -1, dtype=torch.long)
    for k, (b, x1, y1, x2, y2) in enumerate(boxes.tolist()):
        sw, sh = _round_half_away(x1 * spatial_scale), _round_half_away(y1 * spatial_scale)
        ew, eh = _round_half_away(x2 * spatial_scale), _round_half_away(y2 * spatial_scale)
        roi_w, roi_h = max(ew - sw + 1, 1), max(eh - sh + 1, 1)
        bin_h, bin_w = roi_h / oh, roi_w / ow
        for ph, pw in itertools.product(range(oh), range(ow)):
            hs = min(max(math.floor(ph * bin_h) + sh, 0), height)
            he = min(max(math.ceil((ph + 1) * bin_h) + sh, 0), height)
            ws = min(max(math.floor(pw * bin_w) + sw, 0), width)
            we = min(max(math.ceil((pw + 1) * bin_w) + sw, 0), width)
            for c in range(channels):
                img = xs[int(b)][c]
                best, where = (0.0, -1) if he <= hs or we <= ws else (-math.inf, -1)
                for h, w in itertools.product(range(hs, he), range(ws, we)):
                    if img[h][w] > best:
                        best, where = img[h][w], h * width + w
                out[k, c, ph, pw], arg[k, c, ph, pw] = best, where
    return out, arg


def assert_same_values_and_grads(ours, ref, inputs, tol=1e-9):
    """Compare outputs and input gradients of two functions of the same leaf tensors (float64)."""
    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    leaves_ref = [t.detach().clone().requires_grad_(True) for t in inputs]
    y, r = ours(*leaves), ref(*leaves_ref)
    assert y.shape == r.shape
    torch.testing.assert_close(y, r, rtol=tol, atol=tol)
    g = torch.randn_like(r)
    y.backward(g)
    r.backward(g)
    for a, b in zip(leaves, leaves_ref):
        torch.testing.assert_close(a.grad, b.grad, rtol=tol, atol=tol)


def roi_spp_reference(x: Tensor, boxes: Tensor, levels, spatial_scale: float = 1.0, mode: str = "max") -> Tensor:
    """SPP of each box [K, 5]: per level (n_h, n_w), Fast R-CNN's quantised bins, max or mean
    (0 for a bin outside the map), flattened channel-major and concatenated over levels."""
    _, channels, height, width = x.shape
    xs = x.tolist()
    rows = []
    for b, x1, y1, x2, y2 in boxes.tolist():
        sw, sh = _round_half_away(x1 * spatial_scale), _round_half_away(y1 * spatial_scale)
        ew, eh = _round_half_away(x2 * spatial_scale), _round_half_away(y2 * spatial_scale)
        roi_w, roi_h = max(ew - sw + 1, 1), max(eh - sh + 1, 1)
        row = []
        for level in levels:
            oh, ow = (level, level) if isinstance(level, int) else level
            for c in range(channels):
                img = xs[int(b)][c]
                for ph, pw in itertools.product(range(oh), range(ow)):
                    hs = min(max(math.floor(ph * roi_h / oh) + sh, 0), height)
                    he = min(max(math.ceil((ph + 1) * roi_h / oh) + sh, 0), height)
                    ws = min(max(math.floor(pw * roi_w / ow) + sw, 0), width)
                    we = min(max(math.ceil((pw + 1) * roi_w / ow) + sw, 0), width)
                    vals = [img[h][w] for h in range(hs, he) for w in range(ws, we)]
                    if not vals:
                        row.append(0.0)
                    else:
                        row.append(max(vals) if mode == "max" else sum(vals) / len(vals))
        rows.append(row)
    return torch.tensor(rows, dtype=x.dtype).reshape(len(rows), -1)
