"""Frames of spatial pyramid pooling on a region (SPP-net's detector).

One candidate window of a feature map becomes a fixed-length vector: the window is snapped
to the pixel grid as ROI pooling does, and every level of the pyramid splits it into
``n x n`` bins. The values are :func:`convolab.functional.roi_spatial_pyramid_pool`'s;
which pixels each bin covers is measured on the op itself (ROI max pooling of one-hot
inputs, as :func:`convolab.viz.frames_roi.roi_pool_animation` does).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Union

from .. import arithmetic
from .._args import check_choice, positive_tuple
from .frames import BLANK, DATA, Frame, Grid, GridAnimation, _indices, _rows, fmt
from .frames_roi import _one_hots, _roi_setup

__all__ = ["roi_spp_animation"]

MODES = ("max", "avg")


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
    import torch

    from ..functional import roi_pool, roi_spatial_pyramid_pool

    op = "animate roi_spp"
    check_choice(mode, MODES, "mode", op)
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
        for index in _indices(level):
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
        input=Grid("feature map", _rows(x[0, 0])),
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
