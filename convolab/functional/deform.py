"""Deformable convolution v1 (Dai et al., 2017) and v2 (Zhu et al., 2019) for 1, 2 and 3 spatial dims.

A deformable convolution reads its input not on the regular grid of the kernel
but at ``p0 + pn + Δpn``: the output position's window origin, the tap's
regular offset, and a learned fractional offset per tap and output position.
The value there is N-linearly interpolated (linear, bilinear, trilinear) with
zeros outside the input; v2 multiplies each sampled tap by a learned
modulation ``mask`` in [0, 1]. The rest is an ordinary convolution: one GEMM
between the weight and the matrix of sampled columns (the im2col algorithm of
:mod:`convolab.functional.algorithms.im2col` with a deformed window).

Three implementations share the sampling positions:

- 2-D problems on CPU in float32/float64 (bf16/fp16 compute in float32) run a compiled
  kernel when one can be built (:mod:`convolab.functional._native`): per block of output
  positions it computes each sampling point from the offsets, writes the block's columns
  from the four corner rows of the channels-last table (channels vectorised), and
  multiplies them with the weight by torch's own BLAS, straight into the output's
  layout; the backward remakes each block the same way, takes the column gradient from
  one GEMM and the weight gradient from another, and gets the offset and mask gradients
  from the corner dot products while it scatters the input gradient. Each pass is one
  parallel region whose workers claim blocks as they go (each with its own sums, added
  at the end), so a loaded machine costs it no barrier per chunk.
- ``algorithm="embedding_bag"`` (the default; every other case, and the fallback without a
  compiler): the interpolation is a sparse
  matrix with ``2**d`` weighted entries per (position, tap), applied to the
  channels-last rows of the zero-padded input by ``torch.nn.functional.embedding_bag``
  (one fused gather-and-weight kernel; the mask is folded into the weights).
  The columns come out as rows ``[positions, taps*C]`` chunk by chunk, each
  chunk feeding one GEMM while it is still in cache. The custom backward
  remakes the sampling points, the padded table and the columns (for the weight
  gradient) from the saved inputs, gets the corner-weight
  gradients (hence offsets and mask) from embedding_bag's own per-sample-weight
  kernel, and applies the transposed map for the input gradient: the chunk's
  entries sorted by the input row they read and summed per row, again with
  embedding_bag.
- ``algorithm="gather"``: the readable reference. The 2**d corners of every
  sampling point are gathered and weighted explicitly, and plain autograd
  differentiates through it. It materialises the whole columns matrix.

The fast path is the torch custom op ``convolab::deform_conv`` (schema below) with
``convolab::deform_conv_backward`` as its gradient: opaque to ``torch.compile``,
``torch.export`` and ``jit.trace`` (one node, shapes from its fake kernel), with a vmap
rule, an autocast rule (float32) and an ONNX mapping to ``DeformConv``
(:mod:`convolab.onnx`)::

    convolab::deform_conv(Tensor input, Tensor offset, Tensor? mask, Tensor weight, Tensor? bias,
        int[] stride, int[] padding, int[] dilation, int groups, int offset_groups) -> Tensor

``padding`` is ONNX's ``pads``: all the befores, then all the afters. Second derivatives
(``create_graph=True``) are computed by differentiating the "gather" path again, which
is exact; forward-mode AD (``torch.func.jvp``, ``jacfwd``) and functorch's ``grad``,
``vjp`` and ``jacrev`` run the "gather" path (plain torch ops), which they need.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .. import arithmetic
from .._args import IntOrTuple, PaddingArg, check_choice, check_conv_channels, positive_int, positive_tuple
from . import _native
from ._custom_ops import (
    autocast_enabled,
    compute_dtype,
    needs_plain_autograd,
    refuse_forward_ad,
    register_autocast,
    static_shape,
    vmap_by_loop,
)
from ._common import check_bias, check_tensors, public_signature, rank_pinned

__all__ = [
    "COLUMNS_BUDGET",
    "DEFORM_ALGORITHMS",
    "deform_conv",
    "deform_conv1d",
    "deform_conv2d",
    "deform_conv3d",
]

DEFORM_ALGORITHMS = ("auto", "embedding_bag", "gather")

#: Largest columns chunk (in elements) the "embedding_bag" path makes at once: 2**20 elements,
#: 4 MiB in float32, so a chunk is still in cache when its GEMM reads it and its buffer is
#: recycled from the heap instead of being mapped and page-faulted afresh every call.
#: A chunk never holds fewer than one output position.
COLUMNS_BUDGET = 1 << 20

#: Elements of one block of columns in the compiled kernels (:mod:`convolab.functional._native`):
#: 2**18, 1 MiB in float32, so that a block and its gradient stay in a core's cache between
#: the sampling and the GEMMs.
NATIVE_BLOCK = 1 << 18

# Input-gradient entries are grouped by the row they read with NumPy's radix sort when a chunk's
# rows span at most this many (16-bit keys), else with torch.sort.
RADIX_SPAN = 1 << 16


def deform_conv(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    *,
    mask: Optional[Tensor] = None,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    offset_groups: Optional[int] = None,
    algorithm: str = "auto",
    _op: Optional[str] = None,
) -> Tensor:
    """Deformable convolution (v1; v2 when ``mask`` is given) with 1, 2 or 3 spatial dims.

    For output position ``p0`` (the window origin ``p0 = out*stride - pad_before``)
    and kernel tap ``n`` with regular position ``pn = n*dilation``::

        out[b, o, p0] = bias[o] + sum_{c in group(o), n}
                        weight[o, c, n] * mask[b, g(c), n, p0] * X_b,c(p0 + pn + offset[b, g(c), n, p0])

    where ``X_b,c(p)`` is the N-linear interpolation of ``input[b, c]`` at the
    real point ``p`` with zeros outside the input (each of the ``2**d``
    corners outside the input reads 0), and ``g(c)`` is the offset group of
    channel ``c`` (channels are split into ``offset_groups`` equal blocks, each
    with its own offsets and mask). Zero offsets and a mask of ones give the
    regular convolution exactly; integer offsets give a shifted convolution.

    Offset layout (the de-facto standard of torchvision and mmcv): the offset
    channels are ordered ``(offset_group, tap, dim)`` with taps in row-major
    order over the kernel and the dims of each tap ordered like the spatial
    dims: ``dx`` in 1-D, ``(dy, dx)`` in 2-D, ``(dz, dy, dx)`` in 3-D. The mask
    channels are ordered ``(offset_group, tap)``.

    Memory: the default "embedding_bag" path makes the columns in chunks of at most
    ``max(COLUMNS_BUDGET, C_in*prod(kernel))`` elements (``COLUMNS_BUDGET = 2**20``,
    4 MiB in float32) and keeps none of them; its backward holds one columns chunk and one
    gradient chunk at a time. While it runs, each pass holds an input-sized padded copy and
    ``2**d`` int32 indices and ``2**d`` weights per (sample, output position, tap, offset
    group), i.e. ``2**d`` times the size of the offsets; between forward and backward only
    the inputs are kept. The compiled 2-D kernel holds an input-sized padded copy and, per
    worker thread, one block of columns and its gradient (``NATIVE_BLOCK = 2**18`` elements
    each, at least 16 rows); in the backward each helper thread also sums into an
    input-sized table and a weight-sized buffer of its own. The "gather" path materialises
    everything (reference only).

    Precision and derivatives: bf16/fp16 inputs are sampled and summed in float32 and the
    output returns in the input's dtype; under autocast the op computes in float32 and
    returns float32 (mixed bf16 offsets and float32 weights are fine there). Second
    derivatives (``create_graph=True``) are exact; forward-mode AD and functorch's
    ``grad``/``jacrev`` run the "gather" path.

    Args:
        input (Tensor[N, C_in, *spatial] or Tensor[C_in, *spatial]): 1-3 spatial dims.
        offset (Tensor[N, d*offset_groups*prod(kernel), *out]): learned offsets in pixels,
            ``d`` = number of spatial dims (unbatched input: no ``N``).
        weight (Tensor[C_out, C_in/groups, *kernel]): its rank fixes the number of spatial dims.
        bias (Tensor[C_out], optional): Default: None.
        mask (Tensor[N, offset_groups*prod(kernel), *out], optional): v2 modulation, usually
            in [0, 1] (a sigmoid). Default: None (v1).
        stride (int or tuple): Default: 1.
        padding (int, tuple, per-side pairs, "valid" or "same"): zero padding, as in
            :func:`convolab.functional.conv`; it only moves the regular grid, sampling
            outside the input always reads zeros. Default: 0.
        dilation (int or tuple): spacing of the regular taps. Default: 1.
        groups (int): convolution groups. Default: 1.
        offset_groups (int, optional): channel blocks with their own offsets (torchvision's
            ``n_offset_grps``, mmcv's ``deform_groups``). Default: inferred from
            ``offset.shape[1]``.
        algorithm (str): "auto" (= "embedding_bag": the custom op, whose 2-D CPU kernel is the
            compiled one when it can be built), "embedding_bag" or "gather" (reference).

    Returns:
        Tensor[N, C_out, *out] (unbatched in, unbatched out).

    Shape:
        ``out = floor((in + before + after - dilation*(kernel - 1) - 1) / stride) + 1`` per dim,
        the regular convolution's output size; ``offset`` and ``mask`` must have it.

    Raises:
        ValueError: wrong offset/mask channel counts or spatial sizes, channel/group
            mismatch, empty output, bad stride/dilation/padding, unknown algorithm.
        TypeError: non-tensor arguments or mismatched dtypes.

    Example:
        >>> x = torch.randn(2, 4, 8, 8); w = torch.randn(6, 4, 3, 3)
        >>> offset = torch.randn(2, 2 * 9, 8, 8); mask = torch.rand(2, 9, 8, 8)
        >>> deform_conv(x, offset, w, mask=mask, padding=1).shape
        torch.Size([2, 6, 8, 8])
        >>> deform_conv(torch.randn(1, 2, 10), torch.zeros(1, 3, 8), torch.randn(5, 2, 3)).shape
        torch.Size([1, 5, 8])
    """
    if isinstance(input, Tensor) and autocast_enabled(input):
        # autocast runs this op in float32 (its registered rule); casting before the checks
        # lets the usual mix (a bf16 offset predictor, float32 weights) through the dtype checks
        input, offset, mask, weight, bias = [
            t.float() if isinstance(t, Tensor) and t.is_floating_point() and t.dtype != torch.float64 else t
            for t in (input, offset, mask, weight, bias)
        ]
    spec = _check(input, offset, weight, bias, mask, stride, padding, dilation, groups, offset_groups, _op)
    check_choice(algorithm, DEFORM_ALGORITHMS, "algorithm", spec.op)
    unbatched = spec.unbatched
    if unbatched:
        input, offset = input.unsqueeze(0), offset.unsqueeze(0)
        mask = None if mask is None else mask.unsqueeze(0)
    if algorithm == "gather" or needs_plain_autograd(input, offset, mask, weight, bias):
        # forward-mode AD and functorch's grad transforms need plain torch ops: the reference path
        out = _deform_conv_gather(input, offset, mask, weight, spec.geometry)
        if bias is not None:
            out = out + bias.view(-1, *([1] * (out.dim() - 2)))
    else:
        out = torch.ops.convolab.deform_conv(input, offset, mask, weight, bias, *spec.geometry.flat())
    return out.squeeze(0) if unbatched else out


deform_conv.__signature__ = public_signature(deform_conv)  # type: ignore[attr-defined]  (_op is the wrappers')


# ----------------------------------------------------------------------------------------------
# argument checks


@dataclass(frozen=True)
class _Checked:
    """What the argument checks establish: the name errors use, whether the input was unbatched,
    the output size and the windows."""

    op: str
    unbatched: bool
    out_size: tuple[int, ...]
    geometry: "Geometry"


def _check(input, offset, weight, bias, mask, stride, padding, dilation, groups, offset_groups, _op) -> _Checked:
    # tensor types, ranks and dtypes are checked exactly as for the regular conv
    nd = check_tensors(_op or "deform_conv", input, weight, bias, _op is not None)
    op = _op or f"deform_conv{nd}d"
    for name, t in (("offset", offset), ("mask", mask)):
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a torch.Tensor{' or None' if name == 'mask' else ''}, got {type(t).__name__}")
    unbatched = input.dim() == nd + 1
    for name, t in (("offset", offset), ("mask", mask)):
        if t is not None and t.dim() != input.dim():
            raise ValueError(
                f"{op}: expected {name} of rank {input.dim()} (like the input), got rank {t.dim()} "
                f"with shape {list(t.shape)}"
            )
    for name, t in (("offset", offset), ("mask", mask)):
        if t is not None and t.dtype != input.dtype:
            raise TypeError(f"{op}: {name} dtype ({t.dtype}) must equal input dtype ({input.dtype})")
    if not input.is_floating_point():
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype}")
    lead = 0 if unbatched else 1
    in_shape, w_shape, off_shape = static_shape(input), static_shape(weight), static_shape(offset)
    mask_shape = None if mask is None else static_shape(mask)
    c_in, c_out, kernel = in_shape[lead], w_shape[0], w_shape[2:]
    check_conv_channels(op, in_shape, w_shape, groups, channel_dim=lead)
    check_bias(op, bias, c_out)
    stride_t = positive_tuple(stride, nd, "stride", op)
    dilation_t = positive_tuple(dilation, nd, "dilation", op)
    spatial = in_shape[lead + 1 :]
    pads = arithmetic.resolve_padding(padding, spatial, kernel, stride_t, dilation_t, op=op)
    out_size = arithmetic.conv_output_shape(spatial, kernel, stride_t, pads, dilation_t, op=op)
    taps = math.prod(kernel)
    dims = "dx" if nd == 1 else "(dy, dx)" if nd == 2 else "(dz, dy, dx)"
    off_c = off_shape[lead]
    if offset_groups is None:
        if off_c == 0 or off_c % (nd * taps):
            raise ValueError(
                f"{op}: expected offset with a multiple of {nd}*prod(kernel) = {nd * taps} channels "
                f"(offset_groups * taps * {dims}), got {off_c} (offset {list(off_shape)})"
            )
        offset_groups = off_c // (nd * taps)
    else:
        offset_groups = positive_int(offset_groups, "offset_groups", op)
    if c_in % offset_groups:
        raise ValueError(f"{op}: offset_groups ({offset_groups}) must divide in_channels ({c_in})")
    want = (nd * offset_groups * taps, *out_size)
    if off_shape[lead:] != want:
        raise ValueError(
            f"{op}: expected offset of shape [{'N, ' if lead else ''}{', '.join(map(str, want))}] "
            f"({nd}*offset_groups*prod(kernel) = {nd}*{offset_groups}*{taps} channels, {dims} per tap, "
            f"and the output size {list(out_size)}), got {list(off_shape)}"
        )
    if mask_shape is not None and mask_shape[lead:] != (offset_groups * taps, *out_size):
        raise ValueError(
            f"{op}: expected mask of shape [{'N, ' if lead else ''}"
            f"{', '.join(map(str, (offset_groups * taps, *out_size)))}] (offset_groups*prod(kernel) = "
            f"{offset_groups}*{taps} channels and the output size {list(out_size)}), got {list(mask_shape)}"
        )
    if lead:
        for name, shape in (("offset", off_shape), ("mask", mask_shape)):
            if shape is not None and shape[0] != in_shape[0]:
                raise ValueError(
                    f"{op}: expected {name} with batch size {in_shape[0]} (like the input), got {shape[0]}"
                )
    return _Checked(op, unbatched, out_size, Geometry(stride_t, pads, dilation_t, groups, offset_groups))


# ----------------------------------------------------------------------------------------------
# sampling positions (shared by both paths)


def _base_positions(
    out_size: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    pads: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    dtype: torch.dtype,
    device: torch.device,
) -> Tensor:
    """Regular grid ``p0 + pn`` in input pixels: Tensor[K, L, d] (taps, output positions, dims)."""
    taps = torch.meshgrid(*[torch.arange(k, device=device) * d for k, d in zip(kernel, dilation)], indexing="ij")
    origin = torch.meshgrid(
        *[torch.arange(o, device=device) * s - b for o, s, (b, _) in zip(out_size, stride, pads)], indexing="ij"
    )
    taps_t = torch.stack([t.reshape(-1) for t in taps], -1)  # [K, d]
    origin_t = torch.stack([t.reshape(-1) for t in origin], -1)  # [L, d]
    return (taps_t[:, None, :] + origin_t[None, :, :]).to(dtype)


def _positions(offset: Tensor, base: Tensor, offset_groups: int) -> Tensor:
    """Sampling points ``p0 + pn + Δpn``: Tensor[N, G, K, L, d] from offset [N, G*K*d, *out]."""
    taps, length, nd = base.shape
    off = offset.reshape(offset.shape[0], offset_groups, taps, nd, length).transpose(-1, -2)
    return off + base


# ----------------------------------------------------------------------------------------------
# the readable reference path: explicit corners, plain autograd


def _interpolate_gather(x: Tensor, pos: Tensor) -> Tensor:
    """N-linear interpolation of x [N, G, Cg, *spatial] at pos [N, G, P, d], zeros outside -> [N, G, Cg, P]."""
    n, g, cg = x.shape[:3]
    spatial = x.shape[3:]
    flat = x.reshape(n, g, cg, -1)
    low = pos.detach().floor()
    frac = pos - low
    low = low.long()
    out = pos.new_zeros(n, g, cg, pos.shape[2])
    for corner in itertools.product((0, 1), repeat=len(spatial)):
        weight = torch.ones_like(frac[..., 0])
        index = torch.zeros_like(low[..., 0])
        inside = torch.ones_like(low[..., 0], dtype=torch.bool)
        for d, (bit, size) in enumerate(zip(corner, spatial)):
            i = low[..., d] + bit
            weight = weight * (frac[..., d] if bit else 1 - frac[..., d])
            inside = inside & (i >= 0) & (i < size)
            index = index * size + i.clamp(0, size - 1)
        values = flat.gather(3, index.unsqueeze(2).expand(n, g, cg, index.shape[-1]))
        out = out + values * (weight * inside).unsqueeze(2)
    return out


def _deform_conv_gather(x: Tensor, offset: Tensor, mask: Optional[Tensor], weight: Tensor, geometry: Geometry) -> Tensor:
    groups, og = geometry.groups, geometry.offset_groups
    n, c = x.shape[:2]
    kernel, out_size = tuple(weight.shape[2:]), tuple(offset.shape[2:])
    taps, length = math.prod(kernel), math.prod(out_size)
    base = _base_positions(out_size, kernel, geometry.stride, geometry.pads, geometry.dilation, x.dtype, x.device)
    pos = _positions(offset, base, og).reshape(n, og, taps * length, len(kernel))
    cols = _interpolate_gather(x.reshape(n, og, c // og, *x.shape[2:]), pos)  # [N, G, Cg, K*L]
    cols = cols.reshape(n, og, c // og, taps, length)
    if mask is not None:
        cols = cols * mask.reshape(n, og, 1, taps, length)
    out = _gemm(cols.reshape(n, c * taps, length), weight, groups)
    return out.reshape(n, weight.shape[0], *out_size)


def _gemm(cols: Tensor, weight: Tensor, groups: int) -> Tensor:
    """[N, C*K, L] columns (channel-major, tap-minor, as im2col) x weight -> [N, C_out, L]."""
    n, _, length = cols.shape
    w = weight.reshape(groups, weight.shape[0] // groups, -1)
    return torch.matmul(w, cols.reshape(n, groups, w.shape[2], length)).reshape(n, weight.shape[0], length)


# ----------------------------------------------------------------------------------------------
# the fast path: interpolation as a sparse matrix applied by embedding_bag


class _Points:
    """Where every (sample, output position, tap, offset group) reads, as embedding_bag wants it.

    The input becomes a table of channel rows: zero-padded by one pixel before and two after
    each spatial dim, channels last, one row of ``Cg`` channels per (sample, pixel, offset
    group). A sampling point clamped to ``[-1, size]`` then has all of its ``2**d`` corners
    inside the padded table, and every corner outside the input reads a zero row, so the
    interpolation needs no bounds masks: clamping changes nothing, since a point beyond
    ``-1`` or ``size`` reads only zeros either way, and it zeroes the offset gradient there.

    Bags are ordered (sample, position, tap, group), so ``embedding_bag`` yields the columns
    as rows ``[N*L, K*C]`` (tap-major, channel-minor) ready for one GEMM per chunk.
    """

    def __init__(self, x: Tensor, offset: Tensor, mask: Optional[Tensor], kernel, geometry: Geometry,
                 backward: bool = True) -> None:
        stride, pads, dilation, og = geometry.stride, geometry.pads, geometry.dilation, geometry.offset_groups
        n, c = x.shape[:2]
        spatial, out_size = tuple(x.shape[2:]), tuple(offset.shape[2:])
        nd, taps, length = len(spatial), math.prod(kernel), math.prod(out_size)
        self.shape = (n, length, taps, og)
        self.nd, self.og, self.cg, self.spatial = nd, og, c // og, spatial
        self.corners = 1 << nd
        padded = tuple(s + 3 for s in spatial)
        rows = n * math.prod(padded) * og
        self.rows = rows
        itype = torch.int32 if rows < 2**31 else torch.int64
        # row strides of the padded table per spatial dim (in rows of Cg channels)
        strides = [og * math.prod(padded[d + 1 :]) for d in range(nd)]
        self.padded = padded

        # per dim: the sampling points [N, L, K, G] (offsets plus the regular grid), clamped, split
        # into the low corner and the fraction; the first corner's row sums (low_d + 1) * stride_d
        base = _base_positions(out_size, kernel, stride, pads, dilation, x.dtype, x.device).transpose(0, 1)  # [L, K, d]
        off = offset.reshape(n, og, taps, nd, length)
        self.frac, self.live = [], []
        first = None
        for d in range(nd):
            pos = torch.add(off[:, :, :, d].permute(0, 3, 2, 1), base[..., d, None], out=x.new_empty(self.shape))
            clamped = pos.clamp(-1, spatial[d])
            if backward:
                self.live.append(clamped == pos)  # where the offset gradient flows (clamp's convention)
            low = clamped.floor()
            self.frac.append(clamped.sub_(low))
            # a NaN offset (a diverged offset branch) reads row -1's zeros with NaN weights: the
            # output turns NaN as a dense op's would, instead of indexing out of the table
            term = low.nan_to_num_(nan=-1.0).to(itype).mul_(strides[d])
            first = term if first is None else first.add_(term)
        sample_base = torch.arange(n, dtype=itype, device=x.device) * (rows // n)
        group_base = torch.arange(og, dtype=itype, device=x.device) + sum(strides)
        first.add_(sample_base.view(n, 1, 1, 1)).add_(group_base)
        # corners in bit order, dim 0's bit the slowest; planes of B values stacked last (each op
        # then runs on contiguous memory: broadcasting over a trailing dim of 2 is ~8x slower)
        shifts = [sum(strides[d] for d in range(nd) if bits[d]) for bits in self.corner_bits()]
        self.index = _interleave([first + s_ if s_ else first for s_ in shifts])
        self.mask = None if mask is None else mask.reshape(n, og, taps, length).permute(0, 3, 2, 1).contiguous()
        self.weights = _interleave(self.corner_weights(self.mask))  # [B, 2**d]

    def corner_bits(self) -> list[tuple[int, ...]]:
        return list(itertools.product((0, 1), repeat=self.nd))

    def pair(self, d: int) -> tuple[Tensor, Tensor]:
        """The linear weights (1 - frac, frac) of the low and high corner along dim d, [N, L, K, G] each."""
        return 1 - self.frac[d], self.frac[d]

    def corner_weights(self, mask: Optional[Tensor]) -> list[Tensor]:
        """The 2**d interpolation weights (products over dims of one of each pair), times ``mask``."""
        planes = [mask]
        for d in range(self.nd):
            low, high = self.pair(d)
            planes = [q if p is None else p * q for p in planes for q in (low, high)]
        return planes

    def table(self, x: Tensor) -> Tensor:
        """The zero-padded channels-last rows [N*prod(padded)*G, Cg] of ``x``."""
        return _padded_table(x).view(self.rows, self.cg)

    def untable(self, grad_table: Tensor, n: int, c: int) -> Tensor:
        """The inverse of :meth:`table` for a gradient: the padding cropped, channels back in dim 1 (a view)."""
        g = grad_table.view(n, *self.padded, c)
        return g[(slice(None), *(slice(1, s + 1) for s in self.spatial))].movedim(-1, 1)

    def offset_and_mask_grads(self, grad_weights: Tensor, grad_off: Optional[Tensor], grad_mask: Optional[Tensor]) -> None:
        """Chain d loss / d corner weight [B, 2**d] back to the offsets and the mask, into the given tensors.

        The corner weight is ``mask * prod_d pair_d[bit_d]``, so summing the gradient planes
        over every dim but d with their weights leaves two planes whose difference, times the
        mask, is d loss / d frac_d; summing over all dims gives d loss / d mask. ``grad_off``
        and ``grad_mask`` (contiguous, shaped like the offset and the mask) are filled; None
        skips one.
        """
        n, length, taps, og = self.shape
        planes = dict(zip(self.corner_bits(), grad_weights.view(*self.shape, self.corners).unbind(-1)))

        def contract(planes: dict, d: int) -> dict:
            low, high = self.pair(d)
            out = {}
            for bits, g in planes.items():
                key = bits[:d] + bits[d + 1 :]
                out[key] = torch.addcmul(out[key], g, high) if key in out else g * low
            return out

        if grad_mask is not None:
            summed = planes
            for d in reversed(range(self.nd)):
                summed = contract(summed, d)
            grad_mask.view(n, og, taps, length).copy_(summed[()].permute(0, 3, 2, 1))
        if grad_off is not None:
            out = grad_off.view(n, og, taps, self.nd, length)
            for d in range(self.nd):
                summed = planes
                for e in reversed(range(self.nd)):
                    if e != d:
                        summed = contract(summed, e)
                keys = [k for k in summed]  # the two bits of dim d after the others are gone
                part = summed[keys[1]] - summed[keys[0]]
                if self.mask is not None:
                    part.mul_(self.mask)
                out[:, :, :, d] = part.mul_(self.live[d]).permute(0, 3, 2, 1)


def _padded_table(x: Tensor) -> Tensor:
    """``x`` [N, C, *spatial] zero-padded by one before and two after each spatial dim,
    channels last: [N, *(s + 3), C], the table both sampling paths read (see :class:`_Points`)."""
    spatial = x.shape[2:]
    # one transposing copy into a zeroed buffer (padding first, then moving the channels
    # last, would copy the input twice)
    table = x.new_zeros(x.shape[0], *(s + 3 for s in spatial), x.shape[1])
    table[(slice(None), *(slice(1, s + 1) for s in spatial))] = x.movedim(1, -1)
    return table


def _interleave(planes: list[Tensor]) -> Tensor:
    """[B] planes -> [B, len(planes)], plane j in column j.

    Column copies: torch.stack(planes, -1) of float32 planes runs ~3x slower on CPU.
    """
    out = planes[0].new_empty(planes[0].numel(), len(planes))
    for j, plane in enumerate(planes):
        out[:, j] = plane.reshape(-1)
    return out


def _memory_format(t: Tensor) -> torch.memory_format:
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous():
        return torch.channels_last
    if t.dim() == 5 and t.is_contiguous(memory_format=torch.channels_last_3d) and not t.is_contiguous():
        return torch.channels_last_3d
    return torch.contiguous_format


def _row_chunks(n_rows: int, per_row: int) -> list[tuple[int, int]]:
    """(r0, r1) blocks of output rows whose columns hold at most max(COLUMNS_BUDGET, per_row) elements."""
    step = max(COLUMNS_BUDGET // per_row, 1)
    return [(r, min(r + step, n_rows)) for r in range(0, n_rows, step)]


def _flat_weight(weight: Tensor, groups: int) -> Tensor:
    """weight [C_out, C/groups, *kernel] -> [groups, C_out/groups, K*C/groups] in (tap, channel) order."""
    w = weight.flatten(2).transpose(1, 2)  # [C_out, K, C/groups]
    return w.reshape(groups, weight.shape[0] // groups, -1)


def _columns_gemm(cols: Tensor, w: Tensor, taps: int, out: Tensor) -> None:
    """out [r, C_out] = columns [r, K*C] (tap, channel) times the flat weight [groups, O_g, K*C_g]."""
    groups = w.shape[0]
    if groups == 1:
        torch.mm(cols, w[0].t(), out=out)
        return
    r = cols.shape[0]
    c = cols.view(r, taps, groups, -1).permute(2, 0, 1, 3).reshape(groups, r, -1)  # per-group columns
    out.view(r, groups, -1).copy_(torch.bmm(c, w.transpose(1, 2)).transpose(0, 1))


def _group_by_row(rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Entries grouped by the row they read: (order, distinct rows, start of each group in order).

    A chunk's rows span a few image lines, so they usually fit 16 bits relative to the lowest:
    NumPy's stable argsort is then a radix sort, ~3x faster than torch.sort of int32 here.
    """
    lo = int(rows.min())
    span = int(rows.max()) - lo + 1
    keys = rows - lo
    if rows.device.type == "cpu" and span <= RADIX_SPAN:
        order = torch.from_numpy(np.argsort(keys.to(torch.int32).numpy().astype(np.uint16), kind="stable"))
    else:
        order = torch.sort(keys, stable=True).indices
    counts = torch.bincount(keys, minlength=span)
    present = counts.nonzero().squeeze(1)
    counts = counts[present]
    starts = torch.zeros_like(counts)
    torch.cumsum(counts[:-1], 0, out=starts[1:])
    return order, present + lo, starts


# ----------------------------------------------------------------------------------------------
# the kernels of the custom ops
#
# The columns are made chunk by chunk (COLUMNS_BUDGET elements, cache-sized) and never kept:
# the backward remakes them, which costs less than one memory pass over them, while keeping
# or allocating a large buffer costs page faults every call (glibc maps buffers over 32 MiB
# afresh). The backward also remakes the sampling points and the padded table from the
# saved inputs, so the op saves nothing but its inputs. The input gradient is the transposed
# sparse map applied the same way: the chunk's entries sorted by input row and summed per
# row with embedding_bag.

@dataclass(frozen=True)
class Geometry:
    """The windows of one deformable conv, as the sampling and the kernels read them."""

    stride: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]  # per dim (before, after)
    dilation: tuple[int, ...]
    groups: int
    offset_groups: int

    @classmethod
    def from_flat(cls, stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int], groups: int,
                  offset_groups: int) -> "Geometry":
        """From the custom op's flat arguments (``padding``: every dim's before, then every after)."""
        nd = len(stride)
        return cls(tuple(stride), tuple(zip(padding[:nd], padding[nd:])), tuple(dilation), groups, offset_groups)

    def flat(self) -> tuple[list[int], list[int], list[int], int, int]:
        """The custom op's flat arguments: stride, padding (befores, then afters), dilation, groups,
        offset_groups."""
        padding = [b for b, _ in self.pads] + [a for _, a in self.pads]
        return list(self.stride), padding, list(self.dilation), self.groups, self.offset_groups


def _forward_output(input: Tensor, offset: Tensor, weight: Tensor) -> Tensor:
    """The uninitialised output, laid out like the input (the fake kernel's answer too)."""
    shape = (input.shape[0], weight.shape[0], *offset.shape[2:])
    return torch.empty(shape, dtype=input.dtype, device=input.device, memory_format=_memory_format(input))


def _upcast(dtype: torch.dtype, *tensors: Optional[Tensor]) -> list[Optional[Tensor]]:
    return [None if t is None else t.to(dtype) for t in tensors]


def _forward_kernel(input, offset, mask, weight, bias, stride, padding, dilation, groups, offset_groups) -> Tensor:
    refuse_forward_ad("convolab::deform_conv", "convolab.functional.deform_conv", input, offset, mask, weight, bias)
    geometry = Geometry.from_flat(stride, padding, dilation, groups, offset_groups)
    result = _forward_output(input, offset, weight)
    n, c = input.shape[:2]
    if n == 0:
        return result
    dtype = compute_dtype(input)  # bf16/fp16 sample and accumulate in float32
    x, offset, mask, weight, bias = _upcast(dtype, input, offset, mask, weight, bias)
    kernel, out_size = tuple(weight.shape[2:]), tuple(offset.shape[2:])
    taps, length, c_out = math.prod(kernel), math.prod(out_size), weight.shape[0]
    w = _flat_weight(weight, groups)
    lib = _native_for(x, offset, mask, weight, kernel)
    if lib is not None:
        # one call: the padded table, then per block of positions the sampled columns and
        # their GEMM with the weight, written straight into the output's layout
        channels_last = not result.is_contiguous()
        out = result if result.dtype == dtype else torch.empty_like(result, dtype=dtype)
        args, strides = _native_args(x, offset, weight, geometry), torch.tensor(x.stride(), dtype=torch.int64)
        offset, mask, w = offset.contiguous(), _contiguous(mask), w.contiguous()
        table = x.new_empty(n, *(s_ + 3 for s_ in x.shape[2:]), c)
        fn = lib.deform_forward_f64 if dtype == torch.float64 else lib.deform_forward_f32
        fn(args.data_ptr(), x.data_ptr(), strides.data_ptr(), offset.data_ptr(), _native.pointer(mask), w.data_ptr(),
           _native.pointer(_contiguous(bias)), out.data_ptr(), int(channels_last), table.data_ptr(), _native.threads())
        return result if out is result else result.copy_(out)
    direct = result.dtype == dtype and result.movedim(1, -1).is_contiguous()
    # channels-last outputs take the GEMM rows in place; others are transposed once at the end
    out = result.movedim(1, -1).view(n * length, c_out) if direct else x.new_empty(n * length, c_out)
    pts = _Points(x, offset, mask, kernel, geometry, backward=False)
    table = pts.table(x)
    bags = taps * offset_groups  # bags per output row
    for r0, r1 in _row_chunks(n * length, taps * c):
        cols = F.embedding_bag(pts.index[r0 * bags : r1 * bags], table, per_sample_weights=pts.weights[r0 * bags : r1 * bags], mode="sum")
        _columns_gemm(cols.view(r1 - r0, -1), w, taps, out[r0:r1])
    if bias is not None:
        out += bias
    if not direct:
        result.copy_(out.view(n, *out_size, c_out).movedim(-1, 1))
    return result


def _contiguous(t: Optional[Tensor]) -> Optional[Tensor]:
    return None if t is None else t.contiguous()


def _native_for(x: Tensor, offset: Tensor, mask: Optional[Tensor], weight: Tensor, kernel: Sequence[int]) -> Any:
    """The compiled kernels for a 2-D problem on CPU in float32/float64 whose sizes fit BLAS's
    32-bit ints, else None (the torch path runs)."""
    if len(kernel) != 2 or x.numel() >= 2**31 or offset.numel() >= 2**31 or weight.numel() >= 2**31:
        return None
    if _native.usable(x, offset, mask, weight) is None:
        return None
    return _native.blas()


def _native_args(x: Tensor, offset: Tensor, weight: Tensor, geometry: Geometry) -> Tensor:
    """The sizes the compiled kernels read: [N, C, H, W, G, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw,
    Cout, groups, rows per block]. A block's columns and their gradient (rows x taps*C each) stay
    within NATIVE_BLOCK elements, so they are still in cache when the GEMMs read them."""
    stride, pads, dilation, groups, og = (geometry.stride, geometry.pads, geometry.dilation, geometry.groups,
                                          geometry.offset_groups)
    n, c, h, w = x.shape
    per_row = weight.shape[2] * weight.shape[3] * c
    rows = max(16, min(1024, NATIVE_BLOCK // per_row))
    values = [n, c, h, w, og, *offset.shape[2:], *weight.shape[2:], *stride, *(b for b, _ in pads), *dilation,
              weight.shape[0], groups, rows]
    return torch.tensor(values, dtype=torch.int64)


def _backward_outputs(input: Tensor, offset: Tensor, mask: Optional[Tensor], weight: Tensor, need: Sequence[bool]) -> list[Tensor]:
    """Uninitialised gradients (x, offset, mask, weight, bias); an unneeded one is an empty tensor."""
    likes = (input, offset, mask, weight, None)
    shapes = (input.shape, offset.shape, None if mask is None else mask.shape, weight.shape, weight.shape[:1])
    outs = []
    for i, (like, shape) in enumerate(zip(likes, shapes)):
        owner = like if like is not None else weight
        if need[i] and shape is not None:
            fmt = _memory_format(input) if i == 0 else torch.contiguous_format
            outs.append(torch.empty(shape, dtype=owner.dtype, device=owner.device, memory_format=fmt))
        else:
            outs.append(owner.new_empty(0))
    return outs


def _backward_kernel(grad_out, input, offset, mask, weight, need, stride, padding, dilation, groups, offset_groups):
    refuse_forward_ad("convolab::deform_conv_backward", "convolab.functional.deform_conv", grad_out, input, offset, mask, weight)
    geometry = Geometry.from_flat(stride, padding, dilation, groups, offset_groups)
    results = _backward_outputs(input, offset, mask, weight, need)
    need_x, need_off, need_mask, need_w, need_b = (bool(v) and r.numel() > 0 for v, r in zip(need, results))
    n, c = input.shape[:2]
    if n == 0:
        return tuple(r.zero_() for r in results)
    dtype = compute_dtype(input)
    go_full, x, offset, mask, weight = _upcast(dtype, grad_out, input, offset, mask, weight)
    kernel = tuple(weight.shape[2:])
    taps = math.prod(kernel)
    lib = _native_for(x, offset, mask, weight, kernel)
    if lib is not None and go_full.numel() < 2**31:
        _native_backward(lib, go_full, x, offset, mask, weight, geometry, results, (need_x, need_off, need_mask, need_w, need_b))
        return tuple(results)
    pts = _Points(x, offset, mask, kernel, geometry)
    table = pts.table(x)
    length = go_full[0, 0].numel()
    bags, corners = taps * pts.og, pts.corners
    go = go_full.movedim(1, -1).reshape(n * length, -1)  # rows [N*L, C_out]
    w = _flat_weight(weight, groups)
    grad_w = torch.zeros_like(w) if need_w else None
    grad_table = torch.zeros_like(table) if need_x else None
    grad_weights = pts.weights.new_empty(pts.weights.shape) if need_off or need_mask else None
    itype = pts.index.dtype
    chunks = _row_chunks(n * length, taps * c)
    if need_off or need_mask:
        # the bag layout of the per-sample-weight gradient: every chunk but the last has the
        # largest size, so one pair of index vectors serves all (sliced for the last)
        most = (chunks[0][1] - chunks[0][0]) * bags
        all_offsets = torch.arange(0, most * corners, corners, dtype=itype, device=x.device)
        all_owners = torch.arange(most, dtype=itype, device=x.device).repeat_interleave(corners)
    shift = corners.bit_length() - 1  # corners = 2**d: entry // corners is a shift
    for r0, r1 in chunks:
        b0, b1 = r0 * bags, r1 * bags
        index, weights = pts.index[b0:b1], pts.weights[b0:b1]
        go_c = go[r0:r1]
        if need_w:
            cols = F.embedding_bag(index, table, per_sample_weights=weights, mode="sum")
            if groups == 1:
                grad_w[0].addmm_(go_c.t(), cols.view(r1 - r0, -1))
            else:
                cols = cols.view(r1 - r0, taps, groups, -1).transpose(1, 2).reshape(r1 - r0, groups, -1)
                go_g = go_c.view(r1 - r0, groups, -1)
                grad_w.baddbmm_(go_g.transpose(0, 1).transpose(1, 2), cols.transpose(0, 1))
        if not (need_x or need_off or need_mask):
            continue
        # grad of the columns [r, K*C] = go [r, C_out] x W, back in (tap, channel) rows of Cg
        if groups == 1:
            gcols = torch.mm(go_c, w[0]).view(-1, pts.cg)
        else:
            gcols = torch.bmm(go_c.view(r1 - r0, groups, -1).transpose(0, 1), w)  # [groups, r, K*C_g]
            gcols = gcols.view(groups, r1 - r0, taps, -1).permute(1, 2, 0, 3).reshape(-1, pts.cg)
        flat = index.reshape(-1)
        if need_off or need_mask:
            grad_weights[b0:b1] = torch.ops.aten._embedding_bag_per_sample_weights_backward(
                gcols, table, flat, all_offsets[: b1 - b0], all_owners[: flat.numel()], 0, -1
            ).view(-1, corners)
        if need_x:
            # the transposed map: entries sorted by the input row they read, summed per row
            order, unique, starts = _group_by_row(flat)
            summed = F.embedding_bag(
                order >> shift, gcols, starts, per_sample_weights=weights.reshape(-1).index_select(0, order), mode="sum"
            )
            grad_table.index_add_(0, unique, summed)
    grad_x, grad_off, grad_mask, grad_w_out, grad_b = results
    if need_x:
        grad_x.copy_(pts.untable(grad_table, n, c))
    if need_off or need_mask:
        pts.offset_and_mask_grads(grad_weights, grad_off if need_off else None, grad_mask if need_mask else None)
    if need_w:
        # (tap, channel) columns back to the weight's (channel, tap) order, in one copy
        grad_w_out.view(weight.shape[0], -1, taps).copy_(grad_w.view(weight.shape[0], taps, -1).transpose(1, 2))
    if need_b:
        torch.sum(go, 0, out=grad_b) if grad_b.dtype == go.dtype else grad_b.copy_(go.sum(0))
    return tuple(results)


def _native_backward(lib, go, x, offset, mask, weight, geometry: Geometry, results: list, need: Sequence[bool]) -> None:
    """The backward in one call of the compiled kernel: per block of positions, the columns and
    their gradient (GEMMs with the weight and the output gradient), the corner dot products
    (offset and mask gradients) and the input gradient's scatter, each worker into sums of
    its own (added up at the end)."""
    need_x, need_off, need_mask, need_w, need_b = need
    groups = geometry.groups
    dtype = x.dtype
    go_channels_last = not go.is_contiguous() and go.movedim(1, -1).is_contiguous()
    go = go if go.is_contiguous() or go_channels_last else go.contiguous()
    grad_x, grad_off, grad_mask, grad_w_out, grad_b = results

    def target(t: Tensor, wanted: bool) -> Optional[Tensor]:
        # the kernel writes float32/float64 contiguous tensors; anything else is copied after
        if not wanted:
            return None
        return t if t.dtype == dtype and t.is_contiguous() else torch.empty(t.shape, dtype=dtype)

    n, c = x.shape[:2]
    off_t, mask_t = target(grad_off, need_off), target(grad_mask, need_mask)
    gx = (grad_x if grad_x.dtype == dtype else torch.empty_like(grad_x, dtype=dtype)) if need_x else None
    w = _flat_weight(weight, groups).contiguous()
    gw = w.new_zeros(w.shape) if need_w else None
    gb = x.new_zeros(weight.shape[0]) if need_b else None
    table = x.new_empty(n, *(s_ + 3 for s_ in x.shape[2:]), c)
    grad_table = torch.empty_like(table) if need_x else None
    args = _native_args(x, offset, weight, geometry)
    strides = torch.tensor([x.stride(), gx.stride() if gx is not None else x.stride()], dtype=torch.int64)
    offset, mask = offset.contiguous(), _contiguous(mask)
    fn = lib.deform_backward_f64 if dtype == torch.float64 else lib.deform_backward_f32
    p = _native.pointer
    fn(args.data_ptr(), x.data_ptr(), strides[0].data_ptr(), offset.data_ptr(), p(mask), w.data_ptr(), go.data_ptr(),
       int(go_channels_last), table.data_ptr(), p(grad_table), p(gx), strides[1].data_ptr(), p(off_t), p(mask_t), p(gw), p(gb),
       _native.threads())
    if need_x and gx is not grad_x:
        grad_x.copy_(gx)
    for out, got in ((grad_off, off_t), (grad_mask, mask_t)):
        if got is not None and got is not out:
            out.copy_(got)
    if need_w:
        # (tap, channel) columns back to the weight's (channel, tap) order, in one copy
        taps = weight.shape[2] * weight.shape[3]
        grad_w_out.view(weight.shape[0], -1, taps).copy_(gw.view(weight.shape[0], taps, -1).transpose(1, 2))
    if need_b:
        grad_b.copy_(gb)


# ----------------------------------------------------------------------------------------------
# the custom ops and their registrations

_deform_conv_op = torch.library.custom_op(
    "convolab::deform_conv",
    _forward_kernel,
    mutates_args=(),
    schema="(Tensor input, Tensor offset, Tensor? mask, Tensor weight, Tensor? bias, int[] stride, "
    "int[] padding, int[] dilation, int groups, int offset_groups) -> Tensor",
)
_deform_conv_backward_op = torch.library.custom_op(
    "convolab::deform_conv_backward",
    _backward_kernel,
    mutates_args=(),
    schema="(Tensor grad_output, Tensor input, Tensor offset, Tensor? mask, Tensor weight, bool[] output_mask, "
    "int[] stride, int[] padding, int[] dilation, int groups, int offset_groups) -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
)


@_deform_conv_op.register_fake
def _(input, offset, mask, weight, bias, stride, padding, dilation, groups, offset_groups):
    return _forward_output(input, offset, weight)


@_deform_conv_backward_op.register_fake
def _(grad_output, input, offset, mask, weight, output_mask, stride, padding, dilation, groups, offset_groups):
    return tuple(_backward_outputs(input, offset, mask, weight, output_mask))


def _setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
    input, offset, mask, weight, bias, *flat_geometry = inputs
    ctx.save_for_backward(input, offset, mask, weight)
    ctx.flat_geometry = flat_geometry
    ctx.has_bias = bias is not None


def _vjp(ctx: Any, grad: Tensor) -> tuple:
    input, offset, mask, weight = ctx.saved_tensors
    need = list(ctx.needs_input_grad[:5])
    need[2] = need[2] and mask is not None
    need[4] = need[4] and ctx.has_bias
    if torch.is_grad_enabled():
        # create_graph=True: gradients that are themselves differentiable
        grads = _differentiable_vjp(grad, input, offset, mask, weight, need, *ctx.flat_geometry)
    else:
        grads = torch.ops.convolab.deform_conv_backward(grad, input, offset, mask, weight, need, *ctx.flat_geometry)
    return (*(g if wanted else None for g, wanted in zip(grads, need)), None, None, None, None, None)


def _differentiable_vjp(grad, input, offset, mask, weight, need, stride, padding, dilation, groups, offset_groups):
    """The vector-Jacobian product as a differentiable function: autograd through the "gather" path.

    The fast backward is a kernel of its own (embedding_bag maps, a NumPy sort), so the
    graph of a second derivative is built by differentiating the reference path, which
    computes the same function with plain torch ops; only ``create_graph=True`` pays for it.
    """
    geometry = Geometry.from_flat(stride, padding, dilation, groups, offset_groups)
    inputs = (input, offset, mask, weight)
    if input.shape[0] == 0:
        zeros = [None if t is None else t.new_zeros(t.shape) for t in inputs]
        return (*zeros, weight.new_zeros(weight.shape[0]))
    dtype = compute_dtype(input)
    with torch.enable_grad():
        out = _deform_conv_gather(*_upcast(dtype, input, offset, mask), weight.to(dtype), geometry)
        wanted = [t for t, w_ in zip(inputs, need) if w_]
        found = iter(torch.autograd.grad(out, wanted, grad.to(dtype), create_graph=True, allow_unused=True) if wanted else ())
    grads = [next(found) if w_ else None for w_ in need[:4]]
    grads = [g if g is not None or not w_ else t.new_zeros(t.shape) for g, w_, t in zip(grads, need, inputs)]
    grad_b = grad.sum([0, *range(2, grad.dim())]) if need[4] else None
    return (*grads, grad_b)


_deform_conv_op.register_autograd(_vjp, setup_context=_setup_context)


def _backward_refused(ctx: Any, *grads: Tensor) -> None:
    raise RuntimeError(
        "convolab::deform_conv_backward: this kernel is not differentiable; second derivatives of "
        "deform_conv come from convolab.functional.deform_conv's own backward under create_graph=True"
    )


_deform_conv_backward_op.register_autograd(_backward_refused, setup_context=lambda ctx, inputs, output: None)


@_deform_conv_op.register_vmap
def _(info, in_dims, input, offset, mask, weight, bias, *flat_geometry):
    if in_dims[3] is not None or in_dims[4] is not None:
        return vmap_by_loop(torch.ops.convolab.deform_conv, info, in_dims, input, offset, mask, weight, bias, *flat_geometry)
    # shared weights: the vmapped dim joins the batch

    def fold(t: Optional[Tensor], dim: Optional[int]) -> Optional[Tensor]:
        if t is None:
            return None
        t = t.movedim(dim, 0) if dim is not None else t.expand(info.batch_size, *t.shape)
        return t.reshape(-1, *t.shape[2:])

    x, off, m = (fold(t, d) for t, d in zip((input, offset, mask), in_dims))
    out = torch.ops.convolab.deform_conv(x, off, m, weight, bias, *flat_geometry)
    return out.unflatten(0, (info.batch_size, -1)), 0


@_deform_conv_backward_op.register_vmap
def _(info, in_dims, *args):
    return vmap_by_loop(torch.ops.convolab.deform_conv_backward, info, in_dims, *args)


register_autocast(_deform_conv_op)
register_autocast(_deform_conv_backward_op)


# the rank-pinned wrappers: the weight is the third positional argument (after input, offset)
deform_conv1d = rank_pinned(1, deform_conv, "deform_conv1d", deform_conv, weight_at=2)
deform_conv2d = rank_pinned(2, deform_conv, "deform_conv2d", deform_conv, weight_at=2)
deform_conv3d = rank_pinned(3, deform_conv, "deform_conv3d", deform_conv, weight_at=2)
