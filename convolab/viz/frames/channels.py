"""Channel pictures: grouped and 1x1 convolution, channel shuffle (one pixel), depthwise-separable (spatially).

A channel diagram's edges are the non-zero entries of the op's Jacobian at one pixel, so a
missing edge means the op really does not connect those channels. Every value is the op's
own output (:func:`convolab.functional.conv`, :func:`convolab.functional.channel_shuffle`,
:func:`convolab.functional.depthwise_separable_conv`); parameter counts come from
:mod:`convolab.arithmetic`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable, Union

import torch
from torch import Tensor

from ... import arithmetic
from ..._args import check_groups, positive_tuple
from ...functional import channel_shuffle, conv, depthwise_separable_conv
from .cells import cell_of, indices, rows, window_cells
from .example import check_input_size, generator, sample_ints
from .records import ChannelAnimation, ChannelFrame, Grid, Panel, PanelAnimation, PanelFrame, Stage
from .text import fmt, products

__all__ = ["channel_shuffle_animation", "depthwise_separable_animation", "grouped_conv_animation", "pointwise_animation"]

ChannelOp = Callable[[Tensor], Tensor]  # [C_in] values at one pixel -> [C_out]


def _stage_from_op(fn: ChannelOp, x: Tensor, label: str, groups: int) -> tuple[Stage, Tensor]:
    """Run ``fn`` on ``x`` ([C] values at one pixel); edges are the non-zero Jacobian entries."""
    y = fn(x)
    jac = torch.autograd.functional.jacobian(fn, x)  # [C_out, C_in]
    bias = y - jac @ x  # every channel op here is affine
    c_out = y.numel()
    edges = tuple(
        (int(src), int(dst), float(jac[dst, src]))
        for dst, src in torch.nonzero(jac).tolist()
    )
    per_group = max(c_out // groups, 1)
    stage = Stage(
        label=label,
        edges=edges,
        values=tuple(float(v) for v in y),
        groups=tuple(min(c // per_group, groups - 1) for c in range(c_out)),
        bias=tuple(float(v) for v in bias),
    )
    return stage, y.detach()


def _channel_frames(stages: Sequence[Stage], first: Sequence[float]) -> tuple[ChannelFrame, ...]:
    """One frame per produced channel of every stage, its caption the weighted sum that made it."""
    frames = []
    previous = list(first)
    for si, stage in enumerate(stages):
        for dst, value in enumerate(stage.values):
            edges = [(src, w) for src, d, w in stage.edges if d == dst]
            terms = products([previous[src] for src, _ in edges], [w for _, w in edges])
            b = stage.bias[dst] if stage.bias else 0.0
            bias = f" + b({fmt(b)})" if abs(b) > 1e-12 else ""
            frames.append(ChannelFrame(
                stage=si,
                dst=dst,
                sources=tuple(src for src, _ in edges),
                value=value,
                caption=f"{stage.label}: out[{dst}] = {terms}{bias} = {fmt(value)}",
            ))
        previous = list(stage.values)
    return tuple(frames)


def _channel_input(channels: int, gen: torch.Generator) -> Tensor:
    """The input column: one small integer per channel."""
    return sample_ints((channels,), 0, 3, gen)


def _conv_stage(c_in: int, c_out: int, groups: int, gen: torch.Generator, label: str,
                bias: bool = True) -> tuple[ChannelOp, str]:
    """A 1x1 (grouped) conv on one pixel through convolab.functional.conv, and its label."""
    w = sample_ints((c_out, c_in // groups, 1, 1), -2, 2, gen, nonzero=True)
    b = sample_ints((c_out,), -1, 1, gen) if bias else None

    def fn(v: Tensor) -> Tensor:
        return conv(v.view(1, c_in, 1, 1), w, b, groups=groups)[0, :, 0, 0]

    return fn, label


def _check_channels(c_in: int, c_out: int, groups: int, op: str) -> None:
    for name, v in (("in_channels", c_in), ("out_channels", c_out)):
        if not isinstance(v, int) or v < 1 or v > 64:
            raise ValueError(f"{op}: {name} must be an int in [1, 64] for a readable diagram, got {v!r}")
    check_groups(c_in, c_out, groups, op)


def grouped_conv_animation(
    in_channels: int = 4, out_channels: int = 4, groups: int = 2, *, shuffle: bool = False, seed: int = 0
) -> ChannelAnimation:
    """Which input channels feed which output channels in a grouped conv (channel view, one pixel).

    With ``shuffle=True`` the diagram is ShuffleNet's unit: grouped conv,
    :func:`convolab.functional.channel_shuffle`, grouped conv, so information
    crosses the groups.

    Example:
        >>> a = grouped_conv_animation(4, 4, 2)
        >>> len(a.stages[0].edges), len(a.frames)     # each output reads C_in/groups = 2 inputs
        (8, 4)
    """
    op = "animate grouped"
    _check_channels(in_channels, out_channels, groups, op)
    gen = generator(seed)
    x = _channel_input(in_channels, gen)
    specs = [_conv_stage(in_channels, out_channels, groups, gen, f"grouped conv (groups={groups})")]
    if shuffle:
        specs.append((lambda v: channel_shuffle(v.view(1, -1, 1), groups)[0, :, 0], f"channel shuffle (groups={groups})"))
        specs.append(_conv_stage(out_channels, out_channels, groups, gen, f"grouped conv (groups={groups})"))
    stages, v = [], x
    for fn, label in specs:
        stage, v = _stage_from_op(fn, v, label, groups)
        stages.append(stage)
    if shuffle:  # a shuffled channel keeps the colour of the group it came from
        src_of = {dst: src for src, dst, _ in stages[1].edges}
        stages[1] = Stage(stages[1].label, stages[1].edges, stages[1].values,
                          tuple(stages[0].groups[src_of[c]] for c in range(out_channels)), stages[1].bias)
    weights = arithmetic.conv_params(in_channels, out_channels, 1, groups, bias=False)
    dense = arithmetic.conv_params(in_channels, out_channels, 1, 1, bias=False)
    return ChannelAnimation(
        op="shuffle" if shuffle else "grouped",
        title=(f"{'ShuffleNet unit: ' if shuffle else ''}grouped 1x1 conv, {in_channels} -> {out_channels} "
               f"channels, groups={groups}" + (" + channel shuffle" if shuffle else "")),
        inputs=tuple(float(t) for t in x),
        input_groups=tuple(c // (in_channels // groups) for c in range(in_channels)),
        stages=tuple(stages),
        frames=_channel_frames(stages, x.tolist()),
        notes=(f"parameters{' of the first grouped conv' if shuffle else ''}: C_out*(C_in/groups) + C_out biases = "
               f"{out_channels}*{in_channels // groups} + {out_channels} = {weights + out_channels} "
               f"(dense 1x1: {dense + out_channels})",),
    )


def channel_shuffle_animation(channels: int = 6, groups: int = 2, *, seed: int = 0) -> ChannelAnimation:
    """Where :func:`convolab.functional.channel_shuffle` sends every channel.

    Example:
        >>> [e[:2] for e in channel_shuffle_animation(6, 2).stages[0].edges]
        [(0, 0), (3, 1), (1, 2), (4, 3), (2, 4), (5, 5)]
    """
    op = "animate shuffle"
    _check_channels(channels, channels, groups, op)
    gen = generator(seed)
    x = _channel_input(channels, gen)
    stage, _ = _stage_from_op(lambda v: channel_shuffle(v.view(1, -1, 1), groups)[0, :, 0], x,
                              f"channel shuffle (groups={groups})", groups)
    per = channels // groups
    src_of = {dst: src for src, dst, _ in stage.edges}
    stage = Stage(stage.label, stage.edges, stage.values, tuple(src_of[c] // per for c in range(channels)), stage.bias)
    return ChannelAnimation(
        op="shuffle",
        title=f"channel shuffle: {channels} channels in {groups} groups (reshape to [{groups}, {per}], transpose, flatten)",
        inputs=tuple(float(t) for t in x),
        input_groups=tuple(c // per for c in range(channels)),
        stages=(stage,),
        frames=_channel_frames([stage], x.tolist()),
    )


def pointwise_animation(in_channels: int = 4, out_channels: int = 3, *, seed: int = 0) -> ChannelAnimation:
    """A 1x1 conv: at every pixel, each output channel is a weighted sum of all input channels.

    Example:
        >>> a = pointwise_animation(4, 3)
        >>> len(a.stages[0].edges), len(a.frames)
        (12, 3)
    """
    op = "animate pointwise"
    _check_channels(in_channels, out_channels, 1, op)
    gen = generator(seed)
    x = _channel_input(in_channels, gen)
    fn, label = _conv_stage(in_channels, out_channels, 1, gen, "1x1 conv")
    stage, _ = _stage_from_op(fn, x, label, 1)
    return ChannelAnimation(
        op="pointwise",
        title=f"1x1 conv: {in_channels} -> {out_channels} channels (a per-pixel fully connected layer)",
        inputs=tuple(float(t) for t in x),
        input_groups=(0,) * in_channels,
        stages=(stage,),
        frames=_channel_frames([stage], x.tolist()),
        notes=(f"weights: {out_channels}*{in_channels} + bias {out_channels} = "
               f"{arithmetic.conv_params(in_channels, out_channels, 1)}",),
    )


def depthwise_separable_animation(
    in_channels: int = 2,
    out_channels: int = 3,
    kernel_size: int = 3,
    input_size: Union[int, Sequence[int]] = 4,
    *,
    seed: int = 0,
) -> PanelAnimation:
    """A depthwise-separable conv, spatially: each channel's own k x k filter, then 1x1 across channels.

    Both steps run through :func:`convolab.functional.depthwise_separable_conv`: its
    ``between`` hook captures the depthwise output (the middle column), and the last column
    is the op's output. First one frame per depthwise output cell (the window on that
    channel only), then one per output cell of the pointwise step (the same pixel of every
    depthwise channel, one row of the 1x1 weights).

    Args:
        in_channels, out_channels (int): channel counts, 1 to 6 (a readable picture).
        kernel_size (int): the depthwise kernel (square).
        input_size (int or (H, W)): spatial size of the input, at most 8 per side.
        seed (int): seed of the example values.

    Returns:
        PanelAnimation with ``(in_channels + out_channels) * H_out * W_out`` frames.

    Shape:
        ``H_out = H - kernel_size + 1`` (no padding, stride 1), the same for the pointwise step.

    Example:
        >>> a = depthwise_separable_animation(2, 3, 3, 4)
        >>> len(a.frames), a.notes[0]
        (20, 'weights: depthwise 2*3*3 + 2 biases = 20, pointwise 3*2 + 3 biases = 9: 29 in all  vs  standard 3x3 conv 3*2*3*3 + 3 biases = 57')
    """
    op = "animate depthwise-separable"
    for name, v in (("in_channels", in_channels), ("out_channels", out_channels)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 6:
            raise ValueError(f"{op}: {name} must be an int in [1, 6] for a readable picture, got {v!r}")
    k = positive_tuple(kernel_size, 1, "kernel_size", op)[0]
    size = check_input_size((input_size, input_size) if isinstance(input_size, int) else input_size, op)
    if len(size) != 2 or max(size) > 8:
        raise ValueError(f"{op}: input_size must be an int or (H, W) with sides <= 8, got {input_size!r}")
    mid_shape = arithmetic.conv_output_shape(size, k, op=op)
    gen = generator(seed)
    x = sample_ints((1, in_channels, *size), 0, 3, gen)
    wd = sample_ints((in_channels, 1, k, k), -1, 1, gen, nonzero=True)
    bd = sample_ints((in_channels,), -1, 1, gen)
    wp = sample_ints((out_channels, in_channels, 1, 1), -2, 2, gen, nonzero=True)
    bp = sample_ints((out_channels,), -1, 1, gen)
    mids = []
    y = depthwise_separable_conv(x, wd, wp, bd, bp, between=lambda m: mids.append(m) or m)[0]
    mid = mids[0][0]
    if tuple(mid.shape[1:]) != mid_shape or tuple(y.shape[1:]) != mid_shape:  # the op and the arithmetic agree
        raise RuntimeError(f"{op}: the op gives {tuple(y.shape[1:])}, arithmetic says {mid_shape}")

    panels: list[Panel] = []
    for c in range(in_channels):
        panels.append(Panel(Grid(f"input channel {c}", rows(x[0, c])), "input", 0))
    for c in range(in_channels):
        panels.append(Panel(Grid(f"filter {c}, bias {fmt(float(bd[c]))}", rows(wd[c, 0])), "weight", 1))
    for c in range(in_channels):
        panels.append(Panel(Grid(f"depthwise channel {c}", rows(mid[c])), "output", 2))
    weights = len(panels)
    panels.append(Panel(Grid("1x1 weights: row o, column c", rows(wp[:, :, 0, 0])), "weight", 3))
    panels.append(Panel(Grid("biases", rows(bp.view(-1, 1))), "weight", 3))
    for o in range(out_channels):
        panels.append(Panel(Grid(f"output channel {o}", rows(y[o])), "output", 4))
    first_mid, first_out = 2 * in_channels, weights + 2

    frames = []
    kernel_cells = tuple((i, j) for i in range(k) for j in range(k))
    for c in range(in_channels):
        cells = window_cells(size, (k, k), (1, 1), (1, 1))
        taps = wd[c, 0].flatten().tolist()
        for index in indices(mid_shape):
            window = [cell_of(f, size[1]) for f in cells[index].tolist()]
            vals = [float(x[0, c, i, j]) for i, j in window]
            value = float(mid[c][index])
            frames.append(PanelFrame(
                window=tuple((c, cell) for cell in window),
                taps=tuple((in_channels + c, t) for t in kernel_cells),
                cells=((first_mid + c, index),), values=(value,),
                caption=(f"depthwise, channel {c} alone: d{c}{list(index)} = {products(vals, taps)} "
                         f"+ b({fmt(float(bd[c]))}) = {fmt(value)}"),
            ))
    for o in range(out_channels):
        row = wp[o, :, 0, 0].tolist()
        for index in indices(mid_shape):
            vals = [float(mid[c][index]) for c in range(in_channels)]
            value = float(y[o][index])
            frames.append(PanelFrame(
                window=tuple((first_mid + c, index) for c in range(in_channels)),
                taps=tuple((weights, (o, c)) for c in range(in_channels)) + ((weights + 1, (o, 0)),),
                cells=((first_out + o, index),), values=(value,),
                caption=(f"pointwise 1x1, output {o}: y{o}{list(index)} = {products(vals, row)} "
                         f"+ b({fmt(float(bp[o]))}) = {fmt(value)}"),
            ))
    dw = arithmetic.conv_params(in_channels, in_channels, k, groups=in_channels)
    pw = arithmetic.conv_params(in_channels, out_channels, 1)
    full = arithmetic.conv_params(in_channels, out_channels, k)
    if dw + pw != arithmetic.depthwise_separable_params(in_channels, out_channels, k):
        raise RuntimeError(f"{op}: the parameter counts disagree")
    return PanelAnimation(
        op="depthwise-separable",
        title=(f"depthwise-separable conv: {in_channels} -> {out_channels} channels, {k}x{k} depthwise "
               f"(one filter per channel) + 1x1 pointwise, input {size[0]}x{size[1]}"),
        panels=tuple(panels),
        frames=tuple(frames),
        notes=(f"weights: depthwise {in_channels}*{k}*{k} + {in_channels} biases = {dw}, pointwise "
               f"{out_channels}*{in_channels} + {out_channels} biases = {pw}: {dw + pw} in all  vs  standard "
               f"{k}x{k} conv {out_channels}*{in_channels}*{k}*{k} + {out_channels} biases = {full}",),
        column_labels=("input", "depthwise filters", "depthwise output", "pointwise 1x1", "output"),
    )
