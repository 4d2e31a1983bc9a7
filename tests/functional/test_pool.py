"""Pooling against torch (values, indices, gradients), against loop references, and by gradcheck."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import convolab.functional as CF
from convolab import arithmetic
from tests._reference import adaptive_pool_loop, pool_loop, same_pads_tf

from convolab.functional import pooling as pool_module

TORCH_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
TORCH_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
TORCH_LP = {1: F.lp_pool1d, 2: F.lp_pool2d, 3: F.lp_pool3d}
TORCH_ADAPTIVE = {
    ("max", 1): F.adaptive_max_pool1d, ("max", 2): F.adaptive_max_pool2d, ("max", 3): F.adaptive_max_pool3d,
    ("avg", 1): F.adaptive_avg_pool1d, ("avg", 2): F.adaptive_avg_pool2d, ("avg", 3): F.adaptive_avg_pool3d,
}
OURS_MAX = {1: CF.max_pool1d, 2: CF.max_pool2d, 3: CF.max_pool3d}
OURS_AVG = {1: CF.avg_pool1d, 2: CF.avg_pool2d, 3: CF.avg_pool3d}
OURS_LP = {1: CF.lp_pool1d, 2: CF.lp_pool2d, 3: CF.lp_pool3d}
SIZES = {1: (11,), 2: (7, 8), 3: (5, 6, 5)}
KERNELS = {1: (3,), 2: (3, 2), 3: (2, 3, 3)}


def _x(nd, batch=2, channels=3, size=None, dtype=torch.float64):
    # a permutation keeps every value distinct: no ties, so argmax and max's gradient are unique
    shape = (batch, channels, *(size or SIZES[nd]))
    return (torch.randperm(math.prod(shape)).to(dtype) / 7.0 - 3.0).reshape(shape)


def _compare(ours, ref, x, tol=1e-9):
    """Outputs (and indices) and input gradients of two pooling functions of the same input."""
    a, b = x.detach().clone().requires_grad_(True), x.detach().clone().requires_grad_(True)
    y, r = ours(a), ref(b)
    if isinstance(r, tuple):
        torch.testing.assert_close(y[1], r[1], rtol=0, atol=0)
        y, r = y[0], r[0]
    assert y.shape == r.shape
    torch.testing.assert_close(y, r, rtol=tol, atol=tol)
    g = torch.randn_like(r)
    y.backward(g)
    r.backward(g)
    torch.testing.assert_close(a.grad, b.grad, rtol=tol, atol=tol)


@pytest.fixture
def general_path(monkeypatch):
    """Force the explicit-padding path even where torch's kernel would accept the padding."""
    monkeypatch.setattr(pool_module, "_torch_accepts", lambda pads, kernel: False)


# --- max pooling -------------------------------------------------------------------------------

# return_indices=True compares values, indices and gradients at once; False is the same kernel call
MAX_GRID = list(itertools.product([1, 2, 3], [None, 1, 2], [0, 1], [1, 2], [False, True], [True]))
MAX_GRID += [(nd, 1, 1, 1, False, False) for nd in (1, 2, 3)]


@pytest.mark.parametrize("path", ["torch", "general"])
@pytest.mark.parametrize("nd,stride,padding,dilation,ceil_mode,return_indices", MAX_GRID)
def test_max_pool_matches_torch(request, path, nd, stride, padding, dilation, ceil_mode, return_indices):
    if path == "general":
        request.getfixturevalue("general_path")
    k = KERNELS[nd]
    args = (k, stride, padding, dilation, ceil_mode, return_indices)
    x = _x(nd)
    _compare(lambda t: CF.max_pool(t, *args), lambda t: TORCH_MAX[nd](t, *args), x)
    if path == "torch":  # the fixed-rank wrapper only forwards its arguments
        _compare(lambda t: OURS_MAX[nd](t, *args), lambda t: TORCH_MAX[nd](t, *args), x)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("padding", [((0, 1),), ((1, 0),), "same", ((1, 1),)])
@pytest.mark.parametrize("stride,dilation,ceil_mode", [(1, 1, False), (2, 1, True), (2, 1, False), (3, 2, True)])
def test_max_pool_asymmetric_matches_loop(nd, padding, stride, dilation, ceil_mode):
    k = (3,) * nd
    pads = padding if isinstance(padding, str) else padding * nd
    x = _x(nd, batch=1, channels=2)
    if pads == "same":
        pads_ref = [same_pads_tf(s, kk, stride, dilation) for s, kk in zip(x.shape[2:], k)]
    else:
        pads_ref = list(pads)
    y, i = CF.max_pool(x, k, stride, pads, dilation, ceil_mode, return_indices=True)
    ref, ref_i = pool_loop(x.numpy(), k, stride, pads_ref, dilation, ceil_mode, mode="max")
    np.testing.assert_allclose(y.numpy(), ref, rtol=0, atol=0)
    np.testing.assert_array_equal(i.numpy(), ref_i)


def test_max_pool_dilated_padding_beyond_torch():
    # torch refuses padding > kernel/2 even when it is at most half the dilated window
    x = _x(2, size=(9, 9))
    with pytest.raises(RuntimeError):
        F.max_pool2d(x, 3, 1, 2, 2)
    y, i = CF.max_pool2d(x, 3, 1, 2, 2, return_indices=True)
    ref, ref_i = pool_loop(x.numpy(), (3, 3), 1, 2, 2, mode="max")
    np.testing.assert_allclose(y.numpy(), ref)
    np.testing.assert_array_equal(i.numpy(), ref_i)


def test_max_pool_same_with_stride_indices_address_the_input():
    x = _x(2, size=(10, 11))
    y, i = CF.max_pool2d(x, 3, 2, "same", return_indices=True)
    assert y.shape[2:] == (5, 6)
    # flat indices over the unpadded input: gathering them from the input gives the maxima back
    torch.testing.assert_close(x.flatten(2).gather(2, i.flatten(2)), y.flatten(2))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_gradcheck(nd):
    x = _x(nd, batch=1, channels=2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: CF.max_pool(t, 3, 2, "same"), (x,))
    assert torch.autograd.gradcheck(lambda t: CF.max_pool(t, 2, 1, 1, 1, True), (x,))


# --- average pooling ---------------------------------------------------------------------------

AVG_GRID = [  # count_include_pad only matters with padding
    case
    for case in itertools.product([1, 2, 3], [None, 2], [0, 1], [False, True], [False, True], [None, 2])
    if case[2] or case[4]
]
AVG_GRID += [(nd, 1, 1, ceil, True, None) for nd in (1, 2, 3) for ceil in (False, True)]


@pytest.mark.parametrize("path", ["torch", "general"])
@pytest.mark.parametrize("nd,stride,padding,ceil_mode,count_include_pad,divisor", AVG_GRID)
def test_avg_pool_matches_torch(request, path, nd, stride, padding, ceil_mode, count_include_pad, divisor):
    if path == "general":
        request.getfixturevalue("general_path")
    k = KERNELS[nd]
    x = _x(nd)
    args = (k, stride, padding, ceil_mode, count_include_pad)
    if nd == 1:  # torch's avg_pool1d has no divisor_override: compare with the 2-D op on a unit dim
        def ref(t):
            return F.avg_pool2d(
                t.unsqueeze(-2), (1, *k), (1, stride or k[0]), (0, padding), ceil_mode, count_include_pad, divisor
            ).squeeze(-2)
    else:
        def ref(t):
            return TORCH_AVG[nd](t, *args, divisor)
    _compare(lambda t: CF.avg_pool(t, *args, divisor), ref, x)
    if path == "torch":
        _compare(lambda t: OURS_AVG[nd](t, *args, divisor), ref, x)
    if divisor is None:
        _compare(lambda t: OURS_AVG[nd](t, *args), lambda t: TORCH_AVG[nd](t, *args), x)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("padding", [((0, 1),), ((1, 0),), "same"])
@pytest.mark.parametrize("stride,ceil_mode", [(1, False), (2, True), (2, False), (3, True)])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_asymmetric_matches_loop(nd, padding, stride, ceil_mode, count_include_pad):
    k = (3,) * nd
    x = _x(nd, batch=1, channels=2)
    pads = padding if isinstance(padding, str) else padding * nd
    pads_ref = [same_pads_tf(s, 3, stride, 1) for s in x.shape[2:]] if pads == "same" else list(pads)
    y = CF.avg_pool(x, k, stride, pads, ceil_mode, count_include_pad)
    ref, _ = pool_loop(x.numpy(), k, stride, pads_ref, 1, ceil_mode, "avg", count_include_pad)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12, atol=1e-12)


def test_avg_pool_asymmetric_equals_explicit_zero_padding():
    # with count_include_pad the padded zeros are ordinary elements: torch on an explicitly padded input
    x = _x(2, size=(10, 11))
    y = CF.avg_pool2d(x, 3, 2, "same")
    (t, b), (l, r) = [same_pads_tf(s, 3, 2, 1) for s in (10, 11)]
    torch.testing.assert_close(y, F.avg_pool2d(F.pad(x, (l, r, t, b)), 3, 2))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_avg_pool_gradcheck(nd):
    x = _x(nd, batch=1, channels=2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: CF.avg_pool(t, 3, 2, "same", count_include_pad=False), (x,))
    assert torch.autograd.gradcheck(lambda t: CF.avg_pool(t, 2, 1, 1, True, True, 3), (x,))


# --- Lp pooling --------------------------------------------------------------------------------


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("p", [1, 2, 3.5, math.inf, -math.inf])
@pytest.mark.parametrize("stride", [None, 1])
def test_lp_pool_matches_torch(nd, p, stride):
    x = _x(nd).abs() + 0.5  # positive: x**3.5 of negatives is NaN in torch and here alike
    k = 2 if nd == 1 else KERNELS[nd]
    _compare(lambda t: CF.lp_pool(t, p, k, stride), lambda t: TORCH_LP[nd](t, p, k, stride), x)
    _compare(lambda t: OURS_LP[nd](t, p, k, stride), lambda t: TORCH_LP[nd](t, p, k, stride), x)


def test_lp_pool_ceil_mode_sums_the_partial_window():
    x = _x(2, size=(5, 5)).abs()
    y = CF.lp_pool2d(x, 2, 2, ceil_mode=True)
    ref, _ = pool_loop(x.numpy(), (2, 2), None, 0, 1, True, "lp", reduce=2)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12)
    # full windows agree with torch; torch extrapolates the partial ones from their mean
    theirs = F.lp_pool2d(x, 2, 2, ceil_mode=True)
    torch.testing.assert_close(y[..., :2, :2], theirs[..., :2, :2])
    # the corner window holds one element: we return |x|, torch sqrt(4 x^2) = 2|x|
    torch.testing.assert_close(y[..., 2, 2], x[..., 4, 4].abs())
    torch.testing.assert_close(theirs[..., 2, 2], 2 * x[..., 4, 4].abs())


def test_lp_pool_gradcheck():
    x = (_x(2, batch=1, channels=2).abs() + 0.5).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: CF.lp_pool(t, 3, 2, 1), (x,))


# --- adaptive and global -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("out", [1, 2, 3, 7])
def test_adaptive_matches_torch_and_loop(mode, nd, out):
    x = _x(nd)
    size = (out,) * nd
    ours = CF.adaptive_max_pool if mode == "max" else CF.adaptive_avg_pool
    wrapped = getattr(CF, f"adaptive_{mode}_pool{nd}d")
    torch_fn = TORCH_ADAPTIVE[mode, nd]
    _compare(lambda t: ours(t, size), lambda t: torch_fn(t, size), x)
    _compare(lambda t: wrapped(t, out), lambda t: torch_fn(t, out), x)
    np.testing.assert_allclose(ours(x, size).numpy(), adaptive_pool_loop(x.numpy(), size, mode), rtol=1e-12)
    if mode == "max":
        _compare(lambda t: ours(t, size, True), lambda t: torch_fn(t, size, True), x)


def test_adaptive_none_keeps_dim_and_gradcheck():
    x = _x(2, batch=1, channels=2).requires_grad_(True)
    assert CF.adaptive_avg_pool(x, (None, 3)).shape == (1, 2, 7, 3)
    assert torch.autograd.gradcheck(lambda t: CF.adaptive_max_pool(t, (3, 5)), (x,))
    assert torch.autograd.gradcheck(lambda t: CF.adaptive_avg_pool(t, (3, 5)), (x,))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_global_pools(nd):
    x = _x(nd)
    dims = tuple(range(2, 2 + nd))
    torch.testing.assert_close(CF.global_max_pool(x), x.amax(dims))
    torch.testing.assert_close(CF.global_avg_pool(x, keepdim=True), x.mean(dims, keepdim=True))
    torch.testing.assert_close(CF.global_avg_pool(x, keepdim=True), F.adaptive_avg_pool2d(x, 1) if nd == 2 else x.mean(dims, keepdim=True))
    xg = x[:1, :2].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(CF.global_max_pool, (xg,))
    assert torch.autograd.gradcheck(CF.global_avg_pool, (xg,))


# --- generic pooling ---------------------------------------------------------------------------


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("stride,padding,dilation", [(None, 0, 1), (1, 1, 1), (2, 1, 2), (1, 1, 2)])
def test_generic_pool_max_and_mean_match_torch(nd, stride, padding, dilation):
    k = KERNELS[nd]
    x = _x(nd)
    _compare(
        lambda t: CF.pool(t, k, stride, padding, reduce="max", dilation=dilation),
        lambda t: TORCH_MAX[nd](t, k, stride, padding, dilation),
        x,
    )
    # the callable route (a copy of the windows, reduced over one dim) agrees too
    _compare(
        lambda t: CF.pool(t, k, stride, padding, reduce=torch.amax, dilation=dilation, pad_value=-math.inf),
        lambda t: TORCH_MAX[nd](t, k, stride, padding, dilation),
        x,
    )
    if dilation == 1:
        _compare(
            lambda t: CF.pool(t, k, stride, padding, reduce="mean"),
            lambda t: TORCH_AVG[nd](t, k, stride, padding),
            x,
        )
        _compare(
            lambda t: CF.pool(t, k, stride, padding, reduce=torch.mean),
            lambda t: TORCH_AVG[nd](t, k, stride, padding),
            x,
        )


def _softmax_pool(w, dim):
    return (w.softmax(dim) * w).sum(dim)


def _np_softmax_pool(v):
    e = np.exp(v - v.max())
    return float((e / e.sum() * v).sum())


@pytest.mark.parametrize(
    "reduce,ref",
    [
        (torch.logsumexp, lambda v: float(np.log(np.exp(v).sum()))),
        (_softmax_pool, _np_softmax_pool),
        (torch.median, lambda v: float(np.sort(v)[(len(v) - 1) // 2])),  # a namedtuple result
        (lambda w, dim: w.select(dim, 1) - 2 * w.select(dim, -1), lambda v: v[1] - 2 * v[-1]),  # row-major order
        ("min", np.min),
        ("sum", np.sum),
    ],
)
def test_generic_pool_any_reduction_matches_loop(reduce, ref):
    x = _x(2, batch=1, channels=2, size=(6, 7))
    pad_value = math.inf if reduce == "min" else 0.0
    y = CF.pool(x, (3, 2), (2, 1), ((1, 1), (0, 1)), reduce=reduce)
    expected, _ = pool_loop(x.numpy(), (3, 2), (2, 1), [(1, 1), (0, 1)], mode="reduce", reduce=ref, pad_value=pad_value)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("reduce", ["max", "mean", torch.logsumexp, _softmax_pool])
def test_generic_pool_gradcheck(reduce):
    x = _x(2, batch=1, channels=2, size=(5, 6)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: CF.pool(t, 3, 2, "same", reduce=reduce), (x,))


# --- spatial pyramid pooling -------------------------------------------------------------------


@pytest.mark.parametrize("size", [(13, 13), (10, 17), (4, 4), (1, 2), (30, 9)])
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_spp_adaptive_fixed_length_and_values(size, mode):
    x = torch.randn(2, 5, *size, dtype=torch.float64)
    levels = (1, 2, 4)
    y = CF.spatial_pyramid_pool(x, levels, mode)
    assert y.shape == (2, arithmetic.spp_features(5, levels))
    pieces = [adaptive_pool_loop(x.numpy(), (n, n), mode).reshape(2, -1) for n in levels]
    np.testing.assert_allclose(y.numpy(), np.concatenate(pieces, axis=1), rtol=1e-12)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_spp_paper_bins_on_the_papers_13x13(mode):
    x = torch.randn(1, 4, 13, 13, dtype=torch.float64)
    levels = (3, 2, 1, 6)
    y = CF.spatial_pyramid_pool(x, levels, mode, bins="paper")
    pieces = []
    for n in levels:  # window ceil(13/n), stride floor(13/n), written out
        win, st = math.ceil(13 / n), 13 // n
        fn = F.max_pool2d if mode == "max" else F.avg_pool2d
        pieces.append(fn(x, win, st).flatten(1))
    torch.testing.assert_close(y, torch.cat(pieces, 1))
    assert y.shape == (1, 4 * (9 + 4 + 1 + 36))


@pytest.mark.parametrize("nd", [1, 3])
def test_spp_other_ranks(nd):
    x = torch.randn(2, 3, *((6,) * nd))
    assert CF.spatial_pyramid_pool(x, (1, 2)).shape == (2, arithmetic.spp_features(3, (1, 2), nd))
    assert CF.spatial_pyramid_pool(x, (1, 2), "avg", bins="paper").shape == (2, 3 * (1 + 2**nd))


def test_spp_gradcheck():
    x = _x(2, batch=1, channels=2, size=(6, 7)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: CF.spatial_pyramid_pool(t, (1, 2, 3)), (x,))
    assert torch.autograd.gradcheck(lambda t: CF.spatial_pyramid_pool(t, (1, 2), "avg", bins="paper"), (x,))


def test_spp_errors():
    x = torch.randn(1, 2, 3, 7)
    with pytest.raises(ValueError, match=r"spatial_pyramid_pool: pyramid level 4 is larger than the input \(3\) along dim 2"):
        CF.spatial_pyramid_pool(x, (1, 4), bins="paper")
    with pytest.raises(ValueError, match=r"level 4 on an input of 7 along dim 3 .* give 6 bins, not 4"):
        CF.spatial_pyramid_pool(torch.randn(1, 2, 8, 7), (4,), bins="paper")
    with pytest.raises(ValueError, match=r"spatial_pyramid_pool: mode must be one of 'max', 'avg', got 'mean'"):
        CF.spatial_pyramid_pool(x, mode="mean")
    with pytest.raises(ValueError, match=r"bins must be one of 'adaptive', 'paper', got 'papers'; did you mean 'paper'"):
        CF.spatial_pyramid_pool(x, bins="papers")
    with pytest.raises(ValueError, match=r"levels must be a non-empty sequence"):
        CF.spatial_pyramid_pool(x, ())
    with pytest.raises(ValueError, match=r"levels must be >= 1"):
        CF.spatial_pyramid_pool(x, (1, 0))
    with pytest.raises(ValueError, match=r"expected input \[N, C, \*spatial\] with 1-3 spatial dims"):
        CF.spatial_pyramid_pool(torch.randn(2, 3))


# --- edge cases --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        lambda t: CF.max_pool(t, 2),
        lambda t: CF.max_pool(t, 3, 2, "same"),
        lambda t: CF.avg_pool(t, 3, 2, "same"),
        lambda t: CF.avg_pool(t, 2, 1, 1, True, False),
        lambda t: CF.lp_pool(t, 2, 2),
        lambda t: CF.pool(t, 3, 2, 1, reduce=torch.logsumexp),
        lambda t: CF.adaptive_max_pool(t, 3),
        lambda t: CF.global_avg_pool(t),
        lambda t: CF.spatial_pyramid_pool(t),
    ],
)
def test_batch_zero_and_non_contiguous(fn):
    empty = torch.randn(0, 3, 8, 9)
    assert fn(empty).shape[0] == 0
    x = torch.randn(2, 9, 8, 3).permute(0, 3, 2, 1)  # [2, 3, 8, 9], not contiguous
    assert not x.is_contiguous()
    torch.testing.assert_close(fn(x), fn(x.contiguous()))
    cl = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fn(cl), fn(x.contiguous()))


def test_unbatched_wrappers_match_batched():
    x = _x(2, batch=1)
    for fn in (
        lambda t: CF.max_pool2d(t, 3, 2, "same"),
        lambda t: CF.avg_pool2d(t, 3, 2, ((1, 0), (0, 1))),
        lambda t: CF.lp_pool2d(t.abs(), 2, 2),
        lambda t: CF.adaptive_avg_pool2d(t, 2),
        lambda t: CF.max_pool(t, (2, 2)),  # per-dim kernel fixes 2 spatial dims on an unbatched input
    ):
        torch.testing.assert_close(fn(x[0]), fn(x)[0])
    y, i = CF.max_pool2d(x[0], 3, 2, "same", return_indices=True)
    torch.testing.assert_close(i, CF.max_pool2d(x, 3, 2, "same", return_indices=True)[1][0])


def test_kernel_equal_to_padded_input():
    x = _x(2, size=(3, 4))
    torch.testing.assert_close(CF.max_pool2d(x, (5, 4), padding=((1, 1), (0, 0))), x.amax((2, 3), keepdim=True))


# --- errors ------------------------------------------------------------------------------------


def test_errors():
    x = torch.randn(1, 2, 5, 5)
    with pytest.raises(ValueError, match=r"max_pool2d: padding \(2, 2\) along dim 2 must be at most half the effective kernel size \(3 // 2 = 1\)"):
        CF.max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match=r"avg_pool: padding \(0, 2\) along dim 3 must be at most half"):
        CF.avg_pool(x, 3, padding=((0, 0), (0, 2)))
    with pytest.raises(ValueError, match=r"max_pool2d: output size would be 0 along dim 3 \(in=5, kernel=7"):
        CF.max_pool2d(x, (1, 7))
    with pytest.raises(ValueError, match=r"max_pool2d: stride must be >= 1 in every dim, got 0"):
        CF.max_pool2d(x, 2, 0)
    with pytest.raises(ValueError, match=r"max_pool2d: kernel_size must be an int or a sequence of 2 ints"):
        CF.max_pool2d(x, (2, 2, 2))
    with pytest.raises(ValueError, match=r"max_pool3d: expected input of rank 5 \(\[N, C, \*spatial\]\) or 4 \(unbatched\) for 3 spatial dims, got rank 3"):
        CF.max_pool3d(torch.randn(2, 3, 4), 2)
    with pytest.raises(ValueError, match=r"max_pool: expected input \[N, C, \*spatial\] with 1-3 spatial dims, got shape \[2, 3\]"):
        CF.max_pool(torch.randn(2, 3), 2)
    with pytest.raises(TypeError, match=r"avg_pool: input must be a torch.Tensor, got list"):
        CF.avg_pool([1.0, 2.0], 2)
    with pytest.raises(ValueError, match=r"avg_pool2d: divisor_override must be None or a non-zero int, got 0"):
        CF.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match=r"lp_pool2d: norm_type must be a non-zero number \(the power p\), got 0"):
        CF.lp_pool2d(x, 0, 2)
    with pytest.raises(ValueError, match=r"adaptive_max_pool2d: output_size must be 2 ints >= 1 \(or None to keep that dim\), got \(2, 0\)"):
        CF.adaptive_max_pool2d(x, (2, 0))
    with pytest.raises(ValueError, match=r"adaptive_avg_pool: spatial dims must be non-empty"):
        CF.adaptive_avg_pool(torch.randn(1, 2, 0, 3), 2)
    with pytest.raises(TypeError, match=r"adaptive_avg_pool2d: input dtype must be floating \(float16, bfloat16, float32 or float64\), got torch.int64"):
        CF.adaptive_avg_pool2d(torch.arange(25).view(1, 1, 5, 5), 2)
    with pytest.raises(TypeError, match=r"global_avg_pool: input dtype must be floating .*, got torch.int32"):
        CF.global_avg_pool(torch.ones(1, 2, 3, dtype=torch.int32))
    ints = torch.arange(25).view(1, 1, 5, 5)  # integer max pooling works, padding included
    assert CF.max_pool2d(ints, 3, 2, "same").tolist() == [[[[6, 8, 9], [16, 18, 19], [21, 23, 24]]]]
    four = torch.arange(16).view(1, 1, 4, 4)  # asymmetric (0, 1): padded with the dtype's minimum
    assert CF.max_pool2d(four, 3, 2, "same").tolist() == [[[[10, 11], [14, 15]]]]
    with pytest.raises(ValueError, match=r"global_max_pool: expected input \[N, C, \*spatial\] with at least one spatial dim"):
        CF.global_max_pool(torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"pool: reduce must be one of 'max', 'min', 'mean', 'sum', got 'maxx'; did you mean 'max'"):
        CF.pool(x, 2, reduce="maxx")
    with pytest.raises(TypeError, match=r"pool: reduce must be a reduction name or a callable, got int"):
        CF.pool(x, 2, reduce=3)
    with pytest.raises(ValueError, match=r"pool: reduce must return the pooled shape \[1, 2, 2, 2\] when called as reduce\(windows, dim=-1\), got \[1, 2, 2, 2, 4\]"):
        CF.pool(x, 2, reduce=lambda w, dim: w * 2)
    with pytest.raises(ValueError, match=r"max_pool: padding must be an int, a tuple, per-side pairs, 'same' or 'valid', got 'sam'; did you mean 'same'"):
        CF.max_pool(x, 2, padding="sam")


@pytest.mark.parametrize("padding", [1, ((1, 0), (0, 1))])
def test_avg_pool_accepts_any_nonzero_divisor_like_torch(padding):
    """torch divides by any non-zero divisor_override, negative ones included (its OpInfo samples use -2)."""
    x = torch.randn(2, 3, 6, 7)
    y = CF.avg_pool2d(x, 3, 2, padding, divisor_override=-2)
    sums = CF.avg_pool2d(x, 3, 2, padding, divisor_override=1)
    torch.testing.assert_close(y, sums / -2)
    if padding == 1:
        torch.testing.assert_close(y, torch.nn.functional.avg_pool2d(x, 3, 2, 1, divisor_override=-2))
