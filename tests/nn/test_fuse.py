"""Conv + BatchNorm folding for inference: exact against the unfused pair, for every conv kind."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import convolab.nn as cnn
from convolab.nn import fuse, fuse_conv_bn

CASES = [
    (cnn.Conv1d, nn.BatchNorm1d, dict(in_channels=4, out_channels=6, kernel_size=3, padding=1, groups=2), (2, 4, 9)),
    (cnn.Conv2d, nn.BatchNorm2d, dict(in_channels=3, out_channels=8, kernel_size=3, stride=2, padding="same"), (2, 3, 9, 10)),
    (cnn.Conv2d, nn.BatchNorm2d, dict(in_channels=4, out_channels=4, kernel_size=7, padding=3, groups=4, bias=False), (1, 4, 9, 9)),
    (cnn.Conv3d, nn.BatchNorm3d, dict(in_channels=2, out_channels=4, kernel_size=2), (1, 2, 4, 5, 3)),
    (cnn.ConvTranspose2d, nn.BatchNorm2d, dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, groups=2), (2, 4, 5, 6)),
    (cnn.ConvTranspose1d, nn.BatchNorm1d, dict(in_channels=4, out_channels=2, kernel_size=4, stride=2, bias=False), (2, 4, 7)),
    (nn.Conv2d, nn.BatchNorm2d, dict(in_channels=3, out_channels=5, kernel_size=3, padding=1), (2, 3, 6, 6)),
    (nn.ConvTranspose3d, nn.BatchNorm3d, dict(in_channels=2, out_channels=3, kernel_size=2, stride=2), (1, 2, 3, 3, 2)),
]


def _trained_bn(bn_cls, channels, affine=True):
    """A BatchNorm with non-trivial running statistics and affine parameters."""
    bn = bn_cls(channels, affine=affine).double()
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        if affine:
            bn.weight.normal_()
            bn.bias.normal_()
    return bn.eval()


@pytest.mark.parametrize("conv_cls,bn_cls,kwargs,shape", CASES, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("affine", [True, False])
def test_fused_conv_equals_conv_then_bn(conv_cls, bn_cls, kwargs, shape, affine):
    conv = conv_cls(**kwargs).double()
    bn = _trained_bn(bn_cls, kwargs["out_channels"], affine)
    x = torch.randn(*shape, dtype=torch.float64)
    fused = fuse_conv_bn(conv, bn)
    assert type(fused) is conv_cls and not fused.training and fused.bias is not None
    torch.testing.assert_close(fused(x), bn(conv(x)), rtol=1e-10, atol=1e-10)
    if kwargs.get("bias", True) is False:
        assert conv.bias is None  # the original is untouched


def test_fuse_walks_sequentials_and_replaces_bn_by_identity():
    net = nn.Sequential(
        cnn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Sequential(cnn.Conv2d(8, 8, 3, groups=8), nn.BatchNorm2d(8)),
        nn.BatchNorm2d(8),  # follows a Sequential, not a conv: left alone
        cnn.Conv2d(8, 4, 1), nn.ReLU(), nn.BatchNorm2d(4),  # BN after ReLU: left alone
    ).double()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.load_state_dict(_trained_bn(nn.BatchNorm2d, m.num_features).state_dict())
    net.eval()
    fused = fuse(net)
    kinds = [type(m).__name__ for m in fused]
    assert kinds == ["Conv2d", "Identity", "ReLU", "Sequential", "BatchNorm2d", "Conv2d", "ReLU", "BatchNorm2d"]
    assert [type(m).__name__ for m in fused[3]] == ["Conv2d", "Identity"]
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(fused(x), net(x), rtol=1e-10, atol=1e-10)
    assert isinstance(net[1], nn.BatchNorm2d)  # not in place by default
    assert fuse(net, inplace=True) is net and isinstance(net[1], nn.Identity)


def test_errors():
    conv, bn = cnn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)
    with pytest.raises(TypeError, match="fuse_conv_bn: conv must be a convolution module, got Linear"):
        fuse_conv_bn(nn.Linear(3, 8), bn)
    with pytest.raises(TypeError, match="fuse_conv_bn: bn must be a BatchNorm module, got ReLU"):
        fuse_conv_bn(conv, nn.ReLU())
    with pytest.raises(ValueError, match=r"fuse_conv_bn: bn.num_features \(4\) must equal conv.out_channels \(8\)"):
        fuse_conv_bn(conv, nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match="fuse_conv_bn: bn must track running statistics"):
        fuse_conv_bn(conv, nn.BatchNorm2d(8, track_running_stats=False))


def test_fuse_method_on_conv_modules_equals_conv_then_bn():
    import convolab.nn as cnn

    conv, bn = cnn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.eval()
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(conv.fuse(bn)(x), bn(conv(x)), rtol=1e-5, atol=1e-5)
