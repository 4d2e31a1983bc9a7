"""Frames of the sampling ops: deformable convolution and ROI pooling / ROI align.

The values are the ops' real outputs. Which pixels each output reads, and
with what weight, is measured on the op itself: all three ops are linear in
the input (ROI pooling is a max of a selection), so running them on one-hot
inputs (one image per pixel, batched) gives every pixel's weight in every
output. The sampling points and boxes drawn over the grid follow the ops'
documented conventions; the tests check them against the measured weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional, Union

import torch
from torch import Tensor

from ... import arithmetic
from ..._args import PaddingArg, check_choice, positive_tuple
from ...functional import deform_conv, roi_align, roi_pool, roi_spatial_pyramid_pool
from ...functional.roi import check_spatial_scale
from .cells import indices, output_cell, output_label, padded_input, rows
from .example import check_geometry, generator, sample_ints
from .records import BLANK, DATA, Frame, Grid, GridAnimation
from .text import fmt, pad_text, short, term

__all__ = ["deform_conv_animation", "roi_align_animation", "roi_pool_animation", "roi_spp_animation"]

MAX_PIXELS = 576  # one-hot probing runs the op once per pixel (batched): keep the map small
# Measured weights below this are the samplers' rounding (normalised coordinates), not reads.
NEGLIGIBLE = 1e-9


def _one_hots(shape: tuple[int, ...]) -> Tensor:
    """``[P, 1, *shape]``: image ``q`` is 1 at pixel ``q`` (row-major), 0 elsewhere."""
    count = math.prod(shape)
    return torch.eye(count, dtype=torch.float64).reshape(count, 1, *shape)


def deform_conv_animation(
    input_size: Union[int, Sequence[int]] = (5, 5),
    kernel_size: Union[int, Sequence[int]] = 3,
    stride: Union[int, Sequence[int]] = 1,
    padding: PaddingArg = 1,
    dilation: Union[int, Sequence[int]] = 1,
    *,
    offset: Optional[Tensor] = None,
    max_offset: float = 1.0,
    seed: int = 0,
) -> GridAnimation:
    """Deformable convolution: each tap samples the input at its regular position plus a learned offset.

    One frame per output position: the sampling points (regular tap + offset,
    drawn as dots), the pixels they read (bilinear interpolation, the bar under
    a cell is its total weight), and the output value of
    :func:`convolab.functional.deform_conv`. The value of each tap's sample is
    the op itself run with a one-hot kernel.

    Args:
        input_size, kernel_size, stride, padding, dilation: as in :func:`.conv_animation`.
        offset (Tensor[d*prod(kernel), *out], optional): the offset field in pixels
            (``(dy, dx)`` per tap in 2-D); default: seeded random in
            ``[-max_offset, max_offset]`` rounded to 0.1.
        max_offset (float): range of the random offsets.
        seed (int): seed of the example values.

    Returns:
        GridAnimation with one frame per output position.

    Example:
        >>> a = deform_conv_animation((4, 4), 3, padding=1)
        >>> len(a.frames), len(a.frames[0].points)
        (16, 9)
    """
    op = "animate deform_conv"
    size, nd, k, s, d = check_geometry(op, input_size, kernel_size, stride, dilation)
    pads = arithmetic.resolve_padding(padding, size, k, s, d, op=op)
    out_shape = arithmetic.conv_output_shape(size, k, s, pads, d, op=op)
    taps = math.prod(k)
    gen = generator(seed)
    x = sample_ints((1, 1, *size), 0, 3, gen)
    w = sample_ints((1, 1, *k), -1, 2, gen, nonzero=True)
    b = sample_ints((1,), -1, 1, gen)
    if offset is None:
        if not isinstance(max_offset, (int, float)) or not 0 <= max_offset <= 3:
            raise ValueError(f"{op}: max_offset must be a number in [0, 3], got {max_offset!r}")
        raw = (torch.rand((1, nd * taps, *out_shape), generator=gen, dtype=torch.float64) * 2 - 1) * max_offset
        offset = torch.round(raw * 10) / 10
    else:
        offset = torch.as_tensor(offset, dtype=torch.float64)
        want = (nd * taps, *out_shape)
        if tuple(offset.shape) not in (want, (1, *want)):
            raise ValueError(f"{op}: offset must have shape {list(want)} ({nd} coordinates per tap, "
                             f"then the output size), got {list(offset.shape)}")
        offset = offset.reshape(1, *want)
    y = deform_conv(x, offset, w, b, stride=s, padding=padding, dilation=d)[0, 0]
    # the value each tap samples: the op with one one-hot kernel per tap
    eye = torch.eye(taps, dtype=torch.float64).reshape(taps, 1, *k)
    sampled = deform_conv(x, offset, eye, stride=s, padding=padding, dilation=d)[0]          # [taps, *out]
    # which pixels each output reads and how much (summed over taps): the op on one-hot inputs
    probe = deform_conv(_one_hots(size), offset.expand(math.prod(size), *offset.shape[1:]), eye,
                        stride=s, padding=padding, dilation=d).sum(1)                          # [pixels, *out]

    _, grid = padded_input(x[0, 0], pads)
    before = [p for p, _ in pads]
    w_flat = w.flatten().tolist()
    frames = []
    for index in indices(out_shape):
        out_cell = output_cell(index)
        pixel_weights = probe[(slice(None), *index)]
        cells, shade = [], []
        for q in torch.nonzero(pixel_weights.abs() > NEGLIGIBLE).flatten().tolist():
            pos = [q] if nd == 1 else list(divmod(q, size[1]))
            cell = [p + bb for p, bb in zip(pos, before)]
            cells.append((0, cell[0]) if nd == 1 else (cell[0], cell[1]))
            shade.append(min(float(pixel_weights[q]), 1.0))
        points = []
        for t, tap in enumerate(indices(k)):
            delta = [float(offset[(0, t * nd + j, *index)]) for j in range(nd)]
            # regular tap on the padded grid (input index + pad before), moved by the offset
            p = [o * ss + tt * dd + dl for o, ss, tt, dd, dl in zip(index, s, tap, d, delta)]
            points.append((0.0, p[0]) if nd == 1 else (p[0], p[1]))
        vals = sampled[(slice(None), *index)].tolist()
        value = float(y[index])
        terms = " + ".join(f"{term(wt)}·{term(v)}" for wt, v in zip(w_flat, vals))
        where = ", ".join(f"({fmt(r)}, {fmt(c)})" if nd == 2 else fmt(c) for r, c in points)
        frames.append(Frame(
            window=tuple(cells),
            cells=(out_cell,),
            values=(value,),
            caption=f"{output_label(out_cell, nd)} = Σ w·x(p) = {terms} + b({fmt(float(b))}) = {fmt(value)};  "
                    f"sampled at p = {where} (bilinear, zero outside the input)",
            points=tuple(points),
            shade=tuple(shade),
        ))
    return GridAnimation(
        op=f"deform_conv{nd}d",
        title=(f"deform_conv{nd}d: input {'x'.join(map(str, size))}, kernel {'x'.join(map(str, k))}, "
               f"stride {short(s)}, padding {pad_text(padding, pads)}, offsets in ±{fmt(max_offset)}"),
        input=grid,
        kernel=Grid(f"kernel, bias {fmt(float(b))}", rows(w[0, 0])),
        output=Grid("output", rows(y)),
        frames=tuple(frames),
        notes=("each tap samples the input at its regular position + its offset (red rings); blue bars: "
               "how much each pixel weighs in the bilinear samples",),
        bias=float(b),
        shade_label="pixel's weight in the samples (bar length)",
    )


def _roi_setup(
    op: str, input_size: Union[int, Sequence[int]], box: Sequence[float], output_size: Union[int, Sequence[int]],
    spatial_scale: float, seed: int,
) -> tuple[tuple[int, ...], tuple[int, ...], Tensor, Tensor, Tensor]:
    """Checked ``(size, bins, map, rois, probe_rois)`` of a ROI picture.

    ``probe_rois`` repeats the box once per pixel, one per one-hot image of :func:`_one_hots`.
    """
    size = positive_tuple(input_size, 2, "input_size", op)
    if math.prod(size) > MAX_PIXELS:
        raise ValueError(f"{op}: input_size must have at most {MAX_PIXELS} pixels to stay readable, got {size}")
    out = positive_tuple(output_size, 2, "output_size", op)
    if not isinstance(box, Sequence) or len(box) != 4:
        raise ValueError(f"{op}: box must be (x1, y1, x2, y2), got {box!r}")
    check_spatial_scale(op, spatial_scale)
    gen = generator(seed)
    # distinct values, so every bin's maximum is unambiguous
    x = torch.randperm(math.prod(size), generator=gen).to(torch.float64).reshape(1, 1, *size)
    rois = torch.tensor([[0.0, *map(float, box)]], dtype=torch.float64)
    pixels = math.prod(size)
    probe_rois = torch.cat([torch.arange(pixels, dtype=torch.float64).unsqueeze(1), rois[:, 1:].expand(pixels, 4)], 1)
    return size, out, x, rois, probe_rois


def roi_pool_animation(
    input_size: Union[int, Sequence[int]] = (8, 8),
    box: Sequence[float] = (1.0, 1.0, 6.0, 5.0),
    output_size: Union[int, Sequence[int]] = 2,
    spatial_scale: float = 1.0,
    *,
    seed: int = 0,
) -> GridAnimation:
    """ROI max pooling (Fast R-CNN): the box snapped to the pixel grid, split into bins, max per bin.

    One frame per bin; the bin's pixels are those the op reads (measured with
    one-hot inputs), the value is :func:`convolab.functional.roi_pool`'s.

    Args:
        input_size (int or (H, W)): feature-map size.
        box (x1, y1, x2, y2): in input-image coordinates (times ``spatial_scale`` on the map).
        output_size (int or (oh, ow)): bins.
        spatial_scale (float): image-to-map scale.

    Example:
        >>> a = roi_pool_animation((6, 6), (0, 0, 3, 3), 2)
        >>> len(a.frames), [len(f.window) for f in a.frames]
        (4, [4, 4, 4, 4])
    """
    op = "animate roi_pool"
    size, out, x, rois, probe_rois = _roi_setup(op, input_size, box, output_size, spatial_scale, seed)
    y = roi_pool(x, rois, out, spatial_scale)[0, 0]
    member = roi_pool(_one_hots(size), probe_rois, out, spatial_scale)[:, 0]  # [pixels, oh, ow]: 1 = in bin
    frames, covered = [], []
    for index in indices(out):
        cells = [divmod(q, size[1]) for q in torch.nonzero(member[(slice(None), *index)]).flatten().tolist()]
        covered += cells
        vals = [float(x[0, 0, r, c]) for r, c in cells]
        value = float(y[index])
        winner = cells[vals.index(max(vals))] if cells else None
        region = (
            (min(r for r, _ in cells) - 0.5, min(c for _, c in cells) - 0.5,
             max(r for r, _ in cells) + 0.5, max(c for _, c in cells) + 0.5) if cells else None
        )
        frames.append(Frame(
            window=tuple(cells),
            cells=(index,),
            values=(value,),
            caption=(f"bin {list(index)}: max({', '.join(fmt(v) for v in vals)}) = {fmt(value)}" if cells
                     else f"bin {list(index)}: empty (outside the map) = {fmt(value)}"),
            marked=(winner,) if winner else (),
            region=region,
        ))
    boxes = ()
    if covered:
        boxes = ((min(r for r, _ in covered) - 0.5, min(c for _, c in covered) - 0.5,
                  max(r for r, _ in covered) + 0.5, max(c for _, c in covered) + 0.5),)
    return GridAnimation(
        op="roi_pool",
        title=(f"roi_pool: {size[0]}x{size[1]} map, box (x1, y1, x2, y2) = ({', '.join(fmt(float(v)) for v in box)}) "
               f"x scale {fmt(spatial_scale)}, {out[0]}x{out[1]} bins"),
        input=Grid("feature map", rows(x[0, 0])),
        kernel=None,
        output=Grid("output", rows(y)),
        frames=tuple(frames),
        notes=("the box is rounded to whole pixels and split into bins of whole pixels "
               "(bin p covers [floor(p*roi/bins), ceil((p+1)*roi/bins))): the quantisation ROI Align removes",),
        legend=(DATA,),
        mark_label="the maximum",
        boxes=boxes,
        box_label="box on the pixel grid",
    )


def roi_align_animation(
    input_size: Union[int, Sequence[int]] = (8, 8),
    box: Sequence[float] = (1.2, 0.7, 6.1, 5.4),
    output_size: Union[int, Sequence[int]] = 2,
    spatial_scale: float = 1.0,
    sampling_ratio: int = 2,
    aligned: bool = False,
    *,
    seed: int = 0,
) -> GridAnimation:
    """ROI Align (Mask R-CNN): bins of real size, each the mean of bilinear samples on a regular sub-grid.

    One frame per bin: the bin (purple), its sample points (red), the pixels the
    samples read with their weights (measured on :func:`convolab.functional.roi_align`
    with one-hot inputs, blue bars), and the op's value.

    Args:
        input_size, box, output_size, spatial_scale: as in :func:`roi_pool_animation`.
        sampling_ratio (int): samples per bin side (> 0; the adaptive rule is not drawn).
        aligned (bool): shift the box by -0.5 pixel so pixel centres line up (Detectron2's v2).

    Example:
        >>> a = roi_align_animation((6, 6), (0.5, 0.5, 4.5, 4.5), 2, sampling_ratio=2)
        >>> len(a.frames), len(a.frames[0].points)
        (4, 4)
    """
    op = "animate roi_align"
    if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, int) or sampling_ratio < 1:
        raise ValueError(f"{op}: sampling_ratio must be an int >= 1 for the picture, got {sampling_ratio!r}")
    size, out, x, rois, probe_rois = _roi_setup(op, input_size, box, output_size, spatial_scale, seed)
    y = roi_align(x, rois, out, spatial_scale, sampling_ratio, aligned)[0, 0]
    weights = roi_align(_one_hots(size), probe_rois, out, spatial_scale, sampling_ratio, aligned)[:, 0]
    # the box on the map, in pixel-centre coordinates (the op's documented convention)
    shift = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (float(v) * spatial_scale - shift for v in box)
    height, width = y2 - y1, x2 - x1
    if not aligned:  # the legacy rule: at least one pixel
        height, width = max(height, 1.0), max(width, 1.0)
    bin_h, bin_w = height / out[0], width / out[1]
    g = sampling_ratio
    frames = []
    flat_x = x.flatten()
    for index in indices(out):
        p, q = index
        weight = weights[:, p, q]
        used = torch.nonzero(weight.abs() > NEGLIGIBLE).flatten().tolist()
        cells = [divmod(i, size[1]) for i in used]
        shade = [float(weight[i]) for i in used]
        points = tuple(
            (y1 + p * bin_h + (i + 0.5) * bin_h / g, x1 + q * bin_w + (j + 0.5) * bin_w / g)
            for i in range(g) for j in range(g)
        )
        value = float(y[index])
        terms = " + ".join(f"{wt:.3g}·{fmt(float(flat_x[i]))}" for wt, i in zip(shade, used))
        frames.append(Frame(
            window=tuple(cells),
            cells=(index,),
            values=(value,),
            caption=f"bin {list(index)} = mean of {g * g} bilinear samples = {terms or '0'} = {fmt(value)}",
            points=points,
            region=(y1 + p * bin_h, x1 + q * bin_w, y1 + (p + 1) * bin_h, x1 + (q + 1) * bin_w),
            shade=tuple(min(v * g * g, 1.0) for v in shade),
        ))
    return GridAnimation(
        op="roi_align",
        title=(f"roi_align: {size[0]}x{size[1]} map, box (x1, y1, x2, y2) = ({', '.join(fmt(float(v)) for v in box)}) "
               f"x scale {fmt(spatial_scale)}, {out[0]}x{out[1]} bins, {g}x{g} samples per bin"
               + (", aligned" if aligned else "")),
        input=Grid("feature map", rows(x[0, 0])),
        kernel=None,
        output=Grid("output", rows(y)),
        frames=tuple(frames),
        notes=("no rounding: bins have real size; sample (i, j) of bin (p, q) sits at "
               "start + p*bin + (i + 0.5)*bin/samples; each reads its 4 neighbouring pixels bilinearly",)
        + (() if aligned else ("aligned=False: pixel centres sit half a pixel off the box's grid "
                               "(aligned=True shifts the box by -0.5)",)),
        legend=(DATA,),
        boxes=((y1, x1, y1 + height, x1 + width),),
        box_label="box (real coordinates)",
        shade_label="pixel's bilinear weight in the bin (bar length)",
    )


SPP_MODES = ("max", "avg")


def roi_spp_animation(
    input_size: Union[int, Sequence[int]] = (8, 8),
    box: Sequence[float] = (1.0, 1.0, 6.0, 5.0),
    levels: Sequence[Union[int, Sequence[int]]] = (1, 2),
    spatial_scale: float = 1.0,
    *,
    mode: str = "max",
    seed: int = 0,
) -> GridAnimation:
    """Spatial pyramid pooling of one box: one frame per bin of every level.

    The output shows the box's vector grouped by level: level ``n_h x n_w`` is a block of
    that shape (its bins where they sit in the box), labelled with its place in the flat
    vector. Each frame outlines one bin's pixels (measured on the op) and its value, the
    maximum (marked) or the mean of those pixels; a bin outside the map is empty and gives 0.

    Args:
        input_size (int or (H, W)): feature-map size.
        box (x1, y1, x2, y2): in input-image coordinates (times ``spatial_scale`` on the map).
        levels (sequence of int or (n_h, n_w)): bins per side of each level.
        spatial_scale (float): image-to-map scale.
        mode (str): "max" or "avg".
        seed (int): seed of the example values (distinct, so every maximum is unambiguous).

    Example:
        >>> a = roi_spp_animation((6, 6), (0, 0, 3, 3), (1, 2))
        >>> len(a.frames), a.output.shape, [text for _, text in a.output_labels]
        (5, (4, 2), ['level 1x1: entry 0', 'level 2x2: entries 1-4'])
    """

    op = "animate roi_spp"
    check_choice(mode, SPP_MODES, "mode", op)
    if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence) or not levels:
        raise ValueError(f"{op}: levels must be a non-empty sequence of bin counts, got {levels!r}")
    sizes = [positive_tuple(level, 2, "levels", op) for level in levels]
    size, _, x, rois, probe_rois = _roi_setup(op, input_size, box, 1, spatial_scale, seed)
    y = roi_spatial_pyramid_pool(x, rois, sizes, spatial_scale, mode)[0]
    if y.numel() != arithmetic.spp_features(1, sizes):
        raise RuntimeError(f"{op}: the op returned {y.numel()} features, arithmetic says {arithmetic.spp_features(1, sizes)}")
    # the output grid: level after level, each an n_h x n_w block, one blank row between levels
    top = [sum(h for h, _ in sizes[:i]) + i for i in range(len(sizes))]
    rows_total, cols_total = top[-1] + sizes[-1][0], max(w for _, w in sizes)
    values = [[0.0] * cols_total for _ in range(rows_total)]
    kinds = [[BLANK] * cols_total for _ in range(rows_total)]
    frames, labels, covered = [], [], []
    position = 0
    for level, row0 in zip(sizes, top):
        first = position
        # 1 where a pixel lies in a bin: the max of a one-hot image over the bin
        member = roi_pool(_one_hots(size), probe_rois, level, spatial_scale)[:, 0]
        for index in indices(level):
            cells = [divmod(q, size[1]) for q in torch.nonzero(member[(slice(None), *index)]).flatten().tolist()]
            covered += cells
            vals = [float(x[0, 0, r, c]) for r, c in cells]
            value = float(y[position])
            values[row0 + index[0]][index[1]], kinds[row0 + index[0]][index[1]] = value, DATA
            name = f"level {level[0]}x{level[1]}, bin {list(index)}"
            if not cells:
                caption = f"{name}: empty (outside the map) = {fmt(value)}"
            elif mode == "max":
                caption = f"{name}: max({', '.join(fmt(v) for v in vals)}) = {fmt(value)}"
            else:
                caption = f"{name}: ({' + '.join(fmt(v) for v in vals)}) / {len(vals)} = {fmt(value)}"
            winner = cells[vals.index(max(vals))] if cells and mode == "max" else None
            region = ((min(r for r, _ in cells) - 0.5, min(c for _, c in cells) - 0.5,
                       max(r for r, _ in cells) + 0.5, max(c for _, c in cells) + 0.5) if cells else None)
            frames.append(Frame(
                window=tuple(cells),
                cells=((row0 + index[0], index[1]),),
                values=(value,),
                caption=f"{caption}  -> vector entry {position}",
                marked=(winner,) if winner else (),
                region=region,
            ))
            position += 1
        span = f"entry {first}" if position - first == 1 else f"entries {first}-{position - 1}"
        labels.append((row0, f"level {level[0]}x{level[1]}: {span}"))
    boxes = ()
    if covered:
        boxes = ((min(r for r, _ in covered) - 0.5, min(c for _, c in covered) - 0.5,
                  max(r for r, _ in covered) + 0.5, max(c for _, c in covered) + 0.5),)
    counts = " + ".join(str(math.prod(level)) for level in sizes)
    return GridAnimation(
        op="roi_spp",
        title=(f"SPP on a region ({mode}): {size[0]}x{size[1]} map, box (x1, y1, x2, y2) = "
               f"({', '.join(fmt(float(v)) for v in box)}) x scale {fmt(spatial_scale)}, levels "
               f"{', '.join(f'{h}x{w}' for h, w in sizes)}"),
        input=Grid("feature map", rows(x[0, 0])),
        kernel=None,
        output=Grid(f"the box's vector: {y.numel()} numbers by level", tuple(tuple(r) for r in values),
                    tuple(tuple(r) for r in kinds)),
        frames=tuple(frames),
        notes=(f"the box is rounded to whole pixels; bin p of n covers [floor(p*roi/n), ceil((p+1)*roi/n)) of it; "
               f"the levels, flattened and concatenated, give {counts} = {y.numel()} numbers per channel for a box of "
               f"any size: what the fully connected layers of SPP-net's detector read",),
        legend=(DATA,),
        mark_label="the maximum",
        boxes=boxes,
        box_label="box on the pixel grid",
        output_labels=tuple(labels),
    )
