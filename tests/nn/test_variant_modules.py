"""Pooling and separable-conv modules: drop-in for torch's, parameter and MAC counts from arithmetic."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import convolab.nn as cnn
from convolab import arithmetic
from convolab.functional import split_separable_kernel


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _macs(module: nn.Module, x: torch.Tensor) -> int:
    """MACs the module actually runs, counted by torch's own flop counter (2 flops per MAC)."""
    with FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() // 2


def _same_output_and_grads(ours: nn.Module, ref: nn.Module, x: torch.Tensor) -> None:
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    y, r = ours(a), ref(b)
    if isinstance(r, tuple):
        torch.testing.assert_close(y[1], r[1])
        y, r = y[0], r[0]
    torch.testing.assert_close(y, r)
    g = torch.randn_like(r)
    y.backward(g)
    r.backward(g)
    torch.testing.assert_close(a.grad, b.grad)


# --- pooling modules are drop-in for torch.nn's ------------------------------------------------

DROP_IN = [
    ("MaxPool1d", (3,), {}),
    ("MaxPool1d", (3, 2, 1, 2), {"return_indices": True, "ceil_mode": True}),
    ("MaxPool2d", (2,), {}),
    ("MaxPool2d", ((3, 2), 1, (1, 1)), {"ceil_mode": True}),
    ("MaxPool3d", (2, 1), {"return_indices": True}),
    ("AvgPool1d", (3, 2, 1), {"ceil_mode": True}),
    ("AvgPool2d", (3, 2, 1), {"count_include_pad": False}),
    ("AvgPool2d", (2,), {"divisor_override": 3}),
    ("AvgPool3d", (2, 1, 1), {"ceil_mode": True, "count_include_pad": False}),
    ("LPPool1d", (2, 3), {}),
    ("LPPool2d", (3, 2, 1), {}),
    ("LPPool3d", (2, 2), {}),
    ("AdaptiveMaxPool1d", (3,), {"return_indices": True}),
    ("AdaptiveMaxPool2d", ((2, None),), {}),
    ("AdaptiveMaxPool3d", (2,), {}),
    ("AdaptiveAvgPool1d", (4,), {}),
    ("AdaptiveAvgPool2d", (1,), {}),
    ("AdaptiveAvgPool3d", ((1, 2, 3),), {}),
]
SHAPES = {"1d": (2, 3, 11), "2d": (2, 3, 7, 8), "3d": (2, 3, 5, 6, 5)}


@pytest.mark.parametrize("name,args,kwargs", DROP_IN)
def test_pool_modules_are_drop_in(name, args, kwargs):
    ours, ref = getattr(cnn, name)(*args, **kwargs), getattr(nn, name)(*args, **kwargs)
    assert repr(ours) == repr(ref)
    for attr in ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "output_size", "norm_type"):
        assert getattr(ours, attr, None) == getattr(ref, attr, None)
    x = torch.rand(*SHAPES[name[-2:]], dtype=torch.float64) + 0.1
    _same_output_and_grads(ours, ref, x)


def test_pool_modules_extra_padding_forms():
    x = torch.randn(1, 4, 10, 11)
    assert cnn.MaxPool2d(3, 2, "same")(x).shape == (1, 4, 5, 6)
    assert cnn.AvgPool2d(3, 2, ((0, 1), (1, 1)))(x).shape == (1, 4, 5, 6)
    assert cnn.MaxPool2d(3, 1, 2, dilation=2).effective_kernel_size == (5, 5)
    assert cnn.MaxPool2d(3, 1, 2, dilation=2)(x).shape == x.shape  # padding beyond torch's kernel/2 rule


def test_global_generic_and_spp_modules():
    x = torch.randn(2, 8, 7, 9)
    torch.testing.assert_close(cnn.GlobalAvgPool()(x), x.mean((2, 3)))
    torch.testing.assert_close(cnn.GlobalMaxPool(keepdim=True)(x), x.amax((2, 3), keepdim=True))
    assert repr(cnn.GlobalMaxPool(keepdim=True)) == "GlobalMaxPool(keepdim=True)"
    pool = cnn.Pool(3, 2, "same", reduce=torch.logsumexp)
    assert repr(pool) == "Pool(kernel_size=3, stride=2, padding='same', reduce=logsumexp)"
    assert pool(x).shape == (2, 8, 4, 5)
    torch.testing.assert_close(cnn.Pool((2, 2), reduce="max")(x), F.max_pool2d(x, 2))
    spp = cnn.SpatialPyramidPool((1, 2, 4), "avg")
    assert repr(spp) == "SpatialPyramidPool(levels=(1, 2, 4), mode='avg', bins='adaptive')"
    # the point of SPP: one fully connected layer after it serves every input size
    head = nn.Sequential(cnn.Conv2d(3, 8, 3), spp, nn.Linear(spp.output_features(8), 10))
    for size in [(13, 13), (20, 9), (6, 31)]:
        assert head(torch.randn(2, 3, *size)).shape == (2, 10)


def test_pool_module_construction_errors():
    with pytest.raises(ValueError, match=r"MaxPool2d: padding \(2, 2\) along dim 2 must be at most half the effective kernel size \(3 // 2 = 1\)"):
        cnn.MaxPool2d(3, padding=2)
    with pytest.raises(ValueError, match=r"AvgPool1d: stride must be >= 1 in every dim, got 0"):
        cnn.AvgPool1d(3, 0)
    with pytest.raises(ValueError, match=r"AvgPool2d: divisor_override must be None or a non-zero int, got 0"):
        cnn.AvgPool2d(2, divisor_override=0)
    with pytest.raises(ValueError, match=r"LPPool2d: norm_type must be a non-zero number \(the power p\), got 0"):
        cnn.LPPool2d(0, 2)
    with pytest.raises(ValueError, match=r"AdaptiveAvgPool3d: output_size must be 3 ints >= 1 \(or None to keep that dim\), got \(1, 2\)"):
        cnn.AdaptiveAvgPool3d((1, 2))
    with pytest.raises(ValueError, match=r"SpatialPyramidPool: mode must be one of 'max', 'avg', got 'mx'; did you mean 'max'"):
        cnn.SpatialPyramidPool(mode="mx")
    with pytest.raises(ValueError, match=r"SpatialPyramidPool: levels must be >= 1 in every dim, got 0"):
        cnn.SpatialPyramidPool((1, 0))
    with pytest.raises(ValueError, match=r"Pool: reduce must be one of 'max', 'min', 'mean', 'sum', got 'avg'"):
        cnn.Pool(2, reduce="avg")
    with pytest.raises(ValueError, match=r"MaxPool2d: output size would be 0 along dim 3"):
        cnn.MaxPool2d((1, 9))(torch.randn(1, 1, 5, 5))


# --- depthwise separable -----------------------------------------------------------------------


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("multiplier,bias", [(1, True), (2, False), (3, True)])
def test_depthwise_separable_counts_and_torch_equivalence(nd, multiplier, bias):
    c_in, c_out, k = 4, 6, 3
    m = getattr(cnn, f"DepthwiseSeparableConv{nd}d")(c_in, c_out, k, padding=1, bias=bias, depth_multiplier=multiplier)
    assert _params(m) == arithmetic.depthwise_separable_params(c_in, c_out, k, multiplier, bias, nd)
    size = (6,) * nd
    x = torch.randn(2, c_in, *size)
    assert _macs(m, x) == arithmetic.depthwise_separable_macs(c_in, c_out, k, size, multiplier, batch=2)
    conv = getattr(nn, f"Conv{nd}d")
    ref = nn.Sequential(conv(c_in, c_in * multiplier, k, padding=1, groups=c_in, bias=bias), conv(c_in * multiplier, c_out, 1, bias=bias))
    ref.load_state_dict({k.replace("depthwise", "0").replace("pointwise", "1"): v for k, v in m.state_dict().items()})
    _same_output_and_grads(m, ref, x)
    assert m.kernel_size == (3,) * nd and m.depthwise.groups == c_in


def test_depthwise_separable_with_norm_and_activation():
    m = cnn.DepthwiseSeparableConv2d(4, 8, 3, stride=2, padding="same", norm=nn.BatchNorm2d, activation=nn.ReLU)
    assert isinstance(m.norm, nn.BatchNorm2d) and m.norm.num_features == 4 and isinstance(m.act, nn.ReLU)
    assert _params(m) == arithmetic.depthwise_separable_params(4, 8, 3) + _params(m.norm)
    m.eval()
    x = torch.randn(2, 4, 9, 10)
    expected = m.pointwise(m.act(m.norm(m.depthwise(x))))
    torch.testing.assert_close(m(x), expected)
    assert m(x).shape == (2, 8, 5, 5)
    m2 = cnn.DepthwiseSeparableConv2d(4, 8, 3, activation=nn.GELU(approximate="tanh"))
    assert m2.norm is None and isinstance(m2.act, nn.GELU)
    assert "depth_multiplier=2" in repr(cnn.DepthwiseSeparableConv2d(4, 8, 3, depth_multiplier=2))
    with pytest.raises(TypeError, match=r"DepthwiseSeparableConv2d: norm must be an nn.Module, an nn.Module class or None, got 'bn'"):
        cnn.DepthwiseSeparableConv2d(4, 8, 3, norm="bn")
    with pytest.raises(ValueError, match=r"DepthwiseSeparableConv2d: depth_multiplier must be an int >= 1, got 0"):
        cnn.DepthwiseSeparableConv2d(4, 8, 3, depth_multiplier=0)


def test_depthwise_separable_savings_match_the_seeds():
    # the seeds' example: 7x7x3 input, 128 filters of 3x3 -> 5x5x128: 86400 vs 675 + 9600 multiplications
    dense = cnn.Conv2d(3, 128, 3, bias=False)
    sep = cnn.DepthwiseSeparableConv2d(3, 128, 3, bias=False)
    x = torch.randn(1, 3, 7, 7)
    assert (_macs(dense, x), _macs(sep, x)) == (86400, 10275)
    # and the general factor 1/C_out + 1/k^2 (depth multiplier 1)
    for c_out, k in itertools.product([16, 64], [3, 5]):
        ratio = arithmetic.depthwise_separable_macs(32, c_out, k, (8, 8)) / arithmetic.conv_macs(32, c_out, k, (8, 8))
        assert math.isclose(ratio, 1 / c_out + 1 / k**2)


# --- spatially separable -----------------------------------------------------------------------


@pytest.mark.parametrize("nd", [2, 3])
@pytest.mark.parametrize("mid,groups,bias", [(None, 1, True), (5, 1, False), (4, 4, True)])
def test_spatially_separable_counts(nd, mid, groups, bias):
    c_in, c_out, k = 4, 8, 3
    m = getattr(cnn, f"SpatiallySeparableConv{nd}d")(c_in, c_out, k, stride=2, padding="same", groups=groups, bias=bias, mid_channels=mid)
    assert _params(m) == arithmetic.spatially_separable_params(c_in, c_out, k, mid, groups, bias, nd)
    size = (7,) * nd
    x = torch.randn(2, c_in, *size)
    assert _macs(m, x) == arithmetic.spatially_separable_macs(c_in, c_out, k, size, 2, "same", 1, mid, groups, batch=2)
    assert m(x).shape == (2, c_out, *arithmetic.conv_output_shape(size, k, 2, "same"))


def test_spatially_separable_factor_and_sobel():
    # C_in = mid = C_out: sum(k)/prod(k) of the dense parameters (the seeds: 6 instead of 9)
    m = cnn.SpatiallySeparableConv2d(16, 16, 3, bias=False)
    assert _params(m) / _params(cnn.Conv2d(16, 16, 3, bias=False)) == pytest.approx(2 / 3)
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    col, row = split_separable_kernel(sobel)
    edge = cnn.SpatiallySeparableConv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        edge.weights[0].copy_(col.view(1, 1, 3, 1))
        edge.weights[1].copy_(row.view(1, 1, 1, 3))
    x = torch.randn(2, 1, 12, 12)
    torch.testing.assert_close(edge(x), F.conv2d(x, sobel.view(1, 1, 3, 3), padding=1))
    assert edge.extra_repr() == "1, 1, kernel_size=(3, 3), stride=(1, 1), padding=1, bias=False"


# --- flattened ---------------------------------------------------------------------------------


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_flattened_counts_and_dense_equivalence(nd):
    c_in, c_out, k = 6, 8, 3
    m = getattr(cnn, f"FlattenedConv{nd}d")(c_in, c_out, k, padding=1)
    assert _params(m) == arithmetic.flattened_conv_params(c_in, c_out, k, True, nd)
    size = (5,) * nd
    x = torch.randn(2, c_in, *size)
    assert _macs(m, x) == arithmetic.flattened_conv_macs(c_in, c_out, k, size, 1, 1, 1, batch=2)
    dense = m.channel_weight
    for w in m.spatial_weights:
        dense = dense * w
    torch.testing.assert_close(m(x), getattr(F, f"conv{nd}d")(x, dense, m.bias, padding=1), rtol=1e-5, atol=1e-5)
    # Jin et al.'s saving: C_in + sum(k) instead of C_in * prod(k) weights per output channel
    assert arithmetic.flattened_conv_params(c_in, c_out, k, False, nd) == c_out * (c_in + k * nd)
    assert m.effective_kernel_size == (3,) * nd


# --- 1x1 convolutions and dilation -------------------------------------------------------------


def test_pointwise_conv_reproduces_the_seeds_parameter_savings():
    # GoogLeNet 3a on 28x28x192: naive 1x1/3x3/5x5 branches vs 1x1 reductions before 3x3 and 5x5
    naive = [cnn.PointwiseConv2d(192, 64, bias=False), cnn.Conv2d(192, 128, 3, bias=False), cnn.Conv2d(192, 32, 5, bias=False)]
    reduced = [
        cnn.PointwiseConv2d(192, 64, bias=False),
        cnn.PointwiseConv2d(192, 96, bias=False), cnn.Conv2d(96, 128, 3, bias=False),
        cnn.PointwiseConv2d(192, 16, bias=False), cnn.Conv2d(16, 32, 5, bias=False),
    ]
    assert sum(map(_params, naive)) == 387072
    assert sum(map(_params, reduced)) == 157184
    # ResNet: 3x3 256->256 vs the 1x1-3x3-1x1 bottleneck, MACs per output pixel
    w = h = 4
    x = torch.randn(1, 256, h, w)
    dense = cnn.Conv2d(256, 256, 3, padding=1, bias=False)
    bottleneck = nn.Sequential(
        cnn.PointwiseConv2d(256, 64, bias=False), cnn.Conv2d(64, 64, 3, padding=1, bias=False), cnn.PointwiseConv2d(64, 256, bias=False)
    )
    assert _macs(dense, x) == 589824 * w * h
    assert _macs(bottleneck, x) == 69632 * w * h


def test_pointwise_group_conv():
    m = cnn.PointwiseConv2d(8, 12, groups=4)
    assert m.kernel_size == (1, 1) and _params(m) == arithmetic.conv_params(8, 12, 1, groups=4)
    ref = nn.Conv2d(8, 12, 1, groups=4)
    ref.load_state_dict(m.state_dict())
    _same_output_and_grads(m, ref, torch.randn(2, 8, 5, 5))
    assert type(m).__name__ == "PointwiseConv2d" and cnn.PointwiseConv3d(2, 3)(torch.randn(1, 2, 2, 2, 2)).shape == (1, 3, 2, 2, 2)


@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_effective_kernel_size_of_dilated_conv(dilation):
    m = cnn.Conv2d(2, 3, 3, dilation=dilation, bias=False)
    k_eff = 2 * dilation + 1
    assert m.effective_kernel_size == (k_eff, k_eff) == (arithmetic.effective_kernel_size(3, dilation),) * 2
    # a dilated kernel is the dense kernel of the effective size with zeros between the taps
    dense = torch.zeros(3, 2, k_eff, k_eff)
    dense[..., ::dilation, ::dilation] = m.weight.detach()
    x = torch.randn(1, 2, 11, 11)
    torch.testing.assert_close(m(x), F.conv2d(x, dense), rtol=1e-5, atol=1e-5)
    assert cnn.Conv3d(1, 1, (3, 1, 5), dilation=(2, 1, 1)).effective_kernel_size == (5, 1, 5)


def test_conv_variant_construction_errors():
    with pytest.raises(ValueError, match=r"SpatiallySeparableConv2d: groups \(3\) must divide in_channels \(4\)"):
        cnn.SpatiallySeparableConv2d(4, 6, 3, groups=3)
    with pytest.raises(ValueError, match=r"SpatiallySeparableConv3d: mid_channels must be an int >= 1, got 0"):
        cnn.SpatiallySeparableConv3d(4, 4, 3, mid_channels=0)
    with pytest.raises(ValueError, match=r"FlattenedConv2d: in_channels must be an int >= 1, got 0"):
        cnn.FlattenedConv2d(0, 4, 3)
    with pytest.raises(ValueError, match=r"FlattenedConv2d: padding_mode must be one of 'zeros', 'reflect', 'replicate', 'circular', got 'reflection'; did you mean 'reflect'"):
        cnn.FlattenedConv2d(2, 4, 3, padding_mode="reflection")
    with pytest.raises(ValueError, match=r"DepthwiseSeparableConv1d: kernel_size must be >= 1 in every dim, got 0"):
        cnn.DepthwiseSeparableConv1d(2, 4, 0)
    with pytest.raises(ValueError, match=r"FlattenedConv2d: output size would be 0 along dim 2"):
        cnn.FlattenedConv2d(2, 4, 5)(torch.randn(1, 2, 3, 8))
