"""``"fft"``: the convolution theorem — a correlation is a product of spectra.

For a kernel ``w`` and an input ``x`` of size ``S`` (after padding), the valid
cross-correlation ``y[p] = sum_t w[t] x[p + t]`` (``p = 0 .. S - K``) equals the
circular correlation of period ``L`` for any ``L >= S``, whose spectrum is
``Y = X * conj(W)``. So one real FFT of the input, one of the kernel, a
pointwise product (a small complex matrix product per frequency when groups
have several channels) and one inverse FFT give every output at once, in
``O(S log S)`` whatever the kernel size: the win grows with the kernel
(large depthwise kernels: RepLKNet, ConvNeXt, long 1-D filters).

How each feature maps onto that:

- dilation: the kernel is dilated (zeros inserted between taps); the FFT cost
  does not change.
- stride ``s``: polyphase (space-to-depth). ``y[p] = sum_r sum_a w[s a + r]
  x[s (p + a) + r]``, so the ``s^d`` phases of input and kernel become extra
  input channels of a stride-1 correlation on an ``s^d``-times smaller grid:
  no output is computed only to be thrown away.
- input dilation (transposed convolution): zeros are inserted into the input.
- groups and depthwise: spectra are ``[N, g, C/g, *F]`` and ``[g, O/g, C/g, *F]``;
  the per-frequency contraction is a broadcast product when ``C/g == 1``.
- large inputs: overlap-save tiling. Per dim the FFT length ``B`` minimises
  ``ceil(out / (B - K + 1)) * B * (log2(B) + 4)`` (see :func:`tile_length`);
  blocks become extra batch entries.
- FFT lengths are even with only the prime factors 2, 3, 5, 7 (torch's CPU
  FFT, MKL or pocketfft, is fastest there; odd lengths ran markedly slower).
- one padding copy: the input is padded (or cropped) straight to the FFT
  length; data beyond ``out + K - 1`` may stay, no kept output reads it.

The backward pass is FFT-based too (:class:`_SpectralCorrelation`): the input
gradient is a convolution ``G * W`` and the kernel gradient a correlation
``X * conj(G)``, both with the same period ``L`` and reusing the forward
spectra, so backward costs about one forward. With ``create_graph=True`` the
backward is written in differentiable ops (double backward works); forward-mode
AD has its own rule (``dx corr w + x corr dw``) and vmap is generated, so the
algorithm works under ``torch.func`` and ``torch.compile`` like torch's own ops.

Numerics — not native's (``"auto"`` runs fft only behind the checks of
:mod:`._numerics`, which give native's pattern and bound):

- NaN/Inf: a NaN or +-Inf input value makes every output of its sample and
  channel group that shares an FFT block with it NaN (or +-Inf) — the whole
  sample when the signal fits one block — where torch's kernels touch only the
  outputs whose windows read it. A NaN or +-Inf weight makes every output of
  its output channel NaN (an Inf weight gives NaN where torch gives +-Inf).
- Error: ``|y_p - exact_p| <~ c u log2(L) ||x_block||_2 ||w||_1`` (summed over
  the channels of the group; ``u`` the unit roundoff, 6e-8 in float32; ``L``
  the block length): set by the norm of the whole block, not of the output's
  window as native's ``gamma_K sum_t |w_t| |x_{p+t}|``. On unit-normal data
  that is ~2e-7 of the largest output (dense 3x3, depthwise 31x31, 257-tap
  1-D), like a float32 GEMM (the tests pin ``<= 1e-5``); one input value of 1e8
  in a block shifts outputs that never read it by ~1.

Speed: torch's FFTs are multi-threaded with many parallel regions, which makes
them suffer more than oneDNN's convolutions when the CPU is oversubscribed.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from .._windows import dilate, pad_pairs
from . import _machine
from .registry import Problem, register_algorithm
from ._machine import bytes_in, bytes_out, itemsize
from ._numerics import CHECKED

_FLOATS = ("torch.float32", "torch.float64")
# half precision is computed in float32 and rounded once at the end (torch's CPU FFTs have no
# half kernels; autocast hands convolutions half-precision operands)
_LOW = ("torch.float16", "torch.bfloat16")


def _smooth_numbers(limit: int) -> tuple[int, ...]:
    """Every number ``<= limit`` whose prime factors are all in {2, 3, 5, 7}, sorted."""
    found = []
    p7 = 1
    while p7 <= limit:
        p5 = p7
        while p5 <= limit:
            p3 = p5
            while p3 <= limit:
                p2 = p3
                while p2 <= limit:
                    found.append(p2)
                    p2 *= 2
                p3 *= 3
            p5 *= 5
        p7 *= 7
    return tuple(sorted(found))


# FFT lengths come from this table (about 8,000 entries, built once in a few milliseconds), so
# planning is a bisection and a bounded scan, never a search that grows with the signal
# (counting up from n to the next such number took minutes at n = 10**12).
_TABLE_LIMIT = 1 << 34
_SMOOTH = _smooth_numbers(_TABLE_LIMIT)
_SMOOTH_EVEN = tuple(m for m in _SMOOTH if m % 2 == 0)


def _first_at_least(table: tuple[int, ...], n: int) -> int:
    """Index of the first entry ``>= n`` (``bisect_left``, written out: dynamo traces Python
    code, not the C ``bisect`` module)."""
    lo, hi = 0, len(table)
    while lo < hi:
        mid = (lo + hi) // 2
        if table[mid] < n:
            lo = mid + 1
        else:
            hi = mid
    return lo


def good_size(n: int, even: bool = False) -> int:
    """The smallest ``m >= n`` whose prime factors are all in {2, 3, 5, 7} (and even if asked).

    Beyond ``2**34`` (no FFT that long fits in memory) it is the next power of two.

    >>> good_size(257), good_size(68), good_size(4352), good_size(11, even=True)
    (270, 70, 4374, 12)
    >>> good_size(10**12)
    1099511627776
    """
    m = max(n, 1)
    table = _SMOOTH_EVEN if even else _SMOOTH
    if m > table[-1]:
        return 1 << (m - 1).bit_length()
    return table[_first_at_least(table, m)]


def tile_length(size: int, kernel: int) -> int:
    """FFT length for a valid correlation of ``size`` inputs with ``kernel`` taps, per dim.

    Returns ``good_size(size)`` (the whole signal in one FFT) unless overlap-save
    blocks of length ``B`` do less work. The work model per block is
    ``B * (log2 B + 4)``: the FFT plus the copies that cutting blocks costs
    (whole signals pay one padding copy). Lengths are even: odd lengths run
    markedly slower in pocketfft. The work per output, ``B (log2 B + 4) / (B - K + 1)``,
    only grows once ``B`` is many kernel lengths, so blocks are searched between
    ``2 K`` and ``64 K``: a few hundred candidates at most, whatever the size.

    >>> tile_length(68, 13), tile_length(4000, 3), tile_length(4352, 257)
    (70, 32, 4374)
    >>> tile_length(10**12, 3)
    32
    """
    out = size - kernel + 1
    whole = good_size(size, even=True)
    best, best_cost = whole, whole * (math.log2(whole) + 1)
    # tiny blocks drown in per-block overhead
    lo = _first_at_least(_SMOOTH_EVEN, max(2 * kernel, 32))
    hi = _first_at_least(_SMOOTH_EVEN, min(whole, max(64 * kernel, 4096)))
    for b in _SMOOTH_EVEN[lo:hi]:
        cost = -(-out // (b - kernel + 1)) * b * (math.log2(b) + 4)
        if cost < best_cost:
            best, best_cost = b, cost
    return best


def _contract(a: Tensor, b: Tensor, sum_dim: str) -> Tensor:
    """The per-frequency products of the correlation and its gradients.

    Spectra are ``[B, g, c, *F]`` (input), ``[g, o, c, *F]`` (kernel), ``[B, g, o, *F]`` (output).
    ``sum_dim`` names the contracted axis: ``"c"`` (forward: input x kernel -> output),
    ``"o"`` (input grad: output x kernel -> input) or ``"b"`` (kernel grad: input x output
    -> kernel). Singleton contractions are broadcast products (depthwise: no GEMM).
    """
    if sum_dim == "c":
        if a.shape[2] == 1:
            return a * b[:, :, 0]  # [B, g, 1, *F] * [g, o, *F]
        return torch.einsum("bgc...,goc...->bgo...", a, b)
    if sum_dim == "o":
        if a.shape[2] == 1:
            return a * b[:, 0]  # [B, g, 1, *F] * [g, c, *F]
        return torch.einsum("bgo...,goc...->bgc...", a, b)
    if a.shape[2] == 1 and b.shape[2] == 1:
        return (a * b).sum(0).unsqueeze(1)  # [g, 1, 1, *F]
    return torch.einsum("bgc...,bgo...->goc...", a, b)


def _spectra(x: Tensor, w: Tensor, nd: int) -> tuple[Tensor, Tensor]:
    dims = tuple(range(-nd, 0))
    return torch.fft.rfftn(x, dim=dims), torch.fft.rfftn(w, s=x.shape[-nd:], dim=dims)


def _inverse(spec: Tensor, lengths: tuple[int, ...], keep: tuple[int, ...]) -> Tensor:
    dims = tuple(range(-len(lengths), 0))
    y = torch.fft.irfftn(spec, s=lengths, dim=dims)
    if tuple(y.shape[-len(keep):]) == keep:
        return y
    return y[(Ellipsis, *(slice(0, k) for k in keep))]


class _SpectralCorrelation(torch.autograd.Function):
    """Valid stride-1 correlation of ``x [B, g, c, *L]`` with ``w [g, o, c, *K]`` -> ``[B, g, o, *out]``
    by FFTs of period ``L`` (the input's size), forward and backward.

    Needs ``L >= out + K - 1``; the input beyond ``out + K - 1`` is never read (no wrap-around
    reaches a kept output), so the caller may leave real data there instead of zeros.

    It returns the spectra of ``x`` and ``w`` besides the result (non-differentiable; callers
    ignore them) so that the backward and the JVP reuse them: with ``setup_context`` every
    tensor a rule needs must be an input or an output. Written with ``setup_context`` and
    ``generate_vmap_rule`` (and a ``jvp`` rule in :class:`_SpectralCorrelationJvp`), it works
    under ``torch.func`` (vmap, jacrev, jvp, jacfwd) and ``torch.compile``; the first-order
    backward reuses the forward spectra (about one forward's cost), while under
    ``create_graph`` the backward is written in differentiable torch ops from the saved
    inputs, so double backward is exact.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, w: Tensor, out: tuple[int, ...]) -> tuple[Tensor, Tensor, Tensor]:  # type: ignore[override]
        nd = len(out)
        X, W = _spectra(x, w, nd)
        # not a view: in-place ops on the result (ReLU(inplace=True)) must stay legal
        y = _inverse(_contract(X, W.conj(), "c"), tuple(x.shape[-nd:]), out).contiguous()
        return y, X, W

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[override]
        x, w, out = inputs
        _, X, W = output
        ctx.mark_non_differentiable(X, W)
        ctx.save_for_backward(x, w, X, W)
        ctx.save_for_forward(X, W)
        ctx.out, ctx.lengths = out, tuple(x.shape[-len(out):])

    @staticmethod
    def backward(ctx, g: Tensor, _gX: Optional[Tensor], _gW: Optional[Tensor]):  # type: ignore[override]
        x, w, X, W = ctx.saved_tensors
        nd = len(ctx.out)
        lengths, kernel = tuple(x.shape[-nd:]), tuple(w.shape[-nd:])
        if torch.is_grad_enabled():
            # create_graph: recompute the spectra from the saved inputs so the graph reaches them
            X, W = _spectra(x, w, nd)
        G = torch.fft.rfftn(g, s=lengths, dim=tuple(range(-nd, 0)))
        gx = gw = None
        if ctx.needs_input_grad[0]:  # d/dx of sum_t w[t] x[p+t]: the convolution g * w
            gx = _inverse(_contract(G, W, "o"), lengths, lengths)
        if ctx.needs_input_grad[1]:  # d/dw: the correlation of x with g
            gw = _inverse(_contract(X, G.conj(), "b"), lengths, kernel)
        return gx, gw, None


class _SpectralCorrelationJvp(_SpectralCorrelation):
    """:class:`_SpectralCorrelation` with its forward-mode rule (for ``torch.func.jvp``/``jacfwd``).

    A separate class because dynamo refuses to trace an ``autograd.Function`` that defines
    ``jvp``: compiled code uses the parent, eager code this one.
    """

    @staticmethod
    def jvp(ctx, x_t: Optional[Tensor], w_t: Optional[Tensor], _out: None):  # type: ignore[override]
        # bilinear: d(x corr w) = dx corr w + x corr dw, in the spectrum
        X, W = ctx.saved_tensors
        dims = tuple(range(-len(ctx.out), 0))
        spec = None
        if x_t is not None:
            spec = _contract(torch.fft.rfftn(x_t, dim=dims), W.conj(), "c")
        if w_t is not None:
            term = _contract(X, torch.fft.rfftn(w_t, s=ctx.lengths, dim=dims).conj(), "c")
            spec = term if spec is None else spec + term
        y_t = _inverse(spec, ctx.lengths, ctx.out).contiguous()
        return y_t, None, None


def _correlate(x: Tensor, w: Tensor, out: tuple[int, ...]) -> Tensor:
    """The valid correlation of :class:`_SpectralCorrelation` (its result only)."""
    if torch.compiler.is_compiling():
        return _SpectralCorrelation.apply(x, w, out)[0]
    return _SpectralCorrelationJvp.apply(x, w, out)[0]


def _plan(out: int, kernel: int) -> tuple[int, int, int]:
    """``(block, step, count)`` for one dim: FFT length, outputs per block, number of blocks."""
    block = tile_length(out + kernel - 1, kernel)
    if block >= out + kernel - 1:
        return block, out, 1
    step = block - kernel + 1
    return block, step, math.ceil(out / step)


def _space_to_depth(t: Tensor, stride: tuple[int, ...]) -> Tensor:
    """``[A, C, *S]`` with ``S`` divisible by ``stride`` -> ``[A, C * prod(s), *(S / s)]``,
    the phase index right after the channel (so channel groups stay contiguous)."""
    nd = len(stride)
    a, c = t.shape[:2]
    split = [v for size, s in zip(t.shape[2:], stride) for v in (size // s, s)]
    t = t.reshape(a, c, *split)
    t = t.permute(0, 1, *(3 + 2 * j for j in range(nd)), *(2 + 2 * j for j in range(nd)))
    return t.reshape(a, c * math.prod(stride), *t.shape[2 + nd:])


def _grid_kernel(p: Problem) -> tuple[int, ...]:
    """Kernel size on the stride grid: the dilated kernel, in taps of ``stride`` (polyphase)."""
    return tuple(math.ceil((d * (k - 1) + 1) / s) for k, d, s in zip(p.kernel, p.dilation, p.stride))


def plan_sizes(p: Problem) -> tuple[tuple[int, ...], int, int]:
    """``(FFT lengths per dim, number of blocks, number of stride phases)`` fft uses for ``p``.

    The cost model of ``"auto"`` reads it, so model and algorithm cannot disagree.
    """
    plans = [_plan(o, k) for o, k in zip(p.output_size, _grid_kernel(p))]
    return tuple(b for b, _, _ in plans), math.prod(c for _, _, c in plans), math.prod(p.stride)


def fft_conv(x: Tensor, weight: Tensor, p: Problem) -> Tensor:
    """The general conv of :mod:`convolab.functional.algorithms` by FFT (no bias)."""
    nd, g, stride, out = p.ndim, p.groups, p.stride, p.output_size
    x = dilate(x, p.input_dilation)
    w = dilate(weight, p.dilation)
    kernel = _grid_kernel(p)
    strided = any(s > 1 for s in stride)
    if strided:  # polyphase: the kernel padded to a multiple of the stride, phases as channels
        w = _space_to_depth(pad_pairs(w, [(0, q * s - k) for q, s, k in zip(kernel, stride, w.shape[2:])]), stride)
    plans = [_plan(o, k) for o, k in zip(out, kernel)]
    # one pad (or crop) gives every dim its final length on the stride grid
    total = [(c - 1) * t + b for b, t, c in plans]
    x = pad_pairs(x, [(b, s * m - size - b) for (b, _), s, m, size in zip(p.padding, stride, total, x.shape[2:])])
    if strided:
        x = _space_to_depth(x, stride)
    n = x.shape[0]
    xg = x.reshape(n, g, x.shape[1] // g, *x.shape[2:])
    wg = w.reshape(g, w.shape[0] // g, *w.shape[1:])
    if all(c == 1 for _, _, c in plans):
        y = _correlate(xg, wg, out)
        return y.reshape(n, p.out_channels, *out)
    # overlap-save: blocks of length B stepping by T = B - K + 1 become batch entries
    for j, (b, t, _) in enumerate(plans):
        xg = xg.unfold(3 + j, b, t)  # [N, g, c, *counts, *blocks]
    counts = [c for _, _, c in plans]
    steps = tuple(t for _, t, _ in plans)
    xt = xg.permute(0, *range(3, 3 + nd), 1, 2, *range(3 + nd, 3 + 2 * nd))
    xt = xt.reshape(n * math.prod(counts), g, xg.shape[2], *xg.shape[3 + nd:])
    y = _correlate(xt, wg, steps)  # [N * blocks, g, o, *steps]
    y = y.reshape(n, *counts, p.out_channels, *steps)
    # -> [N, O, count_1, step_1, count_2, step_2, ...] -> [N, O, *(count*step)], cropped
    y = y.permute(0, nd + 1, *(i for j in range(nd) for i in (1 + j, nd + 2 + j)))
    y = y.reshape(n, p.out_channels, *(c * t for c, t in zip(counts, steps)))
    return y[(Ellipsis, *(slice(0, o) for o in out))]


class FFT:
    name = "fft"
    requirement = "the fft algorithm supports floating-point tensors (float16/bfloat16 computed in float32) of any shape"

    def supports(self, p: Problem) -> bool:
        return p.dtype in _FLOATS + _LOW

    def estimate(self, p: Problem, backward: bool) -> float:
        m = _machine.MACHINE
        blocks, tiles, phases = plan_sizes(p)
        size = math.prod(blocks)
        log = math.log2(max(size, 2))
        n = p.batch * tiles
        cg = p.in_channels // p.groups * phases
        units = (n * p.in_channels * phases + n * p.out_channels + p.out_channels * cg) * size * log
        products = n * p.out_channels * cg * (size / 2 + 1)  # complex MACs, 4 real each
        product_s = (
            products * 24 / (m.bandwidth_gbs * 1e9)  # broadcast products stream memory
            if cg == 1
            else 4 * products / (0.1 * m.gemm_gmacs * 1e9)  # complex einsum: small, strided GEMMs
        )
        # padding or cutting blocks copies the input and the output a few times; blocks overlap
        # by K - 1, so tiling copies B / (B - K + 1) times the signal
        spans = math.prod(o + k - 1 for o, k in zip(p.output_size, _grid_kernel(p)))
        overlap = max(1.0, tiles * size / spans)
        copies = 4 * (bytes_in(p) * phases + bytes_out(p)) * overlap / (m.bandwidth_gbs * 1e9)
        seconds = units / (m.fft_gunits * 1e9) + product_s + copies
        return seconds * (3.2 if backward else 1)

    def workspace(self, p: Problem, backward: bool) -> float:
        blocks, tiles, phases = plan_sizes(p)
        size, s = math.prod(blocks), itemsize(p)
        n = p.batch * tiles
        xr = n * p.in_channels * phases * size * s  # the padded blocks (and their spectra: as much)
        wr = p.out_channels * p.in_channels // p.groups * phases * size * s
        yr = n * p.out_channels * size * s
        forward = 2 * (xr + wr + yr)
        return forward + (yr + 2 * (xr + wr) if backward else 0)  # g's spectrum, both gradients

    def numerics(self, p: Problem) -> str:
        return CHECKED  # a block's norm sets every output's error; NaN/Inf fill the block

    def run(self, x: Tensor, weight: Tensor, bias: Optional[Tensor], p: Problem) -> Tensor:
        if x.shape[0] == 0:
            return x.new_zeros(0, p.out_channels, *p.output_size) + (0 * weight.sum())
        if p.dtype in _LOW:
            y = fft_conv(x.float(), weight.float(), p).to(x.dtype)
        else:
            y = fft_conv(x, weight, p)
        if bias is not None:
            y = y + bias.view(-1, *([1] * p.ndim))
        return y


register_algorithm(FFT())
