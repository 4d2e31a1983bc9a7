"""The numerics contract: each algorithm's NaN/Inf pattern against native's, as its docstring
documents it; ``"auto"`` exactly native's, forward and backward, whatever it picks; the
dynamic-range case; a hypothesis property test over random configurations; and the checks of
``algorithms._numerics`` themselves."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convolab.functional import conv, conv_transpose
from convolab.functional.algorithms import ALGORITHMS, choose_algorithm, native_numerics, numerics, set_chooser
from convolab.functional.algorithms import _numerics
from convolab.functional.algorithms._numerics import DYNAMIC_RANGE, bounded, well_scaled
from convolab.functional.convolution import make_problem

BUILT_IN = ("native", "native_cl", "direct", "im2col", "gemm", "fft", "winograd", "winograd_f2")
WINOGRAD_TILE = {"winograd": {1: 4, 2: 4, 3: 2}, "winograd_f2": {1: 2, 2: 2, 3: 2}}
NAN, INF = float("nan"), float("inf")


def _masks(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return y.isnan(), y.isposinf(), y.isneginf()


def _conv_problem(x, w, transposed, kwargs):
    """The Problem the op builds, for ``native_numerics`` (through the op's own recording)."""
    seen = []

    def record(p):
        seen.append(p)
        return "native"

    set_chooser(record)
    try:
        (conv_transpose if transposed else conv)(x, w, **kwargs)
    finally:
        set_chooser(choose_algorithm)
    return seen[0]


def assert_documented_pattern(name, p, y, ref, fault, groups):
    """``y`` (algorithm ``name``) against ``ref`` (native), with one non-finite value at ``fault``.

    ``fault`` is ``("x", n, c, *position)`` (position in the input as given) or ``("w", o, ...)``
    with ``o`` the output channel the weight feeds. What each algorithm's docstring states:
    native's pattern when ``numerics(p)`` is "native" (and for input faults when it is
    "finite-weights"); otherwise never fewer non-finite outputs than native (except native_cl's
    weight faults, which may reach fewer padded border outputs), and no non-finite output
    outside the sample and channel group (fft), or outside ``2m`` of native's (winograd), of
    an input fault, or outside the output channel of a weight fault.
    """
    level = numerics(name, p)
    exact = level == "native" or (fault[0] == "x" and level == "finite-weights")
    if exact:
        for a, b, kind in zip(_masks(y), _masks(ref), ("NaN", "+Inf", "-Inf")):
            assert torch.equal(a, b), f"{name}: {kind} at {int(a.sum())} outputs, native {int(b.sum())}"
        return
    bad, bad_ref = ~torch.isfinite(y), ~torch.isfinite(ref)
    if name != "native_cl":  # oneDNN's channels-last kernels skip padding: a NaN weight may reach less
        assert bool((bad | ~bad_ref).all()), f"{name}: finite where native is not"
    allowed = torch.zeros_like(bad)
    o_per_group = ref.shape[1] // groups
    if fault[0] == "w":
        allowed[:, fault[1]] = True
    else:
        n, c = fault[1], fault[2]
        group = c // (p.in_channels // groups)
        channels = slice(group * o_per_group, (group + 1) * o_per_group)
        if name in WINOGRAD_TILE:
            m = WINOGRAD_TILE[name][p.ndim]
            near = bad_ref[n, channels].any(0, keepdim=True).double()[None]
            pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[p.ndim]
            near = pool(near, 4 * m + 1, 1, 2 * m)[0, 0] > 0
            allowed[n, channels] = near
        else:
            allowed[n, channels] = True
    assert bool((~bad | allowed).all()), f"{name}: non-finite outputs outside its documented reach"


CASES = [
    # (id, transposed, x shape, w shape, kwargs, fault, value)
    ("dense3x3-x-nan", False, (2, 4, 9, 10), (4, 4, 3, 3), dict(padding=1), ("x", 1, 2, 4, 5), NAN),
    ("dense3x3-x-inf", False, (2, 4, 9, 10), (4, 4, 3, 3), dict(padding=1), ("x", 0, 0, 0, 9), INF),
    ("dense3x3-x-neginf", False, (2, 4, 9, 10), (4, 4, 3, 3), dict(padding=1), ("x", 1, 3, 8, 0), -INF),
    ("dense3x3-w-center-neginf", False, (2, 4, 9, 10), (4, 4, 3, 3), dict(padding=1), ("w", 1, 0, 1, 1), -INF),
    ("dense3x3-w-corner-nan", False, (2, 4, 9, 10), (4, 4, 3, 3), dict(padding=1), ("w", 2, 3, 0, 0), NAN),
    ("grouped3x3-x-inf", False, (2, 4, 8, 8), (6, 2, 3, 3), dict(padding=1, groups=2), ("x", 0, 3, 2, 2), INF),
    ("dw5x5-d2-w-corner-inf", False, (2, 4, 12, 12), (4, 1, 5, 5), dict(padding=4, dilation=2, groups=4),
     ("w", 0, 0, 0, 0), INF),
    ("dw15x15-x-nan", False, (2, 3, 20, 20), (3, 1, 15, 15), dict(padding=7, groups=3), ("x", 1, 1, 3, 17), NAN),
    ("1d-s2-x-nan", False, (2, 4, 23), (4, 2, 4), dict(stride=2, padding=2, groups=2), ("x", 0, 1, 11), NAN),
    ("1d-long-tiled-x-inf", False, (1, 2, 1200), (2, 2, 3), dict(padding=1), ("x", 0, 0, 600), INF),
    ("3d-x-nan", False, (1, 2, 5, 6, 5), (2, 2, 3, 3, 3), dict(padding=1), ("x", 0, 1, 2, 3, 2), NAN),
    ("1x1-s2-x-nan", False, (2, 4, 8, 8), (6, 4, 1, 1), dict(stride=2), ("x", 1, 0, 4, 4), NAN),
    ("1x1-pad-w-inf", False, (2, 4, 6, 6), (6, 4, 1, 1), dict(padding=1), ("w", 5, 2, 0, 0), INF),
    ("transposed-s2-w-nan", True, (1, 2, 6, 6), (2, 3, 3, 3), dict(stride=2, padding=1), ("w", 0, 0, 1, 1), NAN),
    ("transposed-s2-w-inf", True, (1, 2, 6, 6), (2, 3, 3, 3), dict(stride=2, padding=1), ("w", 1, 0, 1, 1), INF),
    ("transposed-s2-x-nan", True, (1, 2, 6, 6), (2, 3, 3, 3), dict(stride=2, padding=1), ("x", 0, 0, 2, 2), NAN),
    ("transposed-s1-x-inf", True, (2, 2, 6, 6), (2, 2, 3, 3), dict(padding=1), ("x", 1, 1, 0, 5), INF),
]


def _faulty(shape_x, shape_w, transposed, fault, value, groups):
    x = torch.randn(*shape_x)
    w = torch.randn(*shape_w)
    if fault[0] == "x":
        x[fault[1:]] = value
    elif transposed:  # torch's transposed layout [C_in, C_out/g, *k]: fault[1] is an output channel
        o_per_group = shape_w[1]
        c_in_per_group = shape_w[0] // groups
        group = fault[1] // o_per_group
        w[(group * c_in_per_group + fault[2], fault[1] % o_per_group, *fault[3:])] = value
    else:
        w[fault[1:]] = value
    return x, w


@pytest.mark.parametrize("algorithm", BUILT_IN)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_nonfinite_pattern_is_natives_or_as_documented(algorithm, case):
    _, transposed, xs, ws, kwargs, fault, value = case
    groups = kwargs.get("groups", 1)
    x, w = _faulty(xs, ws, transposed, fault, value, groups)
    op = conv_transpose if transposed else conv
    try:
        y = op(x, w, **kwargs, algorithm=algorithm)
    except NotImplementedError:
        pytest.skip(f"{algorithm} does not support this case")
    ref = op(x, w, **kwargs, algorithm="native")
    p = _conv_problem(x, w, transposed, kwargs)
    assert_documented_pattern(algorithm, p, y, ref, fault, groups)


# --- "auto": native's pattern whatever it picks --------------------------------------------------


@pytest.fixture(params=["fft", "winograd", "winograd_f2", "direct", "im2col"])
def forced(request):
    """"auto" made to pick one algorithm (when it supports the problem), to exercise its checks."""
    set_chooser(lambda p: request.param)
    yield request.param
    set_chooser(choose_algorithm)


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_auto_gives_natives_pattern_whatever_it_picks(forced, case, grad):
    _, transposed, xs, ws, kwargs, fault, value = case
    x, w = _faulty(xs, ws, transposed, fault, value, kwargs.get("groups", 1))
    op = conv_transpose if transposed else conv
    with torch.set_grad_enabled(grad):
        y = op(x.requires_grad_(grad), w, **kwargs)
    ref = op(x.detach(), w, **kwargs, algorithm="native")
    for a, b in zip(_masks(y), _masks(ref)):
        assert torch.equal(a, b)


def test_issue_repro_nan_and_inf_in_one_sample():
    """One NaN (or Inf) in a [4, 32, 64, 64] input, a 15x15 kernel: torch's 7,200 NaN, not 131,072."""
    x, w = torch.randn(4, 32, 64, 64), torch.randn(32, 32, 15, 15)
    for value, expect_nan in ((NAN, 7200), (INF, 0)):
        x[0, 0, 10, 10] = value
        for grad in (False, True):
            with torch.set_grad_enabled(grad):
                y = conv(x, w, padding=7)
            ref = F.conv2d(x, w, padding=7)
            assert int(y.isnan().sum()) == int(ref.isnan().sum()) == expect_nan
            assert torch.equal(y.isinf(), ref.isinf())


def test_auto_backward_gives_natives_pattern_for_a_nonfinite_incoming_gradient(forced):
    if forced not in ("fft",):
        pytest.skip("one algorithm with a global backward suffices")
    x = torch.randn(2, 4, 16, 16, requires_grad=True)
    w = torch.randn(4, 1, 9, 9, requires_grad=True)
    for value in (NAN, INF):
        y = conv(x, w, padding=4, groups=4)
        g = torch.randn_like(y)
        g[1, 2, 3, 7] = value
        gx, gw = torch.autograd.grad(y, (x, w), g)
        rx, rw = torch.autograd.grad(F.conv2d(x, w, padding=4, groups=4), (x, w), g)
        for a, b in zip(_masks(gx) + _masks(gw), _masks(rx) + _masks(rw)):
            assert torch.equal(a, b)
        assert int((~torch.isfinite(gx)).sum()) == 8 * 9  # the window (clipped by the border), not the sample


def test_auto_backward_uses_the_algorithm_when_the_gradient_is_well_scaled(monkeypatch):
    set_chooser(lambda p: "fft")
    try:
        calls = []
        real = ALGORITHMS["native"].algorithm.run
        monkeypatch.setattr(ALGORITHMS["native"].algorithm, "run", lambda *a: calls.append(1) or real(*a))
        x = torch.randn(2, 4, 16, 16, dtype=torch.float64, requires_grad=True)
        w = torch.randn(4, 1, 9, 9, dtype=torch.float64, requires_grad=True)
        gx, gw = torch.autograd.grad(conv(x, w, padding=4, groups=4).sum(), (x, w))
        assert calls == []  # the checks passed: fft forward and backward
        rx, rw = torch.autograd.grad(F.conv2d(x, w, padding=4, groups=4).sum(), (x, w))
        torch.testing.assert_close((gx, gw), (rx, rw))
    finally:
        set_chooser(choose_algorithm)


def test_auto_second_derivatives_are_natives(forced):
    """create_graph through a checked pick runs native's differentiable backward: exact."""
    kernel = (3, 3) if forced.startswith("winograd") else (5, 3)
    x = torch.randn(1, 2, 6, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, *kernel, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x, w: conv(x, w, padding=1), (x, w), fast_mode=True)


def test_auto_backward_twice_with_retain_graph(forced):
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    y = conv(x, w, padding=1)
    g1 = torch.autograd.grad(y.sum(), x, retain_graph=True)[0]
    g2 = torch.autograd.grad(y.sum(), x)[0]
    torch.testing.assert_close(g1, g2)
    torch.testing.assert_close(g1, torch.autograd.grad(F.conv2d(x, w, padding=1).sum(), x)[0])


# --- dynamic range --------------------------------------------------------------------------------


def _spike_case():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 64, 64, dtype=torch.float64)
    x[0, 0, 5, 5] = 1e8
    w = torch.randn(16, 1, 31, 31, dtype=torch.float64) / 31
    ref = F.conv2d(x, w, padding=15, groups=16)
    unread = torch.ones_like(ref, dtype=torch.bool)
    unread[0, 0, :21, :21] = False  # the outputs whose 31x31 windows hold the spike
    return x, w, ref, unread


@pytest.mark.parametrize("grad", [False, True])
def test_auto_error_with_one_huge_value_is_natives(grad):
    x, w, ref, unread = _spike_case()
    native_err = (F.conv2d(x.float(), w.float(), padding=15, groups=16).double() - ref)[unread].abs().max()
    set_chooser(lambda p: "fft")
    try:
        with torch.set_grad_enabled(grad):
            y = conv(x.float().requires_grad_(grad), w.float(), padding=15, groups=16)
    finally:
        set_chooser(choose_algorithm)
    err = (y.detach().double() - ref)[unread].abs().max()
    assert err <= 4 * native_err + 1e-6, (err, native_err)


def test_explicit_fft_error_with_one_huge_value_is_within_its_documented_bound():
    """fft's docstring: |error| <~ c u log2(L) ||x_block||_2 ||w||_1; here the block is the sample."""
    x, w, ref, unread = _spike_case()
    y = conv(x.float(), w.float(), padding=15, groups=16, algorithm="fft").double()
    u, length = 2.0**-24, 94 * 94
    bound = u * math.log2(length) * torch.linalg.vector_norm(x[0, 0]) * w[0].abs().sum()
    assert (y - ref)[0, 0].abs().max() <= 4 * bound
    assert (y - ref)[1].abs().max() <= 1e-4  # the other sample is unaffected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scale_log=st.floats(-12, 12),
    spread=st.floats(0, 6),
    sparsity=st.sampled_from([0.0, 0.5, 0.9, 0.99]),
    seed=st.integers(0, 2**16),
)
def test_auto_error_is_bounded_like_natives_for_any_dynamic_range(scale_log, spread, sparsity, seed):
    """Per output: |auto - exact| <= C u (sum_t |w_t| |x_(p+t)| + ||w||_1 mean|x_n|), the form of
    native's bound with a floor at the sample's mean magnitude, whatever auto picks (forced: fft)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 24, 24, generator=gen, dtype=torch.float64)
    x = x * 10 ** (scale_log + spread * torch.randn(x.shape, generator=gen, dtype=torch.float64))
    x = x * (torch.rand(x.shape, generator=gen, dtype=torch.float64) >= sparsity)
    w = torch.randn(3, 1, 11, 11, generator=gen, dtype=torch.float64)
    ref = F.conv2d(x, w, padding=5, groups=3)
    assume(bool(torch.isfinite(ref).all()) and bool(torch.isfinite(x.float()).all()))
    window = F.conv2d(x.abs(), w.abs(), padding=5, groups=3)
    floor = w.abs().sum((1, 2, 3)).view(1, 3, 1, 1) * x.abs().mean((1, 2, 3)).view(2, 1, 1, 1)
    set_chooser(lambda p: "fft")
    try:
        y = conv(x.float(), w.float(), padding=5, groups=3).double()
    finally:
        set_chooser(choose_algorithm)
    u = 2.0**-24
    bound = 64 * DYNAMIC_RANGE * u * (window + floor) + 1e-37  # 1e-37: below float32's normal range
    assert bool(((y - ref).abs() <= bound).all())


# --- hypothesis: every algorithm's pattern on random configurations ------------------------------


@st.composite
def _configurations(draw):
    nd = draw(st.sampled_from([1, 2, 2, 3]))
    transposed = draw(st.booleans())
    groups = draw(st.sampled_from([1, 2]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    stride = draw(st.integers(1, 2))
    dilation = draw(st.integers(1, 2))
    padding = draw(st.integers(0, 2))
    size = tuple(draw(st.integers(4, 9 if nd < 3 else 5)) for _ in range(nd))
    batch = draw(st.integers(1, 2))
    if not transposed:
        assume(all(s + 2 * padding >= dilation * (k - 1) + 1 for s, k in zip(size, kernel)))
    else:
        assume(all((s - 1) * stride - 2 * padding + dilation * (k - 1) + 1 >= 1 for s, k in zip(size, kernel)))
    which = draw(st.sampled_from(["x", "w"]))
    value = draw(st.sampled_from([NAN, INF, -INF]))
    if which == "x":
        fault = ("x", draw(st.integers(0, batch - 1)), draw(st.integers(0, c_in - 1)),
                 *(draw(st.integers(0, s - 1)) for s in size))
    else:
        o = draw(st.integers(0, c_out - 1))
        fault = ("w", o, draw(st.integers(0, (c_in // groups) - 1)), *(draw(st.integers(0, k - 1)) for k in kernel))
    x_shape = (batch, c_in, *size)
    w_shape = (c_in, c_out // groups, *kernel) if transposed else (c_out, c_in // groups, *kernel)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return transposed, x_shape, w_shape, kwargs, fault, value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(config=_configurations(), seed=st.integers(0, 2**16))
def test_every_algorithm_keeps_its_documented_nonfinite_pattern(config, seed):
    transposed, xs, ws, kwargs, fault, value = config
    torch.manual_seed(seed)
    groups = kwargs["groups"]
    x, w = _faulty(xs, ws, transposed, fault, value, groups)
    op = conv_transpose if transposed else conv
    ref = op(x, w, **kwargs, algorithm="native")
    p = _conv_problem(x, w, transposed, kwargs)
    for name in BUILT_IN:
        try:
            y = op(x, w, **kwargs, algorithm=name)
        except NotImplementedError:
            continue
        assert_documented_pattern(name, p, y, ref, fault, groups)
    for grad in (False, True):  # and "auto", whatever it picks: native's exactly
        for pick in ("fft", "winograd", "direct"):
            set_chooser(lambda p, pick=pick: pick)
            try:
                with torch.set_grad_enabled(grad):
                    y = op(x.clone().requires_grad_(grad), w, **kwargs)
            finally:
                set_chooser(choose_algorithm)
            for a, b in zip(_masks(y), _masks(ref)):
                assert torch.equal(a, b), (pick, grad)


# --- the checks -----------------------------------------------------------------------------------


def test_well_scaled_and_bounded():
    x = torch.randn(3, 4, 10, 10)
    assert well_scaled(x) and bounded(x)
    assert well_scaled(torch.relu(x))  # half zeros: rms/mean ~ 1.8
    assert well_scaled(torch.zeros(2, 3, 4)) and well_scaled(torch.empty(0, 3, 4))
    for value in (NAN, INF, -INF, 1e8):
        y = x.clone()
        y[1, 2, 3, 4] = value
        assert not well_scaled(y), value
        assert bounded(y) == (value == 1e8)
    sparse = torch.zeros(2, 1000)
    sparse[:, :10] = 1.0  # 1% non-zero: rms / mean = 10 > DYNAMIC_RANGE
    assert not well_scaled(sparse)
    big = torch.full((1, 100), 3e19)  # finite, but its float32 sum of squares overflows
    assert not well_scaled(big) and not bounded(big)


def test_checks_cost_two_reductions_and_no_copy(monkeypatch):
    """The checks read the input with fused norms (no temporary the size of the input)."""
    seen = []
    real = torch.linalg.vector_norm
    monkeypatch.setattr(torch.linalg, "vector_norm", lambda *a, **k: seen.append(a[1:2]) or real(*a, **k))
    assert well_scaled(torch.randn(2, 3, 8, 8))
    assert seen == [(1,), (2,)]


def test_numerics_levels():
    x, w = torch.randn(1, 2, 8, 8), torch.randn(2, 2, 3, 3)
    plain = _conv_problem(x, w, False, {})
    padded = _conv_problem(x, w, False, dict(padding=1))
    transposed = _conv_problem(x, w, True, dict(stride=2))
    for q in (plain, padded, transposed):
        assert numerics("native", q) == "native" and native_numerics("native", q)
    for name in ("direct", "im2col", "native_cl"):
        assert numerics(name, plain) == "native"
        assert numerics(name, padded) == numerics(name, transposed) == "finite-weights"
        assert not native_numerics(name, padded)
    for name in ("fft", "winograd", "winograd_f2"):
        assert numerics(name, plain) == "checked"
    assert numerics("no-such-algorithm", plain) == "checked"


def test_finite_weights_level_checks_only_the_weight(monkeypatch):
    """native_cl with padding: "auto" checks the weight (one small reduction), not the input."""
    checked = []
    monkeypatch.setattr(_numerics, "well_scaled", lambda t: checked.append(t.shape) or True)
    set_chooser(lambda p: "native_cl")
    try:
        x, w = torch.randn(2, 4, 9, 9), torch.randn(4, 1, 5, 5)
        torch.testing.assert_close(conv(x, w, padding=2, groups=4), F.conv2d(x, w, padding=2, groups=4))
        w[0, 0, 0, 0] = NAN
        y = conv(x, w, padding=2, groups=4)
    finally:
        set_chooser(choose_algorithm)
    assert checked == []
    assert torch.equal(y.isnan(), F.conv2d(x, w, padding=2, groups=4).isnan())


def test_guard_is_not_part_of_the_problems_identity():
    from dataclasses import replace

    p = make_problem(torch.randn(1, 2, 8, 8), (2, 2, 3, 3), 1, (1, 1), (1, 1), ((1, 1), (1, 1)), (1, 1), (8, 8))
    q = replace(p, guard=True)
    assert p == q and hash(p) == hash(q) and repr(p) == repr(q)
    assert _numerics.DYNAMIC_RANGE == DYNAMIC_RANGE


def test_checked_pick_allows_in_place_ops_on_its_result(forced):
    """ReLU(inplace=True) after a checked pick: the result is not a view the backward needs."""
    kernel = (3, 3) if forced.startswith("winograd") else (5, 3)
    x = torch.randn(2, 4, 9, 9, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 4, *kernel, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    conv(x, w, b, padding=1).relu_().sum().backward()
    grads = (x.grad, w.grad, b.grad)
    ref = torch.autograd.grad(F.conv2d(x, w, b, padding=1).relu().sum(), (x, w, b))
    torch.testing.assert_close(grads, ref)
