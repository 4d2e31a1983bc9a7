"""Ops that slide a window or resample a grid, and padding: convolution, pooling, adaptive
pooling, interpolation, pixel shuffle, ``unfold``; each with its MACs.

The field of a window is :meth:`ReceptiveField.conv`; every resampling step (transposed
conv, interpolation, adaptive pooling, pixel shuffle) is :meth:`ReceptiveField.resample`
through :func:`resampled`, which states the convention when it applies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

from ... import arithmetic
from ...arithmetic import ReceptiveField
from .._fields import RESAMPLE_NOTE, Field, Info, Merged, NoField
from .._tracer import OpTable, Tracer, first, named_args, tensor_outputs
from .merges import COPY_INTO_VIEW

aten = torch.ops.aten

RULES = OpTable()


# --------------------------------------------------------------------------- shared by the rules


@dataclass(frozen=True)
class _Phases(ReceptiveField):
    """A field whose resampling also records, per call, whether it was exact (see :func:`resampled`)."""

    exact: list[bool] = field(default_factory=list, compare=False, repr=False)

    def resample(self, rate, taps, period):  # type: ignore[no-untyped-def, override]
        a = Fraction(rate)
        spans = []
        for o in range(period):
            t = [Fraction(v) for v in taps(o)]
            spans.append((max(t) - min(t), (max(t) + min(t)) / 2 - a * o) if t else None)
        # exact: every unit reads a window of the same width at the same offset from its centre
        self.exact.append(None not in spans and len(set(spans)) == 1)
        return ReceptiveField.resample(self, rate, taps, period)


def resampled(tracer: Tracer, rf: ReceptiveField, step: Callable[[ReceptiveField], ReceptiveField]) -> ReceptiveField:
    """``step(rf)`` for a resampling step (transposed conv, interpolation, adaptive pooling); notes
    the convention on the layer when the evenly spaced field is wider than some unit's support."""
    probe = _Phases(rf.size, rf.jump, rf.start)
    out = step(probe)
    if not all(probe.exact):
        tracer.note(RESAMPLE_NOTE)
    return ReceptiveField(out.size, out.jump, out.start)


def conv_field(
    tracer: Tracer, rf: ReceptiveField, kernel: int, stride: int, before: int, dilation: int, transposed: bool
) -> ReceptiveField:
    """The field after one spatial dim of a convolution (a resampling step when transposed)."""
    if transposed:
        return resampled(tracer, rf, lambda f: f.transposed_conv(kernel, stride, before, dilation))
    return rf.conv(kernel, stride, before, dilation)


def batch_of(x: Tensor, nd: int) -> int:
    """The batch of an input with ``nd`` spatial dims (1 for an unbatched ``[C, *spatial]``)."""
    return x.shape[0] if x.dim() == nd + 2 else 1


def conv_macs(
    x: Tensor, out: Tensor, in_channels: int, out_channels: int, kernel: Sequence[int], groups: int,
    transposed: bool,
) -> int:
    """MACs of a convolution by its definition, whichever algorithm computes it.

    A transposed conv counts its weights once per *input* unit (im2col on a zero-inserted
    input does more work than that); the formulas are :mod:`convolab.arithmetic`'s.
    """
    nd = len(kernel)
    batch = batch_of(x, nd)
    if transposed:
        return arithmetic.conv_transpose_macs(
            in_channels, out_channels, tuple(kernel), tuple(x.shape[-nd:]), groups, batch)
    return arithmetic.conv_macs(in_channels, out_channels, tuple(kernel), tuple(out.shape[-nd:]), groups, batch)


def window_dims(
    info: Info, x: Tensor, nd: int, step: Callable[[ReceptiveField, int], ReceptiveField],
    mixes_channels: bool = False,
) -> Info:
    """Apply a per-spatial-dim field map to the last ``nd`` dims (a conv also mixes channels)."""
    dims = list(info.dims)
    lead = x.dim() - nd
    for j in range(nd):
        d = dims[lead + j]
        if isinstance(d, Field):
            dims[lead + j] = Field(d.axis, step(d.rf, j))
        elif isinstance(d, Merged):
            raise NoField(f"a window slides over a folded dim {lead + j}: no single field")
    if lead >= 1 and mixes_channels:
        dims[lead - 1] = None
    return Info(tuple(dims), info.reduced)


def _ints(v: Any, n: int, default: Sequence[int]) -> tuple[int, ...]:
    """An aten int-list argument (empty or None: ``default``) as ``n`` ints."""
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        v = default
    if isinstance(v, int):
        return (v,) * n
    v = tuple(int(x) for x in v)
    return v * n if len(v) == 1 else v


# --------------------------------------------------------------------------- convolution


def _conv_cost(func: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Tensor) -> tuple[str, int]:
    named = named_args(func, args, kwargs)
    x, w, g = named["input"], named["weight"], named["groups"]
    if named["transposed"]:  # weight [C_in, C_out / groups, *kernel]
        return "conv", conv_macs(x, out, w.shape[0], w.shape[1] * g, tuple(w.shape[2:]), g, True)
    return "conv", conv_macs(x, out, w.shape[1] * g, w.shape[0], tuple(w.shape[2:]), g, False)


@RULES.rule("convolution", "_convolution", "convolution_overrideable", cost=_conv_cost)
def _conv(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    x, w = named["input"], named["weight"]
    nd = w.dim() - 2
    k = tuple(w.shape[2:])
    s = _ints(named["stride"], nd, (1,))
    p = _ints(named["padding"], nd, (0,))
    d = _ints(named["dilation"], nd, (1,))
    transposed = bool(named["transposed"])
    return window_dims(tracer.require(x), x, nd,
                       lambda rf, j: conv_field(tracer, rf, k[j], s[j], p[j], d[j], transposed), True)


# --------------------------------------------------------------------------- pooling

_POOL_ND = {
    "max_pool1d": 1, "max_pool2d": 2, "max_pool3d": 3, "max_pool1d_with_indices": 1,
    "max_pool2d_with_indices": 2, "max_pool3d_with_indices": 3, "avg_pool1d": 1, "avg_pool2d": 2,
    "avg_pool3d": 3, "_adaptive_avg_pool2d": 2, "_adaptive_avg_pool3d": 3, "adaptive_avg_pool1d": 1,
    "adaptive_max_pool1d": 1, "adaptive_max_pool2d": 2, "adaptive_max_pool3d": 3,
}


def _nd(func: Any) -> int:
    return _POOL_ND[func.overloadpacket.__name__]


def _avg_pool_cost(func: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Tensor) -> tuple[str, int]:
    named = named_args(func, args, kwargs)
    return "pool", arithmetic.avg_pool_macs(out.numel(), _ints(named["kernel_size"], _nd(func), (1,)))


# max pooling compares, it does not multiply: no MACs
@RULES.rule("max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
            "max_pool3d_with_indices")
@RULES.rule("avg_pool1d", "avg_pool2d", "avg_pool3d", cost=_avg_pool_cost)
def _pool(tracer: Tracer, func: Any, named: dict[str, Any], out: Any) -> Info:
    x = first(named)
    nd = _nd(func)
    k = _ints(named["kernel_size"], nd, (1,))
    s = _ints(named.get("stride"), nd, k)
    p = _ints(named.get("padding", 0), nd, (0,))
    d = _ints(named.get("dilation", 1), nd, (1,))
    return window_dims(tracer.require(x), x, nd, lambda rf, j: rf.conv(k[j], s[j], p[j], d[j]))


def _adaptive_cost(func: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Tensor) -> tuple[str, int]:
    x = args[0]
    nd = _nd(func)
    lead = math.prod(out.shape[:-nd])
    return "pool", lead * arithmetic.adaptive_pool_macs(tuple(x.shape[-nd:]), tuple(out.shape[-nd:]))


@RULES.rule("adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d")
@RULES.rule("_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_avg_pool1d", cost=_adaptive_cost)
def _adaptive(tracer: Tracer, func: Any, named: dict[str, Any], out: Any) -> Info:
    x = first(named)
    nd = _nd(func)
    o = tensor_outputs(out)[0]
    n, m = x.shape[-nd:], o.shape[-nd:]
    return window_dims(tracer.require(x), x, nd,
                       lambda rf, j: resampled(tracer, rf, lambda f: f.adaptive_pool(n[j], m[j])))


# --------------------------------------------------------------------------- resampling

_INTERP = {
    "upsample_nearest1d": "nearest", "upsample_nearest2d": "nearest", "upsample_nearest3d": "nearest",
    "_upsample_nearest_exact1d": "nearest-exact", "_upsample_nearest_exact2d": "nearest-exact",
    "_upsample_nearest_exact3d": "nearest-exact", "upsample_linear1d": "linear",
    "upsample_bilinear2d": "linear", "upsample_trilinear3d": "linear", "upsample_bicubic2d": "cubic",
}


@RULES.rule(*_INTERP)
def _interpolate(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    x = first(named)
    nd = out.dim() - 2
    mode = _INTERP[func.overloadpacket.__name__]
    align = bool(named.get("align_corners") or False)
    scales = named.get("scale_factors")
    if scales is None:
        keys = {1: ("scales",), 2: ("scales_h", "scales_w"), 3: ("scales_d", "scales_h", "scales_w")}[nd]
        scales = [named.get(key) for key in keys]
    scales = list(scales) * nd if len(scales) == 1 else list(scales)
    n, m = x.shape[2:], out.shape[2:]
    return window_dims(tracer.require(x), x, nd, lambda rf, j: resampled(
        tracer, rf, lambda f: f.interpolate(n[j], m[j], mode, align, scales[j])))


@RULES.rule("pixel_shuffle", "pixel_unshuffle")
def _pixel_shuffle(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    """Depth-to-space by ``r`` reads like nearest up-sampling by ``r``; space-to-depth like an
    ``r x r`` window of stride ``r`` (each output unit holds ``r*r`` input units in its channels)."""
    x = first(named)
    info = tracer.require(x)
    if func.overloadpacket is aten.pixel_shuffle:
        return window_dims(info, x, 2, lambda rf, j: resampled(
            tracer, rf, lambda f: f.interpolate(x.shape[-2 + j], out.shape[-2 + j], "nearest")), True)
    r = int(named["downscale_factor"])
    return window_dims(info, x, 2, lambda rf, j: rf.conv(r, r), True)


@RULES.rule("unfold")
def _unfold(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    """``x.unfold(d, size, step)``: dim ``d`` indexes windows (a window of ``size``, stride
    ``step``: the conv rule), a new last dim holds the offsets inside a window (no own field)."""
    x = first(named)
    info = tracer.require(x)
    k = named["dimension"] % max(x.dim(), 1)
    d = info.dims[k]
    dims = list(info.dims)
    if isinstance(d, Field):
        dims[k] = Field(d.axis, d.rf.conv(int(named["size"]), int(named["step"])))
    elif isinstance(d, Merged):
        raise NoField(f"unfolding a folded dim {k}: no single field")
    return Info((*dims, None), info.reduced)


# --------------------------------------------------------------------------- padding

# Circular padding wraps the map around: a unit at a border reads the far side (unit 0 of a
# 5-wide conv on 32 columns reads columns 30, 31, 0, 1, 2), which no window describes.
CIRCULAR_OP = "circular padding"
CIRCULAR_REASON = "wraps the map around: a border unit reads the far side, not a window"


def circular(tracer: Tracer) -> str:
    """Report circular padding (not analysed) and return the reason a field after it is unknown."""
    return tracer.skip(CIRCULAR_OP, CIRCULAR_REASON)


def pad_dims(info: Info, x: Tensor, pad: Sequence[int]) -> Info:
    """Info after ``F.pad(x, pad)`` (pairs from the last dim backwards): each field starts earlier."""
    dims = list(info.dims)
    for i in range(len(pad) // 2):
        k = x.dim() - 1 - i
        d = dims[k]
        if isinstance(d, Field):
            dims[k] = Field(d.axis, d.rf.slice(-int(pad[2 * i])))
        elif isinstance(d, Merged) and (pad[2 * i] or pad[2 * i + 1]):
            raise NoField(f"padding a folded dim {k}: no single field")
    return Info(tuple(dims), info.reduced)


@RULES.rule("constant_pad_nd", "reflection_pad1d", "reflection_pad2d", "reflection_pad3d",
            "replication_pad1d", "replication_pad2d", "replication_pad3d", "_pad_circular", "pad")
def _pad(tracer: Tracer, func: Any, named: dict[str, Any], out: Tensor) -> Info:
    # reflect and replicate read pixels inside the window's span (mirrored or repeated border
    # pixels): the window's field holds them. Circular reads the far side: no field.
    x = first(named)
    pad = named.get("pad", named.get("padding"))
    is_circular = func.overloadpacket.__name__ == "_pad_circular" or (
        func.overloadpacket is aten.pad and named.get("mode") == "circular")
    if is_circular and any(pad):
        return Info((None,) * out.dim(), problem=circular(tracer))
    return pad_dims(tracer.require(x), x, pad)


class PadMode(TorchFunctionMode):
    """Sees ``F.pad`` whole: circular padding reaches aten as slices copied into a new tensor.

    Runs inside a :class:`Tracer`; after the call it sets the output's field by the padding rule,
    and withdraws the copies into views the tracer reported on the way.
    """

    def __init__(self, tracer: Tracer) -> None:
        super().__init__()
        self.tracer = tracer

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func is torch.nn.functional.pad or func is getattr(torch._C._nn, "pad", None):
            x = args[0] if args else kwargs.get("input")
            pad = args[1] if len(args) > 1 else kwargs.get("pad")
            mode = args[2] if len(args) > 2 else kwargs.get("mode", "constant")
            info = self.tracer.get(x)
            if info is not None and info.problem is None and isinstance(out, Tensor):
                try:
                    if mode == "circular" and any(pad):
                        self.tracer.set(out, Info((None,) * out.dim(), problem=circular(self.tracer)))
                    else:
                        self.tracer.set(out, pad_dims(info, x, pad))
                except NoField as exc:
                    self.tracer.set(out, Info((None,) * out.dim(), problem=str(exc)))
                self.tracer.not_analysed[:] = [n for n in self.tracer.not_analysed if n[0] != COPY_INTO_VIEW]
        return out
