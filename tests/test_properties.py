"""Properties the classic texts state: convolutions are translation-equivariant, max pooling is approximately
invariant to small shifts, and the separable variants save parameters by the expected factors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import convolab.functional as CF
from convolab import arithmetic


def _w(*shape):
    return torch.randn(*shape, dtype=torch.float64)


# Every variant at stride 1 with no padding: a shift of the input shifts the output by as much.
VARIANTS_2D = {
    "conv": lambda x: CF.conv2d(x, W["dense"]),
    "dilated conv": lambda x: CF.conv2d(x, W["dense"], dilation=2),
    "grouped conv": lambda x: CF.conv2d(x, W["grouped"], groups=2),
    "depthwise conv": lambda x: CF.conv2d(x, W["depthwise"], groups=4),
    "1x1 conv": lambda x: CF.conv2d(x, W["pointwise"]),
    "group conv + shuffle": lambda x: CF.conv2d(CF.channel_shuffle(CF.conv2d(x, W["grouped1x1"], groups=2), 2), W["grouped1x1"], groups=2),
    "transposed conv (interior)": lambda x: CF.conv_transpose2d(x, W["dense"].transpose(0, 1))[..., 2:-2, 2:-2],
    "depthwise separable": lambda x: CF.depthwise_separable_conv(x, W["depthwise"], W["pointwise"]),
    "spatially separable": lambda x: CF.spatially_separable_conv(x, [W["col"], W["row"]]),
    "flattened": lambda x: CF.flattened_conv(x, W["pointwise"], [W["col_dw"], W["row_dw"]]),
    "max pool (stride 1)": lambda x: CF.max_pool2d(x, 3, 1),
    "avg pool (stride 1)": lambda x: CF.avg_pool2d(x, 3, 1),
    "generic pool (stride 1)": lambda x: CF.pool(x, 2, 1, reduce=torch.logsumexp),
}
torch.manual_seed(1)
W = {
    "dense": _w(5, 4, 3, 3),
    "grouped": _w(6, 2, 3, 3),
    "grouped1x1": _w(4, 2, 1, 1),
    "depthwise": _w(4, 1, 3, 3),
    "pointwise": _w(4, 4, 1, 1),
    "col": _w(4, 4, 3, 1),
    "row": _w(4, 4, 1, 3),
    "col_dw": _w(4, 1, 3, 1),
    "row_dw": _w(4, 1, 1, 3),
}


@pytest.mark.parametrize("name", list(VARIANTS_2D))
@settings(max_examples=8, deadline=None)
@given(dy=st.integers(0, 3), dx=st.integers(0, 3))
def test_translation_equivariance(name, dy, dx):
    f = VARIANTS_2D[name]
    big = torch.randn(1, 4, 12 + dy, 12 + dx, dtype=torch.float64)
    base, shifted = big[..., :12, :12], big[..., dy : dy + 12, dx : dx + 12]
    y, ys = f(base), f(shifted)
    # shifted[p] = base[p + d], so ys[p] = y[p + d] wherever both are defined
    torch.testing.assert_close(ys[..., : y.shape[-2] - dy, : y.shape[-1] - dx], y[..., dy:, dx:])


@pytest.mark.parametrize("nd", [1, 3])
def test_equivariance_in_1d_and_3d(nd):
    x = torch.randn(1, 2, *(9,) * nd, dtype=torch.float64)
    w, dw, pw = _w(3, 2, *(3,) * nd), _w(2, 1, *(3,) * nd), _w(3, 2, *(1,) * nd)
    shift = (slice(None), slice(None), *(slice(1, None),) * nd)  # by one along every spatial dim
    for f in (
        lambda t: CF.conv(t, w),
        lambda t: CF.conv(t, w, dilation=2),
        lambda t: CF.max_pool(t, 2, 1),
        lambda t: CF.depthwise_separable_conv(t, dw, pw),
    ):
        torch.testing.assert_close(f(x[shift]), f(x)[shift])


def test_strided_ops_are_equivariant_to_shifts_by_the_stride():
    x = torch.randn(1, 2, 16, 16, dtype=torch.float64)
    y = CF.max_pool2d(x, 2)
    torch.testing.assert_close(CF.max_pool2d(x[..., 2:, 2:], 2), y[..., 1:, 1:])  # shift 2 -> output shift 1
    assert not torch.equal(CF.max_pool2d(x[..., 1:15, 1:15], 2), y[..., :7, :7])  # shift 1 is not a shift


def test_max_pooling_is_invariant_to_small_shifts():
    # four features, one in each 4x4 pooling cell
    x = torch.zeros(1, 1, 8, 8)
    for (i, j), v in {(1, 1): 5.0, (1, 5): 3.0, (5, 2): 4.0, (6, 6): 2.0}.items():
        x[0, 0, i, j] = v
    pooled = CF.max_pool2d(x, 4)
    assert pooled.flatten().tolist() == [5.0, 3.0, 4.0, 2.0]
    for dy, dx in [(1, 1), (0, 1), (1, 0), (-1, 0)]:
        moved = torch.roll(x, (dy, dx), dims=(2, 3))  # each feature stays inside its cell
        assert torch.equal(CF.max_pool2d(moved, 4), pooled)
        # the convolution's output moves with the input: equivariant, not invariant
        w = torch.ones(1, 1, 3, 3)
        assert not torch.equal(CF.conv2d(moved, w, padding=1), CF.conv2d(x, w, padding=1))
    # only approximately: a shift that carries a feature into the next cell changes the output
    assert not torch.equal(CF.max_pool2d(torch.roll(x, 3, dims=3), 4), pooled)


def test_larger_windows_are_more_shift_invariant():
    x = torch.randn(1, 1, 40, 40)
    moved = torch.roll(x, 1, dims=3)

    def unchanged(f):
        a, b = f(x)[..., 2:-2, 2:-2], f(moved)[..., 2:-2, 2:-2]  # away from the wrapped border
        return (a == b).float().mean().item()

    conv = unchanged(lambda t: CF.conv2d(t, torch.randn(1, 1, 3, 3)))
    small, large = unchanged(lambda t: CF.max_pool2d(t, 2, 1)), unchanged(lambda t: CF.max_pool2d(t, 5, 1))
    assert conv < 0.01 < small < large
    assert large > 0.6


@settings(max_examples=30, deadline=None)
@given(
    c_in=st.integers(1, 64), c_out=st.integers(1, 64), kh=st.integers(1, 7), kw=st.integers(1, 7)
)
def test_separable_savings_factors(c_in, c_out, kh, kw):
    dense = arithmetic.conv_params(c_in, c_out, (kh, kw), bias=False)
    assert math.isclose(
        arithmetic.depthwise_separable_params(c_in, c_out, (kh, kw), bias=False) / dense, 1 / c_out + 1 / (kh * kw)
    )
    c = c_in
    assert math.isclose(
        arithmetic.spatially_separable_params(c, c, (kh, kw), bias=False)
        / arithmetic.conv_params(c, c, (kh, kw), bias=False),
        (kh + kw) / (kh * kw),
    )
    assert math.isclose(
        arithmetic.flattened_conv_params(c_in, c_out, (kh, kw), bias=False) / dense,
        (c_in + kh + kw) / (c_in * kh * kw),
    )
    out = (5, 6)
    assert math.isclose(
        arithmetic.depthwise_separable_macs(c_in, c_out, (kh, kw), out) / arithmetic.conv_macs(c_in, c_out, (kh, kw), out),
        1 / c_out + 1 / (kh * kw),
    )


# --- the pooling arithmetic agrees with what torch's kernels do ----------------------------------


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 20), k=st.integers(1, 6), s=st.integers(1, 4), data=st.data(), ceil_mode=st.booleans()
)
def test_pool_arithmetic_matches_torch(size, k, s, data, ceil_mode):
    p = data.draw(st.integers(0, k // 2))
    assume(size + 2 * p >= k)
    x = torch.ones(1, 1, 1, size, dtype=torch.float64)
    out = arithmetic.pool_output_size(size, k, s, p, 1, ceil_mode)
    inside = F.avg_pool2d(x, (1, k), (1, s), (0, p), ceil_mode, True, 1).flatten()  # window elements in the input
    assert len(inside) == out == CF.max_pool1d(x[0], k, s, p, ceil_mode=ceil_mode).shape[-1]
    for include_pad in (True, False):
        counts = arithmetic.pool_window_counts(size, k, s, p, ceil_mode, include_pad)
        mean = F.avg_pool2d(x, (1, k), (1, s), (0, p), ceil_mode, include_pad).flatten()
        torch.testing.assert_close(inside / torch.tensor(counts, dtype=torch.float64), mean)


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 30), bins=st.integers(1, 12))
def test_adaptive_bins_match_torch(size, bins):
    x = torch.arange(size, dtype=torch.float64).view(1, 1, size)
    spans = arithmetic.adaptive_pool_bins(size, bins)
    assert [e - 1 for _, e in spans] == F.adaptive_max_pool1d(x, bins).flatten().long().tolist()
    assert [-b for b, _ in spans] == F.adaptive_max_pool1d(-x, bins).flatten().long().tolist()


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 60), level=st.integers(1, 8))
def test_spp_paper_rule_gives_exactly_n_bins_or_raises(size, level):
    r, q = size % level, size // level
    if level <= size and r <= q:
        window, stride = arithmetic.spp_window(size, level)
        assert (size - window) // stride + 1 == level
        assert size - ((level - 1) * stride + window) == max(r - 1, 0)  # the paper's uncovered tail
    else:
        with pytest.raises(ValueError, match="spp_window: "):
            arithmetic.spp_window(size, level)
