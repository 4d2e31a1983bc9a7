"""Locally connected layers: against a slow loop reference, equal to the conv when every position
holds the same filters, gradcheck in float64, chunked = unchunked, edge cases, modules, analysis,
and every bad input's message."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import convolab
import convolab.functional.local as local
from convolab import arithmetic as A
from convolab.analysis import summary
from convolab.functional import conv, locally_connected, locally_connected1d, locally_connected2d, locally_connected3d
from convolab.nn import Conv2d, LocallyConnected1d, LocallyConnected2d, LocallyConnected3d
from tests._reference import same_pads_tf

SIZES = {1: (9,), 2: (7, 8), 3: (5, 6, 4)}
KERNELS = {1: (3,), 2: (3, 2), 3: (2, 3, 2)}


def local_loop(x, w, b, stride, pads, dilation, mode="zeros"):
    """The definition, one output unit at a time (NumPy float64, no convolab code).

    x: [N, C, *S]; w: [*out, O, C, *K]; b: [O, *out] or None; pads: per-dim (before, after).
    """
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    nd = x.ndim - 2
    numpy_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    xp = np.pad(x, [(0, 0), (0, 0), *pads], mode=numpy_mode)
    out = w.shape[:nd]
    o_ch, kernel = w.shape[nd], w.shape[nd + 2:]
    y = np.zeros((x.shape[0], o_ch, *out))
    for n in range(x.shape[0]):
        for p in itertools.product(*(range(s) for s in out)):
            for o in range(o_ch):
                acc = 0.0 if b is None else float(b[(o, *p)])
                for c in range(x.shape[1]):
                    for t in itertools.product(*(range(k) for k in kernel)):
                        at = tuple(pi * s + ti * d for pi, s, ti, d in zip(p, stride, t, dilation))
                        acc += w[(*p, o, c, *t)] * xp[(n, c, *at)]
                y[(n, o, *p)] = acc
    return torch.from_numpy(y)


def _pairs(padding, nd, size, kernel, stride, dilation):
    if padding == "same":
        return [same_pads_tf(i, k, s, d) for i, k, s, d in zip(size, kernel, stride, dilation)]
    if padding == "valid":
        return [(0, 0)] * nd
    if padding == "pairs":
        return [(1, 0), (0, 2), (2, 1)][:nd]
    return [(padding, padding)] * nd


def _out(size, kernel, stride, dilation, pairs):
    return tuple((i + b + a - d * (k - 1) - 1) // s + 1
                 for i, k, s, d, (b, a) in zip(size, kernel, stride, dilation, pairs))


def _spec(padding, pairs):
    return tuple(pairs) if padding == "pairs" else padding


GRID = list(itertools.product([1, 2, 3], [1, 2], [0, 1, "pairs", "valid", "same"], [1, 2], [True, False]))


@pytest.mark.parametrize("nd,stride,padding,dilation,bias", GRID)
def test_matches_the_loop_reference(nd, stride, padding, dilation, bias):
    torch.manual_seed(nd * 7 + stride)
    size, kernel = SIZES[nd], KERNELS[nd]
    s, d = (stride,) * nd, (dilation,) * nd
    pairs = _pairs(padding, nd, size, kernel, s, d)
    out = _out(size, kernel, s, d, pairs)
    if min(out) < 1:
        pytest.skip("empty output")
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    w = torch.randn(*out, 2, 3, *kernel, dtype=torch.float64)
    b = torch.randn(2, *out, dtype=torch.float64) if bias else None
    got = locally_connected(x, w, b, stride, _spec(padding, pairs), dilation)
    torch.testing.assert_close(got, local_loop(x, w, b, s, pairs, d))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_padding_modes_match_the_loop_reference(mode):
    x = torch.randn(1, 2, 6, 7, dtype=torch.float64)
    w = torch.randn(6, 7, 3, 2, 3, 3, dtype=torch.float64)
    got = locally_connected(x, w, padding=1, padding_mode=mode)
    torch.testing.assert_close(got, local_loop(x, w, None, (1, 1), [(1, 1), (1, 1)], (1, 1), mode))


@pytest.mark.parametrize("nd,stride,padding,dilation", [
    (1, 2, "same", 1), (2, 1, "same", 2), (2, 2, "same", 1), (2, 2, "pairs", 1), (3, 1, 1, 1), (3, 2, "valid", 1),
])
def test_equal_filters_everywhere_is_the_conv(nd, stride, padding, dilation):
    size, kernel = SIZES[nd], KERNELS[nd]
    s, d = (stride,) * nd, (dilation,) * nd
    pairs = _pairs(padding, nd, size, kernel, s, d)
    out = _out(size, kernel, s, d, pairs)
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    shared = torch.randn(4, 3, *kernel, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    spec = _spec(padding, pairs)
    y = locally_connected(x, shared.expand(*out, *shared.shape), b.view(4, *([1] * nd)).expand(4, *out),
                          stride, spec, dilation)
    torch.testing.assert_close(y, conv(x, shared, b, stride, spec, dilation, algorithm="native"))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_gradcheck_float64(nd, monkeypatch):
    monkeypatch.setattr(local, "CHUNK_BYTES", 1)  # one output row per block: the chunked path too
    size, kernel = {1: (6,), 2: (5, 4), 3: (4, 3, 4)}[nd], KERNELS[nd]
    x = torch.randn(2, 2, *size, dtype=torch.float64, requires_grad=True)
    pairs = [same_pads_tf(i, k, 2, 1) for i, k in zip(size, kernel)]
    out = _out(size, kernel, (2,) * nd, (1,) * nd, pairs)
    w = torch.randn(*out, 3, 2, *kernel, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, *out, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: locally_connected(*t, stride=2, padding="same"), (x, w, b))
    assert torch.autograd.gradgradcheck(lambda *t: locally_connected(*t, stride=2, padding="same"), (x, w, b))


def test_chunks_give_the_same_numbers(monkeypatch):
    x = torch.randn(3, 4, 12, 10)
    w = torch.randn(10, 8, 5, 4, 3, 3)
    b = torch.randn(5, 10, 8)
    whole = locally_connected(x, w, b)
    monkeypatch.setattr(local, "CHUNK_BYTES", 4 * 3 * 8 * 4 * 9 * 3)  # three rows per block
    assert local._rows_per_chunk(x, w) == 3
    torch.testing.assert_close(locally_connected(x, w, b), whole, rtol=0, atol=1e-5)


def test_edge_cases_batch_zero_unbatched_noncontiguous_channels_last():
    w = torch.randn(6, 6, 2, 3, 3, 3)
    assert locally_connected(torch.randn(0, 3, 8, 8), w).shape == (0, 2, 6, 6)
    x = torch.randn(2, 3, 8, 8)
    y = locally_connected(x, w)
    torch.testing.assert_close(locally_connected(x[1], w), y[1])
    torch.testing.assert_close(locally_connected(x.contiguous(memory_format=torch.channels_last), w), y)
    wide = torch.randn(2, 3, 8, 16)[..., ::2]
    torch.testing.assert_close(locally_connected(wide, w), locally_connected(wide.contiguous(), w))
    assert locally_connected1d(torch.randn(1, 1, 1), torch.randn(1, 1, 1, 1)).shape == (1, 1, 1)  # 1-wide


def test_the_fixed_rank_forms():
    assert locally_connected1d(torch.randn(1, 2, 9), torch.randn(7, 3, 2, 3)).shape == (1, 3, 7)
    assert locally_connected2d(torch.randn(1, 2, 5, 5), torch.randn(3, 3, 1, 2, 3, 3)).shape == (1, 1, 3, 3)
    assert locally_connected3d(torch.randn(1, 1, 3, 3, 3), torch.randn(1, 1, 1, 1, 1, 3, 3, 3)).shape == (1, 1, 1, 1, 1)
    with pytest.raises(ValueError, match=r"locally_connected2d: expected weight of rank 6 \(\[H_out, W_out, C_out, "
                                         r"C_in, kH, kW\]\), got rank 4"):
        locally_connected2d(torch.randn(1, 2, 9), torch.randn(7, 3, 2, 3))


ERRORS = [
    (lambda: locally_connected(torch.randn(1, 2, 5, 5), torch.randn(3, 3, 1, 2, 3)),
     ValueError, r"locally_connected: expected weight of rank 4, 6 or 8 \(\[\*out, C_out, C_in, \*kernel\] with "
                 r"1-3 spatial dims, e.g. \[H_out, W_out, C_out, C_in, kH, kW\]\), got rank 5"),
    (lambda: locally_connected(torch.randn(1, 1, 2, 5, 5), torch.randn(3, 3, 1, 2, 3, 3)),
     ValueError, r"locally_connected2d: expected input of rank 4 \(\[N, C, \*spatial\]\) or 3 \(unbatched\) for a "
                 r"weight with 2 spatial dims, got rank 5"),
    (lambda: locally_connected(torch.randn(1, 3, 5, 5), torch.randn(3, 3, 1, 2, 3, 3)),
     ValueError, r"locally_connected2d: expected input with weight.shape\[3\] = 2 channels \(C_in of the layout "
                 r"\[H_out, W_out, C_out, C_in, kH, kW\]\), got 3 channels"),
    (lambda: locally_connected(torch.randn(1, 2, 6, 5), torch.randn(3, 3, 1, 2, 3, 3)),
     ValueError, r"locally_connected2d: weight holds 3x3 output positions \(its first 2 dims, layout \[H_out, W_out, "
                 r"C_out, C_in, kH, kW\]\) but input \[1, 2, 6, 5\] gives 4x3 \(kernel \(3, 3\), stride \(1, 1\), "
                 r"padding \(\(0, 0\), \(0, 0\)\), dilation \(1, 1\)\); build the weight for this input size"),
    (lambda: locally_connected(torch.randn(1, 2, 5, 5), torch.randn(3, 3, 1, 2, 3, 3), torch.randn(1)),
     ValueError, r"locally_connected2d: expected bias of shape \[C_out, \*out\] = \[1, 3, 3\] \(one per output "
                 r"unit\), got \[1\]"),
    (lambda: locally_connected(torch.randn(1, 2, 2, 2), torch.randn(1, 1, 1, 2, 3, 3)),
     ValueError, r"locally_connected2d: output size would be 0 along dim 2 \(in=2, kernel=3"),
    (lambda: locally_connected(torch.randn(1, 2, 5, 5), torch.randn(3, 3, 1, 2, 3, 3), stride=0),
     ValueError, r"locally_connected2d: stride must be >= 1 in every dim, got 0"),
    (lambda: locally_connected(torch.randn(1, 2, 5, 5), torch.randn(3, 3, 1, 2, 3, 3), padding=-1),
     ValueError, r"locally_connected2d: padding must be >= 0 on every side, got -1"),
    (lambda: locally_connected(torch.randn(1, 2, 5, 5), torch.randn(3, 3, 1, 2, 3, 3), padding="sam"),
     ValueError, r"locally_connected2d: padding must be an int, a tuple, per-side pairs, 'same' or 'valid', got "
                 r"'sam'; did you mean 'same'\?"),
    (lambda: locally_connected(torch.randn(1, 2, 5, 5), torch.randn(3, 3, 1, 2, 3, 3), dilation=(1, 0)),
     ValueError, r"locally_connected2d: dilation must be >= 1 in every dim, got \(1, 0\)"),
    (lambda: locally_connected(torch.randn(1, 2, 5, 5), torch.randn(3, 3, 1, 2, 3, 3), padding_mode="wrap"),
     ValueError, r"locally_connected2d: padding_mode must be one of 'zeros', 'reflect', 'replicate', 'circular', "
                 r"got 'wrap'"),
    (lambda: locally_connected(torch.randn(1, 2, 5, 5).double(), torch.randn(3, 3, 1, 2, 3, 3)),
     TypeError, r"locally_connected2d: input dtype \(torch.float64\) must equal weight dtype \(torch.float32\)"),
    (lambda: locally_connected([1.0], torch.randn(3, 3, 1, 2, 3, 3)),
     TypeError, r"locally_connected: input must be a torch.Tensor, got list"),
    (lambda: locally_connected(torch.randn(1, 2, 5, 5), torch.randn(3, 3, 1, 2, 3, 3), 1.0),
     TypeError, r"locally_connected: bias must be a torch.Tensor or None, got float"),
]


@pytest.mark.parametrize("index", range(len(ERRORS)))
def test_bad_input_is_named(index):
    fn, kind, message = ERRORS[index]
    with pytest.raises(kind, match=message):
        fn()


# --------------------------------------------------------------------------- modules


@pytest.mark.parametrize("cls,size", [(LocallyConnected1d, (11,)), (LocallyConnected2d, (9, 8)),
                                      (LocallyConnected3d, (5, 4, 6))])
def test_module_shapes_parameters_and_init(cls, size):
    nd = len(size)
    m = cls(3, 4, 3, input_size=size, stride=2, padding="same")
    out = tuple(-(-s // 2) for s in size)
    assert m.output_size == out
    assert tuple(m.weight.shape) == (*out, 4, 3, *(3,) * nd) and tuple(m.bias.shape) == (4, *out)
    params = sum(p.numel() for p in m.parameters())
    assert params == A.locally_connected_params(3, 4, (3,) * nd, out) == math.prod(out) * (3 ** nd * 3 + 1) * 4
    bound = 1 / math.sqrt(3 * 3 ** nd)
    assert float(m.weight.detach().abs().max()) <= bound and float(m.bias.detach().abs().max()) <= bound
    assert m(torch.randn(2, 3, *size)).shape == (2, 4, *out)
    assert set(m.state_dict()) == {"weight", "bias"}
    x = torch.randn(2, 3, *size)
    torch.testing.assert_close(m(x), locally_connected(x, m.weight, m.bias, 2, "same"))


def test_module_equals_the_functional_op_and_repr():
    torch.manual_seed(0)
    m = LocallyConnected2d(2, 3, (3, 2), input_size=(7, 6), padding=((1, 0), (0, 1)), dilation=(2, 1), bias=False)
    x = torch.randn(2, 2, 7, 6)
    torch.testing.assert_close(m(x), locally_connected(x, m.weight, None, 1, ((1, 0), (0, 1)), (2, 1)))
    assert repr(m) == ("LocallyConnected2d(2, 3, kernel_size=(3, 2), input_size=(7, 6), stride=(1, 1), "
                       "padding=((1, 0), (0, 1)), dilation=(2, 1), bias=False, output_size=(4, 6))")


def test_module_errors():
    with pytest.raises(ValueError, match=r"LocallyConnected2d: input_size must be >= 1 in every dim, got \(0, 5\)"):
        LocallyConnected2d(1, 1, 3, input_size=(0, 5))
    with pytest.raises(ValueError, match=r"LocallyConnected2d: output size would be 0 along dim 2 \(in=2, kernel=3"):
        LocallyConnected2d(1, 1, 3, input_size=2)
    with pytest.raises(ValueError, match=r"LocallyConnected2d: groups|LocallyConnected2d: in_channels must be an int "
                                         r">= 1, got 0"):
        LocallyConnected2d(0, 1, 3, input_size=5)
    with pytest.raises(ValueError, match=r"LocallyConnected1d: kernel_size must be >= 1 in every dim, got 0"):
        LocallyConnected1d(1, 1, 0, input_size=5)
    with pytest.raises(ValueError, match=r"LocallyConnected2d: padding_mode must be one of"):
        LocallyConnected2d(1, 1, 3, input_size=5, padding_mode="mirror")
    m = LocallyConnected2d(1, 2, 3, input_size=8, stride=2, padding="same")
    with pytest.raises(ValueError, match=r"LocallyConnected2d: built for inputs of spatial size \(8, 8\) \(its weights "
                                         r"belong to that size's 2-D grid of output positions\), got \(7, 7\)"):
        m(torch.randn(1, 1, 7, 7))  # 'same' at stride 2 gives the same 4x4 grid: refused all the same
    with pytest.raises(ValueError, match=r"LocallyConnected2d: expected input with weight.shape\[3\] = 1 channels"):
        m(torch.randn(1, 3, 8, 8))


def test_analysis_field_macs_and_params_are_the_convs_but_the_parameters():
    lc = torch.nn.Sequential(Conv2d(1, 4, 3), LocallyConnected2d(4, 8, 3, input_size=26, stride=2, padding="same"))
    cv = torch.nn.Sequential(Conv2d(1, 4, 3), Conv2d(4, 8, 3, stride=2, padding="same"))
    a, b = summary(lc, (2, 1, 28, 28)), summary(cv, (2, 1, 28, 28))
    assert a.row("1").fields == b.row("1").fields
    assert a.row("1").macs == b.row("1").macs == A.locally_connected_macs(4, 8, 3, (13, 13), batch=2)
    assert a.row("1").params == A.locally_connected_params(4, 8, 3, (13, 13)) == 13 * 13 * (9 * 4 + 1) * 8
    assert a.not_analysed == () and a.warnings == ()


def test_the_functional_op_alone_is_analysed_from_its_operators():
    class Raw(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(3, 3, 2, 1, 3, 3))

        def forward(self, x):
            return locally_connected(x, self.w, stride=2, padding=1)

    s = summary(Raw(), (1, 1, 6, 6))
    rf = s.rows[0].fields[0]
    assert (rf.size, rf.jump, rf.start) == (3, 2, 0) and s.macs == 9 * 2 * 9


def test_arithmetic_formulas_and_their_errors():
    assert A.locally_connected_params(1, 1, 3, (26, 26)) == 26 * 26 * 10
    assert A.locally_connected_params(1, 1, 3, (26, 26), bias=False) == 26 * 26 * 9
    assert A.locally_connected_params(2, 3, (3, 3, 3), (2, 2, 2)) == 8 * (27 * 2 + 1) * 3
    assert A.locally_connected_macs(2, 3, 3, (4, 5), batch=2) == 2 * 20 * 3 * 2 * 9
    with pytest.raises(ValueError, match=r"locally_connected_params: output_size must be an int >= 1, got 0"):
        A.locally_connected_params(1, 1, 3, (0, 4))
    with pytest.raises(ValueError, match=r"conv_params: in_channels must be an int >= 1, got 0"):
        A.locally_connected_params(0, 1, 3, (4, 4))


def test_exported_at_every_level():
    assert convolab.locally_connected is locally_connected
    assert convolab.nn.LocallyConnected2d is LocallyConnected2d
    assert {"locally_connected", "locally_connected2d"} <= set(convolab.functional.__all__)
    assert "LocallyConnected3d" in convolab.nn.__all__


@pytest.mark.parametrize("stride,dilation", [(1, 1), (2, 1), (1, 2), ((2, 1), (1, 3))])
def test_the_sliced_windows_of_tracing_equal_the_unfolded_ones(stride, dilation):
    # torch.jit.trace (and the TorchScript ONNX exporter) gathers the windows tap by tap
    x = torch.randn(2, 3, 11, 12, dtype=torch.float64)
    s, d = (stride,) * 2 if isinstance(stride, int) else stride, (dilation,) * 2 if isinstance(dilation, int) else dilation
    out = _out((11, 12), (3, 2), s, d, [(1, 0), (0, 2)])
    w = torch.randn(*out, 4, 3, 3, 2, dtype=torch.float64)
    args = (x, w, None, list(s), [(1, 0), (0, 2)], list(d), "zeros", 0)
    torch.testing.assert_close(local.local_nd(*args, True), local.local_nd(*args, False))
