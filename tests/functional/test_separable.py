"""Separable convolutions: equal to the dense conv / torch composition they parameterise, gradcheck, errors."""

from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F

import convolab.functional as CF
from tests._reference import assert_same_values_and_grads, conv_loop

TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
SIZES = {1: (10,), 2: (7, 8), 3: (5, 6, 5)}
SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=torch.float64)


def _pass_weight(c_out, c_in, k, i, nd):
    """A 1-D filter along spatial dim i: [c_out, c_in, 1, .., k, .., 1]."""
    return torch.randn(c_out, c_in, *(k if j == i else 1 for j in range(nd)), dtype=torch.float64)


# --- depthwise separable -----------------------------------------------------------------------


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("multiplier", [1, 2])
@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (2, 1, 1), (1, 2, 2)])
@pytest.mark.parametrize("bias", [True, False])
def test_depthwise_separable_matches_torch_composition(nd, multiplier, stride, padding, dilation, bias):
    c_in, c_out, k = 3, 5, 3
    x = torch.randn(2, c_in, *SIZES[nd], dtype=torch.float64)
    dw = torch.randn(c_in * multiplier, 1, *(k,) * nd, dtype=torch.float64)
    pw = torch.randn(c_out, c_in * multiplier, *(1,) * nd, dtype=torch.float64)
    db = torch.randn(c_in * multiplier, dtype=torch.float64)
    pb = torch.randn(c_out, dtype=torch.float64)
    conv = TORCH_CONV[nd]

    def ref(x, dw, pw, db, pb):
        mid = conv(x, dw, db if bias else None, stride, padding, dilation, c_in)
        return conv(torch.tanh(mid), pw, pb if bias else None)

    def ours(x, dw, pw, db, pb):
        return CF.depthwise_separable_conv(
            x, dw, pw, db if bias else None, pb if bias else None, stride, padding, dilation, between=torch.tanh
        )

    assert_same_values_and_grads(ours, ref, [x, dw, pw, db, pb])


def test_depthwise_separable_same_padding_with_stride_and_reflect():
    x = torch.randn(1, 4, 9, 10, dtype=torch.float64)
    dw, pw = torch.randn(4, 1, 3, 3, dtype=torch.float64), torch.randn(6, 4, 1, 1, dtype=torch.float64)
    y = CF.depthwise_separable_conv(x, dw, pw, stride=2, padding="same", padding_mode="reflect")
    mid = CF.conv2d(x, dw, None, 2, "same", groups=4, padding_mode="reflect")
    torch.testing.assert_close(y, F.conv2d(mid, pw))
    assert y.shape[2:] == (5, 5)


def test_depthwise_separable_gradcheck():
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    dw = torch.randn(4, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    pw = torch.randn(3, 4, 1, 1, dtype=torch.float64, requires_grad=True)
    db = torch.randn(4, dtype=torch.float64, requires_grad=True)
    pb = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda *a: CF.depthwise_separable_conv(*a, stride=2, padding="same"), (x, dw, pw, db, pb)
    )


# --- spatially separable -----------------------------------------------------------------------

PADS = [0, 1, "same", "per-side"]


@pytest.mark.parametrize("nd", [2, 3])
@pytest.mark.parametrize("stride,dilation", [(1, 1), (2, 1), (1, 2), ((2, 1, 1), (1, 2, 1))])
@pytest.mark.parametrize("padding", PADS)
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
def test_spatially_separable_equals_dense_outer_product(nd, stride, dilation, padding, padding_mode):
    if isinstance(stride, tuple):
        stride, dilation = stride[:nd], dilation[:nd]
    if padding == "per-side":
        padding = ((1, 2), (0, 1), (2, 0))[:nd]
    k = (3, 2, 3)[:nd]
    c = 3  # depthwise: groups = C, one 1-D kernel per channel and dim
    x = torch.randn(2, c, *SIZES[nd], dtype=torch.float64)
    factors = [torch.randn(c, kk, dtype=torch.float64) for kk in k]
    weights = [f.view(c, 1, *(kk if j == i else 1 for j in range(nd))) for i, (f, kk) in enumerate(zip(factors, k))]
    dense = factors[0].view(c, 1, k[0], *(1,) * (nd - 1))
    for i in range(1, nd):
        dense = dense * factors[i].view(c, 1, *(k[j] if j == i else 1 for j in range(nd)))
    b = torch.randn(c, dtype=torch.float64)
    y = CF.spatially_separable_conv(x, weights, b, stride, padding, dilation, c, padding_mode=padding_mode)
    r = CF.conv(x, dense, b, stride, padding, dilation, c, padding_mode=padding_mode, algorithm="native")
    torch.testing.assert_close(y, r)


@pytest.mark.parametrize("stride,padding", [(1, 1), (2, "same"), ((2, 1), ((0, 1), (1, 1)))])
def test_spatially_separable_channels_equal_the_composed_dense_conv(stride, padding):
    # C_in -> mid (k x 1) -> C_out (1 x k): a dense conv with W[o, c, i, j] = sum_m W2[o, m, j] W1[m, c, i]
    x = torch.randn(2, 3, 7, 8, dtype=torch.float64)
    w1, w2 = _pass_weight(4, 3, 3, 0, 2), _pass_weight(5, 4, 2, 1, 2)
    b = torch.randn(5, dtype=torch.float64)

    def composed(w1, w2):
        return torch.einsum("omj,mci->ocij", w2[:, :, 0, :], w1[..., 0])

    assert_same_values_and_grads(
        lambda x, w1, w2, b: CF.spatially_separable_conv(x, [w1, w2], b, stride, padding),
        lambda x, w1, w2, b: CF.conv(x, composed(w1, w2), b, stride, padding, algorithm="native"),
        [x, w1, w2, b],
    )
    if padding != "same":  # and against the plain loop, independent of convolab
        ref = conv_loop(x.numpy(), composed(w1, w2).numpy(), b.numpy(), stride, padding)
        y = CF.spatially_separable_conv(x, [w1, w2], b, stride, padding)
        torch.testing.assert_close(y, torch.from_numpy(ref))


def test_spatially_separable_gradcheck_3d():
    x = torch.randn(1, 2, 3, 4, 3, dtype=torch.float64, requires_grad=True)
    ws = [_pass_weight(2, 2, 2, i, 3).requires_grad_(True) for i in range(3)]
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, a, c, d, b: CF.spatially_separable_conv(x, [a, c, d], b, 2, "same"), (x, *ws, b)
    )


# --- kernel splitting (SVD) --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sobel_is_separable_and_the_split_convolves_identically(dtype):
    sobel = SOBEL_X.to(dtype)
    for kernel in (sobel, sobel.T.contiguous()):
        col, row = CF.split_separable_kernel(kernel)
        torch.testing.assert_close(torch.outer(col, row), kernel)
        x = torch.randn(2, 1, 9, 8, dtype=dtype)
        y = CF.spatially_separable_conv(x, [col.view(1, 1, 3, 1), row.view(1, 1, 1, 3)], padding=1)
        torch.testing.assert_close(y, F.conv2d(x, kernel.view(1, 1, 3, 3), padding=1))
    col, _ = CF.split_separable_kernel(sobel)
    torch.testing.assert_close(col / col[0], torch.tensor([1.0, 2.0, 1.0], dtype=dtype))  # smoothing column


def test_split_batch_gaussian_and_zero():
    g = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64)
    kernels = torch.stack([torch.outer(g, g), torch.outer(torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64))])
    col, row = CF.split_separable_kernel(kernels)
    assert col.shape == (2, 5) and row.shape == (2, 5)
    torch.testing.assert_close(col[..., :, None] * row[..., None, :], kernels)
    torch.testing.assert_close(col[0], row[0])  # a symmetric kernel splits into equal halves
    zc, zr = CF.split_separable_kernel(torch.zeros(3, 2))
    assert torch.equal(torch.outer(zc, zr), torch.zeros(3, 2))
    rect = torch.outer(torch.arange(1.0, 4.0), torch.tensor([2.0, -1.0]))  # 3 x 2
    c, r = CF.split_separable_kernel(rect)
    torch.testing.assert_close(torch.outer(c, r), rect)


def test_split_rejects_non_separable_kernels():
    laplacian = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    with pytest.raises(ValueError, match=r"split_separable_kernel: kernel is not separable: numerical rank 2, singular values \[4\.44949, 0\.44949, 0\.0\] \(rank 1 needs s\[1\] <= 3\.58e-06 \* s\[0\]\)"):
        CF.split_separable_kernel(laplacian)
    batch = torch.stack([SOBEL_X, torch.eye(3, dtype=torch.float64)])
    with pytest.raises(ValueError, match=r"kernel at index \(1,\) is not separable: numerical rank 3"):
        CF.split_separable_kernel(batch)
    # a loose tolerance accepts a nearly separable kernel
    near = SOBEL_X + 1e-4 * torch.eye(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="not separable"):
        CF.split_separable_kernel(near)
    c, r = CF.split_separable_kernel(near, rtol=1e-3)
    torch.testing.assert_close(torch.outer(c, r), near, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match=r"expected a kernel \[\.\.\., kH, kW\] of rank >= 2, got shape \[3\]"):
        CF.split_separable_kernel(torch.ones(3))
    with pytest.raises(TypeError, match=r"kernel must be a floating-point tensor, got torch.int64"):
        CF.split_separable_kernel(torch.ones(3, 3, dtype=torch.long))


# --- flattened ---------------------------------------------------------------------------------


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (2, "same", 1), (1, 1, 2), (2, "per-side", 1)])
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
def test_flattened_equals_dense_rank1_filters(nd, stride, padding, dilation, padding_mode):
    if padding == "per-side":
        padding = ((1, 0), (0, 1), (1, 1))[:nd]
    c_in, c_out = 3, 4
    k = (3, 2, 3)[:nd]
    x = torch.randn(2, c_in, *SIZES[nd], dtype=torch.float64)
    lateral = torch.randn(c_out, c_in, dtype=torch.float64)
    factors = [torch.randn(c_out, kk, dtype=torch.float64) for kk in k]
    spatial = [f.view(c_out, 1, *(kk if j == i else 1 for j in range(nd))) for i, (f, kk) in enumerate(zip(factors, k))]
    dense = lateral.view(c_out, c_in, *(1,) * nd)
    for i in range(nd):
        dense = dense * factors[i].view(c_out, 1, *(k[j] if j == i else 1 for j in range(nd)))
    b = torch.randn(c_out, dtype=torch.float64)

    def ours(x, lateral, b, *spatial):
        return CF.flattened_conv(x, lateral.view(c_out, c_in, *(1,) * nd), list(spatial), b, stride, padding, dilation, padding_mode=padding_mode)

    def ref(x, lateral, b, *spatial):
        w = lateral.view(c_out, c_in, *(1,) * nd)
        for s in spatial:
            w = w * s
        return CF.conv(x, w, b, stride, padding, dilation, padding_mode=padding_mode, algorithm="native")

    assert_same_values_and_grads(ours, ref, [x, lateral, b, *spatial])
    torch.testing.assert_close(ours(x, lateral, b, *spatial), ref(x, lateral, b, *spatial))
    assert dense.shape == (c_out, c_in, *k)


def test_flattened_gradcheck():
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    cw = torch.randn(3, 2, 1, 1, dtype=torch.float64, requires_grad=True)
    v, h = _pass_weight(3, 1, 3, 0, 2).requires_grad_(True), _pass_weight(3, 1, 3, 1, 2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, cw, v, h: CF.flattened_conv(x, cw, [v, h], None, 2, "same"), (x, cw, v, h))


# --- edge cases and errors ---------------------------------------------------------------------


@pytest.mark.parametrize("op", ["depthwise", "spatial", "flattened"])
def test_batch_zero_unbatched_non_contiguous(op):
    dw, pw = torch.randn(6, 1, 3, 3), torch.randn(4, 6, 1, 1)
    ws = [torch.randn(4, 3, 3, 1), torch.randn(4, 4, 1, 3)]
    cw, vs = torch.randn(4, 3, 1, 1), [torch.randn(4, 1, 3, 1), torch.randn(4, 1, 1, 3)]
    fn = {
        "depthwise": lambda t: CF.depthwise_separable_conv(t, dw, pw, padding=1),
        "spatial": lambda t: CF.spatially_separable_conv(t, ws, padding="same"),
        "flattened": lambda t: CF.flattened_conv(t, cw, vs, padding=1),
    }[op]
    assert fn(torch.randn(0, 3, 6, 7)).shape == (0, 4, 6, 7)
    x = torch.randn(2, 7, 6, 3).permute(0, 3, 2, 1)
    torch.testing.assert_close(fn(x), fn(x.contiguous()))
    torch.testing.assert_close(fn(x[0]), fn(x)[0])


def test_errors():
    x = torch.randn(1, 3, 6, 6)
    with pytest.raises(ValueError, match=r"depthwise_separable_conv: expected depthwise_weight of shape \[C_in\*depth_multiplier, 1, \*kernel\] with C_in = 3 \(the input's channels\), got \[4, 1, 3, 3\]"):
        CF.depthwise_separable_conv(x, torch.randn(4, 1, 3, 3), torch.randn(2, 4, 1, 1))
    with pytest.raises(ValueError, match=r"expected pointwise_weight of shape \[C_out, 6, 1, 1\] \(1x1 over the depthwise output's 6 channels\), got \[2, 6, 3, 3\]"):
        CF.depthwise_separable_conv(x, torch.randn(6, 1, 3, 3), torch.randn(2, 6, 3, 3))
    with pytest.raises(ValueError, match=r"depthwise_separable_conv: expected input of rank 4 \(\[N, C, \*spatial\]\) or 3 \(unbatched\)"):
        CF.depthwise_separable_conv(torch.randn(3, 6), torch.randn(3, 1, 3, 3), torch.randn(2, 3, 1, 1))
    with pytest.raises(ValueError, match=r"depthwise_separable_conv: output size would be 0 along dim 2"):
        CF.depthwise_separable_conv(torch.randn(1, 3, 2, 6), torch.randn(3, 1, 3, 3), torch.randn(2, 3, 1, 1))
    with pytest.raises(ValueError, match=r"spatially_separable_conv: weights\[1\] must be a 1-D filter along spatial dim 3, shape \[C_out, C_in/groups, 1, k\], got \[2, 2, 3, 3\]"):
        CF.spatially_separable_conv(x, [torch.randn(2, 3, 3, 1), torch.randn(2, 2, 3, 3)])
    with pytest.raises(ValueError, match=r"weights\[1\] expects 4 \* groups \(1\) = 4 input channels, but weights\[0\] produces 2"):
        CF.spatially_separable_conv(x, [torch.randn(2, 3, 3, 1), torch.randn(2, 4, 1, 3)])
    with pytest.raises(ValueError, match=r"weights\[0\] expects 2 \* groups \(1\) = 2 input channels, but the input has 3"):
        CF.spatially_separable_conv(x, [torch.randn(2, 2, 3, 1), torch.randn(2, 2, 1, 3)])
    with pytest.raises(ValueError, match=r"weights must hold one weight per spatial dim \(1 given, the first of rank 4, i.e. 2 spatial dims\)"):
        CF.spatially_separable_conv(x, [torch.randn(2, 3, 3, 1)])
    with pytest.raises(TypeError, match=r"spatially_separable_conv: weights must be a non-empty sequence of tensors"):
        CF.spatially_separable_conv(x, torch.randn(2, 3, 3, 1))
    with pytest.raises(ValueError, match=r"spatially_separable_conv: output size would be 0 along dim 3 \(in=6, kernel=7"):
        CF.spatially_separable_conv(x, [torch.randn(2, 3, 3, 1), torch.randn(2, 2, 1, 7)])
    with pytest.raises(ValueError, match=r"flattened_conv: expected channel_weight of shape \[C_out, 3, 1, 1\] \(a 1x1 filter over the input's 3 channels\), got \[4, 2, 1, 1\]"):
        CF.flattened_conv(x, torch.randn(4, 2, 1, 1), [torch.randn(4, 1, 3, 1), torch.randn(4, 1, 1, 3)])
    with pytest.raises(ValueError, match=r"flattened_conv: spatial_weights\[1\] must be depthwise over the 4 output channels, shape \[4, 1, \.\.\.\], got \[4, 2, 1, 3\]"):
        CF.flattened_conv(x, torch.randn(4, 3, 1, 1), [torch.randn(4, 1, 3, 1), torch.randn(4, 2, 1, 3)])
