"""Deformable conv and ROI modules: fresh modules equal regular convs, plain variants equal the ops."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convolab import nn as cnn
from convolab.functional import deform_conv, roi_align, roi_pool

DENSE = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
OWNING = {
    (1, False): cnn.DeformConv1d,
    (2, False): cnn.DeformConv2d,
    (3, False): cnn.DeformConv3d,
    (1, True): cnn.ModulatedDeformConv1d,
    (2, True): cnn.ModulatedDeformConv2d,
    (3, True): cnn.ModulatedDeformConv3d,
}
PLAIN = {1: cnn.PlainDeformConv1d, 2: cnn.PlainDeformConv2d, 3: cnn.PlainDeformConv3d}
SPATIAL = {1: (11,), 2: (7, 8), 3: (5, 4, 6)}


@pytest.mark.parametrize("nd,modulated", sorted(OWNING))
def test_fresh_module_is_the_regular_conv(nd, modulated):
    torch.manual_seed(0)
    m = OWNING[(nd, modulated)](4, 6, 3, stride=2, padding=1, groups=2, offset_groups=2)
    x = torch.randn(2, 4, *SPATIAL[nd])
    scale = 0.5 if modulated else 1.0  # DCNv2's mask starts at sigmoid(0)
    ref = DENSE[nd](x, m.weight * scale, m.bias, stride=2, padding=1, groups=2)
    torch.testing.assert_close(m(x), ref)
    assert m.conv_offset.out_channels == 2 * 3**nd * (nd + (1 if modulated else 0))
    assert sorted(m.state_dict()) == ["bias", "conv_offset.bias", "conv_offset.weight", "weight"]


def test_same_init_as_torch_conv_and_offsets_learn():
    torch.manual_seed(3)
    m = cnn.ModulatedDeformConv2d(3, 5, 3, padding="same")
    torch.manual_seed(3)
    ref = torch.nn.Conv2d(3, 5, 3, padding="same")
    torch.testing.assert_close(m.weight, ref.weight)
    torch.testing.assert_close(m.bias, ref.bias)
    x = torch.randn(2, 3, 6, 6)
    m(x).square().sum().backward()
    assert m.conv_offset.weight.grad.abs().sum() > 0  # the zero-initialised predictor gets a gradient


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_plain_module_equals_the_functional_op(nd):
    torch.manual_seed(1)
    m = PLAIN[nd](4, 2, 2, padding=1, offset_groups=2, bias=False)
    assert m.bias is None and sorted(m.state_dict()) == ["weight"]
    x = torch.randn(2, 4, *SPATIAL[nd])
    out_size = tuple(s + 1 for s in SPATIAL[nd])
    off = torch.randn(2, nd * 2 * 2**nd, *out_size)
    mask = torch.rand(2, 2 * 2**nd, *out_size)
    torch.testing.assert_close(m(x, off, mask), deform_conv(x, off, m.weight, mask=mask, padding=1, offset_groups=2))
    torch.testing.assert_close(m(x[0], off[0]), deform_conv(x[:1], off[:1], m.weight, padding=1)[0])


def test_unbatched_owning_module_and_repr():
    m = cnn.ModulatedDeformConv2d(2, 3, 3, padding=1, dilation=2, bias=False, algorithm="gather")
    x = torch.randn(2, 7, 7)
    assert m(x).shape == (3, 5, 5)
    assert (
        "2, 3, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(2, 2), "
        "algorithm='gather', bias=False"
    ) in repr(m)


def test_construction_errors():
    with pytest.raises(ValueError, match=r"DeformConv2d: offset_groups \(3\) must divide in_channels \(4\)"):
        cnn.DeformConv2d(4, 4, 3, offset_groups=3)
    with pytest.raises(ValueError, match=r"PlainDeformConv1d: groups \(3\) must divide in_channels \(4\)"):
        cnn.PlainDeformConv1d(4, 6, 3, groups=3)
    with pytest.raises(ValueError, match=r"DeformConv3d: algorithm must be one of .*got 'fast'"):
        cnn.DeformConv3d(2, 2, 3, algorithm="fast")
    with pytest.raises(ValueError, match=r"ModulatedDeformConv2d: offset_groups must be an int >= 1, got 0"):
        cnn.ModulatedDeformConv2d(2, 2, 3, offset_groups=0)
    with pytest.raises(ValueError, match=r"PlainDeformConv2d: expected offset of shape"):
        cnn.PlainDeformConv2d(2, 2, 3)(torch.randn(1, 2, 5, 5), torch.zeros(1, 18, 5, 5))


def test_roi_modules_equal_the_ops_and_check_arguments():
    x = torch.randn(2, 3, 12, 10)
    boxes = torch.tensor([[0, 1.0, 2.0, 8.0, 9.0], [1, 0.0, 0.0, 15.0, 20.0]])
    align = cnn.RoIAlign((2, 3), 0.5, 2, aligned=True)
    torch.testing.assert_close(align(x, boxes), roi_align(x, boxes, (2, 3), 0.5, 2, True))
    pool = cnn.RoIPool(4, 0.5)
    torch.testing.assert_close(pool(x, boxes), roi_pool(x, boxes, 4, 0.5))
    assert repr(align) == "RoIAlign(output_size=(2, 3), spatial_scale=0.5, sampling_ratio=2, aligned=True)"
    assert repr(pool) == "RoIPool(output_size=(4, 4), spatial_scale=0.5)"
    with pytest.raises(ValueError, match=r"RoIAlign: spatial_scale must be a finite number > 0, got 0"):
        cnn.RoIAlign(7, 0)
    with pytest.raises(TypeError, match=r"RoIAlign: sampling_ratio must be an int .*got 2.0"):
        cnn.RoIAlign(7, 1.0, 2.0)
    with pytest.raises(ValueError, match=r"RoIPool: output_size must be >= 1 in every dim"):
        cnn.RoIPool((7, 0))


def test_model_summary_counts_the_nominal_macs_of_every_deformable_conv():
    # the kernel is one opaque custom op: the MACs come from the module (regular-grid conv
    # plus the offset predictor), the field is the regular grid's
    from convolab.analysis import summary

    model = torch.nn.Sequential(
        cnn.DeformConv2d(4, 8, 3, padding=1),
        cnn.ModulatedDeformConv2d(8, 8, 3, padding=1, groups=2),
    )
    s = summary(model, (1, 4, 16, 16))
    conv = lambda c_in, c_out, groups=1: c_out * (c_in // groups) * 9 * 16 * 16  # noqa: E731
    expected = conv(4, 8) + conv(4, 18) + conv(8, 8, 2) + conv(8, 27)
    text = str(s)
    assert f"{expected:,}" in text
    assert "Not analysed" not in text
