"""Pooling: max, average, Lp, adaptive, global, generic (any reduction) and spatial pyramid pooling.

Every op is N-d (1-3 spatial dims). The N-d forms take the number of spatial dims
from a per-dim ``kernel_size`` (or ``output_size``) when one is given, else from
the input's rank as ``[N, C, *spatial]``; the ``max_pool2d``-style wrappers pin it
and, like torch's, also accept unbatched ``[C, *spatial]`` input.

Padding takes every form of :func:`convolab.functional.conv` (int, per-dim,
per-side pairs, "same" for any stride, "valid"); each side must be at most half
the effective (dilated) kernel, torch's rule applied per side. When the padding is
symmetric and torch's own kernel accepts it, torch's kernel runs directly, so
results, indices and gradients are torch's; otherwise the asymmetric sides are
padded explicitly (with -inf for max, zeros for average, with the divisor counted
by :func:`convolab.arithmetic.pool_window_counts`) and torch's kernel runs on that.
The generic :func:`pool` is built on the shared windowing view
(:func:`convolab.functional._windows.windows`).

Dtypes (convolab's one rule, :mod:`convolab.functional._checks`): every op takes the floating
dtypes (float16, bfloat16, float32, float64); max and min pooling of every kind (windowed,
adaptive, global, ``pool`` with ``reduce="max"``/``"min"``, SPP ``mode="max"``) also take the
integer dtypes (uint8, int8, int16, int32, int64), exactly, padding with the dtype's extremes.
The result has the input's dtype whatever the padding form or path. Any other dtype (bool,
complex, wider unsigned ints; integers for average, Lp and custom pooling) is a ``TypeError``
naming the op and the supported dtypes. Before allocating, each op refuses an output (and
explicitly padded input) larger than the memory this process can use
(:func:`convolab.functional._checks.memory_limit`), in eager mode on the CPU.

torch's 3-D average pooling refuses an unpadded input smaller than the kernel even when the
padding or ``ceil_mode`` make the windows fit; convolab pads explicitly and computes those.

ROI pooling lives in :mod:`convolab.functional.roi`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Callable, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import arithmetic
from .._args import IntOrTuple, PaddingArg, PaddingPairs, check_choice, check_int32, is_int, positive_tuple
from ._checks import check_floating, check_max_dtype, check_memory
from ._common import rank_pinned
from ._dispatch import overridable
from ._plans import Plans
from ._tracing import as_ints, concrete, exporting, tracing
from ._windows import pad_pairs, windows

__all__ = [
    "adaptive_avg_pool",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "avg_pool",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "global_avg_pool",
    "global_max_pool",
    "lp_pool",
    "lp_pool1d",
    "lp_pool2d",
    "lp_pool3d",
    "max_pool",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "pool",
    "spatial_pyramid_pool",
]


_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_ADAPTIVE_MAX = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}
_ADAPTIVE_AVG = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}


# ----------------------------------------------------------------------------- argument handling


def _check_input(op: str, input: Tensor, nd: int) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a torch.Tensor, got {type(input).__name__}")
    if input.dim() not in (nd + 1, nd + 2):
        raise ValueError(
            f"{op}: expected input of rank {nd + 2} ([N, C, *spatial]) or {nd + 1} (unbatched) for "
            f"{nd} spatial dims, got rank {input.dim()} with shape {list(input.shape)}"
        )


def _infer_ndim(op: str, input: Tensor, size_arg: object, name: str) -> int:
    """Spatial dims: the length of a per-dim size argument, else the rank of a batched input minus 2."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a torch.Tensor, got {type(input).__name__}")
    if isinstance(size_arg, Sequence) and not isinstance(size_arg, str) and len(size_arg) > 1:
        nd = len(size_arg)
    else:
        nd = input.dim() - 2
    if not 1 <= nd <= 3:
        raise ValueError(
            f"{op}: expected input [N, C, *spatial] with 1-3 spatial dims, got shape "
            f"{list(input.shape)}; for unbatched input pass a per-dim {name} or use the "
            f"1d/2d/3d form"
        )
    _check_input(op, input, nd)
    return nd


# Plain eager calls keep their checks' results (see _plans): at a small pooling they cost
# several times torch's own kernel call.
_PLANS = Plans()


def _eager_key(what: str, op: str, x: Tensor, *arguments: object) -> Optional[tuple]:
    """A memo key of ``x``'s shape, dtype and device and the ``arguments`` in plain eager mode;
    None (no memo) while tracing."""
    if tracing():
        return None
    return _PLANS.key((what, op, x.shape, x.dtype, x.device), *arguments)


@_PLANS.memoised(lambda op, x, *arguments: _eager_key("windowing", op, x, *arguments))
def _windowing(
    op: str,
    x: Tensor,
    nd: int,
    kernel_size: IntOrTuple,
    stride: Optional[IntOrTuple],
    padding: PaddingArg,
    dilation: IntOrTuple,
    ceil_mode: bool,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], PaddingPairs, Optional[tuple[int, ...]]]:
    """Normalise the window arguments; returns kernel, stride, dilation, per-side padding, output size.

    On traced sizes (export, compile, jit.trace) a padding torch's kernel accepts needs no
    sizes: the output size is then None and torch's kernel checks the input at run time.
    """
    k = positive_tuple(kernel_size, nd, "kernel_size", op)
    # torch treats stride=None and stride=[] alike: the window's own size
    s = k if stride is None or (isinstance(stride, Sequence) and len(stride) == 0) else positive_tuple(
        stride, nd, "stride", op
    )
    d = positive_tuple(dilation, nd, "dilation", op)
    spatial = tuple(x.shape[-nd:])
    first = x.dim() - nd
    if not concrete(spatial):
        static = arithmetic.static_padding(padding, nd, k, s, d, op=op)
        if static is not None:
            check_pool_padding(static, k, d, op, first)
            if _torch_accepts(static, k):
                return k, s, d, static, None
        spatial = as_ints(spatial)
    pads = arithmetic.resolve_padding(padding, spatial, k, s, d, op=op)
    check_pool_padding(pads, k, d, op, first)
    out = tuple(
        arithmetic.pool_output_size(i, kk, ss, pp, dd, bool(ceil_mode), op=op, dim=first + j)
        for j, (i, kk, ss, pp, dd) in enumerate(zip(spatial, k, s, pads, d))
    )
    if concrete(spatial):
        _check_windows_read_input(op, spatial, k, s, d, pads, out, first)
    return k, s, d, pads, out


def _check_windows_read_input(
    op: str, spatial: Sequence[int], kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
    pads: PaddingPairs, out: Sequence[int], first_dim: int,
) -> None:
    """Every window must read at least one input element.

    The per-side padding limit guarantees it without dilation; a dilation larger than the
    input can step over all of it, and torch then returns -inf with an index outside the
    input (a different one on the explicit padding path). Only then is there a loop, and
    the output is at most one longer than the input.
    """
    for j, (i, k, s, d, (b, a), o) in enumerate(zip(spatial, kernel, stride, dilation, pads, out)):
        if d <= i:  # the first tap at or after 0 lies before d <= i: inside the input
            continue
        for p in range(o):
            start = p * s - b
            tap = start if start >= 0 else start + (-start + d - 1) // d * d  # the first tap >= 0
            if not (tap < i and tap <= start + (k - 1) * d):
                raise ValueError(
                    f"{op}: dilation ({d}) steps over the whole input along dim {first_dim + j} (size {i}): "
                    f"the window of output {p} (kernel {k}, padding ({b}, {a}), stride {s}) reads only "
                    f"padding; use a dilation <= {i} or less padding"
                )


def check_pool_padding(
    pads: PaddingPairs, kernel: Sequence[int], dilation: Sequence[int], op: str, first_dim: int = 2
) -> None:
    """Every padding side must be at most half the effective (dilated) kernel: torch's rule, per side."""
    for j, ((before, after), k, d) in enumerate(zip(pads, kernel, dilation)):
        extent = arithmetic.effective_kernel_size(k, d)
        if max(before, after) > extent // 2:
            raise ValueError(
                f"{op}: padding ({before}, {after}) along dim {first_dim + j} must be at most half the "
                f"effective kernel size ({extent} // 2 = {extent // 2}), so that windows do not lie in "
                f"the padding"
            )


def _cover_pairs(
    spatial: Sequence[int], kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
    pads: PaddingPairs, out: Sequence[int],
) -> PaddingPairs:
    """Per-side padding after which exactly ``out`` windows fit with floor rounding.

    The 'after' side becomes whatever the last window needs: more than asked for when
    ``ceil_mode`` lets it hang over, negative (a crop) when floor drops the tail.
    """
    return tuple(
        (b, (o - 1) * s + d * (k - 1) + 1 - i - b)
        for i, k, s, d, (b, _), o in zip(spatial, kernel, stride, dilation, pads, out)
    )


def _torch_accepts(pads: PaddingPairs, kernel: Sequence[int]) -> bool:
    # torch's pooling kernels take symmetric padding of at most half the (undilated) kernel
    return all(b == a and 2 * b <= k for (b, a), k in zip(pads, kernel))


def _as_float_pad(x: Tensor, value: float) -> Union[int, float]:
    # -inf/inf padding for max/min, but integer tensors cannot hold it
    if x.is_floating_point() or not math.isinf(value):
        return value
    info = torch.iinfo(x.dtype)
    return info.min if value < 0 else info.max


def _pad_exact(x: Tensor, pairs: PaddingPairs, value: Union[int, float]) -> Tensor:
    """:func:`pad_pairs` (non-negative pairs), exact for integer fill values a double cannot hold:
    ``F.pad`` takes its value as a double, so int64's maximum (``+inf`` padding of min pooling)
    would wrap around to its minimum."""
    if not (isinstance(value, int) and float(value) != value and any(b or a for b, a in pairs)):
        return pad_pairs(x, pairs, value=value)
    n = len(pairs)
    out = x.new_full([*x.shape[:-n], *(i + b + a for i, (b, a) in zip(x.shape[-n:], pairs))], value)
    out[(..., *(slice(b, b + i) for i, (b, _) in zip(x.shape[-n:], pairs)))] = x
    return out


def _max_kernel(
    nd: int, x: Tensor, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int],
    dilation: Sequence[int], ceil_mode: bool, return_indices: bool,
) -> Union[Tensor, tuple[Tensor, Tensor]]:
    """torch's max pooling kernel for ``nd`` spatial dims.

    torch's ``max_pool1d`` has no integer version (its 2-D and 3-D kernels have): integer 1-D
    input runs as 2-D with a unit dim, whose flat indices are the 1-D ones.
    """
    if nd == 1 and not x.is_floating_point():
        y = F.max_pool2d(x.unsqueeze(-2), (1, *kernel), (1, *stride), (0, *padding), (1, *dilation),
                         ceil_mode, return_indices)
        return (y[0].squeeze(-2), y[1].squeeze(-2)) if return_indices else y.squeeze(-2)
    return _MAX[nd](x, kernel, stride, padding, dilation, ceil_mode, return_indices)


def _avg_kernel(
    nd: int, x: Tensor, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int],
    ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: Optional[int] = None,
) -> Tensor:
    """torch's average pooling kernel for ``nd`` spatial dims.

    torch's 3-D CPU kernel has no float16/bfloat16 version: those inputs average in float32
    and round once to their dtype (what the 1-D and 2-D kernels' accumulation does too).
    """
    if nd == 1:
        if divisor_override is not None:
            y = F.avg_pool2d(x.unsqueeze(-2), (1, *kernel), (1, *stride), (0, *padding), ceil_mode,
                             count_include_pad, divisor_override)
            return y.squeeze(-2)
        return F.avg_pool1d(x, kernel, stride, padding, ceil_mode, count_include_pad)
    if nd == 3 and x.dtype in (torch.float16, torch.bfloat16) and x.device.type == "cpu":
        return F.avg_pool3d(x.float(), kernel, stride, padding, ceil_mode, count_include_pad,
                            divisor_override).to(x.dtype)
    return _AVG[nd](x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)


def _torch_avg3d_refuses(nd: int, spatial: Sequence[int], kernel: Sequence[int]) -> bool:
    """torch's 3-D average pooling refuses an *unpadded* input smaller than the kernel in any
    dim ("input image smaller than kernel size") even when padding or ``ceil_mode`` make the
    windows fit; the explicit padding path computes those. Traced sizes cannot be compared
    without specialising the trace: torch's kernel checks them at run time there."""
    return nd == 3 and concrete(spatial) and any(i < k for i, k in zip(spatial, kernel))


def _check_pool_memory(
    op: str, x: Tensor, nd: int, out: Optional[Sequence[int]], padded: Optional[PaddingPairs],
    arguments: Callable[[], str], bytes_per_output: int = 0,
) -> None:
    """Output (plus ``bytes_per_output`` per output element: indices, window copies) and the
    explicitly padded input must fit in memory; see :func:`convolab.functional._checks.check_memory`."""
    if out is None:
        return
    key = _eager_key("memory", op, x, nd, out, padded, bytes_per_output)
    if _PLANS.get(key) is not None:
        return
    lead = tuple(x.shape[:-nd])
    buffers: list[tuple[str, Sequence[int]]] = [("output", (*lead, *out))]
    if padded is not None and any(b or a for b, a in padded):
        buffers.append(("padded input", (*lead, *(i + b + a for i, (b, a) in zip(x.shape[-nd:], padded)))))
    extra = math.prod(buffers[0][1]) * bytes_per_output if bytes_per_output and concrete(x.shape) else 0
    check_memory(op, x, buffers, arguments, extra_bytes=extra)
    _PLANS.put(key, True)


def _window_arguments(
    x: Tensor, kernel: Sequence[int], stride: Sequence[int], pads: PaddingPairs, dilation: Optional[Sequence[int]] = None,
) -> Callable[[], str]:
    """The window arguments, named, for a memory error (formatted only when it is raised)."""
    tail = "" if dilation is None else f", dilation={tuple(dilation)}"
    return lambda: f"input {list(x.shape)}, kernel_size={tuple(kernel)}, stride={tuple(stride)}, padding={pads}{tail}"


# ----------------------------------------------------------------------------- max / avg


@overridable
def max_pool(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: Optional[IntOrTuple] = None,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    *,
    _op: Optional[str] = None,
    _nd: Optional[int] = None,
) -> Union[Tensor, tuple[Tensor, Tensor]]:
    """N-d max pooling: the largest element of every (dilated) window.

    ``out[n, c, p] = max_{t} x_pad[n, c, p*stride + t*dilation]`` with ``x_pad`` padded by -inf.

    Args:
        input (Tensor[N, C, *spatial]): 1-3 spatial dims (see the module docstring).
        kernel_size (int or tuple): window size per dim.
        stride (int or tuple, optional): step per dim. Default: ``kernel_size``.
        padding (int, tuple, per-side pairs, "same" or "valid"): implicit -inf padding;
            each side at most half the effective kernel. Default: 0.
        dilation (int or tuple): spacing between window elements. Default: 1.
        ceil_mode (bool): round the output size up; the last window must start inside
            the input or the left padding (torch's rule). Default: False.
        return_indices (bool): also return the flat index (over the unpadded spatial dims)
            of each maximum, as torch does (for ``max_unpool``). Default: False.

    Returns:
        Tensor[N, C, *out], or ``(values, indices)`` with int64 indices.

    Shape:
        ``out = floor((in + before + after - dilation*(kernel - 1) - 1) / stride) + 1`` per dim
        (ceil instead of floor with ``ceil_mode``).

    Raises:
        ValueError: bad kernel/stride/dilation/padding (each at most ``2**31 - 1``), padding
            over half the window, a window larger than the padded input, an input of the wrong
            rank, or an output (with indices and padded input) larger than the memory this
            process can use.
        TypeError: an input dtype other than floating or integer (the module docstring's
            rule; integer input is pooled exactly and keeps its dtype).

    Example:
        >>> x = torch.randn(1, 3, 10, 11)
        >>> max_pool(x, 2).shape
        torch.Size([1, 3, 5, 5])
        >>> max_pool(x, 3, stride=2, padding="same").shape
        torch.Size([1, 3, 5, 6])
    """
    op = _op or "max_pool"
    nd = _nd if _nd is not None else _infer_ndim(op, input, kernel_size, "kernel_size")
    _check_input(op, input, nd)
    check_max_dtype(op, input)
    k, s, d, pads, out = _windowing(op, input, nd, kernel_size, stride, padding, dilation, ceil_mode)
    index_bytes = 8 if return_indices else 0
    if _torch_accepts(pads, k):
        _check_pool_memory(op, input, nd, out, None, _window_arguments(input, k, s, pads, d), index_bytes)
        return _max_kernel(nd, input, k, s, [b for b, _ in pads], d, bool(ceil_mode), bool(return_indices))
    spatial = as_ints(input.shape[-nd:])
    cover = _cover_pairs(spatial, k, s, d, pads, out)
    _check_pool_memory(op, input, nd, out, cover, _window_arguments(input, k, s, pads, d), index_bytes)
    x = pad_pairs(input, cover, value=_as_float_pad(input, -math.inf))
    zeros = (0,) * nd
    if not return_indices:
        return _max_kernel(nd, x, k, s, zeros, d, False, False)
    values, flat = _max_kernel(nd, x, k, s, zeros, d, False, True)
    return values, _unpad_indices(flat, tuple(x.shape[-nd:]), spatial, [b for b, _ in cover])


def _unpad_indices(flat: Tensor, padded: Sequence[int], spatial: Sequence[int], before: Sequence[int]) -> Tensor:
    """Map flat indices over the padded spatial dims to flat indices over the unpadded ones."""
    coords, rest = [], flat
    for size in reversed(padded):
        coords.append(rest % size)
        rest = rest // size
    out = torch.zeros_like(flat)
    for c, size, b in zip(reversed(coords), spatial, before):
        out = out * size + (c - b)
    return out


@overridable
def avg_pool(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: Optional[IntOrTuple] = None,
    padding: PaddingArg = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Optional[int] = None,
    *,
    _op: Optional[str] = None,
    _nd: Optional[int] = None,
) -> Tensor:
    """N-d average pooling: the mean of every window.

    ``out[n, c, p] = sum_{t} x_pad[n, c, p*stride + t] / divisor(p)`` with zero padding, where
    the divisor is ``divisor_override`` if given, else the window's size clipped to the padded
    input (``count_include_pad=True``) or to the input (False), per
    :func:`convolab.arithmetic.pool_window_counts`.

    Args:
        input (Tensor[N, C, *spatial]): 1-3 spatial dims.
        kernel_size (int or tuple): window size per dim.
        stride (int or tuple, optional): Default: ``kernel_size``.
        padding (int, tuple, per-side pairs, "same" or "valid"): zero padding, each side at
            most half the kernel. Default: 0.
        ceil_mode (bool): round the output size up (torch's rule). Default: False.
        count_include_pad (bool): count padded zeros in the divisor. Default: True.
        divisor_override (int, optional): divide every window sum by this instead (any non-zero
            int, as torch; also 1-D).

    Returns:
        Tensor[N, C, *out].

    Shape:
        ``out = floor((in + before + after - kernel) / stride) + 1`` per dim (ceil with ``ceil_mode``).

    Raises:
        ValueError: as :func:`max_pool`, or ``divisor_override`` not a positive int.
        TypeError: an input dtype other than floating (float16, bfloat16, float32, float64).

    Example:
        >>> avg_pool(torch.ones(1, 1, 4, 4), 3, stride=1, padding=1, count_include_pad=False)[0, 0, 0]
        tensor([1., 1., 1., 1.])
        >>> avg_pool(torch.randn(2, 3, 10, 11), 3, stride=2, padding="same").shape
        torch.Size([2, 3, 5, 6])
    """
    op = _op or "avg_pool"
    nd = _nd if _nd is not None else _infer_ndim(op, input, kernel_size, "kernel_size")
    _check_input(op, input, nd)
    _check_divisor(op, divisor_override)
    check_floating(op, input)
    k, s, _, pads, out = _windowing(op, input, nd, kernel_size, stride, padding, 1, ceil_mode)
    x, k_, s_ = input, k, s
    if nd == 1:  # torch's avg_pool1d has no divisor_override; it is avg_pool2d underneath anyway,
        # so 1-D runs as 2-D with a unit dim
        x, k_, s_ = input.unsqueeze(-2), (1, *k), (1, *s)
    arguments = _window_arguments(input, k, s, pads)
    # ONNX's AveragePool has no divisor: torch's exporters drop divisor_override without a word,
    # so while exporting a divisor goes the explicit way below
    if (_torch_accepts(pads, k) and (divisor_override is None or not exporting())
            and not _torch_avg3d_refuses(nd, tuple(input.shape[-nd:]), k)):
        _check_pool_memory(op, input, nd, out, None, arguments)
        p_ = [b for b, _ in pads]
        if nd == 1:
            p_ = [0, *p_]
        y = _avg_kernel(len(k_), x, k_, s_, p_, bool(ceil_mode), bool(count_include_pad), divisor_override)
        return y.squeeze(-2) if nd == 1 else y
    spatial = as_ints(input.shape[-nd:])
    if out is None:
        out = tuple(
            arithmetic.pool_output_size(i, kk, ss, pp, 1, bool(ceil_mode), op=op)
            for i, kk, ss, pp in zip(spatial, k, s, pads)
        )
    cover = _cover_pairs(spatial, k, s, (1,) * nd, pads, out)
    _check_pool_memory(op, input, nd, out, cover, arguments)
    if nd == 1:
        cover = ((0, 0), *cover)
    counts = [
        arithmetic.pool_window_counts(i, kk, ss, pp, bool(ceil_mode), bool(count_include_pad))
        for i, kk, ss, pp in zip(spatial, k, s, pads)
    ]
    constant = divisor_override
    if constant is None and all(min(c) == max(c) for c in counts):
        constant = math.prod([c[0] for c in counts])  # e.g. "same" with count_include_pad: one kernel call
    padded = pad_pairs(x, cover)
    if constant is not None:
        y = _window_sums(padded, k_, s_, constant)
        return y.squeeze(-2) if nd == 1 else y
    sums = _window_sums(padded, k_, s_, 1)
    if nd == 1:
        sums = sums.squeeze(-2)
    divisor = torch.ones((), dtype=sums.dtype, device=sums.device)
    for j, c in enumerate(counts):
        shape = [1] * nd
        shape[j] = len(c)
        divisor = divisor * torch.tensor(c, dtype=sums.dtype, device=sums.device).view(shape)
    return sums / divisor


def _check_divisor(op: str, divisor_override: object) -> None:
    # torch holds the divisor in a 64-bit int ("Overflow when unpacking long long" beyond it)
    if divisor_override is None:
        return
    if not is_int(divisor_override) or divisor_override == 0:
        raise ValueError(f"{op}: divisor_override must be None or a non-zero int, got {divisor_override!r}")
    if abs(divisor_override) >= 2**63:
        raise ValueError(f"{op}: divisor_override must be within +-(2**63 - 1), got {divisor_override!r}")


def _window_sums(padded: Tensor, kernel: Sequence[int], stride: Sequence[int], divisor: int) -> Tensor:
    """Window sums divided by ``divisor``, every window inside ``padded`` (floor rounding).

    One kernel call with ``divisor_override``; while exporting, the mean times the window size
    (exact: every window is whole), since ONNX's AveragePool cannot take a divisor.
    """
    zeros = (0,) * len(kernel)
    if not exporting():
        return _avg_kernel(len(kernel), padded, kernel, stride, zeros, False, True, divisor)
    size = math.prod(kernel)
    y = _avg_kernel(len(kernel), padded, kernel, stride, zeros, False, True, None)
    return y * size if divisor == 1 else y * (size / divisor)


@overridable
def lp_pool(
    input: Tensor,
    norm_type: float,
    kernel_size: IntOrTuple,
    stride: Optional[IntOrTuple] = None,
    ceil_mode: bool = False,
    *,
    _op: Optional[str] = None,
    _nd: Optional[int] = None,
) -> Tensor:
    """N-d power-average (Lp) pooling: ``(sum over the window of x**p) ** (1/p)``.

    ``p = 1`` is sum pooling, ``p -> inf`` max pooling (``norm_type=inf`` pools ``|x|`` by
    max, ``-inf`` by min, as torch does). Like torch's, ``x**p`` is not taken in absolute
    value, and the gradient is zero where the window's sum is zero.

    With ``ceil_mode``, a window that hangs over the end sums what it covers; torch's
    ``lp_pool`` instead scales that window's mean by the full window size. Without
    ``ceil_mode`` (the default) the two agree.

    Args:
        input (Tensor[N, C, *spatial]): 1-3 spatial dims.
        norm_type (float): the power ``p`` (non-zero).
        kernel_size (int or tuple): window size per dim.
        stride (int or tuple, optional): Default: ``kernel_size``.
        ceil_mode (bool): round the output size up. Default: False.

    Returns:
        Tensor[N, C, *out].

    Shape:
        ``out = floor((in - kernel) / stride) + 1`` per dim.

    Raises:
        ValueError: as :func:`max_pool`, or ``norm_type`` zero or NaN.
        TypeError: an input dtype other than floating (float16, bfloat16, float32, float64).

    Example:
        >>> lp_pool(torch.full((1, 1, 4, 4), 2.0), 2, 2)[0, 0]      # sqrt(4 * 2**2)
        tensor([[4., 4.],
                [4., 4.]])
    """
    op = _op or "lp_pool"
    nd = _nd if _nd is not None else _infer_ndim(op, input, kernel_size, "kernel_size")
    _check_input(op, input, nd)
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)) or norm_type == 0 or math.isnan(norm_type):
        raise ValueError(f"{op}: norm_type must be a non-zero number (the power p), got {norm_type!r}")
    check_floating(op, input)
    if math.isinf(norm_type):
        y = max_pool(input.abs() if norm_type > 0 else -input.abs(), kernel_size, stride, 0, 1, ceil_mode, _op=op, _nd=nd)
        return y if norm_type > 0 else -y
    sums = avg_pool(input.pow(norm_type), kernel_size, stride, 0, ceil_mode, True, 1, _op=op, _nd=nd)
    # sign * relu(|.|) is the identity with a zero gradient at zero (torch's formula)
    return (torch.sign(sums) * F.relu(sums.abs())).pow(1.0 / norm_type)


# ----------------------------------------------------------------------------- adaptive / global


def _adaptive_size(op: str, output_size: object, nd: int) -> tuple[Optional[int], ...]:
    if output_size is None or is_int(output_size):
        sizes = (output_size,) * nd
    elif isinstance(output_size, Sequence) and not isinstance(output_size, str):
        sizes = tuple(output_size)
        if len(sizes) == 1 and nd > 1:
            sizes = sizes * nd
    else:
        raise TypeError(f"{op}: output_size must be an int, None or a sequence of them, got {output_size!r}")
    if len(sizes) != nd or not all(v is None or (is_int(v) and v >= 1) for v in sizes):
        raise ValueError(
            f"{op}: output_size must be {nd} ints >= 1 (or None to keep that dim), got {output_size!r}"
        )
    check_int32([int(v) for v in sizes if v is not None], "output_size", op, output_size)
    return tuple(None if v is None else int(v) for v in sizes)


def _adaptive_args(
    op: str, input: Tensor, output_size: object, nd: Optional[int], integers: bool, index_bytes: int = 0,
) -> tuple[int, tuple[Optional[int], ...]]:
    """Check an adaptive pooling's arguments (``integers``: whether integer input is supported)."""
    nd = nd if nd is not None else _infer_ndim(op, input, output_size, "output_size")
    _check_input(op, input, nd)
    size = _adaptive_size(op, output_size, nd)
    _check_nonempty(op, input, nd)
    (check_max_dtype if integers else check_floating)(op, input)
    if concrete(input.shape[-nd:]):
        out = [i if o is None else o for i, o in zip(input.shape[-nd:], size)]
        _check_pool_memory(op, input, nd, out, None, lambda: f"input {list(input.shape)}, output_size={output_size!r}",
                           index_bytes)
    return nd, size


def _torch_size(input: Tensor, size: Sequence[Optional[int]]) -> list:
    """``output_size`` for torch's kernels: its 1-D wrappers take no None (keep that dim), so
    None becomes the input's size there (the 2-D and 3-D wrappers do the same themselves)."""
    if len(size) > 1:
        return list(size)
    return [input.shape[-1] if size[0] is None else size[0]]


def _adaptive_max_integer(
    input: Tensor, size: Sequence[Optional[int]], return_indices: bool
) -> Union[Tensor, tuple[Tensor, Tensor]]:
    """Adaptive max pooling of integer input (torch's adaptive kernels take floating input only).

    Each dim gathers the elements of every bin, padded to the longest bin by repeating the
    bin's last element (which changes no maximum); one reduction over the gathered window then
    gives the maximum and, as torch's kernel, the first index in scan order.
    """
    nd = len(size)
    lead = input.dim() - nd
    spatial = as_ints(input.shape[-nd:])
    x, coords, widths = input, [], []
    for j, (i, o) in enumerate(zip(spatial, size)):
        bins = arithmetic.adaptive_pool_bins(i, i if o is None else o)
        width = max(b - a for a, b in bins)
        idx = torch.tensor([[min(a + t, b - 1) for t in range(width)] for a, b in bins], device=input.device)
        # the dims before this one are already [bins, width] pairs
        x = x.index_select(lead + 2 * j, idx.flatten()).unflatten(lead + 2 * j, idx.shape)
        coords.append(idx)
        widths.append(width)
    # [*lead, o1, w1, o2, w2, ...] -> [*lead, o1, o2, ..., w1 * w2 * ...]
    order = [*range(lead), *(lead + 2 * j for j in range(nd)), *(lead + 2 * j + 1 for j in range(nd))]
    x = x.permute(order).flatten(-nd)
    if not return_indices:
        return x.amax(-1)
    values, window = x.max(-1)  # the first maximum of the window, in row-major (scan) order
    flat = torch.zeros_like(window)
    rest = window
    taps = []
    for w in reversed(widths):
        taps.append(rest % w)
        rest = rest // w
    for j, (tap, idx, i) in enumerate(zip(reversed(taps), coords, spatial)):
        bin_index = torch.arange(idx.shape[0], device=input.device).view([-1] + [1] * (nd - 1 - j))
        flat = flat * i + idx[bin_index, tap]
    return values, flat


@overridable
def adaptive_max_pool(
    input: Tensor,
    output_size: Union[int, None, Sequence[Optional[int]]],
    return_indices: bool = False,
    *,
    _op: Optional[str] = None,
    _nd: Optional[int] = None,
) -> Union[Tensor, tuple[Tensor, Tensor]]:
    """N-d adaptive max pooling: ``output_size`` bins per dim, whatever the input size.

    Bin ``i`` of ``out`` along a dim of size ``in`` covers ``[floor(i*in/out), ceil((i+1)*in/out))``
    (:func:`convolab.arithmetic.adaptive_pool_bins`); ``None`` keeps the input's size.

    Args:
        input (Tensor[N, C, *spatial]): 1-3 spatial dims.
        output_size (int, None or tuple): bins per dim.
        return_indices (bool): also return flat indices of the maxima. Default: False.

    Returns:
        Tensor[N, C, *output_size] (or ``(values, indices)``), in the input's dtype.

    Raises:
        ValueError: ``output_size`` not ints >= 1 (at most ``2**31 - 1``) or None, empty
            spatial dims, or an output larger than the memory this process can use.
        TypeError: an input dtype other than floating or integer (integer input is pooled
            exactly, with torch's first-maximum indices).

    Example:
        >>> adaptive_max_pool(torch.randn(1, 3, 13, 9), (4, 2)).shape
        torch.Size([1, 3, 4, 2])
    """
    nd, size = _adaptive_args(_op or "adaptive_max_pool", input, output_size, _nd, True, 8 if return_indices else 0)
    if not input.is_floating_point():
        return _adaptive_max_integer(input, size, bool(return_indices))
    if not return_indices and exporting() and not _exports_natively(input, size):
        return _adaptive_by_bins(input, size, torch.amax)
    return _ADAPTIVE_MAX[nd](input, _torch_size(input, size), bool(return_indices))


@overridable
def adaptive_avg_pool(
    input: Tensor,
    output_size: Union[int, None, Sequence[Optional[int]]],
    *,
    _op: Optional[str] = None,
    _nd: Optional[int] = None,
) -> Tensor:
    """N-d adaptive average pooling: the mean of each bin of :func:`adaptive_max_pool`.

    Raises:
        ValueError: as :func:`adaptive_max_pool`.
        TypeError: an input dtype other than floating (float16, bfloat16, float32, float64).

    Example:
        >>> adaptive_avg_pool(torch.randn(2, 3, 7, 7), 1).shape
        torch.Size([2, 3, 1, 1])
    """
    nd, size = _adaptive_args(_op or "adaptive_avg_pool", input, output_size, _nd, False)
    if exporting() and not _exports_natively(input, size):
        return _adaptive_by_bins(input, size, torch.mean)
    return _ADAPTIVE_AVG[nd](input, _torch_size(input, size))


def _exports_natively(input: Tensor, size: Sequence[Optional[int]]) -> bool:
    """Whether torch's ONNX exporters can write this adaptive pooling: 2-D with every output size
    dividing its input size (a plain pooling window then)."""
    if len(size) != 2:
        return False
    if all(o is None or o == 1 for o in size):  # global pooling: no size needed
        return True
    return all(o is None or i % o == 0 for i, o in zip(as_ints(input.shape[-2:]), size))


def _adaptive_by_bins(input: Tensor, size: Sequence[Optional[int]], reduce: Callable[..., Tensor]) -> Tensor:
    """Adaptive pooling as one reduction per bin and dim (max and mean of a box are those of its
    rows' reductions): slices and concatenations, which every exporter writes for any size."""
    nd = len(size)
    y = input
    for j, (i, o) in enumerate(zip(as_ints(input.shape[-nd:]), size)):
        if o is None:
            continue
        dim = input.dim() - nd + j
        y = torch.cat([reduce(y.narrow(dim, a, b - a), dim, keepdim=True)
                       for a, b in arithmetic.adaptive_pool_bins(i, o)], dim)
    return y


def _check_nonempty(op: str, input: Tensor, nd: int) -> None:
    if any(v == 0 for v in input.shape[-nd:]):
        raise ValueError(f"{op}: spatial dims must be non-empty, got input shape {list(input.shape)}")


def _global(op: str, input: Tensor, keepdim: bool) -> tuple[int, ...]:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a torch.Tensor, got {type(input).__name__}")
    if input.dim() < 3:
        raise ValueError(
            f"{op}: expected input [N, C, *spatial] with at least one spatial dim, got shape "
            f"{list(input.shape)}"
        )
    _check_nonempty(op, input, input.dim() - 2)
    return tuple(range(2, input.dim()))


@overridable
def global_max_pool(input: Tensor, keepdim: bool = False) -> Tensor:
    """Global max pooling: the maximum over all spatial positions of each channel.

    Args:
        input (Tensor[N, C, *spatial]): any number of spatial dims.
        keepdim (bool): keep the spatial dims as size 1. Default: False.

    Returns:
        Tensor[N, C] (or Tensor[N, C, 1, ...] with ``keepdim``), in the input's dtype.

    Raises:
        ValueError: an input without spatial dims or with an empty one.
        TypeError: an input dtype other than floating or integer.

    Example:
        >>> global_max_pool(torch.randn(2, 8, 7, 7)).shape
        torch.Size([2, 8])
    """
    dims = _global("global_max_pool", input, keepdim)
    check_max_dtype("global_max_pool", input)
    return torch.amax(input, dim=dims, keepdim=keepdim)


@overridable
def global_avg_pool(input: Tensor, keepdim: bool = False) -> Tensor:
    """Global average pooling (GAP: Network in Network's replacement for fully connected layers, Lin et al. 2014).

    Raises:
        ValueError: as :func:`global_max_pool`.
        TypeError: an input dtype other than floating (float16, bfloat16, float32, float64).

    Example:
        >>> global_avg_pool(torch.randn(2, 8, 7, 7), keepdim=True).shape
        torch.Size([2, 8, 1, 1])
    """
    dims = _global("global_avg_pool", input, keepdim)
    check_floating("global_avg_pool", input)
    return torch.mean(input, dim=dims, keepdim=keepdim)


# ----------------------------------------------------------------------------- generic pooling

_NAMED_REDUCTIONS: dict[str, tuple[Callable[..., Tensor], float]] = {
    "max": (torch.amax, -math.inf),
    "min": (torch.amin, math.inf),
    "mean": (torch.mean, 0.0),
    "sum": (torch.sum, 0.0),
}


@overridable
def pool(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: Optional[IntOrTuple] = None,
    padding: PaddingArg = 0,
    *,
    reduce: Union[str, Callable[..., Tensor]],
    dilation: IntOrTuple = 1,
    pad_value: Optional[float] = None,
) -> Tensor:
    """Pooling with any differentiable reduction of the window ("the mean or any differentiable function").

    Takes every window of the padded input with the shared windowing view, then reduces it:
    ``out[n, c, p] = reduce(window(p), dim=-1)`` where the last dim lists the window's
    ``prod(kernel_size)`` elements in row-major order.

    Args:
        input (Tensor[N, C, *spatial]): 1-3 spatial dims.
        kernel_size (int or tuple): window size per dim.
        stride (int or tuple, optional): Default: ``kernel_size``.
        padding (int, tuple, per-side pairs, "same" or "valid"): Default: 0.
        reduce (str or callable): "max", "min", "mean", "sum", or a function called as
            ``reduce(windows, dim=-1)`` returning the reduced tensor (``torch.logsumexp``,
            ``torch.median``-style namedtuples are accepted: their ``.values`` are used).
        dilation (int or tuple): spacing between window elements. Default: 1.
        pad_value (float, optional): value of the padding. Default: -inf for "max", +inf for
            "min", 0 otherwise. Integer input takes whole numbers in its dtype's range, and
            +-inf as the dtype's extremes.

    Returns:
        Tensor[N, C, *out].

    Shape:
        ``out = floor((in + before + after - dilation*(kernel - 1) - 1) / stride) + 1`` per dim.

    Note:
        This is the definition, kept general: for plain max or mean pooling use :func:`max_pool`
        / :func:`avg_pool`, which run torch's kernels (the windowed forward is as fast, but
        the backward through the overlapping window view is several times slower).

    Raises:
        ValueError: bad window arguments, an unknown reduction name, a reduction that
            does not return the pooled shape, a ``pad_value`` an integer input cannot hold,
            or an output (with the copy of every window a callable reduction or a gradient
            needs) larger than the memory this process can use.
        TypeError: an input dtype other than floating, or other than floating or integer
            for ``reduce="max"``/``"min"``.

    Example:
        >>> x = torch.randn(1, 2, 6, 6)
        >>> pool(x, 2, reduce=torch.logsumexp).shape
        torch.Size([1, 2, 3, 3])
        >>> soft = lambda w, dim: (w.softmax(dim) * w).sum(dim)        # softmax-weighted pooling
        >>> pool(x, 3, stride=1, padding="same", reduce=soft).shape
        torch.Size([1, 2, 6, 6])
    """
    op = "pool"
    nd = _infer_ndim(op, input, kernel_size, "kernel_size")
    if isinstance(reduce, str):
        fn, default_pad = _NAMED_REDUCTIONS[check_choice(reduce, tuple(_NAMED_REDUCTIONS), "reduce", op)]
    elif callable(reduce):
        fn, default_pad = reduce, 0.0
    else:
        raise TypeError(f"{op}: reduce must be a reduction name or a callable, got {type(reduce).__name__}")
    # the dtype rule: integers only where the result is an element of the window
    (check_max_dtype if reduce in ("max", "min") else check_floating)(op, input)
    value = default_pad if pad_value is None else _pad_value(op, input, pad_value)
    k, s, d, pads, out = _windowing(op, input, nd, kernel_size, stride, padding, dilation, False)
    copies = not isinstance(reduce, str) or (torch.is_grad_enabled() and input.requires_grad)
    _check_pool_memory(op, input, nd, out, pads, _window_arguments(input, k, s, pads, d),
                       math.prod(k) * input.element_size() if copies else 0)
    x = _pad_exact(input, pads, _as_float_pad(input, value))
    if (exporting() and isinstance(reduce, str) and input.is_floating_point()
            and (reduce in ("max", "min") or all(dd == 1 for dd in d))):
        # torch's pooling kernels compute the named reductions of the padded input, and every
        # exporter writes them; the window view's unfold needs sizes the exporters may not know
        if reduce == "max":
            return _MAX[nd](x, k, s, 0, d)
        if reduce == "min":
            return -_MAX[nd](-x, k, s, 0, d)
        mean = _avg_kernel(nd, x, k, s, (0,) * nd)
        return mean if reduce == "mean" else mean * math.prod(k)
    win = windows(x, k, s, d)  # [*lead, *out, *k], a view
    if isinstance(reduce, str) and not (torch.is_grad_enabled() and input.requires_grad):
        return fn(win, dim=tuple(range(-nd, 0)))  # reduce the view in place, no copy
    # One copy with the window's elements outermost in memory: the reduction over the (strided)
    # last dim vectorises along the outputs (2x faster than over contiguous runs of k), and its
    # backward is cheaper than a reduction's backward through the overlapping view.
    n = win.dim()
    flat = win.permute(*range(n - nd, n), *range(n - nd)).reshape(math.prod(k), *win.shape[:-nd])
    y = fn(flat.movedim(0, -1), dim=-1)
    if not isinstance(y, Tensor) and hasattr(y, "values"):
        y = y.values
    if not isinstance(y, Tensor) or tuple(y.shape) != tuple(win.shape[:-nd]):
        got = list(y.shape) if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(
            f"{op}: reduce must return the pooled shape {list(win.shape[:-nd])} when called as "
            f"reduce(windows, dim=-1), got {got}"
        )
    return y


def _pad_value(op: str, input: Tensor, pad_value: object) -> Union[int, float]:
    """``pad_value`` checked for the input's dtype: integer input takes whole numbers in its
    dtype's range (returned as an int: exact beyond 2**53), or +-inf (the dtype's extremes)."""
    if isinstance(pad_value, bool) or not isinstance(pad_value, (int, float)):
        raise TypeError(f"{op}: pad_value must be a number or None, got {pad_value!r}")
    value = float(pad_value)
    if input.is_floating_point() or math.isinf(value):
        return value
    info = torch.iinfo(input.dtype)
    if math.isnan(value) or not value.is_integer() or not info.min <= pad_value <= info.max:
        raise ValueError(
            f"{op}: pad_value must be a whole number in [{info.min}, {info.max}] (or +-inf) for "
            f"{input.dtype} input, got {pad_value!r}"
        )
    return int(pad_value)


# ----------------------------------------------------------------------------- spatial pyramid pooling

SPP_MODES = ("max", "avg")
SPP_BINS = ("adaptive", "paper")


@overridable
def spatial_pyramid_pool(
    input: Tensor,
    levels: Sequence[IntOrTuple] = (1, 2, 4),
    mode: str = "max",
    *,
    bins: str = "adaptive",
) -> Tensor:
    """Spatial pyramid pooling (He et al., 2014): a fixed-length vector for any input size.

    Each level ``n`` pools the feature map into ``n x n`` bins (``n`` per spatial dim, or a
    per-dim tuple); the flattened levels are concatenated, channel-major within a level.

    Two bin rules:

    - ``bins="adaptive"`` (default): bin ``i`` covers ``[floor(i*a/n), ceil((i+1)*a/n))``
      (:func:`convolab.arithmetic.adaptive_pool_bins`). Works for every input size, even
      smaller than the level (bins then repeat elements).
    - ``bins="paper"``: the paper's window ``ceil(a/n)`` and stride ``floor(a/n)``
      (:func:`convolab.arithmetic.spp_window`). It produces exactly ``n`` bins only when
      ``a mod n <= floor(a/n)`` (e.g. any ``a >= n*(n - 1)``); other sizes, and levels
      larger than the input, raise a ``ValueError`` instead of returning a vector of the
      wrong length. As in the paper, the bins skip the last ``a mod n - 1`` elements
      when ``a mod n >= 2``.

    Args:
        input (Tensor[N, C, *spatial]): 1-3 spatial dims.
        levels (sequence of int or tuple): bins per dim of each pyramid level. Default: (1, 2, 4).
        mode (str): "max" or "avg". Default: "max".
        bins (str): "adaptive" or "paper". Default: "adaptive".

    Returns:
        Tensor[N, C * sum(prod(level))].

    Raises:
        ValueError: empty or non-positive levels, unknown mode/bins, the paper's rule
            not fitting the input size.
        TypeError: an input dtype other than floating, or other than floating or integer
            for ``mode="max"``.

    Example:
        >>> spatial_pyramid_pool(torch.randn(2, 256, 13, 13)).shape        # 256 * (1 + 4 + 16)
        torch.Size([2, 5376])
        >>> spatial_pyramid_pool(torch.randn(2, 256, 10, 17)).shape
        torch.Size([2, 5376])
    """
    op = "spatial_pyramid_pool"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a torch.Tensor, got {type(input).__name__}")
    nd = input.dim() - 2
    if not 1 <= nd <= 3:
        raise ValueError(
            f"{op}: expected input [N, C, *spatial] with 1-3 spatial dims, got shape {list(input.shape)}"
        )
    check_choice(mode, SPP_MODES, "mode", op)
    check_choice(bins, SPP_BINS, "bins", op)
    if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence) or len(levels) == 0:
        raise ValueError(f"{op}: levels must be a non-empty sequence of bin counts, got {levels!r}")
    _check_nonempty(op, input, nd)
    (check_max_dtype if mode == "max" else check_floating)(op, input)
    spatial = tuple(input.shape[2:])
    pieces = []
    for level in levels:
        n = positive_tuple(level, nd, "levels", op)
        if bins == "adaptive":
            pooled = (adaptive_max_pool if mode == "max" else adaptive_avg_pool)(input, n, _op=op, _nd=nd)
        else:
            ws = [arithmetic.spp_window(a, m, op=op, dim=j + 2) for j, (a, m) in enumerate(zip(spatial, n))]
            k, s = tuple(w for w, _ in ws), tuple(st for _, st in ws)
            zeros = (0,) * nd
            pooled = (_max_kernel(nd, input, k, s, zeros, (1,) * nd, False, False) if mode == "max"
                      else _avg_kernel(nd, input, k, s, zeros))
        pieces.append(pooled.flatten(1))
    return torch.cat(pieces, dim=1)


# ----------------------------------------------------------------------------- fixed-rank wrappers

max_pool1d = rank_pinned(1, max_pool, "max_pool1d", max_pool, weight_at=None, pin_ndim=True)
max_pool2d = rank_pinned(2, max_pool, "max_pool2d", max_pool, weight_at=None, pin_ndim=True)
max_pool3d = rank_pinned(3, max_pool, "max_pool3d", max_pool, weight_at=None, pin_ndim=True)
avg_pool1d = rank_pinned(1, avg_pool, "avg_pool1d", avg_pool, weight_at=None, pin_ndim=True)
avg_pool2d = rank_pinned(2, avg_pool, "avg_pool2d", avg_pool, weight_at=None, pin_ndim=True)
avg_pool3d = rank_pinned(3, avg_pool, "avg_pool3d", avg_pool, weight_at=None, pin_ndim=True)
lp_pool1d = rank_pinned(1, lp_pool, "lp_pool1d", lp_pool, weight_at=None, pin_ndim=True)
lp_pool2d = rank_pinned(2, lp_pool, "lp_pool2d", lp_pool, weight_at=None, pin_ndim=True)
lp_pool3d = rank_pinned(3, lp_pool, "lp_pool3d", lp_pool, weight_at=None, pin_ndim=True)
adaptive_max_pool1d = rank_pinned(1, adaptive_max_pool, "adaptive_max_pool1d", adaptive_max_pool, weight_at=None, pin_ndim=True)
adaptive_max_pool2d = rank_pinned(2, adaptive_max_pool, "adaptive_max_pool2d", adaptive_max_pool, weight_at=None, pin_ndim=True)
adaptive_max_pool3d = rank_pinned(3, adaptive_max_pool, "adaptive_max_pool3d", adaptive_max_pool, weight_at=None, pin_ndim=True)
adaptive_avg_pool1d = rank_pinned(1, adaptive_avg_pool, "adaptive_avg_pool1d", adaptive_avg_pool, weight_at=None, pin_ndim=True)
adaptive_avg_pool2d = rank_pinned(2, adaptive_avg_pool, "adaptive_avg_pool2d", adaptive_avg_pool, weight_at=None, pin_ndim=True)
adaptive_avg_pool3d = rank_pinned(3, adaptive_avg_pool, "adaptive_avg_pool3d", adaptive_avg_pool, weight_at=None, pin_ndim=True)
