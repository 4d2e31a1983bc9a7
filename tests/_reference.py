"""Slow, obviously-correct loop references for the tests (never for use in the library).

Each function follows the published definition of its op line by line, with
plain Python loops over scalars, so that the vectorised implementations in
``convolab.functional`` are checked against something independent. Keep the
inputs tiny.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

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
