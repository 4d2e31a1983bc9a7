"""Deformable convolution v1 (Dai et al., 2017) and v2 (Zhu et al., 2019) for 1, 2 and 3 spatial dims.

A deformable convolution reads its input not on the regular grid of the kernel
but at ``p0 + pn + Δpn``: the output position's window origin, the tap's
regular offset, and a learned fractional offset per tap and output position.
The value there is N-linearly interpolated (linear, bilinear, trilinear) with
zeros outside the input; v2 multiplies each sampled tap by a learned
modulation ``mask`` in [0, 1]. The rest is an ordinary convolution: one GEMM
between the weight and the matrix of sampled columns (the im2col algorithm of
:mod:`convolab.functional.algorithms.im2col` with a deformed window).

Two implementations share the sampling positions:

- ``algorithm="grid_sample"`` (the default): torch's vectorised grid sampler
  fills the columns, chunked so memory is bounded, inside a custom autograd
  function whose backward calls the sampler's own backward (the scatter of the
  corner weights into the input gradient and the interpolation-weight
  derivatives for the offsets) plus two GEMMs, and recomputes the columns
  chunk by chunk when they did not fit in one chunk.
- ``algorithm="gather"``: the readable reference. The 2**d corners of every
  sampling point are gathered and weighted explicitly, and plain autograd
  differentiates through it. It materialises the whole columns matrix.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from .. import arithmetic
from .._args import PaddingArg, check_choice, check_conv_channels, positive_tuple
from .conv import _check_bias, _check_tensors

__all__ = [
    "COLUMNS_BUDGET",
    "DEFORM_ALGORITHMS",
    "deform_conv",
    "deform_conv1d",
    "deform_conv2d",
    "deform_conv3d",
]

IntOrTuple = Union[int, Sequence[int]]
DEFORM_ALGORITHMS = ("auto", "grid_sample", "gather")

#: Largest columns buffer (in elements) the "grid_sample" path materialises at once:
#: 2**24 elements = 64 MiB in float32. A chunk never holds fewer than one output position.
COLUMNS_BUDGET = 1 << 24

# Transient column buffers (a forward that keeps nothing, the masked copy of kept columns): glibc
# recycles heap blocks up to its 32 MiB mmap ceiling, but maps and page-faults a larger buffer afresh
# on every call (~40 ms for 58 MB here, 4x the multiply that fills it). So columns of up to
# HEAP_BUDGET elements (28 MiB in float32) are made whole, and larger ones in blocks of
# TRANSIENT_BUDGET elements (16 MiB) that reuse each other's memory (and stay in cache for the GEMM).
HEAP_BUDGET = 7 << 20
TRANSIENT_BUDGET = 1 << 22


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

    Memory: the default "grid_sample" path materialises at most
    ``max(COLUMNS_BUDGET, C_in*prod(kernel))`` column elements at a time
    (``COLUMNS_BUDGET = 2**24``, 64 MiB in float32), chunking over the batch
    and then over output positions; backward holds at most three such buffers.
    When the whole problem fits in one chunk the forward columns are kept for
    the backward (no recomputation; unmasked when the mask needs a gradient)
    and the backward writes its gradients into them; otherwise the backward
    recomputes them chunk by chunk. Buffers not kept are made whole up to
    ``HEAP_BUDGET`` (28 MiB in float32) and in blocks of ``TRANSIENT_BUDGET =
    2**22`` elements (16 MiB) above it. The "gather" path materialises
    everything (reference only).
    Positions are handed to the sampler as normalised coordinates, which costs
    a relative rounding error of about ``size * eps`` pixel (1e-5 px for a
    100-pixel float32 input).

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
        algorithm (str): "auto" (= "grid_sample"), "grid_sample" or "gather" (reference).

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
    spec = _check(input, offset, weight, bias, mask, stride, padding, dilation, groups, offset_groups, _op)
    check_choice(algorithm, DEFORM_ALGORITHMS, "algorithm", spec["op"])
    unbatched = spec["unbatched"]
    if unbatched:
        input, offset = input.unsqueeze(0), offset.unsqueeze(0)
        mask = None if mask is None else mask.unsqueeze(0)
    n, c_out, out_size = input.shape[0], weight.shape[0], spec["out_size"]
    if n == 0:
        # batch 0: an empty output still tied to every input, so backward gives zero gradients
        tie = sum(t.sum() for t in (input, offset, weight, mask, bias) if t is not None) * 0
        out = input.new_zeros(0, c_out, *out_size) + tie
        return out.squeeze(0) if unbatched else out
    geometry = (spec["stride"], spec["pads"], spec["dilation"], spec["groups"], spec["offset_groups"])
    if algorithm == "gather":
        out = _deform_conv_gather(input, offset, mask, weight, geometry)
    else:
        # inside forward needs_input_grad ignores no_grad mode: say whether a backward can follow
        grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (input, offset, mask, weight))
        out = _DeformConvFunction.apply(input, offset, mask, weight, geometry, grad)
    if bias is not None:
        out = out + bias.view(-1, *([1] * len(out_size)))
    return out.squeeze(0) if unbatched else out


# ----------------------------------------------------------------------------------------------
# argument checks


def _check(input, offset, weight, bias, mask, stride, padding, dilation, groups, offset_groups, _op) -> dict:
    # tensor types, ranks and dtypes are checked exactly as for the regular conv
    nd = _check_tensors(_op or "deform_conv", input, weight, bias, _op is not None)
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
    c_in, c_out, kernel = input.shape[lead], weight.shape[0], tuple(weight.shape[2:])
    check_conv_channels(op, tuple(input.shape), tuple(weight.shape), groups, channel_dim=lead)
    _check_bias(op, bias, c_out)
    stride_t = positive_tuple(stride, nd, "stride", op)
    dilation_t = positive_tuple(dilation, nd, "dilation", op)
    spatial = tuple(input.shape[lead + 1 :])
    pads = arithmetic.resolve_padding(padding, spatial, kernel, stride_t, dilation_t, op=op)
    out_size = arithmetic.conv_output_shape(spatial, kernel, stride_t, pads, dilation_t, op=op)
    taps = math.prod(kernel)
    dims = "dx" if nd == 1 else "(dy, dx)" if nd == 2 else "(dz, dy, dx)"
    off_c = offset.shape[lead]
    if offset_groups is None:
        if off_c == 0 or off_c % (nd * taps):
            raise ValueError(
                f"{op}: expected offset with a multiple of {nd}*prod(kernel) = {nd * taps} channels "
                f"(offset_groups * taps * {dims}), got {off_c} (offset {list(offset.shape)})"
            )
        offset_groups = off_c // (nd * taps)
    elif not isinstance(offset_groups, int) or isinstance(offset_groups, bool) or offset_groups < 1:
        raise ValueError(f"{op}: offset_groups must be an int >= 1, got {offset_groups!r}")
    if c_in % offset_groups:
        raise ValueError(f"{op}: offset_groups ({offset_groups}) must divide in_channels ({c_in})")
    want = (nd * offset_groups * taps, *out_size)
    if tuple(offset.shape[lead:]) != want:
        raise ValueError(
            f"{op}: expected offset of shape [{'N, ' if lead else ''}{', '.join(map(str, want))}] "
            f"({nd}*offset_groups*prod(kernel) = {nd}*{offset_groups}*{taps} channels, {dims} per tap, "
            f"and the output size {list(out_size)}), got {list(offset.shape)}"
        )
    if mask is not None and tuple(mask.shape[lead:]) != (offset_groups * taps, *out_size):
        raise ValueError(
            f"{op}: expected mask of shape [{'N, ' if lead else ''}"
            f"{', '.join(map(str, (offset_groups * taps, *out_size)))}] (offset_groups*prod(kernel) = "
            f"{offset_groups}*{taps} channels and the output size {list(out_size)}), got {list(mask.shape)}"
        )
    if lead:
        for name, t in (("offset", offset), ("mask", mask)):
            if t is not None and t.shape[0] != input.shape[0]:
                raise ValueError(
                    f"{op}: expected {name} with batch size {input.shape[0]} (like the input), "
                    f"got {t.shape[0]}"
                )
    return {
        "op": op,
        "unbatched": unbatched,
        "stride": stride_t,
        "dilation": dilation_t,
        "pads": pads,
        "out_size": out_size,
        "groups": groups,
        "offset_groups": offset_groups,
    }


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
    nd = len(kernel)
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


def _deform_conv_gather(x: Tensor, offset: Tensor, mask: Optional[Tensor], weight: Tensor, geometry) -> Tensor:
    stride, pads, dilation, groups, og = geometry
    n, c = x.shape[:2]
    kernel, out_size = tuple(weight.shape[2:]), tuple(offset.shape[2:])
    taps, length = math.prod(kernel), math.prod(out_size)
    base = _base_positions(out_size, kernel, stride, pads, dilation, x.dtype, x.device)
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
# the fast path: torch's grid sampler in a chunked custom autograd function


def _chunks(n: int, per_position: int, length: int, budget: Optional[int] = None) -> list[tuple[int, int, int, int]]:
    """(n0, n1, l0, l1) blocks whose columns hold at most max(budget, per_position) elements."""
    budget = COLUMNS_BUDGET if budget is None else budget
    per_sample = per_position * length
    if per_sample * n <= budget:
        return [(0, n, 0, length)]
    if per_sample <= budget:
        step = budget // per_sample
        return [(a, min(a + step, n), 0, length) for a in range(0, n, step)]
    step = max(budget // per_position, 1)
    return [(b, b + 1, a, min(a + step, length)) for b in range(n) for a in range(0, length, step)]


def _transient_chunks(n: int, per_position: int, length: int) -> list[tuple[int, int, int, int]]:
    """Blocks for buffers not kept: whole up to HEAP_BUDGET elements, else TRANSIENT_BUDGET-sized."""
    if n * per_position * length <= HEAP_BUDGET:
        return _chunks(n, per_position, length)
    return _chunks(n, per_position, length, min(COLUMNS_BUDGET, TRANSIENT_BUDGET))


class _Sampler:
    """Feeds [N, G, K, L, d] pixel positions to torch's grid sampler (zeros outside, align_corners=False)."""

    def __init__(self, x: Tensor, offset_groups: int) -> None:
        self.nd = x.dim() - 2
        self.spatial = tuple(x.shape[2:])
        self.og = offset_groups
        self.cg = x.shape[1] // offset_groups
        # pixel p sits at normalised (2p + 1)/size - 1; dims reversed: the sampler wants (x, y, z)
        sizes = torch.tensor(self.spatial[::-1], dtype=x.dtype, device=x.device)
        self.scale, self.shift = 2 / sizes, 1 / sizes - 1

    def input(self, x: Tensor) -> Tensor:
        """[nb, C, *spatial] -> the sampler's [nb*G, Cg, (1,) *spatial] (1-D runs as 2-D with H = 1)."""
        x = x.reshape(x.shape[0] * self.og, self.cg, *self.spatial)
        return x.unsqueeze(2) if self.nd == 1 else x

    def grid(self, offset: Tensor, base: Tensor) -> Tensor:
        """The sampler's grid [N*G, (1,) K, L, 2 or 3] of the points ``base + offset``.

        From offset [N, G*K*d, *out] and base [K, L, d] (see :func:`_positions`) in two passes
        over an offset-sized tensor: one strided copy puts the coordinates last in the sampler's
        (x, y, z) order, one in-place ``shift + scale*base + scale*offset`` normalises them.
        """
        taps, length, nd = base.shape
        off = offset.reshape(offset.shape[0], self.og, taps, nd, length)
        comps = [off[:, :, :, i] for i in reversed(range(nd))]
        base_grid = torch.addcmul(self.shift, base.flip(-1), self.scale)  # [K, L, d]: tiny
        scale = self.scale
        if nd == 1:  # y = 0 is the centre of the single row
            comps.append(torch.zeros_like(comps[0]))
            base_grid = torch.cat([base_grid, torch.zeros_like(base_grid)], -1)
            scale = torch.cat([scale, torch.zeros_like(scale)])
        grid = torch.stack(comps, -1)
        torch.addcmul(base_grid, grid, scale, out=grid)
        grid = grid.reshape(-1, taps, length, grid.shape[-1])
        return grid.unsqueeze(1) if nd == 3 else grid

    def sample(self, x_s: Tensor, grid: Tensor, nb: int) -> Tensor:
        """Columns Tensor[nb, G, Cg, K, L]."""
        s = torch.grid_sampler(x_s, grid, 0, 0, False)
        return s.reshape(nb, self.og, self.cg, grid.shape[-3], grid.shape[-2])

    def backward(self, grad_s: Tensor, x_s: Tensor, grid: Tensor, need_x: bool, need_pos: bool):
        grad_s = grad_s.reshape(x_s.shape[0], self.cg, *grid.shape[1:-1])
        fn = torch.ops.aten.grid_sampler_3d_backward if self.nd == 3 else torch.ops.aten.grid_sampler_2d_backward
        gx, ggrid = fn(grad_s, x_s, grid, 0, 0, False, [need_x, need_pos])
        if need_pos:
            ncoord = grid.shape[-1]
            ggrid = ggrid.reshape(-1, self.og, grid.shape[-3], grid.shape[-2], ncoord)[..., : self.nd]
            ggrid = (ggrid * self.scale).flip(-1)  # d grid / d pixel, back in (z, y, x) order
        return gx, ggrid


class _DeformConvFunction(torch.autograd.Function):
    # Large fresh buffers are costly here: beyond glibc's 32 MiB mmap ceiling each one is mapped and
    # page-faulted anew (a 58 MB columns buffer costs ~40 ms, 4x the multiply that fills it). So the
    # backward reuses the forward's column buffers for grad_s and the grad_mask product instead of
    # allocating them, and the mask products run in place whenever their input is not needed again.

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, offset: Tensor, mask: Optional[Tensor], weight: Tensor, geometry, grad: bool
    ) -> Tensor:
        stride, pads, dilation, groups, og = geometry
        n, c = x.shape[:2]
        kernel, out_size = tuple(weight.shape[2:]), tuple(offset.shape[2:])
        taps, length = math.prod(kernel), math.prod(out_size)
        x = x.contiguous()
        sampler = _Sampler(x, og)
        base = _base_positions(out_size, kernel, stride, pads, dilation, x.dtype, x.device)
        w = weight.reshape(groups, weight.shape[0] // groups, -1)
        out = x.new_empty(n, weight.shape[0], length)
        chunks = _chunks(n, c * taps, length)
        keep = grad and len(chunks) == 1
        if not keep:  # nothing kept: small blocks recycle one heap buffer instead of mapping a fresh one
            chunks = _transient_chunks(n, c * taps, length)
        keep_unmasked = keep and mask is not None and ctx.needs_input_grad[2]  # grad_mask reads them
        kept = None
        grid = sampler.grid(offset, base)  # as small as the offsets: made once
        if keep_unmasked:
            # keep the unmasked columns whole; their masked copy is made block by block (heap-sized)
            kept = (sampler.sample(sampler.input(x), grid, n), None)
            chunks = _transient_chunks(n, c * taps, length)
        for n0, n1, l0, l1 in chunks:
            nb = n1 - n0
            if keep_unmasked:
                s = kept[0][n0:n1, ..., l0:l1]
            else:
                s = sampler.sample(sampler.input(x[n0:n1]), grid[n0 * og : n1 * og, ..., l0:l1, :], nb)
            cols = s
            if mask is not None:
                m = mask[n0:n1].reshape(nb, og, 1, taps, length)[..., l0:l1]
                cols = s * m if keep_unmasked else s.mul_(m)
            cols = cols.reshape(nb, groups, w.shape[2], l1 - l0)
            if l1 - l0 == length:
                torch.matmul(w, cols, out=out[n0:n1].view(nb, groups, w.shape[1], length))
            else:
                out[n0:n1, :, l0:l1] = torch.matmul(w, cols).reshape(nb, -1, l1 - l0)
            if keep and not keep_unmasked:
                kept = (None, cols)
        ctx.geometry, ctx.chunks = geometry, chunks
        ctx.kept = kept  # (unmasked columns if grad_mask needs them, masked columns) when they fit in one chunk
        ctx.save_for_backward(x, offset, mask, weight)
        return out.reshape(n, weight.shape[0], *out_size)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor):
        x, offset, mask, weight = ctx.saved_tensors
        stride, pads, dilation, groups, og = ctx.geometry
        need_x, need_off, need_mask, need_w = ctx.needs_input_grad[:4]
        n, c = x.shape[:2]
        kernel, out_size = tuple(weight.shape[2:]), tuple(offset.shape[2:])
        taps, length, nd = math.prod(kernel), math.prod(out_size), len(kernel)
        sampler = _Sampler(x, og)
        base = _base_positions(out_size, kernel, stride, pads, dilation, x.dtype, x.device)
        w = weight.reshape(groups, weight.shape[0] // groups, -1)
        go_all = grad_out.reshape(n, groups, w.shape[1], length)
        grad_x = torch.zeros_like(x) if need_x else None
        grad_off = x.new_zeros(n, og, taps, length, nd) if need_off else None
        grad_mask = x.new_zeros(n, og, taps, length) if need_mask else None
        grad_w = torch.zeros_like(w) if need_w else None
        kept, ctx.kept = ctx.kept, None  # overwritten below; a second backward recomputes the columns
        grid_all = sampler.grid(offset, base)
        for n0, n1, l0, l1 in ctx.chunks:
            nb, lc = n1 - n0, l1 - l0
            x_s = sampler.input(x[n0:n1])
            grid = grid_all[n0 * og : n1 * og, ..., l0:l1, :]
            m = None if mask is None else mask[n0:n1].reshape(nb, og, 1, taps, length)[..., l0:l1]
            if kept is not None:
                unmasked, cols = kept
                if cols is None:  # unmasked columns only: work on blocks of them (see forward)
                    unmasked = unmasked[n0:n1, ..., l0:l1]
            else:
                s = sampler.sample(x_s, grid, nb)
                unmasked = s if m is not None and need_mask else None
                cols = s if m is None else None if need_mask else s.mul_(m)
            go = go_all[n0:n1, ..., l0:l1]
            if need_w:
                if cols is None:
                    cols = unmasked * m
                cols = cols.reshape(nb, groups, w.shape[2], lc)
                grad_w += torch.matmul(go, cols.transpose(-1, -2)).sum(0)
            if need_x or need_off or need_mask:
                # the masked columns are dead now: grad_s = W^T grad_out goes into their buffer
                shape = (nb, groups, w.shape[2], lc)
                if cols is not None and cols is not unmasked:
                    grad_s = torch.matmul(w.transpose(1, 2), go, out=cols.reshape(shape))
                else:
                    grad_s = torch.matmul(w.transpose(1, 2), go)
                grad_s = grad_s.reshape(nb, og, c // og, taps, lc)
                if unmasked is not None:  # sum_c grad_s * columns, the product overwriting the columns
                    grad_mask[n0:n1, ..., l0:l1] = torch.mul(grad_s, unmasked, out=unmasked).sum(2)
                if need_x or need_off:
                    if m is not None:
                        grad_s.mul_(m)
                    gx, gpos = sampler.backward(grad_s, x_s, grid, need_x, need_off)
                    if need_x:
                        grad_x[n0:n1] += gx.reshape(nb, c, *x.shape[2:])
                    if need_off:
                        grad_off[n0:n1, ..., l0:l1, :] = gpos.reshape(nb, og, taps, lc, nd)
        if need_off:
            grad_off = grad_off.transpose(-1, -2).reshape(offset.shape)
        if need_mask:
            grad_mask = grad_mask.reshape(mask.shape)
        if need_w:
            grad_w = grad_w.reshape(weight.shape)
        return grad_x, grad_off, grad_mask, grad_w, None, None


def _fixed(nd: int, name: str):
    """``deform_conv{nd}d``: pins the number of spatial dims of :func:`deform_conv`."""

    def wrapper(input: Tensor, offset: Tensor, weight: Tensor, *args, **kwargs) -> Tensor:
        if isinstance(weight, Tensor) and weight.dim() != nd + 2:
            raise ValueError(
                f"{name}: expected weight of rank {nd + 2} ({nd} spatial dims), "
                f"got rank {weight.dim()} with shape {list(weight.shape)}"
            )
        return deform_conv(input, offset, weight, *args, _op=name, **kwargs)

    wrapper.__name__ = wrapper.__qualname__ = name
    wrapper.__doc__ = (
        f"{nd}-D form of :func:`deform_conv`: same arguments, ``weight`` must have {nd} spatial dims. "
        f"See :func:`convolab.functional.deform_conv` for the definition and the offset layout."
    )
    return wrapper


deform_conv1d = _fixed(1, "deform_conv1d")
deform_conv2d = _fixed(2, "deform_conv2d")
deform_conv3d = _fixed(3, "deform_conv3d")
