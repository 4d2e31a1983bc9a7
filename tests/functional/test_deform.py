"""Deformable convolution v1/v2 (1-3 spatial dims) against dense conv, a loop reference and gradcheck."""

from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F

import convolab.functional.deform as deform_module
from convolab.arithmetic import resolve_padding
from convolab.functional import deform_conv, deform_conv1d, deform_conv2d, deform_conv3d
from tests._reference import deform_conv_reference

ALGOS = ("embedding_bag", "gather")
DENSE = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
SPATIAL = {1: (9,), 2: (6, 7), 3: (4, 5, 4)}


def _problem(nd, c_in=4, c_out=6, k=3, groups=1, og=1, stride=1, padding=1, dilation=1, n=2, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c_in, *SPATIAL[nd], generator=g, dtype=dtype)
    w = torch.randn(c_out, c_in // groups, *(k,) * nd, generator=g, dtype=dtype)
    b = torch.randn(c_out, generator=g, dtype=dtype)
    ref = DENSE[nd](x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    taps = k**nd
    off_shape = (n, nd * og * taps, *ref.shape[2:])
    mask_shape = (n, og * taps, *ref.shape[2:])
    return x, w, b, ref, off_shape, mask_shape


@pytest.mark.parametrize("algorithm", ALGOS)
@pytest.mark.parametrize(
    "nd,stride,dilation,groups,padding",
    [
        (1, 1, 1, 1, 1),
        (1, 2, 2, 2, 0),
        (2, 1, 1, 1, 1),
        (2, 2, 1, 2, 1),
        (2, (1, 2), (2, 1), 1, (2, 1)),
        (3, 1, 1, 1, 1),
        (3, 2, 1, 2, 1),
    ],
)
def test_zero_offset_unit_mask_is_regular_conv(algorithm, nd, stride, dilation, groups, padding):
    x, w, b, ref, off_shape, mask_shape = _problem(nd, groups=groups, stride=stride, padding=padding, dilation=dilation, og=2)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, algorithm=algorithm)
    out = deform_conv(x, torch.zeros(off_shape, dtype=x.dtype), w, b, **kw)
    torch.testing.assert_close(out, ref)
    out = deform_conv(x, torch.zeros(off_shape, dtype=x.dtype), w, b, mask=torch.ones(mask_shape, dtype=x.dtype), **kw)
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("padding", ["same", ((1, 0), (0, 2))])
def test_every_padding_form_of_conv(padding):
    x, w, b, _, _, _ = _problem(2)
    ref = F.conv2d(F.pad(x, (0, 2, 1, 0)), w, b) if padding != "same" else F.conv2d(x, w, b, padding="same")
    off = torch.zeros(x.shape[0], 18, *ref.shape[2:], dtype=x.dtype)
    torch.testing.assert_close(deform_conv2d(x, off, w, b, padding=padding), ref)


@pytest.mark.parametrize("algorithm", ALGOS)
@pytest.mark.parametrize("nd,shift", [(1, (2,)), (2, (1, -2)), (3, (-1, 1, 1))])
def test_integer_offsets_are_a_shifted_conv(algorithm, nd, shift):
    x, w, b, _, off_shape, _ = _problem(nd)
    off = torch.tensor(shift, dtype=x.dtype).view(1, 1, nd, *(1,) * nd).expand(off_shape[0], off_shape[1] // nd, nd, *off_shape[2:])
    out = deform_conv(x, off.reshape(off_shape), w, b, padding=1, algorithm=algorithm)
    # shifting every tap by s reads x_pad[p + s]: a conv whose padding moved by s (negative pads crop)
    pads = []
    for s in reversed(shift):
        pads += [1 - s, 1 + s]
    torch.testing.assert_close(out, DENSE[nd](F.pad(x, pads), w, b))


@pytest.mark.parametrize("algorithm", ALGOS)
@pytest.mark.parametrize(
    "nd,modulated,groups,og,stride,dilation",
    [(1, True, 1, 2, 2, 1), (2, False, 1, 1, 1, 1), (2, True, 2, 2, 2, 1), (2, True, 1, 1, 1, 2), (3, True, 2, 1, 1, 1)],
)
def test_random_offsets_match_loop_reference(algorithm, nd, modulated, groups, og, stride, dilation):
    c_in, c_out = 4, 4
    x, w, b, _, off_shape, mask_shape = _problem(nd, c_in, c_out, 2 if nd == 3 else 3, groups, og, stride, 1, dilation, n=1, seed=3)
    g = torch.Generator().manual_seed(7)
    off = torch.randn(off_shape, generator=g, dtype=x.dtype) * 1.5
    mask = torch.rand(mask_shape, generator=g, dtype=x.dtype) if modulated else None
    out = deform_conv(x, off, w, b, mask=mask, stride=stride, padding=1, dilation=dilation, groups=groups, offset_groups=og, algorithm=algorithm)
    pads = resolve_padding(1, x.shape[2:], w.shape[2:])
    ref = deform_conv_reference(x, off, w, b, mask, (stride,) * nd, pads, (dilation,) * nd, groups, og)
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("algorithm", ALGOS)
def test_sampling_outside_the_input_reads_zeros(algorithm):
    x, w, b, _, off_shape, mask_shape = _problem(2)
    far = torch.full(off_shape, 100.0, dtype=x.dtype)
    out = deform_conv2d(x, far, w, b, mask=torch.rand(mask_shape, dtype=x.dtype), padding=1, algorithm=algorithm)
    torch.testing.assert_close(out, b.view(1, -1, 1, 1).expand_as(out))
    # half a pixel beyond the last row: only the in-image corner contributes, with weight 1/2
    x1 = torch.ones(1, 1, 3, 3, dtype=x.dtype)
    off = torch.zeros(1, 2, 3, 3, dtype=x.dtype)
    off[:, 0] = 2.5  # dy: row 2.5 + i; row 2 is inside for i=0 only
    out = deform_conv2d(x1, off, torch.ones(1, 1, 1, 1, dtype=x.dtype), algorithm=algorithm)
    torch.testing.assert_close(out[0, 0, 0], torch.full((3,), 0.5, dtype=x.dtype))
    torch.testing.assert_close(out[0, 0, 1:], torch.zeros(2, 3, dtype=x.dtype))


@pytest.mark.parametrize("algorithm", ALGOS)
def test_a_nan_offset_gives_nan_where_it_is_read_not_an_index_error(algorithm):
    x, w, b, _, off_shape, _ = _problem(2, n=1)
    off = torch.zeros(off_shape, dtype=x.dtype)
    off[0, 0, 2, 3] = float("nan")  # dy of tap 0 at output (2, 3)
    out = deform_conv2d(x, off, w, b, padding=1, algorithm=algorithm)
    assert out[0, :, 2, 3].isnan().all()
    finite = torch.ones_like(out, dtype=torch.bool)
    finite[0, :, 2, 3] = False
    assert out[finite].isfinite().all()


def _fractional_offsets(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    whole = torch.randint(-2, 3, shape, generator=g).double()
    return whole + 0.2 + 0.6 * torch.rand(shape, generator=g, dtype=torch.float64)  # never on the pixel grid


@pytest.mark.parametrize("algorithm", ALGOS)
@pytest.mark.parametrize(
    "nd,modulated,og,groups", [(1, True, 2, 1), (2, False, 2, 1), (2, True, 2, 1), (2, True, 1, 2), (3, True, 1, 1)]
)
def test_gradcheck(algorithm, nd, modulated, og, groups):
    # tiny: 3 pixels per dim, kernel 2, padding 1 -> 4 outputs per dim (some taps sample the border)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, *(3,) * nd, generator=g, dtype=torch.float64)
    w = torch.randn(2, 2 // groups, *(2,) * nd, generator=g, dtype=torch.float64)
    b = torch.randn(2, generator=g, dtype=torch.float64)
    out = (4,) * nd if nd < 3 else (2, 2, 2)
    pad = 1 if nd < 3 else 0
    off = _fractional_offsets((1, nd * og * 2**nd, *out)) * 0.5
    mask = torch.rand(1, og * 2**nd, *out, generator=g, dtype=torch.float64) if modulated else None
    inputs = [t.requires_grad_() for t in (x, off, w, b) + ((mask,) if modulated else ())]

    def fn(x, off, w, b, *m):
        return deform_conv(
            x, off, w, b, mask=m[0] if m else None, padding=pad, groups=groups, offset_groups=og, algorithm=algorithm
        )

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6)


def test_fast_path_gradients_match_reference_path_in_float32():
    x, w, b, _, off_shape, mask_shape = _problem(2, 8, 6, groups=2, og=2, dtype=torch.float32, n=3)
    off = torch.randn(off_shape) * 2
    mask = torch.rand(mask_shape)
    grads = []
    for algorithm in ALGOS:
        ts = [t.clone().requires_grad_() for t in (x, off, w, b, mask)]
        out = deform_conv2d(*ts[:4], mask=ts[4], padding=1, groups=2, algorithm=algorithm)
        out.backward(torch.ones_like(out))
        grads.append([out.detach()] + [t.grad for t in ts])
    for a, b_ in zip(*grads):
        torch.testing.assert_close(a, b_, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("budget,radix_span", [(1, 1 << 16), (2000, 1 << 16), (2 * 8 * 9 * 42, 1 << 16), (2000, 0)])
def test_chunked_columns_give_the_same_values_and_gradients(monkeypatch, budget, radix_span):
    # radix_span 0: the input gradient groups its entries with torch.sort instead of NumPy's radix sort
    x, w, b, _, off_shape, mask_shape = _problem(2, 8, 4, og=2, n=3)
    off, mask = torch.randn(off_shape, dtype=x.dtype), torch.rand(mask_shape, dtype=x.dtype)

    def run():
        ts = [t.clone().requires_grad_() for t in (x, off, w, b, mask)]
        out = deform_conv2d(*ts[:4], mask=ts[4], padding=1)
        out.backward(torch.arange(out.numel(), dtype=x.dtype).view_as(out).sin())
        return [out.detach()] + [t.grad for t in ts]

    whole = run()
    monkeypatch.setattr(deform_module, "COLUMNS_BUDGET", budget)
    monkeypatch.setattr(deform_module, "RADIX_SPAN", radix_span)
    assert len(deform_module._row_chunks(3 * 42, 8 * 9)) > 1
    for a, b_ in zip(whole, run()):
        torch.testing.assert_close(a, b_)


def test_batch_zero_unbatched_and_non_contiguous():
    x, w, b, ref, off_shape, mask_shape = _problem(2)
    x0 = x[:0].requires_grad_()
    out = deform_conv2d(x0, torch.zeros(0, *off_shape[1:], dtype=x.dtype), w, b, padding=1)
    assert out.shape == (0, 6, *ref.shape[2:])
    out.sum().backward()
    assert x0.grad.shape == x0.shape
    off = torch.randn(off_shape, dtype=x.dtype)
    full = deform_conv2d(x, off, w, b, padding=1)
    torch.testing.assert_close(deform_conv2d(x[1], off[1], w, b, padding=1), full[1])
    x_nc = x.transpose(2, 3).contiguous().transpose(2, 3)
    off_nc = off.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(deform_conv2d(x_nc, off_nc, w, b, padding=1), full)
    assert full.is_contiguous()
    cl = deform_conv2d(x.contiguous(memory_format=torch.channels_last), off, w, b, padding=1)
    torch.testing.assert_close(cl, full)
    assert cl.is_contiguous(memory_format=torch.channels_last)  # the output keeps the input's layout


def test_fixed_dimension_wrappers():
    for nd, fn in ((1, deform_conv1d), (2, deform_conv2d), (3, deform_conv3d)):
        x, w, b, ref, off_shape, _ = _problem(nd)
        torch.testing.assert_close(fn(x, torch.zeros(off_shape, dtype=x.dtype), w, b, padding=1), ref)
    with pytest.raises(ValueError, match=r"deform_conv2d: expected weight of rank 4 \(2 spatial dims\), got rank 5"):
        deform_conv2d(torch.randn(1, 2, 4, 4, 4), torch.zeros(1, 81, 2, 2, 2), torch.randn(1, 2, 3, 3, 3))


def test_bad_input_messages():
    x = torch.randn(2, 4, 6, 6)
    w = torch.randn(6, 4, 3, 3)
    off = torch.zeros(2, 18, 6, 6)
    with pytest.raises(ValueError, match=r"deform_conv2d: expected offset with a multiple of 2\*prod\(kernel\) = 18 channels .*got 17"):
        deform_conv2d(x, torch.zeros(2, 17, 6, 6), w, padding=1)
    with pytest.raises(ValueError, match=r"deform_conv2d: expected offset of shape \[N, 18, 6, 6\] .*got \[2, 18, 5, 6\]"):
        deform_conv2d(x, torch.zeros(2, 18, 5, 6), w, padding=1)
    with pytest.raises(ValueError, match=r"deform_conv2d: expected offset of shape \[N, 36, 6, 6\] .*offset_groups\*prod\(kernel\) = 2\*2\*9"):
        deform_conv2d(x, off, w, padding=1, offset_groups=2)
    with pytest.raises(ValueError, match=r"deform_conv2d: expected mask of shape \[N, 9, 6, 6\] .*got \[2, 18, 6, 6\]"):
        deform_conv2d(x, off, w, mask=torch.ones(2, 18, 6, 6), padding=1)
    with pytest.raises(ValueError, match=r"deform_conv2d: offset_groups \(3\) must divide in_channels \(4\)"):
        deform_conv2d(x, torch.zeros(2, 54, 6, 6), w, padding=1)
    with pytest.raises(ValueError, match=r"deform_conv2d: expected offset with batch size 2 \(like the input\), got 1"):
        deform_conv2d(x, off[:1], w, padding=1)
    with pytest.raises(ValueError, match=r"deform_conv2d: expected input with weight.shape\[1\] \* groups = 4 \* 2 = 8 channels, got 4"):
        deform_conv2d(x, off, w, padding=1, groups=2)
    with pytest.raises(TypeError, match=r"deform_conv2d: offset dtype \(torch.float64\) must equal input dtype \(torch.float32\)"):
        deform_conv2d(x, off.double(), w, padding=1)
    with pytest.raises(ValueError, match=r"deform_conv2d: algorithm must be one of .*got 'embeddingbag'; did you mean 'embedding_bag'"):
        deform_conv2d(x, off, w, padding=1, algorithm="embeddingbag")
    with pytest.raises(ValueError, match=r"deform_conv2d: output size would be 0 along dim 2"):
        deform_conv2d(torch.randn(1, 4, 2, 6), off, w)
    with pytest.raises(TypeError, match=r"deform_conv2d: offset must be a torch.Tensor, got list"):
        deform_conv(x, [0.0], w)


def test_backward_twice_with_retained_graph_gives_the_same_gradients():
    x, w, b, _, off_shape, mask_shape = _problem(2, n=1)
    ts = [t.clone().requires_grad_() for t in (x, torch.randn(off_shape, dtype=x.dtype), w, torch.rand(mask_shape, dtype=x.dtype))]
    out = deform_conv2d(ts[0], ts[1], ts[2], mask=ts[3], padding=1)
    first = torch.autograd.grad(out.sum(), ts, retain_graph=True)
    second = torch.autograd.grad(out.sum(), ts)
    for a, b_ in zip(first, second):
        torch.testing.assert_close(a, b_)


@pytest.mark.parametrize("budget", [None, 2000])
@pytest.mark.parametrize("wanted", [(0, 1, 2, 3), (0, 1), (2,), (3,), (2, 3), (0, 3)])
def test_gradients_of_any_subset_of_inputs_match_the_full_backward(monkeypatch, budget, wanted):
    # the backward reuses column buffers differently depending on which gradients are needed
    x, w, _, ref, off_shape, mask_shape = _problem(2, 8, 4, og=2, n=3)
    off, mask = torch.randn(off_shape, dtype=x.dtype), torch.rand(mask_shape, dtype=x.dtype)
    grad = torch.randn(ref.shape, dtype=x.dtype)
    full = [t.clone().requires_grad_() for t in (x, off, mask, w)]
    deform_conv2d(full[0], full[1], full[3], mask=full[2], padding=1).backward(grad)
    if budget is not None:
        monkeypatch.setattr(deform_module, "COLUMNS_BUDGET", budget)
    ts = [t.clone().requires_grad_(i in wanted) for i, t in enumerate((x, off, mask, w))]
    deform_conv2d(ts[0], ts[1], ts[3], mask=ts[2], padding=1).backward(grad)
    for i in range(4):
        if i in wanted:
            torch.testing.assert_close(ts[i].grad, full[i].grad)
        else:
            assert ts[i].grad is None
