"""Frames of the sliding window: convolution, transposed convolution, and its checkerboard.

The values are :func:`convolab.functional.conv` / :func:`convolab.functional.conv_transpose`'s
real outputs, the padding cells are where :func:`convolab.arithmetic.resolve_padding` puts
them, and the output sizes come from :mod:`convolab.arithmetic` (checked against the op).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import torch

from ... import arithmetic
from ..._args import PaddingArg, ntuple, positive_tuple
from ...functional import conv, conv_transpose
from ...functional._windows import dilate, pad_pairs
from .cells import Caption, indices, kinds, output_cell, padded_input, rows, window_frames
from .example import check_geometry, check_input_size, generator, sample_ints
from .records import DATA, PAD, ZERO, Frame, Grid, GridAnimation
from .text import fmt, pad_text, pairs_text, products, short

__all__ = ["checkerboard_animation", "conv_animation", "conv_transpose_animation"]


def _conv_caption(taps: list[float], bias: float) -> Caption:
    return lambda label, vals, value, index: f"{label} = {products(vals, taps)} + b({fmt(bias)}) = {fmt(value)}"


def conv_animation(
    input_size: Union[int, Sequence[int]],
    kernel_size: Union[int, Sequence[int]] = 3,
    stride: Union[int, Sequence[int]] = 1,
    padding: PaddingArg = 0,
    dilation: Union[int, Sequence[int]] = 1,
    *,
    seed: int = 0,
) -> GridAnimation:
    """The sliding window of a 1-D or 2-D convolution, one frame per output position.

    A single-channel input of small integers and a small integer kernel and
    bias (seeded) go through :func:`convolab.functional.conv`; every frame is one
    output position: the window's cells on the padded input, the products, and
    the output value the op computed.

    Args:
        input_size (int or tuple): 1 or 2 spatial sizes (an int is 1-D).
        kernel_size, stride, dilation (int or tuple): per spatial dim.
        padding: any convolab padding spec (int, per-dim, per-side pairs, ``"same"``, ``"valid"``).
        seed (int): seed of the example values.

    Returns:
        GridAnimation with ``prod(output shape)`` frames.

    Shape:
        output per dim: ``floor((in + before + after - dilation*(kernel - 1) - 1) / stride) + 1``.

    Raises:
        ValueError: bad sizes, or an empty output (message from convolab.arithmetic).

    Example:
        >>> a = conv_animation((5, 5), 3, stride=2, padding=1)
        >>> a.input.shape, a.output.shape, len(a.frames)
        ((7, 7), (3, 3), 9)
    """
    op = "animate conv"
    size, nd, k, s, d = check_geometry(op, input_size, kernel_size, stride, dilation)
    pads = arithmetic.resolve_padding(padding, size, k, s, d, op=op)
    out_shape = arithmetic.conv_output_shape(size, k, s, pads, d, op=op)

    gen = generator(seed)
    x = sample_ints((1, 1, *size), 0, 3, gen)
    w = sample_ints((1, 1, *k), -1, 2, gen, nonzero=True)
    b = sample_ints((1,), -1, 1, gen)
    y = conv(x, w, b, stride=s, padding=padding, dilation=d)[0, 0]
    if tuple(y.shape) != out_shape:  # the op and the arithmetic must agree
        raise RuntimeError(f"{op}: conv returned {tuple(y.shape)}, arithmetic says {out_shape}")

    shown, grid = padded_input(x[0, 0], pads)
    bias = float(b)
    frames = window_frames(shown, y, k, s, d, _conv_caption(w.flatten().tolist(), bias))
    dims = "x".join(map(str, size))
    notes = tuple(
        f"dim {j}: out = floor(({size[j]} + {pads[j][0]} + {pads[j][1]} - {d[j]}*({k[j]} - 1) - 1) / {s[j]}) + 1 = {out_shape[j]}"
        for j in range(nd)
    )
    title = (
        f"conv{nd}d: input {dims}, kernel {'x'.join(map(str, k))}, stride {short(s)}, "
        f"padding {pad_text(padding, pads)}, dilation {short(d)}"
    )
    return GridAnimation(
        op=f"conv{nd}d",
        title=title,
        input=grid,
        kernel=Grid(f"kernel, bias {fmt(bias)}", rows(w[0, 0])),
        output=Grid("output", rows(y)),
        frames=tuple(frames),
        notes=notes,
        bias=bias,
    )


def conv_transpose_animation(
    input_size: Union[int, Sequence[int]],
    kernel_size: Union[int, Sequence[int]] = 3,
    stride: Union[int, Sequence[int]] = 1,
    padding: Union[int, Sequence[int]] = 0,
    output_padding: Union[int, Sequence[int]] = 0,
    dilation: Union[int, Sequence[int]] = 1,
    *,
    seed: int = 0,
) -> GridAnimation:
    """A transposed convolution shown as zero insertion + padding + conv with the flipped kernel.

    The grid shows the input with ``stride - 1`` zeros inserted between samples
    (marked ``"zero"``) and padded by
    :func:`convolab.arithmetic.conv_transpose_equivalent_padding` (marked
    ``"pad"``); the window slides with stride 1 and the values are those of
    :func:`convolab.functional.conv_transpose`.

    Returns:
        GridAnimation with one frame per output position.

    Shape:
        ``out = (in - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1``.

    Example:
        >>> a = conv_transpose_animation((2, 2), 3)          # Dumoulin & Visin's 2x2 -> 4x4
        >>> a.input.shape, a.output.shape, len(a.frames)
        ((6, 6), (4, 4), 16)
    """
    op = "animate conv_transpose"
    size, nd, k, s, d = check_geometry(op, input_size, kernel_size, stride, dilation)
    p = ntuple(padding, nd, "padding", op)
    o = ntuple(output_padding, nd, "output_padding", op)
    out_shape = arithmetic.conv_transpose_output_shape(size, k, s, p, o, d, op=op)
    pads = tuple(arithmetic.conv_transpose_equivalent_padding(*args) for args in zip(k, p, o, d))

    gen = generator(seed)
    x = sample_ints((1, 1, *size), 1, 3, gen)
    w = sample_ints((1, 1, *k), -1, 2, gen, nonzero=True)
    b = sample_ints((1,), -1, 1, gen)
    y = conv_transpose(x, w, b, stride=s, padding=p, output_padding=o, dilation=d)[0, 0]
    if tuple(y.shape) != out_shape:
        raise RuntimeError(f"{op}: conv_transpose returned {tuple(y.shape)}, arithmetic says {out_shape}")

    shown = pad_pairs(dilate(x[0, 0], s), pads)
    # 2 = input sample, 1 = inserted zero, 0 = padding
    marks = pad_pairs(dilate(torch.ones_like(x[0, 0]), s) + 1, pads, value=0.0)
    flipped = torch.flip(w[0, 0], dims=tuple(range(nd)))
    bias = float(b)
    frames = window_frames(shown, y, k, (1,) * nd, d, _conv_caption(flipped.flatten().tolist(), bias))
    notes = (
        f"insert stride-1 = {short(tuple(v - 1 for v in s))} zeros between inputs, pad {pairs_text(pads)} "
        f"(= dilation*(k-1) - padding, + output_padding after), slide the flipped kernel with stride 1",
    ) + tuple(
        f"dim {j}: out = ({size[j]} - 1)*{s[j]} - 2*{p[j]} + {d[j]}*({k[j]} - 1) + {o[j]} + 1 = {out_shape[j]}"
        for j in range(nd)
    )
    return GridAnimation(
        op=f"conv_transpose{nd}d",
        title=(f"conv_transpose{nd}d: input {'x'.join(map(str, size))}, kernel {'x'.join(map(str, k))}, "
               f"stride {short(s)}, padding {short(p)}"
               + (f", output_padding {short(o)}" if any(o) else "")
               + (f", dilation {short(d)}" if any(v > 1 for v in d) else "")),
        input=Grid("zero-inserted, padded input", rows(shown), kinds(rows(marks), {0: PAD, 1: ZERO, 2: DATA})),
        kernel=Grid(f"flipped kernel, bias {fmt(bias)}", rows(flipped)),
        output=Grid("output", rows(y)),
        frames=tuple(frames),
        notes=notes,
        legend=(DATA, ZERO, PAD),
        bias=bias,
    )


def checkerboard_animation(
    input_size: Union[int, Sequence[int]] = (3, 3),
    kernel_size: Union[int, Sequence[int]] = 3,
    stride: Union[int, Sequence[int]] = 2,
) -> GridAnimation:
    """The checkerboard of a transposed conv: how many input samples overlap on each output cell.

    Each frame scatters one input sample (all ones) through an all-ones kernel:
    the footprint is what :func:`convolab.functional.conv_transpose` writes for
    that sample alone, and the running counts end equal to ``conv_transpose``
    of the all-ones input. With stride 2 and kernel 3 the counts alternate
    (1, 2, 1, 2, ... per dim): the checkerboard artifact of deconvolution.

    Example:
        >>> a = checkerboard_animation((3, 3), 3, 2)
        >>> a.output.values[0][:4], len(a.frames)
        ((1.0, 1.0, 2.0, 1.0), 9)
    """
    op = "animate checkerboard"
    size = check_input_size(input_size, op)
    nd = len(size)
    k = positive_tuple(kernel_size, nd, "kernel_size", op)
    s = positive_tuple(stride, nd, "stride", op)
    out_shape = arithmetic.conv_transpose_output_shape(size, k, s, op=op)
    ones = torch.ones(1, 1, *k, dtype=torch.float64)
    counts = conv_transpose(torch.ones(1, 1, *size, dtype=torch.float64), ones, stride=s)[0, 0]
    running = torch.zeros(out_shape, dtype=torch.float64)
    frames = []
    for index in indices(size):
        one_hot = torch.zeros(1, 1, *size, dtype=torch.float64)
        one_hot[(0, 0, *index)] = 1
        footprint = conv_transpose(one_hot, ones, stride=s)[0, 0]
        running += footprint
        hit = [tuple(int(v) for v in c) for c in torch.nonzero(footprint).tolist()]
        frames.append(Frame(
            window=(output_cell(index),),
            cells=tuple(output_cell(c) for c in hit),
            values=tuple(float(running[c]) for c in hit),
            caption=f"input {list(index)} adds its {'x'.join(map(str, k))} footprint; "
                    f"cells written twice or more overlap (max so far {fmt(float(running.max()))})",
        ))
    return GridAnimation(
        op="checkerboard",
        title=f"checkerboard: transposed conv, kernel {'x'.join(map(str, k))}, stride {short(s)}, all-ones input and kernel",
        input=Grid("input (ones)", rows(torch.ones(size))),
        kernel=Grid("kernel (ones)", rows(ones[0, 0])),
        output=Grid("overlap count", rows(counts)),
        frames=tuple(frames),
        notes=("kernel size not divisible by stride -> uneven overlap (Odena et al., 'Deconvolution and Checkerboard Artifacts')",),
        legend=(DATA,),
        heat=True,
    )
