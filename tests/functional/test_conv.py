"""The general conv and conv_transpose against torch, against loop references, and by gradcheck."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import convolab.functional as CF
from convolab.functional import conv, conv_transpose
from tests._reference import assert_same_values_and_grads, conv_loop, conv_transpose_loop, same_pads_tf

ALGOS = ["native", "direct", "im2col"]
TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
SIZES = {1: (9,), 2: (7, 8), 3: (5, 6, 4)}
KERNELS = {1: (3,), 2: (3, 2), 3: (2, 3, 2)}


def _tensors(nd, c_in, c_out, groups, dtype=torch.float64, batch=2, size=None, kernel=None):
    x = torch.randn(batch, c_in, *(size or SIZES[nd]), dtype=dtype)
    w = torch.randn(c_out, c_in // groups, *(kernel or KERNELS[nd]), dtype=dtype)
    b = torch.randn(c_out, dtype=dtype)
    return x, w, b


# --- the grid: every algorithm agrees with torch's conv ---------------------------------------

GRID = list(
    itertools.product(
        [1, 2, 3],  # ndim
        [1, 2],  # stride
        [0, 1, "per-dim", "valid", "same"],  # padding forms torch accepts ("same" only at stride 1)
        [1, 2],  # dilation
        ["dense", "grouped", "depthwise"],
        [True, False],  # bias
    )
)
# torch refuses 'same' with stride > 1: those cases are checked against the loop reference below
GRID = [case for case in GRID if not (case[2] == "same" and case[1] > 1)]


@pytest.mark.parametrize("algorithm", ALGOS)
@pytest.mark.parametrize("nd,stride,padding,dilation,groups,bias", GRID)
def test_conv_matches_torch(algorithm, nd, stride, padding, dilation, groups, bias):
    c_in, c_out, g = {"dense": (2, 3, 1), "grouped": (4, 6, 2), "depthwise": (3, 6, 3)}[groups]
    pad = tuple(range(nd)) if padding == "per-dim" else padding
    x, w, b = _tensors(nd, c_in, c_out, g, batch=1 if nd == 3 else 2)
    args = dict(stride=stride, padding=pad, dilation=dilation, groups=g)
    inputs = [x, w, b] if bias else [x, w]
    assert_same_values_and_grads(
        lambda *t: conv(*t, algorithm=algorithm, **args),
        lambda *t: TORCH_CONV[nd](*t, **args),
        inputs,
    )


@pytest.mark.parametrize("algorithm", ALGOS)
@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_padding_modes_match_torch_modules(algorithm, mode, nd):
    torch_cls = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[nd]
    ref = torch_cls(2, 3, 3, stride=2, padding=1, padding_mode=mode).double()
    x = torch.randn(2, 2, *SIZES[nd], dtype=torch.float64)
    y = conv(x, ref.weight, ref.bias, stride=2, padding=1, padding_mode=mode, algorithm=algorithm)
    torch.testing.assert_close(y, ref(x))


TRANSPOSE_GRID = list(
    itertools.product(
        [1, 2, 3],  # ndim
        [1, 2, 3],  # stride
        [0, 1],  # padding
        [0, 1],  # output_padding
        [1, 2],  # dilation
        [1, 2],  # groups
    )
)
# invalid output_padding (>= both stride and dilation) is tested as an error
TRANSPOSE_GRID = [c for c in TRANSPOSE_GRID if c[3] < max(c[1], c[4])]


@pytest.mark.parametrize("algorithm", ALGOS)
@pytest.mark.parametrize("nd,stride,padding,output_padding,dilation,groups", TRANSPOSE_GRID)
def test_conv_transpose_matches_torch(algorithm, nd, stride, padding, output_padding, dilation, groups):
    x = torch.randn(1 if nd == 3 else 2, 4, *(s - 1 for s in SIZES[nd]), dtype=torch.float64)
    w = torch.randn(4, 6 // groups, *KERNELS[nd], dtype=torch.float64)
    b = torch.randn(6, dtype=torch.float64)
    args = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)
    assert_same_values_and_grads(
        lambda *t: conv_transpose(*t, algorithm=algorithm, **args),
        lambda *t: TORCH_CONV_T[nd](*t, **args),
        [x, w, b],
    )


# --- what torch cannot do, against the loop reference -------------------------------------------

BEYOND_TORCH = [
    # (nd, size, kernel, stride, dilation, padding)
    (2, (7, 8), (3, 3), (2, 2), (1, 1), "same"),
    (2, (7, 8), (3, 2), (2, 3), (2, 1), "same"),
    (2, (10, 5), (5, 3), (3, 2), (2, 2), "same"),
    (1, (11,), (4,), (3,), (2,), "same"),
    (3, (5, 4, 6), (3, 2, 3), (2, 2, 3), (1, 2, 1), "same"),
    (2, (6, 7), (3, 3), (1, 2), (1, 1), ((1, 0), (2, 1))),
    (1, (9,), (3,), (2,), (3,), ((0, 4),)),
    (3, (4, 5, 4), (2, 2, 3), (1, 1, 2), (1, 1, 1), ((1, 0), (0, 0), (2, 1))),
]


@pytest.mark.parametrize("algorithm", ALGOS)
@pytest.mark.parametrize("nd,size,kernel,stride,dilation,padding", BEYOND_TORCH)
def test_beyond_torch_against_loop_reference(algorithm, nd, size, kernel, stride, dilation, padding):
    x, w, b = _tensors(nd, 4, 4, 2, size=size, kernel=kernel, batch=1)
    y = conv(x, w, b, stride, padding, dilation, groups=2, algorithm=algorithm)
    if padding == "same":
        ref_pad = [same_pads_tf(s, k, st, d) for s, k, st, d in zip(size, kernel, stride, dilation)]
        assert y.shape[2:] == tuple(-(-s // st) for s, st in zip(size, stride))
    else:
        ref_pad = padding
    ref = conv_loop(x.numpy(), w.numpy(), b.numpy(), stride, ref_pad, dilation, groups=2)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("algorithm", ALGOS)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_flip_is_true_convolution(algorithm, nd):
    x, w, _ = _tensors(nd, 2, 3, 1, batch=1)
    y = conv(x, w, padding=1, flip=True, algorithm=algorithm)
    ref = conv_loop(x.numpy(), w.numpy(), padding=1, flip=True)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-10)


def test_flip_matches_scipy_convolve():
    signal = pytest.importorskip("scipy.signal")
    x, w = torch.randn(1, 1, 9, 8, dtype=torch.float64), torch.randn(1, 1, 3, 4, dtype=torch.float64)
    ours = conv(x, w, flip=True)[0, 0].numpy()
    np.testing.assert_allclose(ours, signal.convolve(x[0, 0].numpy(), w[0, 0].numpy(), mode="valid"), atol=1e-12)
    # full convolution = padding k-1 on every side
    full = conv(x, w, padding=(2, 3), flip=True)[0, 0].numpy()
    np.testing.assert_allclose(full, signal.convolve(x[0, 0].numpy(), w[0, 0].numpy(), mode="full"), atol=1e-12)
    # without flip it is cross-correlation
    np.testing.assert_allclose(
        conv(x, w)[0, 0].numpy(), signal.correlate(x[0, 0].numpy(), w[0, 0].numpy(), mode="valid"), atol=1e-12
    )


@pytest.mark.parametrize("algorithm", ALGOS)
def test_conv_transpose_asymmetric_padding_against_scatter_reference(algorithm):
    x = torch.randn(2, 4, 3, 4, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 2, dtype=torch.float64)
    b = torch.randn(6, dtype=torch.float64)
    pads = ((2, 0), (0, 1))
    y = conv_transpose(x, w, b, stride=(2, 3), padding=pads, groups=2, dilation=(1, 2), algorithm=algorithm)
    ref = conv_transpose_loop(x.numpy(), w.numpy(), b.numpy(), (2, 3), pads, 0, 2, (1, 2))
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("algorithm", ALGOS)
def test_conv_transpose_scatter_reference_3d(algorithm):
    x = torch.randn(1, 2, 2, 3, 2, dtype=torch.float64)
    w = torch.randn(2, 2, 2, 3, 2, dtype=torch.float64)
    y = conv_transpose(x, w, None, stride=(1, 2, 2), padding=(0, 1, 1), output_padding=(0, 1, 0), algorithm=algorithm)
    ref = conv_transpose_loop(x.numpy(), w.numpy(), None, (1, 2, 2), (0, 1, 1), (0, 1, 0))
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-10)


def test_conv_transpose_is_the_adjoint_of_conv():
    """<conv(x), y> == <x, conv_transpose(y)> with the same weight and arguments."""
    x = torch.randn(2, 4, 9, 8, dtype=torch.float64)
    w = torch.randn(6, 2, 3, 3, dtype=torch.float64)
    args = dict(stride=2, padding=1, groups=2, dilation=1)
    y = conv(x, w, **args)
    v = torch.randn_like(y)
    out = conv_transpose(v, w, output_size=x.shape[2:], **args)
    torch.testing.assert_close((y * v).sum(), (x * out).sum())


def test_output_size_picks_output_padding_like_torch():
    x, w = torch.randn(1, 2, 5, 5), torch.randn(2, 3, 3, 3)
    for size in [(9, 9), (10, 10), (9, 10)]:
        ours = conv_transpose(x, w, stride=2, padding=1, output_size=size)
        ref = torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, bias=False)
        ref.weight.data = w
        torch.testing.assert_close(ours, ref(x, output_size=size))
    with pytest.raises(ValueError, match=r"requested output_size \(11, 11\) is invalid along dim 2: must be between 9 and 10"):
        conv_transpose(x, w, stride=2, padding=1, output_size=(11, 11))


# --- gradcheck in float64 --------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ALGOS)
@pytest.mark.parametrize(
    "nd,stride,padding,dilation,groups",
    [(1, 2, "same", 2, 1), (2, (2, 1), ((1, 0), (0, 2)), (1, 2), 2), (2, 1, 1, 1, 3), (3, 2, 1, 1, 1)],
)
def test_gradcheck_conv(algorithm, nd, stride, padding, dilation, groups):
    size = {1: (7,), 2: (5, 6), 3: (3, 4, 3)}[nd]
    kernel = {1: (3,), 2: (3, 2), 3: (2, 2, 2)}[nd]
    x, w, b = _tensors(nd, 3 if groups == 3 else 2, 3 if groups == 3 else 4, groups, size=size, kernel=kernel, batch=1)
    fn = lambda x, w, b: conv(x, w, b, stride, padding, dilation, groups, algorithm=algorithm)  # noqa: E731
    assert torch.autograd.gradcheck(fn, [t.requires_grad_() for t in (x, w, b)])


@pytest.mark.parametrize("algorithm", ALGOS)
@pytest.mark.parametrize("mode", ["reflect", "circular"])
def test_gradcheck_padding_modes_and_flip(algorithm, mode):
    x, w, b = _tensors(2, 2, 2, 1, size=(4, 5), batch=1)
    fn = lambda x, w, b: conv(x, w, b, 1, ((2, 1), (1, 0)), padding_mode=mode, flip=True, algorithm=algorithm)  # noqa: E731
    assert torch.autograd.gradcheck(fn, [t.requires_grad_() for t in (x, w, b)])


@pytest.mark.parametrize("algorithm", ALGOS)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_gradcheck_conv_transpose(algorithm, nd):
    x = torch.randn(1, 2, *((3,) * nd), dtype=torch.float64)
    w = torch.randn(2, 2, *((2,) * nd), dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    fn = lambda x, w, b: conv_transpose(x, w, b, 2, 1, 1, groups=2, dilation=1, algorithm=algorithm)  # noqa: E731
    assert torch.autograd.gradcheck(fn, [t.requires_grad_() for t in (x, w, b)])


# --- edge cases ----------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ALGOS)
def test_batch_zero(algorithm):
    x, w = torch.randn(0, 2, 5, 5), torch.randn(3, 2, 3, 3)
    assert conv(x, w, padding=1, algorithm=algorithm).shape == (0, 3, 5, 5)
    assert conv_transpose(torch.randn(0, 2, 5, 5), torch.randn(2, 3, 3, 3), algorithm=algorithm).shape == (0, 3, 7, 7)


@pytest.mark.parametrize("algorithm", ALGOS)
def test_one_by_one_input_and_kernel_equal_to_padded_input(algorithm):
    x, w = torch.randn(2, 3, 1, 1, dtype=torch.float64), torch.randn(4, 3, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(conv(x, w, padding=1, algorithm=algorithm), F.conv2d(x, w, padding=1))
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    w = torch.randn(4, 3, 6, 5, dtype=torch.float64)
    y = conv(x, w, padding=((1, 1), (0, 0)), algorithm=algorithm)
    assert y.shape == (2, 4, 1, 1)
    torch.testing.assert_close(y, F.conv2d(x, w, padding=(1, 0)))


@pytest.mark.parametrize("algorithm", ALGOS)
def test_non_contiguous_channels_last_and_unbatched(algorithm):
    base = torch.randn(2, 8, 9, 3, dtype=torch.float64)
    x = base.permute(0, 3, 1, 2)[:, :, ::2]  # non-contiguous, strided
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(conv(x, w, padding=1, algorithm=algorithm), F.conv2d(x, w, padding=1))
    xc = torch.randn(2, 3, 6, 6, dtype=torch.float64).to(memory_format=torch.channels_last)
    torch.testing.assert_close(conv(xc, w, stride=2, algorithm=algorithm), F.conv2d(xc, w, stride=2))
    xu = torch.randn(3, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(conv(xu, w, padding="same", algorithm=algorithm), F.conv2d(xu, w, padding="same"))


def test_fixed_rank_wrappers():
    x = torch.randn(1, 2, 8)
    w = torch.randn(3, 2, 3)
    torch.testing.assert_close(CF.conv1d(x, w, stride=2), F.conv1d(x, w, stride=2))
    with pytest.raises(ValueError, match=r"conv2d: expected weight of rank 4 \(2 spatial dims\), got rank 3"):
        CF.conv2d(x, w)
    with pytest.raises(ValueError, match=r"conv_transpose3d: expected weight of rank 5"):
        CF.conv_transpose3d(x, w)


# --- bad input: clear errors naming the parameter -------------------------------------------------

X2, W2 = torch.randn(1, 4, 5, 5), torch.randn(6, 2, 3, 3)
BAD = [
    (lambda: conv(X2, torch.randn(6, 2, 7, 7), groups=2),
     r"conv2d: output size would be 0 along dim 2 \(in=5, kernel=7, dilation=1, padding=\(0, 0\), stride=1\)"),
    (lambda: conv(X2, W2, groups=3), r"conv2d: expected input with weight.shape\[1\] \* groups = 2 \* 3 = 6 channels, got 4"),
    (lambda: conv(torch.randn(1, 6, 5, 5), torch.randn(4, 2, 3, 3), groups=3), r"conv2d: groups \(3\) must divide out_channels \(4\)"),
    (lambda: conv(X2, W2, groups=0), r"conv2d: groups must be an int >= 1, got 0"),
    (lambda: conv(X2, W2, groups=2, stride=0), r"conv2d: stride must be >= 1 in every dim, got 0"),
    (lambda: conv(X2, W2, groups=2, dilation=(1, -1)), r"conv2d: dilation must be >= 1 in every dim, got \(1, -1\)"),
    (lambda: conv(X2, W2, groups=2, padding=-1), r"conv2d: padding must be >= 0 on every side, got -1"),
    (lambda: conv(X2, W2, groups=2, padding=((1, -1), (0, 0))), r"conv2d: padding must be >= 0 on every side"),
    (lambda: conv(X2, W2, groups=2, padding=(1, 2, 3)), r"conv2d: padding must be an int or a sequence of 2 ints"),
    (lambda: conv(X2, W2, groups=2, padding="samee"), r"conv2d: padding must be .* got 'samee'; did you mean 'same'\?"),
    (lambda: conv(X2, W2, groups=2, padding_mode="reflection"),
     r"conv2d: padding_mode must be one of 'zeros', 'reflect', 'replicate', 'circular', got 'reflection'; did you mean 'reflect'\?"),
    (lambda: conv(X2, W2, groups=2, padding=5, padding_mode="reflect"),
     r"conv2d: padding_mode='reflect' needs padding \(5\) < input size \(5\) along dim 2"),
    (lambda: conv(X2, W2, groups=2, algorithm="magic"), r"conv2d: algorithm must be one of 'auto'.*got 'magic'"),
    (lambda: conv(torch.randn(4, 5, 5, 1, 1), W2), r"conv2d: expected input of rank 4 \(\[N, C, \*spatial\]\) or 3 \(unbatched\)"),
    (lambda: conv(X2, torch.randn(6, 2)), r"conv: expected weight of rank 3, 4 or 5"),
    (lambda: conv(X2, W2, torch.randn(5), groups=2), r"conv2d: expected bias of shape \[6\] \(out_channels\), got \[5\]"),
    (lambda: conv(X2.double(), W2, groups=2), r"conv2d: input dtype \(torch.float64\) must equal weight dtype \(torch.float32\)"),
    (lambda: conv(X2.numpy(), W2), r"conv: input must be a torch.Tensor, got ndarray"),
    (lambda: conv(X2, W2, groups=2, stride=1.5), r"conv2d: stride must be an int or a sequence of ints, got 1.5"),
    (lambda: conv_transpose(X2, torch.randn(4, 3, 3, 3), output_padding=1),
     r"conv_transpose2d: output_padding \(1\) must be smaller than stride \(1\) or dilation \(1\)"),
    (lambda: conv_transpose(X2, torch.randn(3, 3, 3, 3)),
     r"conv_transpose2d: expected input with weight.shape\[0\] = 3 channels, got 4"),
    (lambda: conv_transpose(X2, torch.randn(4, 3, 3, 3), padding="same"),
     r"conv_transpose2d: padding='same' is not defined for transposed convolution"),
    (lambda: conv_transpose(X2, torch.randn(4, 3, 3, 3), padding=4),
     r"conv_transpose2d: output size would be -1 along dim 2"),
]


@pytest.mark.parametrize("call,message", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_input_raises_clear_error(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_unsupported_algorithm_raises_not_implemented():
    """A registered algorithm asked for a problem it doesn't support says what it supports."""
    from convolab.functional.algorithms import ALGORITHMS, register_algorithm

    class OnlyStrideOne:
        name = "only_stride_one_test"
        requirement = "supports stride 1 only"

        def supports(self, p):
            return all(s == 1 for s in p.stride)

        def run(self, x, w, b, p):
            return ALGORITHMS["native"].run(x, w, b, p)

    register_algorithm(OnlyStrideOne())
    try:
        conv(X2, W2, groups=2, algorithm="only_stride_one_test")
        with pytest.raises(NotImplementedError, match=r"conv2d: algorithm 'only_stride_one_test' does not support .* supports stride 1 only"):
            conv(X2, W2, groups=2, stride=2, algorithm="only_stride_one_test")
    finally:
        del ALGORITHMS["only_stride_one_test"]


@pytest.mark.parametrize("algorithm", ["native", "native_cl"])
def test_transposed_fast_path_keeps_layout_and_values(algorithm):
    """conv_transpose hands native kernels the weight as given (no flip-and-swap round trip)."""
    x = torch.randn(2, 4, 5, 6, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    y = conv_transpose(x, w, None, 2, ((2, 0), (1, 1)), 0, 2 // 2, algorithm=algorithm)
    ref = conv_transpose_loop(x.numpy(), w.numpy(), None, 2, ((2, 0), (1, 1)))
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-10)
    # the memory format torch's own conv returns: contiguous in, contiguous out (a .view() after
    # a conv must keep working whichever algorithm ran), channels-last in, channels-last out
    assert y.is_contiguous()
    y_cl = conv_transpose(x.contiguous(memory_format=torch.channels_last), w, None, 2, ((2, 0), (1, 1)),
                          0, 1, algorithm=algorithm)
    assert y_cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y_cl, y)
