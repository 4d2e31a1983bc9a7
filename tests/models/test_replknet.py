"""RepLKNet (Ding et al. 2022) against independent references.

- structural re-parameterisation: the merged single large kernel gives the
  training-form outputs (eval mode, float64, to 1e-10) for the conv, the
  block and whole networks, with batch-norm statistics far from identity;
  the merged kernel itself against the folding formula written out here;
- the official release's state_dict layout, written here from its
  ``replknet.py`` (training form and merged form);
- parameter and MAC counts from closed-form formulas: 79,864,168 for
  RepLKNet-31B (published 79M / 79.86M), 15.35 G MACs merged (published 15.3G).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from convolab.analysis import summary
from convolab.models import create_model
from convolab.models.replknet import ConvFFN, RepLKBlock, RepLKNet, ReparamLargeKernelConv
from convolab.nn import Conv2d, fuse

B31 = ((31, 29, 27, 13), (2, 2, 18, 2), (128, 256, 512, 1024))
TINY = ((31,), (2,), (128,))


def _meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **kwargs)


def _randomise_batch_norms(model: nn.Module) -> nn.Module:
    """Statistics and affine parameters far from (0, 1), so every fold is exercised."""
    g = torch.Generator().manual_seed(7)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(c, generator=g) * 2 + 0.3)
                m.weight.copy_(torch.randn(c, generator=g) * 0.5 + 1)
                m.bias.copy_(torch.randn(c, generator=g) * 0.3)
    return model


# --- re-parameterisation: equal outputs --------------------------------------------------------


@pytest.mark.parametrize(("kernel", "small"), [(31, 5), (13, 3), (7, 7), (9, None)])
def test_merged_conv_equals_the_two_branches(kernel, small):
    m = _randomise_batch_norms(ReparamLargeKernelConv(6, kernel, small)).double().eval()
    x = torch.randn(2, 6, 17, 12, dtype=torch.float64)
    fused = m.fuse()
    assert fused.merged and not m.merged  # a new module; the original is kept
    assert list(fused.state_dict()) == ["lkb_reparam.weight", "lkb_reparam.bias"]
    assert isinstance(fused.lkb_reparam, Conv2d) and fused.lkb_reparam.groups == 6
    torch.testing.assert_close(fused(x), m(x), atol=1e-10, rtol=1e-10)


def test_merged_kernel_is_the_folding_formula():
    m = _randomise_batch_norms(ReparamLargeKernelConv(4, 31, 5)).double().eval()
    big, small = m.lkb_origin, m.small_conv

    @torch.no_grad()
    def fold(branch):
        s = branch.bn.weight / torch.sqrt(branch.bn.running_var + branch.bn.eps)
        return branch.conv.weight * s.view(-1, 1, 1, 1), branch.bn.bias - branch.bn.running_mean * s

    wl, bl = fold(big)
    ws, bs = fold(small)
    conv = m.fused_conv()
    w = conv.weight.detach()
    centre = slice(13, 18)  # the 5x5 window centred in 31x31: (31 - 5) / 2 = 13
    torch.testing.assert_close(w[:, :, centre, centre], wl[:, :, centre, centre] + ws)
    outside = torch.ones(31, 31, dtype=torch.bool)
    outside[centre, centre] = False
    torch.testing.assert_close(w[:, :, outside], wl[:, :, outside])
    torch.testing.assert_close(conv.bias.detach(), bl + bs)
    assert conv.padding == (15, 15)


def test_merging_after_the_generic_batch_norm_fold():
    """convolab.nn.fuse first (each branch's BN folded into its conv), then the branches merge."""
    m = _randomise_batch_norms(ReparamLargeKernelConv(4, 13, 3)).double().eval()
    x = torch.randn(1, 4, 10, 10, dtype=torch.float64)
    folded = fuse(m)
    assert isinstance(folded.lkb_origin.bn, nn.Identity)
    torch.testing.assert_close(folded.fuse()(x), m(x), atol=1e-10, rtol=1e-10)


def test_merged_block_equals_the_training_block():
    block = _randomise_batch_norms(RepLKBlock(8, 8, 13, 5)).double().eval()
    merged = copy.deepcopy(block)
    merged.large_kernel.fuse(inplace=True)
    x = torch.randn(2, 8, 11, 11, dtype=torch.float64)
    torch.testing.assert_close(merged(x), block(x), atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize(
    "config",
    [TINY, ((31, 29, 27, 13), (1, 1, 1, 1), (8, 16, 16, 24))],
    ids=["replknet_tiny", "four-stages"],
)
def test_merged_network_equals_the_training_network(config):
    torch.manual_seed(0)
    net = _randomise_batch_norms(RepLKNet(*config, small_kernel=5, num_classes=10)).double().eval()
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    fused = net.fuse()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules() if hasattr(m, "lkb_reparam"))
    assert sum(isinstance(m, ReparamLargeKernelConv) and m.merged for m in fused.modules()) == sum(config[1])
    expected = net(x)
    torch.testing.assert_close(fused(x), expected, atol=1e-10, rtol=1e-10)
    # the remaining conv + BN pairs fold with convolab.nn.fuse: one conv per layer at inference
    folded = fuse(fused)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules()) < sum(
        isinstance(m, nn.BatchNorm2d) for m in fused.modules()
    )
    torch.testing.assert_close(folded(x), expected, atol=1e-10, rtol=1e-10)


def test_fuse_in_place_and_loading_merged_weights():
    net = _randomise_batch_norms(create_model("replknet_tiny", num_classes=4)).eval()
    x = torch.randn(1, 3, 48, 48)
    before = net(x)
    assert net.fuse(inplace=True) is net and not net.training
    deploy = create_model("replknet_tiny", num_classes=4, small_kernel_merged=True)
    deploy.load_state_dict(net.state_dict())  # strict: the release's merged layout
    torch.testing.assert_close(deploy.eval()(x), before, atol=1e-4, rtol=1e-4)
    assert net.fuse() is not net  # fusing a merged network again is a copy, unchanged
    torch.testing.assert_close(net.fuse()(x), net(x))


def test_training_form_trains_and_merged_form_has_fewer_parameters():
    net = create_model("replknet_tiny", num_classes=3).train()
    out = net(torch.randn(2, 3, 32, 32))
    out.square().mean().backward()
    lk = net.stages[0].blocks[0].large_kernel
    assert lk.lkb_origin.conv.weight.grad is not None and lk.small_conv.conv.weight.grad is not None
    saved = sum(p.numel() for p in net.parameters()) - sum(p.numel() for p in net.fuse().parameters())
    assert saved == 2 * (25 * 128 + 2 * 128 + 2 * 128 - 128)  # small conv and two BNs out, one bias in


# --- the official layout ------------------------------------------------------------------------


def _bn(prefix, c):
    return [(f"{prefix}.{k}", [c]) for k in ("weight", "bias", "running_mean", "running_var")] + [
        (f"{prefix}.num_batches_tracked", [])
    ]


def official_layout(kernels, layers, channels, num_classes=1000, small=5, merged=False):
    """(key, shape) of the state_dict of DingXiaoH/RepLKNet-pytorch's ``RepLKNet``, in its order."""
    c0 = channels[0]
    keys = []
    for i, (cin, cout, k, groups) in enumerate([(3, c0, 3, 1), (c0, c0, 3, c0), (c0, c0, 1, 1), (c0, c0, 3, c0)]):
        keys += [(f"stem.{i}.conv.weight", [cout, cin // groups, k, k])] + _bn(f"stem.{i}.bn", cout)
    for s, (k, n, c) in enumerate(zip(kernels, layers, channels)):
        for j in range(n):
            p = f"stages.{s}.blocks.{2 * j}"
            keys += [(f"{p}.pw1.conv.weight", [c, c, 1, 1])] + _bn(f"{p}.pw1.bn", c)
            keys += [(f"{p}.pw2.conv.weight", [c, c, 1, 1])] + _bn(f"{p}.pw2.bn", c)
            if merged:
                keys += [(f"{p}.large_kernel.lkb_reparam.weight", [c, 1, k, k]),
                         (f"{p}.large_kernel.lkb_reparam.bias", [c])]  # fmt: skip
            else:
                keys += [(f"{p}.large_kernel.lkb_origin.conv.weight", [c, 1, k, k])]
                keys += _bn(f"{p}.large_kernel.lkb_origin.bn", c)
                keys += [(f"{p}.large_kernel.small_conv.conv.weight", [c, 1, small, small])]
                keys += _bn(f"{p}.large_kernel.small_conv.bn", c)
            keys += _bn(f"{p}.prelkb_bn", c)
            p = f"stages.{s}.blocks.{2 * j + 1}"
            keys += _bn(f"{p}.preffn_bn", c)
            keys += [(f"{p}.pw1.conv.weight", [4 * c, c, 1, 1])] + _bn(f"{p}.pw1.bn", 4 * c)
            keys += [(f"{p}.pw2.conv.weight", [c, 4 * c, 1, 1])] + _bn(f"{p}.pw2.bn", c)
    for s in range(len(channels) - 1):
        c, d = channels[s], channels[s + 1]
        keys += [(f"transitions.{s}.0.conv.weight", [d, c, 1, 1])] + _bn(f"transitions.{s}.0.bn", d)
        keys += [(f"transitions.{s}.1.conv.weight", [d, 1, 3, 3])] + _bn(f"transitions.{s}.1.bn", d)
    keys += _bn("norm", channels[-1]) + [("head.weight", [num_classes, channels[-1]]), ("head.bias", [num_classes])]
    return keys


@pytest.mark.parametrize("merged", [False, True])
def test_state_dict_is_the_official_layout(merged):
    ours = [(k, list(v.shape)) for k, v in _meta("replknet_31b", small_kernel_merged=merged).state_dict().items()]
    assert ours == official_layout(*B31, merged=merged)
    fused = [(k, list(v.shape)) for k, v in _meta("replknet_31b").fuse().state_dict().items()]
    assert fused == official_layout(*B31, merged=True)


# --- counts -------------------------------------------------------------------------------------


def _params_formula(kernels, layers, channels, num_classes=1000, small=5, merged=False):
    bn = lambda c: 2 * c  # noqa: E731  (trainable: weight and bias)
    c0 = channels[0]
    total = 27 * c0 + bn(c0) + 9 * c0 + bn(c0) + c0 * c0 + bn(c0) + 9 * c0 + bn(c0)
    for k, n, c in zip(kernels, layers, channels):
        large = k * k * c + c if merged else k * k * c + bn(c) + small * small * c + bn(c)
        replk = bn(c) + c * c + bn(c) + c * c + bn(c) + large
        ffn = bn(c) + 4 * c * c + bn(4 * c) + 4 * c * c + bn(c)
        total += n * (replk + ffn)
    for c, d in zip(channels, channels[1:]):
        total += c * d + bn(d) + 9 * d + bn(d)
    return total + bn(channels[-1]) + channels[-1] * num_classes + num_classes


def test_parameter_counts_against_the_formula_and_the_published_figure():
    count = sum(p.numel() for p in _meta("replknet_31b").parameters())
    assert count == _params_formula(*B31) == 79_864_168
    assert round(count / 1e6, 2) == 79.86  # the OpenMMLab table; the release says "79M"
    assert sum(p.numel() for p in _meta("replknet_31b").fuse().parameters()) == _params_formula(*B31, merged=True)
    assert sum(p.numel() for p in _meta("replknet_tiny").parameters()) == _params_formula(*TINY)


def _macs_formula(kernels, layers, channels, size=224, num_classes=1000, small=5, merged=False):
    c0, h = channels[0], size // 2
    total = 27 * c0 * h * h + 9 * c0 * h * h + c0 * c0 * h * h
    h //= 2
    total += 9 * c0 * h * h
    for s, (k, n, c) in enumerate(zip(kernels, layers, channels)):
        dw = k * k if merged else k * k + small * small
        total += n * (2 * c * c + dw * c + 8 * c * c) * h * h
        if s + 1 < len(channels):
            d = channels[s + 1]
            total += c * d * h * h
            h //= 2
            total += 9 * d * h * h
    return total + channels[-1] * num_classes


def test_summary_macs_match_the_formula_and_the_published_figure():
    model = _meta("replknet_31b").eval()
    s = summary(model, (1, 3, 224, 224))
    assert s.params == 79_864_168 and not s.not_analysed
    assert s.macs == _macs_formula(*B31)
    merged = summary(model.fuse(), (1, 3, 224, 224))
    assert merged.macs == _macs_formula(*B31, merged=True)
    # 15.354 G: the release's "15.3G" (merged network) to 0.4 %; its counter's rounding is not published
    assert abs(merged.macs / 15.3e9 - 1) < 0.005 and merged.macs < s.macs


# --- structure and options ----------------------------------------------------------------------


def test_block_structure_and_drop_path_schedule():
    model = _meta("replknet_31b")
    blocks = [m for m in model.modules() if isinstance(m, (RepLKBlock, ConvFFN))]
    assert len(blocks) == 2 * 24
    rates = [m.drop_path.p for m in blocks[::2]]
    assert rates == pytest.approx([0.3 * i / 23 for i in range(24)])  # the release's default 0.3
    assert [m.drop_path.p for m in blocks[1::2]] == rates  # each pair shares its rate
    kernels = [m.large_kernel.kernel_size for m in blocks[::2]]
    assert kernels == [31] * 2 + [29] * 2 + [27] * 18 + [13] * 2
    lk = blocks[0].large_kernel
    assert isinstance(lk.lkb_origin.conv, Conv2d) and lk.lkb_origin.conv.algorithm == "auto"
    assert lk.lkb_origin.conv.groups == 128 and lk.small_conv.conv.kernel_size == (5, 5)
    assert model.forward_features(torch.empty(1, 3, 224, 224, device="meta")).shape == (1, 1024, 7, 7)


def test_errors():
    with pytest.raises(ValueError, match=r"ReparamLargeKernelConv: kernel_size must be odd \(centred kernels keep the size\), got 30"):
        ReparamLargeKernelConv(4, 30, 5)
    with pytest.raises(ValueError, match=r"ReparamLargeKernelConv: small_kernel \(7\) must not exceed kernel_size \(5\)"):
        ReparamLargeKernelConv(4, 5, 7)
    with pytest.raises(ValueError, match=r"ReparamLargeKernelConv: channels must be an int >= 1, got 0"):
        ReparamLargeKernelConv(0, 5, 3)
    with pytest.raises(ValueError, match=r"RepLKNet: large_kernel_sizes, layers and channels must be non-empty and of equal length"):
        RepLKNet((31, 29), (2,), (64,))
    with pytest.raises(ValueError, match=r"RepLKNet: small_kernel \(5\) must not exceed any large kernel, got \(31, 3\)"):
        RepLKNet((31, 3), (1, 1), (8, 8))
    with pytest.raises(ValueError, match=r"RepLKNet: ffn_ratio must be a number giving >= 1 channel in every stage, got 0.01"):
        RepLKNet((31,), (1,), (8,), ffn_ratio=0.01)
    with pytest.raises(ValueError, match=r"RepLKNet: drop_path_rate must be a number in \[0, 1\], got 2"):
        RepLKNet((31,), (1,), (8,), drop_path_rate=2)
    with pytest.raises(ValueError, match=r"RepLKNet: layers entry must be an int >= 1, got 0"):
        RepLKNet((31,), (0,), (8,))
