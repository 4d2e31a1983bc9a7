"""The fast algorithms (fft, winograd, winograd_f2, gemm, native_cl) against torch, by gradcheck,
at float32 accuracy, on their special paths (polyphase stride, overlap-save tiles), and their errors."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from convolab.arithmetic import same_padding
from convolab.functional import conv, conv_transpose
from convolab.functional.algorithms import ALGORITHMS, Problem
from convolab.functional.algorithms.fft import good_size, plan_sizes, tile_length
from convolab.functional.algorithms.winograd import winograd_matrices
from convolab.functional.convolution import make_problem
from tests._reference import assert_same_values_and_grads

# every registered algorithm but the reference ones that test_conv covers (a new one joins here)
FAST = [name for name in ALGORITHMS if name not in ("native", "direct", "im2col")]
TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
SIZES = {1: (11,), 2: (7, 8), 3: (5, 6, 4)}
KERNELS = {1: (4,), 2: (3, 2), 3: (2, 3, 2)}
GROUPS = {"dense": (2, 3, 1), "grouped": (4, 6, 2), "depthwise": (3, 6, 3)}
CL = {2: torch.channels_last, 3: torch.channels_last_3d}


def _kernel(algorithm: str, nd: int) -> tuple[int, ...]:
    """Each algorithm's own kernel class: 1x1 for gemm, 3-tap for Winograd, else a mixed one."""
    return {"gemm": (1,) * nd, "winograd": (3,) * nd, "winograd_f2": (3,) * nd}.get(algorithm, KERNELS[nd])


def _supported(algorithm: str, nd: int, stride: int, dilation: int, groups: str = "dense") -> bool:
    """What the algorithm itself says of the grid case (the registry's ``supports``)."""
    c_in, c_out, g = GROUPS[groups]
    kernel = _kernel(algorithm, nd)
    out = tuple((i - dilation * (k - 1) - 1) // stride + 1 for i, k in zip(SIZES[nd], kernel))
    p = Problem(nd, 2, c_in, c_out, g, SIZES[nd], kernel, (stride,) * nd, (dilation,) * nd, ((0, 0),) * nd,
                (1,) * nd, out, dtype="torch.float64")
    return ALGORITHMS[algorithm].supports(p)


def _tensors(groups: str, nd: int, kernel: tuple[int, ...], transposed: bool = False, batch: int = 2):
    """float64 input, weight (torch's layout for conv or conv_transpose) and bias of a grid case."""
    c_in, c_out, g = GROUPS[groups]
    x = torch.randn(batch, c_in, *SIZES[nd], dtype=torch.float64)
    shape = (c_in, c_out // g) if transposed else (c_out, c_in // g)
    return x, torch.randn(*shape, *kernel, dtype=torch.float64), torch.randn(c_out, dtype=torch.float64), g


# --- the grid (the foundation's configs): every fast algorithm agrees with torch ----------------

# "pairs": asymmetric per side. 0, 1 and "valid" run the same code as "per-dim" (symmetric pairs).
PADDINGS = ["per-dim", "same", "pairs"]


def _grid(algorithm: str):
    """Every padding form, stride, dilation and group kind, within each algorithm's domain."""
    paddings = PADDINGS
    dims = [2, 3] if algorithm == "native_cl" else [1, 2, 3]
    cases = []
    for i, (nd, stride, padding, dilation, groups) in enumerate(
        itertools.product(dims, [1, 2], paddings, [1, 2], list(GROUPS))
    ):
        if _supported(algorithm, nd, stride, dilation, groups) and not (algorithm == "gemm" and dilation > 1):
            cases.append(pytest.param(algorithm, nd, stride, padding, dilation, groups, i % 2 == 0,
                                      id=f"{algorithm}-{nd}d-s{stride}-p{padding}-d{dilation}-{groups}"))
    return cases


@pytest.mark.parametrize(
    "algorithm,nd,stride,padding,dilation,groups,bias", [c for a in FAST for c in _grid(a)]
)
def test_conv_matches_torch(algorithm, nd, stride, padding, dilation, groups, bias):
    kernel = _kernel(algorithm, nd)
    x, w, b, g = _tensors(groups, nd, kernel, batch=1 if nd == 3 else 2)
    inputs = [x, w, b] if bias else [x, w]
    if padding in ("pairs", "same"):  # reference: explicit F.pad, then an unpadded torch conv
        if padding == "pairs":
            pairs = tuple((j % 2, 1 + j % 2) for j in range(nd))
        else:  # TensorFlow's rule for any stride: torch itself refuses 'same' with stride > 1
            pairs = tuple(same_padding(i, k, stride, dilation) for i, k in zip(SIZES[nd], kernel))
        flat = [v for pr in reversed(pairs) for v in pr]
        ours = lambda *t: conv(*t, stride=stride, padding=padding if padding == "same" else pairs,
                               dilation=dilation, groups=g, algorithm=algorithm)
        ref = lambda x, *t: TORCH_CONV[nd](F.pad(x, flat), *t, stride=stride, dilation=dilation, groups=g)
    else:
        pad = tuple(range(nd)) if padding == "per-dim" else padding
        args = dict(stride=stride, padding=pad, dilation=dilation, groups=g)
        ours = lambda *t: conv(*t, algorithm=algorithm, **args)
        ref = lambda *t: TORCH_CONV[nd](*t, **args)
    assert_same_values_and_grads(ours, ref, inputs)


def _tgrid(algorithm: str):
    cases = []
    full = algorithm == "fft"
    for nd, stride, padding, output_padding, dilation, groups in itertools.product(
        [1, 2, 3], [1, 3] if full else [1, 2], [0, 1] if full else [1], [0, 1] if full else [0],
        [1, 2] if full else [1], ["dense", "depthwise"] if full else list(GROUPS),
    ):
        if output_padding >= max(stride, dilation) or (algorithm == "native_cl" and nd == 1):
            continue
        cases.append(pytest.param(algorithm, nd, stride, padding, output_padding, dilation, groups,
                                  id=f"{algorithm}-{nd}d-s{stride}-p{padding}-op{output_padding}-d{dilation}-{groups}"))
    return cases


@pytest.mark.parametrize(
    "algorithm,nd,stride,padding,output_padding,dilation,groups", [c for a in FAST for c in _tgrid(a)]
)
def test_conv_transpose_matches_torch(algorithm, nd, stride, padding, output_padding, dilation, groups):
    x, w, b, g = _tensors(groups, nd, _kernel(algorithm, nd), transposed=True)
    args = dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=g)
    if algorithm.startswith("winograd") and stride > 1:  # zero insertion: not Winograd's domain
        with pytest.raises(NotImplementedError, match="winograd needs 3-tap kernels"):
            conv_transpose(x, w, b, algorithm=algorithm, **args)
        return
    assert_same_values_and_grads(
        lambda *t: conv_transpose(*t, algorithm=algorithm, **args),
        lambda *t: TORCH_CONV_T[nd](*t, **args),
        [x, w, b],
    )


# --- gradcheck (float64), and double backward for the custom FFT autograd ------------------------

GRADCHECK = [
    ("fft", 1, dict(stride=2, padding=2, dilation=2, groups=2), (5,)),
    ("fft", 2, dict(stride=(2, 1), padding=((1, 0), (2, 1)), groups=1), (3, 2)),
    ("fft", 2, dict(padding=1, groups=4), (3, 3)),
    ("fft", 3, dict(stride=2, padding=1), (2, 2, 2)),
    ("winograd", 2, dict(padding=1, groups=2), (3, 3)),
    ("winograd", 1, dict(padding=0), (3,)),
    ("winograd_f2", 2, dict(padding=1), (3, 3)),
    ("winograd_f2", 3, dict(padding=1, groups=4), (3, 3, 3)),
    ("gemm", 2, dict(stride=2, padding=1, groups=2), (1, 1)),
    ("gemm", 1, dict(), (1,)),
    ("native_cl", 2, dict(stride=2, padding=1, groups=4), (3, 3)),
]


@pytest.mark.parametrize("algorithm,nd,kwargs,kernel", GRADCHECK)
def test_gradcheck(algorithm, nd, kwargs, kernel):
    size = {1: (9,), 2: (5, 4), 3: (3, 4, 3)}[nd]
    x = torch.randn(1, 4, *size, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 4 // kwargs.get("groups", 1), *kernel, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    f = lambda x, w, b: conv(x, w, b, algorithm=algorithm, **kwargs)
    assert torch.autograd.gradcheck(f, (x, w, b), fast_mode=True)


@pytest.mark.parametrize("groups", [1, 3])
def test_fft_double_backward(groups):
    x = torch.randn(1, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 3 // groups, 3, 2, dtype=torch.float64, requires_grad=True)
    f = lambda x, w: conv(x, w, stride=(2, 1), padding=1, groups=groups, algorithm="fft")
    assert torch.autograd.gradgradcheck(f, (x, w), fast_mode=True)


def test_fft_conv_transpose_gradcheck():
    x = torch.randn(1, 2, 4, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    f = lambda x, w: conv_transpose(x, w, stride=2, padding=1, output_padding=1, algorithm="fft")
    assert torch.autograd.gradcheck(f, (x, w), fast_mode=True)


# --- the FFT's special paths ----------------------------------------------------------------------


def test_good_size_has_small_factors_only():
    for n in range(1, 600):
        m = good_size(n)
        assert m >= n
        r = m
        for f in (2, 3, 5, 7):
            while r % f == 0:
                r //= f
        assert r == 1
        assert good_size(n, even=True) % 2 == 0


def test_tile_length_picks_blocks_for_long_signals_and_whole_for_short():
    assert tile_length(68, 13) >= 68  # one FFT for a 56x56 image with a 13x13 kernel
    assert tile_length(4352, 257) >= 4352  # and for 257 taps on 4096 samples
    b = tile_length(4002, 3)  # a 3-tap filter over 4000 samples: overlap-save blocks
    assert 6 <= b < 4002


@pytest.mark.parametrize(
    "size,kernel,stride,dilation",
    [((1000,), (3,), 1, 1), ((1500,), (3,), 2, 2), ((300, 40), (3, 3), 1, 1), ((600, 30), (3, 5), 2, 1)],
)
def test_fft_overlap_save_tiles_match_torch(size, kernel, stride, dilation):
    x = torch.randn(2, 4, *size, dtype=torch.float64)
    w = torch.randn(6, 2, *kernel, dtype=torch.float64)
    nd = len(size)
    p = make_problem(
        x, w, 2, (stride,) * nd, (dilation,) * nd, ((1, 2),) * nd, (1,) * nd,
        tuple((s + 3 - dilation * (k - 1) - 1) // stride + 1 for s, k in zip(size, kernel)),
    )
    assert plan_sizes(p)[1] > 1, "this case must exercise the tiled path"
    pads = tuple((1, 2) for _ in range(nd))
    flat = [v for pr in reversed(pads) for v in pr]
    assert_same_values_and_grads(
        lambda x, w: conv(x, w, stride=stride, padding=pads, dilation=dilation, groups=2, algorithm="fft"),
        lambda x, w: TORCH_CONV[nd](F.pad(x, flat), w, stride=stride, dilation=dilation, groups=2),
        [x, w],
    )


@pytest.mark.parametrize("stride", [2, 3, (3, 2)])
def test_fft_polyphase_strides_match_torch(stride):
    x = torch.randn(2, 4, 17, 13, dtype=torch.float64)
    w = torch.randn(4, 1, 7, 5, dtype=torch.float64)
    args = dict(stride=stride, padding=3, dilation=(1, 2), groups=4)
    assert_same_values_and_grads(lambda *t: conv(*t, algorithm="fft", **args), lambda *t: F.conv2d(*t, **args), [x, w])


# --- float32 accuracy against float64 native: the bar is 1e-5 of the output scale --------------

ACCURACY = [
    ("fft", (2, 32, 40, 40), (32, 1, 31, 31), dict(padding=15, groups=32)),
    ("fft", (2, 16, 1024), (16, 1, 257), dict(padding=128, groups=16)),
    ("fft", (2, 64, 14, 14), (64, 64, 3, 3), dict(padding=1)),
    ("fft", (1, 32, 30, 30), (32, 32, 5, 5), dict(stride=2, padding=2, dilation=2)),
    ("winograd", (2, 128, 14, 14), (128, 128, 3, 3), dict(padding=1)),
    ("winograd_f2", (2, 128, 14, 14), (128, 128, 3, 3), dict(padding=1)),
    ("winograd", (1, 32, 6, 14, 14), (32, 32, 3, 3, 3), dict(padding=1)),
    ("gemm", (2, 256, 14, 14), (128, 256, 1, 1), dict(stride=2)),
    ("native_cl", (2, 32, 28, 28), (32, 1, 13, 13), dict(padding=6, groups=32)),
]


@pytest.mark.parametrize("algorithm,xs,ws,kwargs", ACCURACY)
def test_float32_error_within_1e5_of_float64(algorithm, xs, ws, kwargs):
    x, w = torch.randn(*xs, dtype=torch.float64), torch.randn(*ws, dtype=torch.float64)
    ref = conv(x, w, algorithm="native", **kwargs)
    y = conv(x.float(), w.float(), algorithm=algorithm, **kwargs)
    err = (y.double() - ref).abs().max() / ref.abs().max()
    assert err <= 1e-5, f"{algorithm}: relative error {err:.2e}"


def test_winograd_documented_error_bound_holds_and_f4_is_the_less_accurate():
    x, w = torch.randn(4, 256, 12, 12, dtype=torch.float64), torch.randn(64, 256, 3, 3, dtype=torch.float64)
    ref = conv(x, w, padding=1, algorithm="native")
    errs = {}
    for name in ("winograd", "winograd_f2"):
        y = conv(x.float(), w.float(), padding=1, algorithm=name)
        errs[name] = ((y.double() - ref).abs().max() / ref.abs().max()).item()
        assert errs[name] <= 1e-5
    assert errs["winograd_f2"] < errs["winograd"] * 2  # F(2,3) is at least as accurate (up to noise)


@pytest.mark.parametrize("m", [2, 4])
def test_winograd_matrices_compute_a_correlation_exactly_in_float64(m):
    bt, g, at = winograd_matrices(m, torch.float64, "cpu")
    d, k = torch.randn(m + 2, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    y = at @ ((g @ k) * (bt @ d))
    ref = torch.stack([(d[i : i + 3] * k).sum() for i in range(m)])
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)


# --- edge cases -----------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", FAST)
def test_batch_zero(algorithm):
    k = _kernel(algorithm, 2)
    x = torch.randn(0, 4, 6, 6, requires_grad=True)
    w = torch.randn(6, 2, *k, requires_grad=True)
    y = conv(x, w, torch.randn(6), padding=1, groups=2, algorithm=algorithm)
    assert y.shape == (0, 6, 6 + 2 - k[0] + 1, 6 + 2 - k[1] + 1)
    y.sum().backward()
    assert w.grad is not None and torch.count_nonzero(w.grad) == 0


@pytest.mark.parametrize("algorithm", FAST)
@pytest.mark.parametrize("layout", ["non-contiguous", "channels_last"])
def test_non_contiguous_and_channels_last_inputs(algorithm, layout):
    base = torch.randn(2, 9, 8, 4, dtype=torch.float64)
    if layout == "non-contiguous":
        x = base.transpose(2, 3)[:, ::2]  # [2, 5, 4, 8], strided in every way
    else:
        x = base.transpose(2, 3)[:, :5].contiguous(memory_format=torch.channels_last)
    w = torch.randn(6, 5, *_kernel(algorithm, 2), dtype=torch.float64).transpose(2, 3)
    ref = F.conv2d(x.contiguous(), w.contiguous(), padding=1)
    torch.testing.assert_close(conv(x, w, padding=1, algorithm=algorithm), ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("algorithm", FAST)
def test_in_place_ops_on_the_result_are_legal(algorithm):
    """ReLU(inplace=True) right after a conv is everywhere; a custom Function must not return a view."""
    x = torch.randn(2, 4, 9, 9, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 4, *_kernel(algorithm, 2), dtype=torch.float64, requires_grad=True)
    y = conv(x, w, algorithm=algorithm).relu_()
    y.sum().backward()
    r = F.conv2d(x, w).relu()
    gx, gw = torch.autograd.grad(r.sum(), (x, w))
    torch.testing.assert_close(x.grad, gx)
    torch.testing.assert_close(w.grad, gw)


def test_gemm_keeps_channels_last_without_a_copy():
    x = torch.randn(2, 16, 5, 5).contiguous(memory_format=torch.channels_last)
    y = conv(x, torch.randn(8, 16, 1, 1), torch.randn(8), algorithm="gemm")
    assert y.is_contiguous(memory_format=torch.channels_last)


def test_unbatched_input():
    x, w = torch.randn(3, 10, dtype=torch.float64), torch.randn(3, 1, 5, dtype=torch.float64)
    torch.testing.assert_close(conv(x, w, groups=3, algorithm="fft"), F.conv1d(x, w, groups=3))


@pytest.mark.parametrize(
    "algorithm,weight,kwargs,message",
    [
        ("winograd", (4, 2, 5, 5), {}, r"conv2d: algorithm 'winograd' does not support .*kernel=\(5, 5\).*winograd needs 3-tap kernels"),
        ("winograd_f2", (4, 2, 3, 3), dict(stride=2), r"stride=\(2, 2\).*winograd needs 3-tap kernels in every dim, stride 1"),
        ("winograd", (4, 2, 3, 3), dict(dilation=2), r"dilation=\(2, 2\).*dilation 1"),
        ("gemm", (4, 2, 3, 3), {}, r"conv2d: algorithm 'gemm' does not support .*needs a 1x1 kernel"),
    ],
)
def test_unsupported_problem_raises_not_implemented(algorithm, weight, kwargs, message):
    with pytest.raises(NotImplementedError, match=message):
        conv(torch.randn(1, 2, 8, 8), torch.randn(*weight), algorithm=algorithm, **kwargs)


def test_native_cl_refuses_1d():
    with pytest.raises(NotImplementedError, match=r"conv1d: .*'native_cl'.*native_cl needs 2 or 3 spatial dims"):
        conv(torch.randn(1, 2, 8), torch.randn(3, 2, 3), algorithm="native_cl")


@pytest.mark.parametrize("algorithm", ["fft", "winograd", "winograd_f2"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_is_computed_in_float32(algorithm, dtype):
    """Half-precision operands (autocast's) run in float32 and are rounded once at the end."""
    x, w = torch.randn(2, 4, 9, 9), torch.randn(4, 2, 3, 3)
    y = conv(x.to(dtype), w.to(dtype), padding=1, groups=2, algorithm=algorithm)
    assert y.dtype == dtype
    ref = F.conv2d(x.to(dtype).float(), w.to(dtype).float(), padding=1, groups=2).to(dtype)
    torch.testing.assert_close(y, ref, rtol=1e-2, atol=1e-2)
    xs = x.clone().requires_grad_()
    with torch.autocast("cpu", torch.bfloat16):
        y = conv(xs, w, padding=1, groups=2, algorithm=algorithm)
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert xs.grad is not None and xs.grad.dtype == torch.float32


def test_fast_algorithms_are_registered_and_listed():
    from convolab.functional import available_algorithms

    for name in FAST:
        assert name in ALGORITHMS and name in available_algorithms()
        assert ALGORITHMS[name].requirement
