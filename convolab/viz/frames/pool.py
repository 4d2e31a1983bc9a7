"""Frames of pooling: max/avg windows and spatial-pyramid bins, from convolab's pooling ops.

The values are the ops' real outputs, padding comes from
:func:`convolab.arithmetic.resolve_padding`, output sizes from
:func:`convolab.arithmetic.pool_output_shape`, average divisors from
:func:`convolab.arithmetic.pool_window_counts`, and pyramid bins from
:func:`convolab.arithmetic.adaptive_pool_bins`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional, Union

from ... import arithmetic
from ..._args import PaddingArg, check_choice, positive_tuple
from ...functional import avg_pool, max_pool, spatial_pyramid_pool
from .cells import padded_input, rows, window_frames
from .example import check_geometry, check_input_size, generator, sample_ints
from .records import BLANK, DATA, Frame, Grid, GridAnimation
from .text import fmt, pad_text, short

__all__ = ["pool_animation", "spp_animation"]

POOL_MODES = ("max", "avg")


def pool_animation(
    input_size: Union[int, Sequence[int]],
    kernel_size: Union[int, Sequence[int]] = 2,
    stride: Optional[Union[int, Sequence[int]]] = None,
    padding: PaddingArg = 0,
    dilation: Union[int, Sequence[int]] = 1,
    *,
    mode: str = "max",
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    seed: int = 0,
) -> GridAnimation:
    """The window of max or average pooling, one frame per output position.

    Max pooling marks the winning cell (the index :func:`convolab.functional.max_pool`
    returns); average pooling shows the sum and the divisor PyTorch uses (with
    ``count_include_pad`` and ``ceil_mode``). Windows that ``ceil_mode`` lets hang
    past the padding are drawn over extra cells marked as padding.

    Returns:
        GridAnimation with ``prod(output shape)`` frames.

    Shape:
        per dim ``out = floor((in + before + after - dilation*(kernel - 1) - 1) / stride) + 1``
        (ceil with ``ceil_mode``, the last window starting inside the input or left padding).

    Example:
        >>> a = pool_animation((4, 4), 2)
        >>> a.output.shape, len(a.frames)
        ((2, 2), 4)
    """
    check_choice(mode, POOL_MODES, "mode", "animate pool")
    op = f"animate {mode}_pool"
    size, nd, k, s, d = check_geometry(op, input_size, kernel_size, stride, dilation)
    if mode == "avg" and any(v != 1 for v in d):
        raise ValueError(f"{op}: average pooling has no dilation, got dilation={dilation!r}")
    pads = arithmetic.resolve_padding(padding, size, k, s, d, op=op)
    out_shape = arithmetic.pool_output_shape(size, k, s, pads, d, ceil_mode, op=op)

    gen = generator(seed)
    x = sample_ints((1, 1, *size), 0, 9, gen)
    if mode == "max":
        y, where = max_pool(x, k, s, padding, d, ceil_mode, return_indices=True)
        where = where[0, 0]
    else:
        y = avg_pool(x, k, s, padding, ceil_mode, count_include_pad)
    y = y[0, 0]
    if tuple(y.shape) != out_shape:
        raise RuntimeError(f"{op}: the op returned {tuple(y.shape)}, arithmetic says {out_shape}")

    # the grid shown: the padding, plus whatever a ceil_mode window hangs past it
    extent = [arithmetic.effective_kernel_size(kk, dd) for kk, dd in zip(k, d)]
    shown_pads = tuple(
        (b, max(a, (o - 1) * ss + e - n - b)) for n, (b, a), o, ss, e in zip(size, pads, out_shape, s, extent)
    )
    fill = float("-inf") if mode == "max" else 0.0
    shown, grid = padded_input(x[0, 0], shown_pads, fill)
    if mode == "avg":
        counts = [
            arithmetic.pool_window_counts(n, kk, ss, pp, ceil_mode, count_include_pad)
            for n, kk, ss, pp in zip(size, k, s, pads)
        ]

    def caption(label, vals, value, index):
        if mode == "avg":
            divisor = math.prod(c[i] for c, i in zip(counts, index))
            return f"{label} = ({' + '.join(fmt(v) for v in vals)}) / {divisor} = {fmt(value)}"
        # the op's own argmax (a flat index into the unpadded input), moved onto the shown grid
        src = int(where[index])
        pos = [b + p for p, (b, _) in zip([src] if nd == 1 else divmod(src, size[1]), shown_pads)]
        winner = (0, pos[0]) if nd == 1 else (pos[0], pos[1])
        return f"{label} = max({', '.join(fmt(v) for v in vals)}) = {fmt(value)}", (winner,)

    frames = window_frames(shown, y, k, s, d, caption)
    notes = tuple(
        f"dim {j}: out = {'ceil' if ceil_mode else 'floor'}(({size[j]} + {pads[j][0]} + {pads[j][1]} - "
        f"{d[j]}*({k[j]} - 1) - 1) / {s[j]}) + 1 = {out_shape[j]}"
        for j in range(nd)
    )
    if mode == "max":
        notes += ("red box: the maximum the op picked (its return_indices); padding counts as -inf",)
    else:
        notes += (f"divisor counts {'the padding too' if count_include_pad else 'input cells only'} "
                  f"(count_include_pad={count_include_pad})",)
    return GridAnimation(
        op=f"{mode}_pool{nd}d",
        title=(f"{mode}_pool{nd}d: input {'x'.join(map(str, size))}, kernel {'x'.join(map(str, k))}, "
               f"stride {short(s)}, padding {pad_text(padding, pads)}"
               + (f", dilation {short(d)}" if any(v > 1 for v in d) else "")
               + (", ceil_mode" if ceil_mode else "")),
        input=grid,
        kernel=None,
        output=Grid("output", rows(y)),
        frames=tuple(frames),
        notes=notes,
        mark_label="the maximum (the op's index)",
    )


def spp_animation(
    input_size: Union[int, Sequence[int]] = (5, 5),
    levels: Sequence[int] = (1, 2, 3),
    *,
    mode: str = "max",
    seed: int = 0,
) -> GridAnimation:
    """Spatial pyramid pooling: one frame per bin of every level (adaptive bins).

    The output shows the pyramid's vector, taken from
    :func:`convolab.functional.spatial_pyramid_pool`, grouped by level: level ``n`` is an
    ``n`` x ``n`` block (its bins where they sit on the input), labelled with its place in the
    flat vector. Each frame outlines one bin's input cells
    (:func:`convolab.arithmetic.adaptive_pool_bins`).

    Example:
        >>> a = spp_animation((5, 5), (1, 2))
        >>> len(a.frames), a.output.shape, [text for _, text in a.output_labels]
        (5, (4, 2), ['level 1x1: entry 0', 'level 2x2: entries 1-4'])
    """
    op = "animate spp"
    check_choice(mode, POOL_MODES, "mode", op)
    size = check_input_size(input_size, op)
    if len(size) != 2:
        raise ValueError(f"{op}: input_size must be 2-D (H, W), got {size!r}")
    if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence) or not levels:
        raise ValueError(f"{op}: levels must be a non-empty sequence of ints, got {levels!r}")
    levels = [positive_tuple(level, 1, "levels", op)[0] for level in levels]
    gen = generator(seed)
    x = sample_ints((1, 1, *size), 0, 9, gen)
    y = spatial_pyramid_pool(x, levels, mode)[0]
    if y.numel() != arithmetic.spp_features(1, levels):
        raise RuntimeError(f"{op}: the op returned {y.numel()} features, arithmetic says "
                           f"{arithmetic.spp_features(1, levels)}")
    # the output grid: level after level, each an n x n block, one blank row between levels
    top = [sum(levels[:i]) + i for i in range(len(levels))]
    rows_total, cols_total = top[-1] + levels[-1], max(levels)
    values = [[0.0] * cols_total for _ in range(rows_total)]
    marks = [[BLANK] * cols_total for _ in range(rows_total)]
    frames, labels = [], []
    position = 0
    for n, row0 in zip(levels, top):
        first = position
        bin_rows = arithmetic.adaptive_pool_bins(size[0], n)
        bin_cols = arithmetic.adaptive_pool_bins(size[1], n)
        for bi, (r0, r1) in enumerate(bin_rows):
            for bj, (c0, c1) in enumerate(bin_cols):
                window = tuple((r, c) for r in range(r0, r1) for c in range(c0, c1))
                vals = [float(x[0, 0, r, c]) for r, c in window]
                value = float(y[position])
                values[row0 + bi][bj], marks[row0 + bi][bj] = value, DATA
                if mode == "max":
                    caption = f"level {n}x{n}, bin ({bi}, {bj}): max({', '.join(fmt(v) for v in vals)}) = {fmt(value)}"
                else:
                    caption = (f"level {n}x{n}, bin ({bi}, {bj}): ({' + '.join(fmt(v) for v in vals)}) / "
                               f"{len(vals)} = {fmt(value)}")
                caption += f"  -> vector entry {position}"
                frames.append(Frame(window=window, cells=((row0 + bi, bj),), values=(value,), caption=caption))
                position += 1
        span = f"entry {first}" if n == 1 else f"entries {first}-{position - 1}"
        labels.append((row0, f"level {n}x{n}: {span}"))
    return GridAnimation(
        op="spp",
        title=f"spatial pyramid pooling ({mode}): input {size[0]}x{size[1]}, levels {', '.join(f'{n}x{n}' for n in levels)}",
        input=Grid("input", rows(x[0, 0])),
        kernel=None,
        output=Grid(f"pyramid: {y.numel()} numbers by level", tuple(tuple(r) for r in values),
                    tuple(tuple(r) for r in marks)),
        frames=tuple(frames),
        notes=(f"bin i of n covers [floor(i*size/n), ceil((i+1)*size/n)); the levels, flattened row by row and "
               f"concatenated, give {' + '.join(str(n * n) for n in levels)} = {y.numel()} numbers per channel "
               f"for any input size",),
        legend=(DATA,),
        output_labels=tuple(labels),
    )
