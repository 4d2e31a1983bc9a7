"""Region-of-interest pooling: ``roi_pool`` (Fast R-CNN) and ``roi_align`` (Mask R-CNN).

Both crop every box of a batch of feature maps into a fixed ``output_size``
grid of bins, vectorised over boxes (there is no Python loop per box: boxes
are only grouped by how many pixels or samples a bin needs, and chunked so
memory is bounded). They work on the channels-last rows of the feature map, so
that every gather moves a whole run of C contiguous values:

- ``roi_align`` is a sparse linear map: each output bin is a weighted sum of at
  most ``4 * grid_h * grid_w`` input pixels (the bilinear corners of its
  samples, divided by the sample count). The forward is one
  ``embedding_bag`` (weighted sum of gathered rows); the backward is the same
  kernel on the transposed map (entries sorted by input pixel), so neither pass
  scatters with atomics or Python loops.
- ``roi_pool`` answers every bin as a sparse-table query: the max of four
  power-of-two windows at its corners, read from torch's channels-last max
  pooling of the whole map (one pooling per window size, not per box); the
  gradient goes to the first row-major argmax.

The conventions are those of the widely used CPU/GPU kernels (torchvision's
``ops.roi_align`` / ``ops.roi_pool``), so trained detectors port unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from .._args import positive_tuple

__all__ = ["ROI_BUDGET", "roi_align", "roi_pool"]

BoxesArg = Union[Tensor, Sequence[Tensor]]

#: Largest gathered buffer (elements) one chunk of roi_pool materialises, and the largest
#: number of (bag, pixel) entries one chunk of roi_align builds: 2**24 (64 MiB in float32).
ROI_BUDGET = 1 << 24


# ----------------------------------------------------------------------------------------------
# argument checks shared by both ops


def _check(op: str, input: Tensor, boxes: BoxesArg, output_size: Any, spatial_scale: float) -> tuple[Tensor, tuple[int, int]]:
    """Validate the arguments; return the boxes as Tensor[K, 5] in the input's dtype and (oh, ow)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a torch.Tensor, got {type(input).__name__}")
    if input.dim() != 4:
        raise ValueError(f"{op}: expected input of rank 4 ([N, C, H, W]), got shape {list(input.shape)}")
    if not input.is_floating_point():
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype}")
    size = positive_tuple(output_size, 2, "output_size", op)
    check_spatial_scale(op, spatial_scale)
    rois = _as_rois(op, boxes, input)
    if rois.shape[0]:
        bad = ~torch.isfinite(rois).all(1)
        if bad.any():
            k = int(bad.nonzero()[0])
            raise ValueError(f"{op}: box {k} has non-finite coordinates {rois[k].tolist()}")
        batch = rois[:, 0]
        bad = (batch != batch.floor()) | (batch < 0) | (batch >= input.shape[0])
        if bad.any():
            k = int(bad.nonzero()[0])
            raise ValueError(
                f"{op}: box {k} has batch index {batch[k].item():g}; it must be an integer in "
                f"[0, {input.shape[0]}) (the input's batch size)"
            )
        for lo, hi, name in ((1, 3, "x"), (2, 4, "y")):
            bad = rois[:, hi] < rois[:, lo]
            if bad.any():
                k = int(bad.nonzero()[0])
                raise ValueError(
                    f"{op}: box {k} has {name}2 ({rois[k, hi].item():g}) < {name}1 ({rois[k, lo].item():g}); "
                    f"boxes are (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2"
                )
    return rois, size


def check_spatial_scale(op: str, spatial_scale: float) -> float:
    """spatial_scale must be a real number > 0 (shared with the modules)."""
    if isinstance(spatial_scale, bool) or not isinstance(spatial_scale, (int, float)) or not spatial_scale > 0:
        raise ValueError(f"{op}: spatial_scale must be a number > 0, got {spatial_scale!r}")
    return float(spatial_scale)


def check_sampling_ratio(op: str, sampling_ratio: int) -> int:
    """sampling_ratio must be an int; <= 0 selects adaptive sampling (shared with the modules)."""
    if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, int):
        raise TypeError(f"{op}: sampling_ratio must be an int (<= 0 for adaptive), got {sampling_ratio!r}")
    return sampling_ratio


def _as_rois(op: str, boxes: BoxesArg, input: Tensor) -> Tensor:
    rule = "boxes must be a Tensor[K, 5] (batch_index, x1, y1, x2, y2) or a list of Tensor[L, 4] (one per image)"
    if isinstance(boxes, Tensor):
        if boxes.dim() != 2 or boxes.shape[1] != 5:
            raise ValueError(f"{op}: {rule}, got a tensor of shape {list(boxes.shape)}")
        return boxes.detach().to(input.dtype)
    if not isinstance(boxes, (list, tuple)) or not all(isinstance(b, Tensor) for b in boxes):
        raise TypeError(f"{op}: {rule}, got {type(boxes).__name__}")
    if len(boxes) > input.shape[0]:
        raise ValueError(f"{op}: got {len(boxes)} box tensors for a batch of {input.shape[0]} images")
    parts = []
    for i, b in enumerate(boxes):
        if b.dim() != 2 or b.shape[1] != 4:
            raise ValueError(f"{op}: {rule}, got boxes[{i}] of shape {list(b.shape)}")
        b = b.detach().to(input.dtype)
        parts.append(torch.cat([b.new_full((b.shape[0], 1), i), b], 1))
    return torch.cat(parts) if parts else input.new_zeros(0, 5)


def _rows(x: Tensor) -> Tensor:
    """[N, C, H, W] -> channels-last rows [N*H*W, C] (one copy unless already channels-last)."""
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def _from_rows(rows: Tensor, k: int, size: tuple[int, int]) -> Tensor:
    """[K*oh*ow, C] rows -> [K, C, oh, ow] (a channels-last strided view)."""
    return rows.view(k, size[0], size[1], rows.shape[1]).permute(0, 3, 1, 2)


def _empty(input: Tensor, size: tuple[int, int]) -> Tensor:
    # tied to the input so that backward through an empty box list gives a zero gradient
    return input.new_zeros(0, input.shape[1], *size) + input.sum() * 0


def _groups(keys: Tensor) -> list[Tensor]:
    """Indices of the boxes sharing each distinct key (sorted by key)."""
    order = torch.argsort(keys, stable=True)
    _, counts = torch.unique_consecutive(keys[order], return_counts=True)
    return list(torch.split(order, counts.tolist()))


def _split(sel: Tensor, per_box: int) -> list[Tensor]:
    step = max(ROI_BUDGET // max(per_box, 1), 1)
    return list(torch.split(sel, step))


# ----------------------------------------------------------------------------------------------
# roi_align


def roi_align(
    input: Tensor,
    boxes: BoxesArg,
    output_size: Union[int, Sequence[int]],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoI Align (Mask R-CNN): average of bilinear samples on a regular grid inside each bin.

    A box ``(x1, y1, x2, y2)`` in input-image coordinates is scaled by
    ``spatial_scale`` (and shifted by -0.5 pixel when ``aligned``, so that the
    pixel centres line up), split into ``oh x ow`` bins, and each bin is the mean
    of ``grid_h x grid_w`` bilinear samples at the centres of a regular
    sub-grid: ``grid = sampling_ratio`` if it is > 0, else adaptive
    ``ceil(roi_size / bins)`` per box. A sample more than one pixel outside the
    map reads 0; one within a pixel of the border is clamped to it. Without
    ``aligned`` the box is at least 1x1 pixel (the legacy Detectron rule).

    Memory: the map from input pixels to bins is built in chunks of at most
    ``ROI_BUDGET`` entries and kept for the backward: ``4*grid_h*grid_w`` entries
    (an int64 index, a weight and an int64 bin id) per output bin, independent of C.
    No gradient flows to the boxes (as in the usual kernels).

    Args:
        input (Tensor[N, C, H, W]): feature maps.
        boxes (Tensor[K, 5] or list of Tensor[L, 4]): ``(batch_index, x1, y1, x2, y2)``
            rows, or one ``(x1, y1, x2, y2)`` tensor per image of the batch.
        output_size (int or (int, int)): ``(oh, ow)`` bins.
        spatial_scale (float): input-image to feature-map scale, e.g. 1/16. Default: 1.0.
        sampling_ratio (int): samples per bin side; <= 0 means adaptive. Default: -1.
        aligned (bool): half-pixel offset (Detectron2's ROIAlignV2). Default: False.

    Returns:
        Tensor[K, C, oh, ow] (channels-last strided), differentiable w.r.t. ``input``.

    Shape:
        ``bin = roi_size / output_size``; sample ``i`` of bin ``p`` sits at
        ``start + p*bin + (i + 0.5)*bin/grid``.

    Raises:
        ValueError: boxes of the wrong shape, a batch index out of range or not an integer,
            ``x2 < x1`` or ``y2 < y1``, non-finite boxes, bad output_size/spatial_scale.
        TypeError: non-tensor input or boxes.

    Example:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> roi_align(x, torch.tensor([[0, 0., 0., 4., 4.]]), 2, aligned=True).flatten().tolist()
        [2.5, 4.5, 10.5, 12.5]
        >>> roi_align(torch.randn(2, 8, 32, 32), [torch.tensor([[1., 2., 20., 30.]])] * 2, 7).shape
        torch.Size([2, 8, 7, 7])
    """
    op = "roi_align"
    if isinstance(boxes, (list, tuple)):
        boxes = [b if isinstance(b, Tensor) else torch.as_tensor(b) for b in boxes]
    rois, size = _check(op, input, boxes, output_size, spatial_scale)
    check_sampling_ratio(op, sampling_ratio)
    if rois.shape[0] == 0:
        return _empty(input, size)
    index, weight, bag = _align_map(rois, input.shape, size, float(spatial_scale), sampling_ratio, bool(aligned))
    return _RoIAlignFunction.apply(input, index, weight, bag, rois.shape[0], size)


def _axis(coord: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """ROI align's 1-D bilinear rule: (corner indices [..., 2], corner weights [..., 2])."""
    inside = (coord >= -1.0) & (coord <= size)
    coord = coord.clamp(min=0)
    low = coord.floor().long()
    at_end = low >= size - 1
    low = torch.where(at_end, torch.full_like(low, size - 1), low)
    high = torch.where(at_end, low, low + 1)
    frac = torch.where(at_end, torch.zeros_like(coord), coord - low.to(coord.dtype))
    weight = torch.stack((1 - frac, frac), -1) * inside.unsqueeze(-1)
    return torch.stack((low, high), -1), weight


def _align_map(rois: Tensor, shape, size, scale: float, sampling_ratio: int, aligned: bool):
    """Every output bin as a list of (input row, weight) entries: index/weight [E], bag [E]."""
    _, _, height, width = shape
    oh, ow = size
    shift = 0.5 if aligned else 0.0
    start = rois[:, 1:3] * scale - shift  # (x, y)
    extent = rois[:, 3:5] * scale - shift - start
    if not aligned:
        extent = extent.clamp(min=1.0)
    bins = extent / extent.new_tensor([ow, oh])
    if sampling_ratio > 0:
        grid = torch.full_like(extent, sampling_ratio, dtype=torch.long)
    else:
        grid = torch.ceil(extent / extent.new_tensor([ow, oh])).long()
    batch = rois[:, 0].long()
    keys = grid[:, 1] * (grid[:, 0].max() + 1) + grid[:, 0]
    indices, weights, bags = [], [], []
    for sel_all in _groups(keys):
        gw, gh = (int(v) for v in grid[sel_all[0]])
        if gw * gh == 0:
            continue  # degenerate aligned boxes with adaptive sampling: no samples, output 0
        for sel in _split(sel_all, oh * ow * gh * gw * 4):
            k = sel.shape[0]
            pos = []
            for dim, (n_bins, n_grid) in enumerate(((ow, gw), (oh, gh))):
                b = bins[sel, dim].view(k, 1, 1)
                p = torch.arange(n_bins, dtype=rois.dtype).view(1, n_bins, 1)
                i = torch.arange(n_grid, dtype=rois.dtype).view(1, 1, n_grid) + 0.5
                pos.append(start[sel, dim].view(k, 1, 1) + p * b + i * b / n_grid)  # [k, bins, grid]
            (ix, wx), (iy, wy) = _axis(pos[0], width), _axis(pos[1], height)
            count = float(gh * gw)
            # [k, oh, ow, gh, gw, corner_y, corner_x]
            row = (batch[sel].view(k, 1, 1, 1, 1, 1, 1) * height + iy.view(k, oh, 1, gh, 1, 2, 1)) * width
            index = row + ix.view(k, 1, ow, 1, gw, 1, 2)
            weight = wy.view(k, oh, 1, gh, 1, 2, 1) * wx.view(k, 1, ow, 1, gw, 1, 2) / count
            bag = (sel.view(k, 1, 1) * (oh * ow) + torch.arange(oh * ow).view(1, oh * ow, 1)).expand(k, oh * ow, gh * gw * 4)
            indices.append(index.reshape(-1))
            weights.append(weight.reshape(-1))
            bags.append(bag.reshape(-1))
    if not indices:
        return rois.new_zeros(0, dtype=torch.long), rois.new_zeros(0), rois.new_zeros(0, dtype=torch.long)
    return torch.cat(indices), torch.cat(weights), torch.cat(bags)


def _weighted_rows(rows: Tensor, index: Tensor, weight: Tensor, bag: Tensor, n_bags: int) -> Tensor:
    """out[bag] = sum of weight * rows[index] over the entries of each bag (bags sorted ascending)."""
    counts = torch.bincount(bag, minlength=n_bags)
    offsets = torch.zeros(n_bags, dtype=torch.long)
    torch.cumsum(counts[:-1], 0, out=offsets[1:])
    return F.embedding_bag(index, rows, offsets, mode="sum", per_sample_weights=weight.to(rows.dtype))


class _RoIAlignFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, input: Tensor, index: Tensor, weight: Tensor, bag: Tensor, k: int, size) -> Tensor:
        # entries were built box group by box group: put them in bag order for embedding_bag
        # (already so when all boxes share one sample grid, e.g. a fixed sampling_ratio)
        if bag.numel() > 1 and not bool((bag[1:] >= bag[:-1]).all()):
            order = torch.argsort(bag, stable=True)
            index, weight, bag = index[order], weight[order], bag[order]
        out = _weighted_rows(_rows(input), index, weight, bag, k * size[0] * size[1])
        ctx.save_for_backward(index, weight, bag)
        ctx.shape, ctx.k, ctx.size = input.shape, k, size
        return _from_rows(out, k, size)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor):
        index, weight, bag = ctx.saved_tensors
        n, c, h, w = ctx.shape
        grad_rows = grad.permute(0, 2, 3, 1).reshape(-1, c)
        # the transposed map: every input row gathers the output bins that read it
        # int32 keys sort about twice as fast; the order among equal keys does not matter
        keys = index.int() if n * h * w < 2**31 else index
        order = torch.argsort(keys)
        grad_in = _weighted_rows(grad_rows, bag[order], weight[order], index[order], n * h * w)
        return grad_in.view(n, h, w, c).permute(0, 3, 1, 2), None, None, None, None, None


# ----------------------------------------------------------------------------------------------
# roi_pool


def roi_pool(
    input: Tensor,
    boxes: BoxesArg,
    output_size: Union[int, Sequence[int]],
    spatial_scale: float = 1.0,
) -> Tensor:
    """RoI max pooling (Fast R-CNN): the max over each bin of a box quantised to the pixel grid.

    The box corners are scaled by ``spatial_scale`` and rounded (half away from
    zero, like C's ``round``); the box spans ``roi = end - start + 1`` pixels
    (at least 1) and bin ``p`` covers pixels
    ``[start + floor(p*roi/bins), start + ceil((p+1)*roi/bins))`` clipped to the
    map. An empty bin (entirely outside the map) gives 0. The gradient goes to
    the first (row-major) maximum of each bin.

    Memory: a few pooled copies of the map (one per power-of-two window size in
    use, built one at a time) and the argmax of every output value (int64).

    Args:
        input (Tensor[N, C, H, W]): feature maps.
        boxes (Tensor[K, 5] or list of Tensor[L, 4]): as in :func:`roi_align`.
        output_size (int or (int, int)): ``(oh, ow)`` bins.
        spatial_scale (float): input-image to feature-map scale. Default: 1.0.

    Returns:
        Tensor[K, C, oh, ow] (channels-last strided), differentiable w.r.t. ``input``.

    Shape:
        ``bin = (round(x2*scale) - round(x1*scale) + 1) / output_size`` per dim.

    Raises:
        ValueError, TypeError: as :func:`roi_align`.

    Example:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> roi_pool(x, torch.tensor([[0, 0., 0., 3., 3.]]), 2).flatten().tolist()
        [5.0, 7.0, 13.0, 15.0]
    """
    op = "roi_pool"
    if isinstance(boxes, (list, tuple)):
        boxes = [b if isinstance(b, Tensor) else torch.as_tensor(b) for b in boxes]
    rois, size = _check(op, input, boxes, output_size, spatial_scale)
    if rois.shape[0] == 0:
        return _empty(input, size)
    return _RoIPoolFunction.apply(input, rois, float(spatial_scale), size)


def _round_half_away(v: Tensor) -> Tensor:
    return (v.abs() + 0.5).floor().copysign(v).long()


def _pool_bins(rois: Tensor, shape, size, scale: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Clipped pixel ranges [k, bins] of every bin: (h_start, h_end, w_start, w_end)."""
    _, _, height, width = shape
    corners = _round_half_away(rois[:, 1:] * scale)  # x1, y1, x2, y2
    ranges = []
    for lo, hi, n_bins, limit in ((1, 3, size[0], height), (0, 2, size[1], width)):
        start = corners[:, lo]
        extent = (corners[:, hi] - start + 1).clamp(min=1).to(rois.dtype)
        bin_size = (extent / n_bins).unsqueeze(1)
        p = torch.arange(n_bins, dtype=rois.dtype).unsqueeze(0)
        a = ((p * bin_size).floor().long() + start.unsqueeze(1)).clamp(0, limit)
        b = (((p + 1) * bin_size).ceil().long() + start.unsqueeze(1)).clamp(0, limit)
        ranges += [a, b]
    return tuple(ranges)  # type: ignore[return-value]


def _floor_log2(v: Tensor) -> Tensor:
    """Exact floor(log2(v)) of positive integers (no float rounding at powers of two)."""
    out = torch.zeros_like(v)
    for s in range(1, int(v.max()).bit_length()):
        out += v >= (1 << s)
    return out


def _window_max(input: Tensor, bins: Tensor, batch: Tensor, top: Tensor, left: Tensor, bin_h: Tensor, bin_w: Tensor):
    """Max and first row-major argmax (flat input pixel) of the a x b windows of the given bins.

    A window is the union of four (possibly overlapping) power-of-two windows at
    its corners (a sparse-table query), and the max of every power-of-two window
    of the map comes from torch's channels-last max pooling (vectorised over C),
    rows first and then columns. Among equal maxima the smallest flat pixel wins,
    which is the first one in row-major order, as in the loop definition.
    Returns (bins in the order processed, values [B, C], pixels [B, C]).
    """
    n, c, height, width = input.shape
    x_cl = input.contiguous(memory_format=torch.channels_last)
    channel = torch.arange(c)
    log_h, log_w = _floor_log2(bin_h[bins]), _floor_log2(bin_w[bins])
    # bins whose side is a power of two need one window along that side, not two
    exact_h, exact_w = (1 << log_h) == bin_h[bins], (1 << log_w) == bin_w[bins]
    keys = ((log_w * 64 + log_h) * 2 + exact_h) * 2 + exact_w  # sorted by width level: reuse row pools
    picked, values_all, pixels_all = [], [], []
    row_pool = col_pool = None
    for sel in _groups(keys):
        j, i = int(log_h[sel[0]]), int(log_w[sel[0]])
        shifts_y = (0,) if exact_h[sel[0]] else (0, 1)
        shifts_x = (0,) if exact_w[sel[0]] else (0, 1)
        sel = bins[sel]
        a, b = 1 << j, 1 << i
        if row_pool is None or row_pool[0] != b:
            v_row, i_row = F.max_pool2d(x_cl, (1, b), 1, return_indices=True)
            # int32 pixel indices halve the memory traffic of the candidate comparisons
            row_pool = (b, v_row, i_row.int() if height * width < 2**31 else i_row)
        if col_pool is None or col_pool[0] != (a, b):
            col_pool = ((a, b), *F.max_pool2d(row_pool[1], (a, 1), 1, return_indices=True))
        values, where = col_pool[1:]
        h_out, w_out = values.shape[2:]
        plane = row_pool[2].shape[2] * row_pool[2].shape[3]
        best = first = None
        for dy in shifts_y:
            for dx in shifts_x:
                y = top[sel] + dy * (bin_h[sel] - a)
                x = left[sel] + dx * (bin_w[sel] - b)
                pos = (batch[sel] * h_out + y) * w_out + x
                v = _rows(values).index_select(0, pos)
                # where indexes the row pool's [h, w] plane; the row pool's indices map that to the input
                inner = _rows(where).index_select(0, pos) + (batch[sel] * plane).unsqueeze(1)
                p = _rows(row_pool[2]).reshape(-1).take(inner * c + channel)
                if best is None:
                    best, first = v, p
                else:
                    take = (v > best) | ((v == best) & (p < first))
                    first = torch.where(take, p, first)
                    best = torch.maximum(best, v)  # = where(take, v, best): take implies v >= best
        values_all.append(best)
        pixels_all.append(first.long() + (batch[sel] * (height * width)).unsqueeze(1))
        picked.append(sel)
    return torch.cat(picked), torch.cat(values_all), torch.cat(pixels_all)


class _RoIPoolFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, input: Tensor, rois: Tensor, scale: float, size) -> Tensor:
        n, c, height, width = input.shape
        k, (oh, ow) = rois.shape[0], size
        hs, he, ws, we = _pool_bins(rois, input.shape, size, scale)
        # every bin as (batch, top, left, bin height, bin width), flattened over [K, oh, ow]
        bin_h = (he - hs).view(k, oh, 1).expand(k, oh, ow).reshape(-1)
        bin_w = (we - ws).view(k, 1, ow).expand(k, oh, ow).reshape(-1)
        top = hs.view(k, oh, 1).expand(k, oh, ow).reshape(-1)
        left = ws.view(k, 1, ow).expand(k, oh, ow).reshape(-1)
        batch = rois[:, 0].long().view(k, 1).expand(k, oh * ow).reshape(-1)
        full = ((bin_h > 0) & (bin_w > 0)).nonzero().squeeze(1)  # empty bins (outside the map) give 0
        out = input.new_zeros(k * oh * ow, c)
        if full.numel():
            picked, best, pixel = _window_max(input, full, batch, top, left, bin_h, bin_w)
            out.index_copy_(0, picked, best)
        else:
            picked, pixel = full, full.new_zeros(0, c)
        ctx.save_for_backward(picked, pixel)
        ctx.shape = input.shape
        return _from_rows(out, k, size)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor):
        picked, arg = ctx.saved_tensors
        n, c, h, w = ctx.shape
        g = grad.permute(0, 2, 3, 1).reshape(-1, c).index_select(0, picked)
        grad_rows = g.new_zeros(n * h * w * c)
        grad_rows.index_add_(0, (arg * c + torch.arange(c)).view(-1), g.reshape(-1))
        return grad_rows.view(n, h, w, c).permute(0, 3, 1, 2), None, None, None
