"""Rules for whole layers, by class: the field of a window layer and its MACs.

For layers whose inner ops say nothing about the field a user means: a convolab
conv computes its window with whatever algorithm it picks ("direct" sums shifted
slices, "im2col" folds maps), a deformable conv moves its sampling points inside
one custom op, a locally connected layer runs a batched matmul over unfolded
windows. Each such class is registered once, with its field rule and its MACs;
subclasses inherit the registration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Optional

from torch import Tensor, nn

from .. import arithmetic
from ..nn.conv import _ConvNd
from ..nn.deform import _DeformConvNd
from ..nn.local import _LocallyConnectedNd
from ._fields import Field, Info
from ._rules.windows import batch_of, circular, conv_field, conv_macs
from ._tracer import Tracer

__all__ = ["register_window_layer"]

WindowRule = Callable[[nn.Module, tuple[int, ...]], Sequence[tuple[int, int, int, int]]]
"""``rule(module, spatial_size)``: ``(kernel, stride, padding_before, dilation)`` per spatial dim."""
MacsRule = Callable[[nn.Module, Tensor, Tensor], dict[str, int]]
"""``macs(module, input, output)``: the layer's MACs by kind, e.g. ``{"conv": 1024}``."""


@dataclass(frozen=True)
class LayerRule:
    """How the analysis reads one layer: its window per spatial dim, and its own MACs (``None``:
    the MACs of its inner ops are counted)."""

    window: WindowRule
    macs: Optional[MacsRule] = None


_LAYERS: dict[type, LayerRule] = {}


def nominal_window(module: nn.Module, spatial: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """The window of a module with ``kernel_size``, ``stride``, ``padding`` and ``dilation``."""
    n = len(spatial)
    k = tuple(module.kernel_size) if not isinstance(module.kernel_size, int) else (module.kernel_size,) * n
    s = tuple(module.stride) if not isinstance(module.stride, int) else (module.stride,) * n
    d = tuple(module.dilation) if not isinstance(module.dilation, int) else (module.dilation,) * n
    pads = arithmetic.resolve_padding(module.padding, spatial, k, s, d, op=type(module).__name__)
    return [(k[j], s[j], pads[j][0], d[j]) for j in range(n)]


def register_window_layer(cls: type, rule: Optional[WindowRule] = None, macs: Optional[MacsRule] = None) -> type:
    """Give every module of class ``cls`` the field of a plain window (its *nominal* field).

    For layers whose inner ops say nothing about the field a user means, e.g. a
    deformable convolution (its sampling points move; the literature reports the
    field of the regular grid). ``rule(module, spatial_size)`` returns
    ``(kernel, stride, padding_before, dilation)`` per spatial dim; by default it
    reads the module's ``kernel_size``, ``stride``, ``padding``, ``dilation``.
    The MACs of the inner ops are counted, unless ``macs(module, input, output)`` gives the
    layer's own count by kind (``{"conv": ...}``). Usable as a class decorator.
    """
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"register_window_layer: expected an nn.Module subclass, got {cls!r}")
    _LAYERS[cls] = LayerRule(rule or nominal_window, macs)
    return cls


def layer_rule(cls: type) -> Optional[LayerRule]:
    """The rule of ``cls``: the window of the nearest registered class in its MRO, and the MACs
    of the nearest that gives them (a subclass registered with a window alone keeps its base's MACs)."""
    rules = [_LAYERS[base] for base in cls.__mro__ if base in _LAYERS]
    if not rules:
        return None
    return LayerRule(rules[0].window, next((r.macs for r in rules if r.macs is not None), None))


def window_info(tracer: Tracer, rule: WindowRule, module: nn.Module, x: Tensor, info: Info) -> Info:
    """The Info of a window layer's output: each spatial field through the layer's window."""
    nd = x.dim() - 2
    windows = rule(module, tuple(x.shape[2:]))
    dims = list(info.dims)
    transposed = bool(getattr(module, "transposed", False))
    if info.problem is None and getattr(module, "padding_mode", "zeros") == "circular" and any(
            before or after for before, after in _pads(module, windows, tuple(x.shape[2:]))):
        return Info((None,) * (nd + 2), info.reduced, circular(tracer))
    for j, (k, s, before, d) in enumerate(windows):
        f = dims[2 + j]
        if isinstance(f, Field):
            dims[2 + j] = Field(f.axis, conv_field(tracer, f.rf, k, s, before, d, transposed))
    dims[1] = None
    return Info(tuple(dims[: nd + 2]), info.reduced, info.problem)


def _pads(
    module: nn.Module, windows: Sequence[tuple[int, int, int, int]], spatial: tuple[int, ...]
) -> list[tuple[int, int]]:
    """Per-side padding of a window layer (both sides: a wrap needs only one)."""
    try:
        return [tuple(p) for p in arithmetic.resolve_padding(  # type: ignore[misc]
            module.padding, spatial, [w[0] for w in windows], [w[1] for w in windows], [w[3] for w in windows])]
    except (AttributeError, TypeError, ValueError):
        return [(w[2], w[2]) for w in windows]


# --------------------------------------------------------------------------- convolab's layers


def _conv_layer_macs(module: nn.Module, x: Tensor, out: Tensor) -> dict[str, int]:
    """The nominal MACs of a convolab conv, whichever algorithm ran."""
    return {"conv": conv_macs(x, out, module.in_channels, module.out_channels, tuple(module.kernel_size),
                              module.groups, bool(getattr(module, "transposed", False)))}


def _deform_layer_macs(module: nn.Module, x: Tensor, out: Tensor) -> dict[str, int]:
    """A deformable conv's nominal MACs: the GEMM of its regular-grid conv (the sampling is
    not counted, as the model-zoo convention counts conv + matmul) plus its offset predictor's."""
    kernel = tuple(module.kernel_size)
    macs = conv_macs(x, out, module.in_channels, module.out_channels, kernel, module.groups, False)
    predictor = getattr(module, "conv_offset", None)
    if predictor is not None:
        macs += conv_macs(x, out, module.in_channels, predictor.out_channels, kernel, 1, False)
    return {"conv": macs}


def _local_layer_macs(module: nn.Module, x: Tensor, out: Tensor) -> dict[str, int]:
    """A locally connected layer's MACs: a conv's count, with its own weights at every position."""
    n = len(module.kernel_size)
    return {"conv": arithmetic.locally_connected_macs(
        module.in_channels, module.out_channels, module.kernel_size, tuple(out.shape[-n:]), batch_of(x, n))}


register_window_layer(_ConvNd, macs=_conv_layer_macs)
register_window_layer(_DeformConvNd, macs=_deform_layer_macs)
register_window_layer(_LocallyConnectedNd, macs=_local_layer_macs)
