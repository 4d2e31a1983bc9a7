"""ConvNeXt (Liu et al. 2022) against independent references.

- the zoo's state_dict layout, written here from torchvision's published
  ``convnext.py`` (``features.*``, ``classifier.*``) without convolab;
- parameter and MAC counts from closed-form per-layer formulas, checked
  against the published 28,589,128 parameters and 4.456 G MACs;
- the block's forward against a ``torch.nn.functional`` transcription of the
  paper's block, the channels-first layer norm against the reference's
  explicit mean/variance formula;
- the original release's layout (``downsample_layers.*``, ``stages.*``),
  also written here, through :func:`convert_reference_state_dict`.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convolab.analysis import summary
from convolab.models import create_model
from convolab.models.blocks import LayerNorm2d, StochasticDepth
from convolab.models.convnext import ConvNeXt, ConvNeXtBlock, convert_reference_state_dict
from convolab.nn import Conv2d

TINY = ((3, 3, 9, 3), (96, 192, 384, 768))
ATTO = ((2, 2, 6, 2), (40, 80, 160, 320))


def _meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **kwargs)


# --- the zoo's layout, written from torchvision/models/convnext.py -------------------------------


def zoo_layout(depths, dims, num_classes=1000, in_channels=3):
    """(key, shape) of torchvision's ConvNeXt state_dict, in its order."""
    keys = [
        ("features.0.0.weight", [dims[0], in_channels, 4, 4]),
        ("features.0.0.bias", [dims[0]]),
        ("features.0.1.weight", [dims[0]]),
        ("features.0.1.bias", [dims[0]]),
    ]
    idx = 1
    for stage, (depth, c) in enumerate(zip(depths, dims)):
        if stage:
            prev = dims[stage - 1]
            keys += [
                (f"features.{idx}.0.weight", [prev]),
                (f"features.{idx}.0.bias", [prev]),
                (f"features.{idx}.1.weight", [c, prev, 2, 2]),
                (f"features.{idx}.1.bias", [c]),
            ]
            idx += 1
        for j in range(depth):
            p = f"features.{idx}.{j}"
            keys += [
                (f"{p}.layer_scale", [c, 1, 1]),
                (f"{p}.block.0.weight", [c, 1, 7, 7]),
                (f"{p}.block.0.bias", [c]),
                (f"{p}.block.2.weight", [c]),
                (f"{p}.block.2.bias", [c]),
                (f"{p}.block.3.weight", [4 * c, c]),
                (f"{p}.block.3.bias", [4 * c]),
                (f"{p}.block.5.weight", [c, 4 * c]),
                (f"{p}.block.5.bias", [c]),
            ]
        idx += 1
    c = dims[-1]
    keys += [
        ("classifier.0.weight", [c]),
        ("classifier.0.bias", [c]),
        ("classifier.2.weight", [num_classes, c]),
        ("classifier.2.bias", [num_classes]),
    ]
    return keys


def reference_layout(depths, dims, num_classes=1000, in_channels=3):
    """(key, shape) of the original facebookresearch/ConvNeXt release's state_dict."""
    keys = [
        ("downsample_layers.0.0.weight", [dims[0], in_channels, 4, 4]),
        ("downsample_layers.0.0.bias", [dims[0]]),
        ("downsample_layers.0.1.weight", [dims[0]]),
        ("downsample_layers.0.1.bias", [dims[0]]),
    ]
    for i in range(1, len(dims)):
        keys += [
            (f"downsample_layers.{i}.0.weight", [dims[i - 1]]),
            (f"downsample_layers.{i}.0.bias", [dims[i - 1]]),
            (f"downsample_layers.{i}.1.weight", [dims[i], dims[i - 1], 2, 2]),
            (f"downsample_layers.{i}.1.bias", [dims[i]]),
        ]
    for i, (depth, c) in enumerate(zip(depths, dims)):
        for j in range(depth):
            p = f"stages.{i}.{j}"
            keys += [
                (f"{p}.gamma", [c]),
                (f"{p}.dwconv.weight", [c, 1, 7, 7]),
                (f"{p}.dwconv.bias", [c]),
                (f"{p}.norm.weight", [c]),
                (f"{p}.norm.bias", [c]),
                (f"{p}.pwconv1.weight", [4 * c, c]),
                (f"{p}.pwconv1.bias", [4 * c]),
                (f"{p}.pwconv2.weight", [c, 4 * c]),
                (f"{p}.pwconv2.bias", [c]),
            ]
    keys += [
        ("norm.weight", [dims[-1]]),
        ("norm.bias", [dims[-1]]),
        ("head.weight", [num_classes, dims[-1]]),
        ("head.bias", [num_classes]),
    ]
    return keys


@pytest.mark.parametrize(("name", "config"), [("convnext_tiny", TINY), ("convnext_atto", ATTO)])
def test_state_dict_is_the_zoo_layout(name, config):
    ours = [(k, list(v.shape)) for k, v in _meta(name).state_dict().items()]
    assert ours == zoo_layout(*config)


def _params_formula(depths, dims, num_classes=1000, in_channels=3, k=7):
    """Closed form: stem conv + LN; per block dw (k²C + C), LN 2C, MLP 8C² + 5C, layer scale C;
    per downsampling LN 2C + 2x2 conv 4·C·C' + C'; head LN 2C + FC."""
    total = dims[0] * in_channels * 16 + dims[0] + 2 * dims[0]
    for stage, (depth, c) in enumerate(zip(depths, dims)):
        if stage:
            prev = dims[stage - 1]
            total += 2 * prev + 4 * prev * c + c
        total += depth * ((k * k + 1) * c + 2 * c + 8 * c * c + 5 * c + c)
    return total + 2 * dims[-1] + dims[-1] * num_classes + num_classes


def test_parameter_counts_against_the_formula_and_the_published_figures():
    assert _params_formula(*TINY) == 28_589_128  # torchvision's num_params for convnext_tiny
    assert sum(p.numel() for p in _meta("convnext_tiny").parameters()) == 28_589_128
    atto = sum(p.numel() for p in _meta("convnext_atto").parameters())
    assert atto == _params_formula(*ATTO) and round(atto / 1e6, 1) == 3.7  # timm's "3.7M"
    assert sum(p.numel() for p in _meta("convnext_tiny", num_classes=10).parameters()) == _params_formula(
        *TINY, num_classes=10
    )


def _macs_formula(depths, dims, size=224, num_classes=1000, in_channels=3, k=7):
    """Conv and matmul MACs (bias excluded, the zoo's convention) at a square input."""
    h = size // 4
    total = dims[0] * in_channels * 16 * h * h
    for stage, (depth, c) in enumerate(zip(depths, dims)):
        if stage:
            h //= 2
            total += 4 * dims[stage - 1] * c * h * h
        total += depth * (k * k * c + 8 * c * c) * h * h
    return total + dims[-1] * num_classes


def test_summary_params_and_macs_match_the_published_figures():
    model = _meta("convnext_tiny").eval()
    s = summary(model, (1, 3, 224, 224))
    assert s.params == 28_589_128 and not s.not_analysed
    assert s.macs == _macs_formula(*TINY) == 4_455_531_264
    assert round(s.macs / 1e9, 3) == 4.456  # torchvision's "_ops" (the paper rounds to 4.5 G)


# --- the block against a functional transcription of the paper --------------------------------


def _block_reference(block: ConvNeXtBlock, x: torch.Tensor) -> torch.Tensor:
    dw, ln, fc1, fc2 = block.block[0], block.block[2], block.block[3], block.block[5]
    y = F.conv2d(x, dw.weight, dw.bias, padding=3, groups=x.shape[1])
    y = y.permute(0, 2, 3, 1)
    y = F.layer_norm(y, (x.shape[1],), ln.weight, ln.bias, 1e-6)
    y = F.linear(F.gelu(F.linear(y, fc1.weight, fc1.bias)), fc2.weight, fc2.bias)
    return x + block.layer_scale.view(1, -1, 1, 1) * y.permute(0, 3, 1, 2)


def test_block_matches_the_functional_reference():
    block = ConvNeXtBlock(12, layer_scale=0.5).double().eval()
    assert isinstance(block.block[0], Conv2d) and block.block[0].groups == 12
    assert block.block[0].algorithm == "auto"
    x = torch.randn(2, 12, 9, 11, dtype=torch.float64)
    torch.testing.assert_close(block(x), _block_reference(block, x))


def test_block_starts_near_identity_through_layer_scale():
    block = ConvNeXtBlock(8)
    assert torch.equal(block.layer_scale, torch.full((8, 1, 1), 1e-6))
    x = torch.randn(2, 8, 6, 6)
    assert (block(x) - x).abs().max() < 1e-4


def test_layer_norm_2d_is_the_reference_channels_first_formula():
    ln = LayerNorm2d(6).double()
    nn.init.normal_(ln.weight)
    nn.init.normal_(ln.bias)
    x = torch.randn(3, 6, 4, 5, dtype=torch.float64) * 3 + 1
    u = x.mean(1, keepdim=True)
    s = (x - u).pow(2).mean(1, keepdim=True)
    ref = ln.weight[:, None, None] * ((x - u) / torch.sqrt(s + 1e-6)) + ln.bias[:, None, None]
    torch.testing.assert_close(ln(x), ref)
    assert ln.eps == 1e-6 and isinstance(ln, nn.LayerNorm)
    with pytest.raises(ValueError, match=r"LayerNorm2d: expected input \[N, 6, H, W\], got shape \[3, 5, 4, 5\]"):
        ln(torch.randn(3, 5, 4, 5))


def test_whole_network_matches_torch_convolutions():
    """convolab's auto-chosen depthwise convs give torch's numbers (the zoo's weights would behave the same)."""
    model = create_model("convnext_atto", num_classes=5).eval()
    twin = create_model("convnext_atto", num_classes=5).eval()
    twin.load_state_dict(model.state_dict())
    for parent in list(twin.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Conv2d):
                new = nn.Conv2d(child.in_channels, child.out_channels, child.kernel_size, child.stride,
                                child.padding, groups=child.groups)  # fmt: skip
                new.load_state_dict(child.state_dict())
                setattr(parent, name, new)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), twin(x), atol=1e-4, rtol=1e-4)


# --- stochastic depth ---------------------------------------------------------------------------


def test_drop_path_rates_increase_linearly():
    model = _meta("convnext_tiny")
    rates = [m.stochastic_depth.p for m in model.modules() if isinstance(m, ConvNeXtBlock)]
    assert len(rates) == 18
    assert rates == pytest.approx([0.1 * i / 17 for i in range(18)])
    assert all(m.stochastic_depth.p == 0 for m in _meta("convnext_atto").modules() if isinstance(m, ConvNeXtBlock))
    assert [m.stochastic_depth.p for m in ConvNeXt((1,), (8,), drop_path_rate=0.3).modules()
            if isinstance(m, ConvNeXtBlock)] == [0.0]  # fmt: skip


def test_stochastic_depth_drops_whole_samples_and_keeps_the_expectation():
    torch.manual_seed(3)
    sd = StochasticDepth(0.25)
    y = sd(torch.ones(4000, 2, 3))
    per_sample = y.flatten(1)
    assert torch.all(per_sample == per_sample[:, :1])  # one decision per sample ("row")
    assert per_sample[:, 0].unique().tolist() == [0.0, pytest.approx(4 / 3)]
    assert abs((per_sample[:, 0] == 0).double().mean().item() - 0.25) < 0.03
    assert abs(y.mean().item() - 1.0) < 0.05
    batch = StochasticDepth(0.5, mode="batch")(torch.ones(10, 3))
    assert batch.unique().numel() == 1
    assert torch.equal(StochasticDepth(1.0)(torch.ones(3, 2)), torch.zeros(3, 2))
    x = torch.randn(3, 2)
    assert StochasticDepth(0.9).eval()(x) is x


def test_block_with_its_branch_dropped_is_the_identity():
    block = ConvNeXtBlock(8, layer_scale=1.0, drop_path=1.0).train()
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(block(x), x)
    assert not torch.allclose(block.eval()(x), x)


# --- the original release's layout --------------------------------------------------------------


def test_reference_state_dict_converts_and_loads():
    torch.manual_seed(1)
    ref = {k: torch.randn(shape) for k, shape in reference_layout(*ATTO, num_classes=6)}
    converted = convert_reference_state_dict({"model": ref})
    model = create_model("convnext_atto", num_classes=6)
    model.load_state_dict(converted)  # strict: every key present, none left over
    state = model.state_dict()
    assert torch.equal(state["features.0.0.weight"], ref["downsample_layers.0.0.weight"])
    assert torch.equal(state["features.0.1.bias"], ref["downsample_layers.0.1.bias"])
    assert torch.equal(state["features.2.0.weight"], ref["downsample_layers.1.0.weight"])
    assert torch.equal(state["features.6.1.weight"], ref["downsample_layers.3.1.weight"])
    assert torch.equal(state["features.5.3.block.3.weight"], ref["stages.2.3.pwconv1.weight"])
    assert torch.equal(state["features.7.1.layer_scale"].flatten(), ref["stages.3.1.gamma"])
    assert torch.equal(state["classifier.0.weight"], ref["norm.weight"])
    assert torch.equal(state["classifier.2.bias"], ref["head.bias"])
    with pytest.raises(ValueError, match=r"convert_reference_state_dict: key 'stem.0.weight' is not in the original"):
        convert_reference_state_dict({"stem.0.weight": torch.zeros(1)})


def test_zoo_layout_file_loads(tmp_path):
    torch.manual_seed(2)
    state = {k: torch.randn(shape) for k, shape in zoo_layout(*ATTO)}
    path = tmp_path / "convnext_atto.pth"
    torch.save(state, path)
    model = create_model("convnext_atto", weights=str(path)).eval()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1000)


# --- argument errors ----------------------------------------------------------------------------


def test_errors():
    with pytest.raises(ValueError, match=r"ConvNeXt: depths and dims must be non-empty and of equal length"):
        ConvNeXt((3, 3), (96,))
    with pytest.raises(ValueError, match=r"ConvNeXt: dims entry must be an int >= 1, got 0"):
        ConvNeXt((1, 1), (8, 0))
    with pytest.raises(ValueError, match=r"ConvNeXt: drop_path_rate must be a number in \[0, 1\], got 1.5"):
        ConvNeXt((1,), (8,), drop_path_rate=1.5)
    with pytest.raises(ValueError, match=r"ConvNeXtBlock: kernel_size must be odd \(the block keeps the size\), got 4"):
        ConvNeXtBlock(8, kernel_size=4)
    with pytest.raises(ValueError, match=r"ConvNeXtBlock: layer_scale must be a number > 0, got 0"):
        ConvNeXtBlock(8, layer_scale=0)
    with pytest.raises(ValueError, match=r"StochasticDepth: p must be a number in \[0, 1\], got -0.1"):
        StochasticDepth(-0.1)
    with pytest.raises(ValueError, match=r"StochasticDepth: mode must be one of 'row', 'batch', got 'rows'"):
        StochasticDepth(0.1, mode="rows")
    with pytest.raises(ValueError, match=r"LayerNorm2d: num_channels must be an int >= 1, got 0"):
        LayerNorm2d(0)


def test_other_kernel_sizes_and_stage_counts():
    model = ConvNeXt((1, 1), (8, 16), num_classes=3, kernel_size=5).eval()
    assert model.features[1][0].block[0].weight.shape == (8, 1, 5, 5)
    assert model.min_input_size == (8, 8)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 3)
    with pytest.raises((ValueError, RuntimeError)):
        model(torch.randn(2, 3, 7, 7))
