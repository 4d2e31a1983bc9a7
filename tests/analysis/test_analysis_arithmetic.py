"""The field formulas added to convolab.arithmetic for the analysis (property tests and errors)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convolab import arithmetic as A
from convolab.arithmetic import ReceptiveField

fields = st.builds(ReceptiveField, st.integers(1, 50), st.sampled_from([1, 2, 4, 8]), st.integers(-20, 20))


@settings(max_examples=60, deadline=None)
@given(fields, st.integers(1, 7), st.integers(1, 4), st.integers(0, 4), st.integers(1, 3))
def test_resample_of_conv_taps_is_the_conv_rule(rf, k, s, p, d):
    keff = d * (k - 1) + 1
    got = rf.resample(s, lambda o: [o * s - p, o * s - p + keff - 1], period=1)
    assert got == rf.conv(k, s, p, d)


@settings(max_examples=40, deadline=None)
@given(fields, st.integers(1, 5))
def test_nearest_upsampling_is_a_transposed_conv_of_ones(rf, s):
    assert rf.interpolate(10, 10 * s, "nearest") == rf.transposed_conv(s, s)
    assert rf.interpolate(10, 10 * s, "nearest-exact") == rf.transposed_conv(s, s)


@settings(max_examples=40, deadline=None)
@given(fields, st.integers(1, 6), st.integers(1, 6))
def test_adaptive_pool_that_divides_is_a_plain_pool(rf, k, m):
    assert rf.adaptive_pool(k * m, m) == rf.conv(k, k)
    assert A.adaptive_pool_macs((k * m,), (m,)) == A.avg_pool_macs(m, (k,))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40))
def test_adaptive_pool_macs_is_the_sum_of_windows(n, m):
    windows = [(math.floor(o * n / m), math.ceil((o + 1) * n / m)) for o in range(m)]
    assert A.adaptive_pool_macs((n,), (m,)) == sum(e - b for b, e in windows)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 7), st.integers(1, 3), st.integers(0, 3)), min_size=1, max_size=6))
def test_effective_padding_is_araujos_sum(layers):
    rf = A.receptive_fields(layers)[-1]
    jump, padding = 1, 0
    for k, s, p in layers:
        padding += p * jump
        jump *= s
    assert rf.effective_padding == padding


@settings(max_examples=60, deadline=None)
@given(fields, st.integers(1, 30), st.integers(-20, 20))
def test_union_holds_both_and_is_symmetric(a, size, start):
    b = ReceptiveField(size, a.jump, start)
    u = a.union(b)
    assert u == b.union(a)
    lo, hi = u.bounds
    assert lo <= min(a.bounds[0], b.bounds[0]) and hi >= max(a.bounds[1], b.bounds[1])
    assert u.size == max(a.bounds[1], b.bounds[1]) - min(a.bounds[0], b.bounds[0]) + 1
    assert a.union(a) == a


def test_union_of_aligned_fields_is_the_largest():
    assert ReceptiveField(3, 2, 1).union(ReceptiveField(7, 2, 1), ReceptiveField(5, 2, 1)) == ReceptiveField(7, 2, 1)
    assert ReceptiveField(3, 2, 1).aligned_with(ReceptiveField(9, 2, 1))
    assert not ReceptiveField(3, 2, 1).aligned_with(ReceptiveField(3, 2, 0))


def test_slice_and_interpolation_rate():
    assert ReceptiveField(3, 2, 1).slice(3, 2) == ReceptiveField(3, 4, 7)
    assert A.interpolation_rate(5, 1, align_corners=True) == 0
    assert A.interpolation_rate(6, 12, scale=2.0) == A.interpolation_rate(6, 12)


def test_macs_conventions():
    assert A.matmul_macs(2, 3, 4, batch=5) == 120
    assert A.norm_macs(10) == 10
    assert A.avg_pool_macs(10, (2, 3)) == 60 and A.avg_pool_macs(10, 3) == 90


def test_errors():
    with pytest.raises(ValueError, match="receptive_field: branches with different jumps \\(2 and 1\\) cannot be merged"):
        ReceptiveField(3, 2, 0).union(ReceptiveField(3, 1, 0))
    with pytest.raises(ValueError, match="resample: no output unit reads any input unit"):
        ReceptiveField().resample(1, lambda o: [], period=2)
    with pytest.raises(ValueError, match="interpolate: mode must be nearest, nearest-exact, .* got 'area'"):
        ReceptiveField().interpolate(4, 8, "area")
    with pytest.raises(ValueError, match="interpolate: output size must be an int >= 1, got 0"):
        ReceptiveField().interpolate(4, 0)
    with pytest.raises(ValueError, match="avg_pool_macs: kernel_size must be an int >= 1, got 0"):
        A.avg_pool_macs(4, (2, 0))
    with pytest.raises(ValueError, match=r"adaptive_pool_macs: input_size \(4, 4\) and output_size \(2,\) must have"):
        A.adaptive_pool_macs((4, 4), (2,))
    with pytest.raises(ValueError, match="matmul_macs: k must be an int >= 0, got -1"):
        A.matmul_macs(1, -1, 1)
    with pytest.raises(ValueError, match="receptive_field: stride must be an int >= 1, got 0"):
        ReceptiveField().transposed_conv(3, 0)
