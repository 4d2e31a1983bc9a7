"""The numerics contract of ``algorithm="auto"``: native's NaN/Inf pattern and an error bound
comparable to native's, whatever algorithm it picks and whatever the dynamic range of the input.

Native's kernels compute each output from its own window, so a NaN or Inf input reaches only
the outputs whose windows read it, and each output's rounding error is bounded by its own
window, ``|e_p| <= gamma_K sum_t |w_t| |x_{p+t}|`` (``gamma_K ~ K u``, ``u`` the unit
roundoff). The fast algorithms do not: the FFT mixes a whole block of a sample, so one NaN
or Inf makes the whole block NaN, and its error scales with the block's norm,
``|e_p| <~ c u log2(L) ||x_block||_2 ||w||_1`` — one value of 1e8 in a block shifts outputs
that never read it by ~1 (measured: 0.75 on values near 3). Winograd mixes a tile the same
way. An Inf weight comes out NaN (``Inf - Inf`` in the transforms) where torch gives Inf.

So each algorithm says what it keeps (``algorithm.numerics(p)``: :data:`NATIVE`,
:data:`FINITE_WEIGHTS` or :data:`CHECKED`), and when ``"auto"`` picks one that does not keep
native's numerics for the problem, it runs it behind cheap checks (:func:`run_checked`), and
falls back to native — the op's own native: a transposed conv's is torch's ``conv_transpose``
— when one fails (for :data:`FINITE_WEIGHTS` only the first check's weight part applies):

- before the forward: the weight is finite, and every sample of the input is finite and
  *well scaled* (:func:`well_scaled`): its root-mean-square is at most
  :data:`DYNAMIC_RANGE` times its mean absolute value. Then the block norm the fast
  algorithm's error scales with, ``sqrt(n) rms(x_n)``, is within that factor of what
  windows of the sample's typical magnitude hold, and the error at each output is within
  ``DYNAMIC_RANGE * log2(L)`` of native's bound for such windows. A spike (one value of 1e8
  among unit values: ratio ~360), a non-finite value (the norm is NaN/Inf) or a very sparse
  input (fewer than ~2.5% non-zero values) fails the check.
- before the backward: the same check on the incoming gradient (the input gradient is a
  convolution of it); when it fails, the gradients are native's.

The checks are two fused reductions over the input (and one over the gradient): about 1%
of an FFT convolution's time on the large-kernel shapes where ``"auto"`` picks it (measured
in ``benchmarks/auto.py --contract``). Under ``create_graph=True`` the backward is native's
(differentiable, with native's pattern), so second derivatives through ``"auto"`` are exact.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from .problem import Problem

__all__ = [
    "CHECKED",
    "DYNAMIC_RANGE",
    "FINITE_WEIGHTS",
    "NATIVE",
    "bounded",
    "no_implicit_zeros",
    "run_checked",
    "well_scaled",
]

#: What an algorithm's ``numerics(problem)`` says, from the best to the least:
#: native's NaN/Inf pattern and native's form of error bound on every input;
NATIVE = "native"
#: the same for any input, but a NaN/Inf *weight* may reach other outputs than native's (it
#: meets materialised padding or inserted zeros): ``"auto"`` checks only that the weight is finite;
FINITE_WEIGHTS = "finite-weights"
#: neither (the error scales with a block's or tile's norm, NaN/Inf fill it): ``"auto"`` checks
#: the input, the weight and the incoming gradient.
CHECKED = "checked"

#: Largest ratio of root-mean-square to mean absolute value per sample that ``"auto"`` hands
#: to an algorithm whose error scales with a block's norm (unit-normal data: 1.25; half of
#: the values zero, as after a ReLU: ~1.8; 1% non-zero: 12.5).
DYNAMIC_RANGE = 8.0


def no_implicit_zeros(p: Problem) -> bool:
    """Whether a padding-by-copy algorithm multiplies only real inputs on ``p``: no zero padding
    and no zero insertion (transposed convs with a stride).

    torch's kernels skip padding and inserted zeros; an algorithm that materialises them
    computes ``Inf * 0 = NaN`` there when a weight is infinite (and spreads a NaN weight to
    outputs torch's kernels never touch with it).
    """
    return all(b == 0 and a == 0 for b, a in p.padding) and all(f == 1 for f in p.input_dilation)


def bounded(t: Tensor) -> bool:
    """Whether ``t`` is finite with a finite Euclidean norm (no NaN, no Inf, no overflow)."""
    return t.numel() == 0 or bool(torch.isfinite(torch.linalg.vector_norm(t)))


def well_scaled(t: Tensor) -> bool:
    """Whether every sample (dim 0) of ``t`` is finite with ``rms <= DYNAMIC_RANGE * mean |t|``.

    Shape:
        t: ``[N, *]``; each of the ``N`` samples is checked on its own.
    """
    if t.numel() == 0:
        return True
    dims = tuple(range(1, t.dim()))
    # float64 ratios: squares of float32 norms overflow from 1.8e19, which the check must
    # refuse (as unbounded), not pass (inf <= inf)
    l1 = torch.linalg.vector_norm(t, 1, dims).double()
    l2 = torch.linalg.vector_norm(t, 2, dims).double()
    n = t[0].numel()
    ok = torch.isfinite(l2).all() & (l2 * l2 * n <= DYNAMIC_RANGE**2 * l1 * l1).all()
    return bool(ok)


Runner = Callable[[Tensor, Tensor, Optional[Tensor]], Tensor]


def run_checked(
    fast: Runner, native: Runner, x: Tensor, weight: Tensor, bias: Optional[Tensor], ndim: int, level: str
) -> Tensor:
    """Run ``fast`` as ``"auto"`` does: behind the checks its numerics ``level`` needs, ``native``
    otherwise.

    Args:
        fast: ``(x, weight, bias) -> y``, the picked algorithm on the op's operands.
        native: the same op by torch's own kernels (native's NaN/Inf pattern by definition).
        x (Tensor[N, C_in, *spatial]), weight, bias: the operands as the op received them
            (``weight`` in the op's own layout: transposed convs keep torch's).
        ndim: number of spatial dims.
        level: the algorithm's :data:`FINITE_WEIGHTS` or :data:`CHECKED`.

    Returns:
        Tensor[N, C_out, *out]: ``fast``'s result when the checks pass, ``native``'s otherwise.
    """
    if not bounded(weight):
        return native(x, weight, bias)
    if level == FINITE_WEIGHTS:
        return fast(x, weight, bias)
    if not well_scaled(x):
        return native(x, weight, bias)
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        y = _CheckedBackward.apply(x, weight, fast, native)
        return y if bias is None else y + bias.view(-1, *([1] * ndim))
    return fast(x, weight, bias)


class _CheckedBackward(torch.autograd.Function):
    """``fast``'s forward and backward, with ``native``'s backward when the incoming gradient
    fails :func:`well_scaled` or a graph of the backward is asked for (``create_graph``).

    Used only by ``"auto"`` in plain eager mode (never under a tracer or a functorch transform,
    where ``"auto"`` is native), so an old-style Function suffices.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, fast: Runner, native: Runner) -> Tensor:  # type: ignore[override]
        ctx.native = native
        with torch.enable_grad():
            xi = x.detach().requires_grad_(ctx.needs_input_grad[0])
            wi = weight.detach().requires_grad_(ctx.needs_input_grad[1])
            y = fast(xi, wi, None)
        ctx.inner = (y, xi, wi)
        ctx.save_for_backward(x, weight)
        return y.detach()

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        wanted = ctx.needs_input_grad[:2]
        inner, ctx.inner = ctx.inner, None  # the algorithm's graph serves one backward; free it
        create_graph = torch.is_grad_enabled()
        if inner is not None and not create_graph and well_scaled(g):
            y, xi, wi = inner
            grads = iter(torch.autograd.grad(y, [t for t, n in zip((xi, wi), wanted) if n], g))
        else:
            with torch.enable_grad():
                if create_graph:  # differentiate native's backward: exact second derivatives
                    xn, wn = x, weight
                else:
                    xn = x.detach().requires_grad_(wanted[0])
                    wn = weight.detach().requires_grad_(wanted[1])
                yn = ctx.native(xn, wn, None)
            targets = [t for t, n in zip((xn, wn), wanted) if n]
            grads = iter(torch.autograd.grad(yn, targets, g, create_graph=create_graph))
        gx = next(grads) if wanted[0] else None
        gw = next(grads) if wanted[1] else None
        return gx, gw, None, None
