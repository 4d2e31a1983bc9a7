"""Registry-driven model tests: every registered model is built, counted, shaped and trained one step.

Parameter counts and canonical shapes use the meta device (no memory, no
compute); only the forward+backward test runs real numbers, at small inputs.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from convolab.arithmetic import conv_params
from convolab.models import (
    ConvNormAct,
    FlattenLinear,
    GlobalPoolLinear,
    SPPLinear,
    create_model,
    feature_extractor,
    freeze_except_head,
    list_models,
    reset_head,
)
from convolab.models.googlenet import GoogLeNetOutputs
from convolab.models.hourglass import Hourglass, Residual
from convolab.models.inception import (
    BasicConv2d,
    InceptionAux,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionNaive,
    InceptionOutputs,
    InceptionV1,
    InceptionV2,
)
from convolab.models.mobilenet import DepthwiseSeparable, InvertedResidual
from convolab.models.resnet import BasicBlock, Bottleneck
from convolab.models.shufflenet import ShuffleUnitV1, ShuffleUnitV2
from convolab.nn import ChannelShuffle, Conv2d

# Published parameter counts (the model zoo's for the models it has; the
# documented layouts of the others). A new registered model must add its count.
PARAMS = {
    "alexnet": 61_100_840,
    "convnext_tiny": 28_589_128,
    "googlenet": 6_624_904,
    "inception_v3": 27_161_264,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "vgg11": 132_863_336,
    "vgg11_bn": 132_868_840,
    "vgg13": 133_047_848,
    "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
    "vgg19": 143_667_240,
    "vgg19_bn": 143_678_248,
    "mobilenet_v2": 3_504_872,
    "shufflenet_v2_x0_5": 1_366_792,
    "shufflenet_v2_x1_0": 2_278_604,
    # not in the zoo: counts of the layouts documented in their modules
    "mobilenet_v1": 4_231_976,  # the paper's 4.2M
    "shufflenet_v1_g3": 1_865_728,  # the reference implementation's 1.9M
    "hourglass2": 6_570_400,
    "hourglass8": 25_434_112,
    "mnist_cnn": 1_425_214,
    "mnist_spp": 1_220_414,  # mnist_cnn with SPP-net's (4, 2, 1) pyramid: 50 x 21 = 1,050 features into FC 1024
    "alexnet_grouped": 60_965_224,  # the paper's "60 million" (groups=2 in conv2, conv4, conv5)
    "convnext_atto": 3_695_520,  # timm's 3.7M
    "replknet_31b": 79_864_168,  # the release's 79M (79.86M)
    "replknet_tiny": 738_152,
}

# models without the size attributes (input channels, size)
FALLBACK_INPUT = {"mnist_cnn": (1, (28, 28)), "mnist_spp": (1, (28, 28))}
# the forward+backward test's small build; the auxiliary head is trained at 299x299 only
SMALL_KWARGS = {"inception_v3": {"aux_logits": False}}


def _meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **kwargs)


def _shape_model(name: str, **kwargs) -> nn.Module:
    """A meta-device model for shape tests, its batch norms replaced by identities.

    Batch norm never changes a shape, and on the meta device it runs through
    slow Python decompositions (seconds for an 8-stack hourglass).
    """
    model = _meta(name, **kwargs)
    for parent in list(model.modules()):
        for child_name, child in parent.named_children():
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, child_name, nn.Identity())
    return model


def _input_spec(name: str, model: nn.Module, attr: str) -> tuple[int, tuple[int, int]]:
    if name in FALLBACK_INPUT:
        return FALLBACK_INPUT[name]
    return 3, tuple(getattr(model, attr))


def _tensors(out) -> list[torch.Tensor]:
    return [o for o in out if o is not None] if isinstance(out, (list, tuple)) else [out]


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_every_registered_model_has_a_published_count():
    assert sorted(PARAMS) == list_models()


def test_an_old_name_is_an_alias_listed_only_on_request():
    from convolab.models import canonical_name, register_alias

    assert canonical_name("seed_cnn") == "mnist_cnn" and "seed_cnn" not in list_models()
    assert "seed_cnn" in list_models(aliases=True)
    old, new = create_model("seed_cnn"), create_model("mnist_cnn")
    assert type(old) is type(new) and old.state_dict().keys() == new.state_dict().keys()
    with pytest.raises(ValueError, match=r"register_alias: 'seed_cnn' is already a model name or alias"):
        register_alias("seed_cnn", "resnet18")
    with pytest.raises(ValueError, match=r"unknown model 'sed_cnn'; did you mean 'seed_cnn' or 'mnist_cnn'"):
        create_model("sed_cnn")


def test_a_checkpoint_written_under_the_old_name_resumes_under_the_new(tmp_path):
    from dataclasses import asdict

    from convolab.train import TrainConfig
    from convolab.train.checkpoint import CHECKPOINT_ENTRIES, check_resumable

    def state(model: str) -> dict:
        entries = dict.fromkeys(CHECKPOINT_ENTRIES, {})
        return {**entries, "config": asdict(TrainConfig(model=model)), "model": {}, "history": [], "epoch": 0,
                "step": 0, "ranks": []}

    check_resumable(state("seed_cnn"), TrainConfig(model="mnist_cnn"), tmp_path / "last.pt")  # no error
    check_resumable(state("mnist_cnn"), TrainConfig(model="seed_cnn"), tmp_path / "last.pt")
    with pytest.raises(ValueError, match=r"written for model 'seed_cnn', not 'resnet18'"):
        check_resumable(state("seed_cnn"), TrainConfig(model="resnet18"), tmp_path / "last.pt")
    TrainConfig(model="seed_cnn").validate()  # the old name still trains


@pytest.mark.parametrize("name", list_models())
def test_parameter_count(name):
    assert _count(_meta(name)) == PARAMS[name]


@pytest.mark.parametrize(
    ("name", "kwargs", "count"),
    [
        ("googlenet", {"aux_logits": True}, 13_004_888),  # the zoo's file with both aux heads
        ("inception_v3", {"aux_logits": False}, 23_834_568),
        ("resnet50", {"num_classes": 10}, 25_557_032 - 990 * 2049),
    ],
)
def test_parameter_count_variants(name, kwargs, count):
    assert _count(_meta(name, **kwargs)) == count


@pytest.mark.parametrize("name", list_models())
def test_builders_document_their_paper(name):
    from convolab.models._registry import _MODELS

    doc = _MODELS[name].__doc__ or ""
    assert doc.strip() and "\n" not in doc.strip(), f"{name}: one-line docstring citing the paper"


def _expected_shape(name: str, model: nn.Module, n: int, num_classes: int, size: tuple[int, int]):
    if hasattr(model, "num_stacks"):  # heatmaps at a quarter of the input, one per stack
        return [(n, num_classes, math.ceil(size[0] / 4), math.ceil(size[1] / 4))] * model.num_stacks
    return [(n, num_classes)]


@pytest.mark.parametrize("name", list_models())
def test_canonical_output_shape(name):
    model = _shape_model(name).eval()
    channels, size = _input_spec(name, model, "default_input_size")
    num_classes = 10 if name in ("mnist_cnn", "mnist_spp") else (16 if hasattr(model, "num_stacks") else 1000)
    out = _tensors(model(torch.empty(1, channels, *size, device="meta")))
    assert [tuple(o.shape) for o in out] == _expected_shape(name, model, 1, num_classes, size)


@pytest.mark.parametrize("name", [n for n in list_models() if n not in FALLBACK_INPUT])
@pytest.mark.parametrize("size", [(160, 192), (320, 256)])
def test_any_input_size(name, size):
    """GAP / adaptive-pool heads: the same outputs at other input sizes."""
    model = _shape_model(name, num_classes=5).eval()
    out = _tensors(model(torch.empty(2, 3, *size, device="meta")))
    assert [tuple(o.shape) for o in out] == _expected_shape(name, model, 2, 5, size)


@pytest.mark.parametrize("name", list_models())
def test_in_channels(name):
    model = _shape_model(name, in_channels=2).eval()
    _, size = _input_spec(name, model, "default_input_size")
    model(torch.empty(1, 2, *size, device="meta"))
    with pytest.raises((ValueError, RuntimeError)):
        model(torch.empty(1, 3, *size, device="meta"))


@pytest.mark.parametrize("name", [n for n in list_models() if n not in FALLBACK_INPUT])
def test_min_input_size_is_the_minimum(name):
    model = _shape_model(name).train()
    h, w = model.min_input_size
    model(torch.empty(2, 3, h, w, device="meta"))
    if h > 1:
        with pytest.raises((ValueError, RuntimeError)):
            model(torch.empty(2, 3, h - 1, w - 1, device="meta"))


@pytest.mark.parametrize("name", [n for n in list_models() if n not in FALLBACK_INPUT])
def test_forward_features_shape(name):
    model = _shape_model(name).eval()
    size = model.default_input_size
    feats = model.forward_features(torch.empty(1, 3, *size, device="meta"))
    assert feats.dim() == 4 and feats.shape[:2] == (1, model.num_features)


@pytest.mark.parametrize("name", list_models())
def test_forward_backward_small_input(name):
    torch.manual_seed(0)
    kwargs = dict(SMALL_KWARGS.get(name, {}))
    if name not in FALLBACK_INPUT:
        kwargs["num_classes"] = 7
    model = create_model(name, **kwargs).train()
    channels, (h, w) = _input_spec(name, model, "min_input_size")
    if name not in FALLBACK_INPUT:
        h, w = max(h, 32), max(w, 32)
    out = _tensors(model(torch.randn(2, channels, h, w)))
    loss = sum(o.float().square().mean() for o in out)
    loss.backward()
    assert torch.isfinite(loss)
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, f"parameters that got no gradient: {unused[:5]}"
    if name not in FALLBACK_INPUT:
        assert [tuple(o.shape) for o in out] == _expected_shape(name, model, 2, 7, (h, w))


# --- training-mode outputs with auxiliary heads ------------------------------------------------


def test_inception_v3_training_returns_aux_logits():
    model = _meta("inception_v3", num_classes=5).train()
    out = model(torch.empty(2, 3, 299, 299, device="meta"))
    assert isinstance(out, InceptionOutputs)
    assert out.logits.shape == (2, 5) and out.aux_logits.shape == (2, 5)
    assert model.eval()(torch.empty(2, 3, 299, 299, device="meta")).shape == (2, 5)


def test_inception_aux_head_trains_on_a_17x17_map():
    head = InceptionAux(768, 5)
    head(torch.randn(2, 768, 17, 17)).sum().backward()
    assert all(p.grad is not None for p in head.parameters())


def test_googlenet_aux_heads_in_training():
    model = _meta("googlenet", aux_logits=True, num_classes=5).train()
    out = model(torch.empty(2, 3, 224, 224, device="meta"))
    assert isinstance(out, GoogLeNetOutputs)
    assert [tuple(t.shape) for t in out] == [(2, 5)] * 3
    assert model.eval()(torch.empty(2, 3, 224, 224, device="meta")).shape == (2, 5)


@pytest.mark.parametrize("name", ["googlenet"])
def test_transform_input_matches_unit_range(name):
    model = create_model(name, transform_input=True, num_classes=3, aux_logits=False).eval()
    plain = create_model(name, transform_input=False, num_classes=3, aux_logits=False).eval()
    plain.load_state_dict(model.state_dict())
    rgb = torch.rand(2, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(model((rgb - mean) / std), plain((rgb - 0.5) / 0.5), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="transform_input needs in_channels=3"):
        create_model(name, transform_input=True, in_channels=1)


# --- blocks: the seeds' worked examples ----------------------------------------------------------


def _conv_weights(module: nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, Conv2d))


def test_seed_googlenet_3a_parameter_example():
    """Seed: 192x(1x1x64) + 192x(3x3x128) + 192x(5x5x32) = 387072; with 1x1 reductions 157184."""
    naive = InceptionNaive(192, 64, 128, 32)
    assert _conv_weights(naive) == 387_072
    reduced = InceptionV1(192, 64, 96, 128, 16, 32, 32)
    # the seed leaves out the pool projection
    assert _conv_weights(reduced) - _conv_weights(reduced.branch4) == 157_184
    assert _conv_weights(reduced.branch3) == conv_params(192, 16, 1, bias=False) + conv_params(
        16, 32, 5, bias=False
    )


def test_seed_resnet_bottleneck_example():
    """Seed: on 256 channels a 3x3 256->256 needs 589824 weights per position, the bottleneck 69632."""
    block = Bottleneck(256, 64)
    assert block.downsample is None
    assert _conv_weights(block) == 69_632
    assert conv_params(256, 256, 3, bias=False) == 589_824


def test_inception_v2_factorises_5x5_into_two_3x3():
    v1, v2 = InceptionV1(64, 8, 8, 8, 16, 16, 8), InceptionV2(64, 8, 8, 8, 16, 16, 8)
    assert [tuple(m.weight.shape[-2:]) for m in v2.branch3.modules() if isinstance(m, Conv2d)] == [
        (1, 1),
        (3, 3),
        (3, 3),
    ]
    x = torch.randn(2, 64, 7, 7)
    assert v1(x).shape == v2(x).shape == (2, 40, 7, 7)
    # receptive field 5x5 either way: one output pixel depends on a 5x5 input window
    v2.eval()
    x = torch.zeros(1, 64, 11, 11, requires_grad=True)
    v2.branch3(x)[0, :, 5, 5].sum().backward()
    rows, cols = x.grad[0].abs().sum(0).nonzero().unbind(1)
    assert (rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()) == (3, 7, 3, 7)


def test_inception_v3_factorises_7x7_into_1x7_and_7x1():
    block = InceptionC(64, channels_7x7=16)
    shapes = [
        tuple(block.branch7x7_2.conv.weight.shape[-2:]),
        tuple(block.branch7x7_3.conv.weight.shape[-2:]),
    ]
    assert shapes == [(1, 7), (7, 1)]
    assert block(torch.randn(2, 64, 9, 9)).shape == (2, 768, 9, 9)
    # 1x7 + 7x1 costs 14/49 of a 7x7 at equal widths
    assert conv_params(16, 16, (1, 7), bias=False) * 2 / conv_params(16, 16, 7, bias=False) == pytest.approx(
        14 / 49
    )


@pytest.mark.parametrize(
    ("block", "in_channels", "size", "expected"),
    [(InceptionB, 288, 35, (768, 17)), (InceptionD, 768, 17, (1280, 8))],
)
def test_grid_reduction_blocks(block, in_channels, size, expected):
    with torch.device("meta"):
        out = block(in_channels)(torch.empty(1, in_channels, size, size))
    assert (out.shape[1], out.shape[2], out.shape[3]) == (expected[0], expected[1], expected[1])


def test_basic_block_projection_shortcut():
    assert BasicBlock(64, 64).downsample is None
    block = BasicBlock(64, 128, stride=2)
    assert list(block.downsample.state_dict()) == [
        "0.weight",
        "1.weight",
        "1.bias",
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
    ]
    assert block(torch.randn(2, 64, 9, 9)).shape == (2, 128, 5, 5)
    assert Bottleneck(64, 64).downsample is not None  # 64 -> 256 channels


def test_basic_conv2d_keys_and_eps():
    m = BasicConv2d(3, 8, 3)
    assert [name for name, _ in m.named_children()] == ["conv", "bn", "relu"]
    assert m.bn.eps == 0.001 and m.conv.bias is None and m.conv.padding == (0, 0)


# --- ConvNormAct ------------------------------------------------------------------------------


def test_conv_norm_act_orders():
    a = ConvNormAct(3, 8, 3)
    b = ConvNormAct(3, 8, 3, order="conv-act-bn")
    assert [type(m).__name__ for m in a] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert [type(m).__name__ for m in b] == ["Conv2d", "ReLU", "BatchNorm2d"]
    assert a[0].bias is None  # BN right after the conv absorbs the bias
    assert b[0].bias is not None  # not after an activation
    b.load_state_dict({**b.state_dict(), "0.weight": a[0].weight.detach(), "0.bias": torch.zeros(8)})
    x = torch.randn(2, 3, 6, 6)
    # conv-act-bn is BN(ReLU(conv x)); conv-bn-act is ReLU(BN(conv x)): different numbers, same shape
    b.train()
    expected = nn.functional.batch_norm(torch.relu(b[0](x)), None, None, training=True, eps=b[2].eps)
    torch.testing.assert_close(b(x), expected)
    assert not torch.allclose(a(x), b(x))


def test_conv_norm_act_pluggable_parts():
    m = ConvNormAct(4, 8, 1, norm_layer=None, act_layer=nn.GELU)
    assert [type(c).__name__ for c in m] == ["Conv2d", "GELU"] and m[0].bias is not None
    m = ConvNormAct(4, 8, 3, norm_layer=lambda c: nn.GroupNorm(2, c), act_layer=None, dilation=2)
    assert [type(c).__name__ for c in m] == ["Conv2d", "GroupNorm"] and m[0].padding == (2, 2)
    assert m(torch.randn(1, 4, 7, 7)).shape == (1, 8, 7, 7)
    m = ConvNormAct(4, 4, (1, 7), groups=4)
    assert m[0].padding == (0, 3) and m[0].weight.shape == (4, 1, 1, 7)


def test_conv_norm_act_errors():
    with pytest.raises(
        ValueError, match=r"ConvNormAct: order must be one of 'conv-bn-act', 'conv-act-bn', got 'bn-conv-act'"
    ):
        ConvNormAct(3, 8, order="bn-conv-act")
    with pytest.raises(ValueError, match=r"did you mean 'conv-act-bn'"):
        ConvNormAct(3, 8, order="conv-act-nb")
    with pytest.raises(ValueError, match=r"ConvNormAct: names must be 3 names"):
        ConvNormAct(3, 8, names=("conv", "bn"))
    with pytest.raises(ValueError, match=r"groups \(3\) must divide in_channels \(16\)"):
        ConvNormAct(16, 6, groups=3)


# --- heads ------------------------------------------------------------------------------------


def test_flatten_linear_layouts():
    vgg = FlattenLinear(32, 10, (16, 16))
    alex = FlattenLinear(32, 10, (16, 16), dropout_first=True)
    linear = [i for i, m in enumerate(vgg) if isinstance(m, nn.Linear)]
    assert linear == [0, 3, 6]
    assert [i for i, m in enumerate(alex) if isinstance(m, nn.Linear)] == [1, 4, 6]
    assert len(FlattenLinear(32, 10, (16,), dropout=0)) == 3
    assert vgg(torch.randn(4, 2, 4, 4)).shape == (4, 10)
    with pytest.raises(
        ValueError, match=r"FlattenLinear: expected 32 features per sample after flattening, got 50"
    ):
        vgg(torch.randn(4, 2, 5, 5))
    with pytest.raises(ValueError, match=r"FlattenLinear: dropout must be in \[0, 1\], got 1.5"):
        FlattenLinear(32, 10, dropout=1.5)
    with pytest.raises(ValueError, match=r"FlattenLinear: num_classes must be an int >= 1, got 0"):
        FlattenLinear(32, 0)


@pytest.mark.parametrize("size", [(7, 7), (3, 11), (1, 1)])
def test_global_pool_linear_any_size(size):
    head = GlobalPoolLinear(8, 5, dropout=0.2).eval()
    x = torch.randn(2, 8, *size)
    torch.testing.assert_close(head(x), head[1](x.mean((2, 3))))
    with pytest.raises(
        ValueError, match=r"GlobalPoolLinear: expected input \[N, C, \*spatial\], got shape \[2, 8\]"
    ):
        head(torch.randn(2, 8))


@pytest.mark.parametrize("size", [(13, 13), (6, 9), (4, 4)])
def test_spp_linear_fixed_length_at_any_size(size):
    head = SPPLinear(8, 5, levels=(4, 2, 1))
    assert head.in_features == 8 * 21
    x = torch.randn(2, 8, *size)
    pooled = head.pool(x)
    assert pooled.shape == (2, 168)
    # the 1x1 level is the global max of each channel
    torch.testing.assert_close(pooled[:, -8:], x.amax((2, 3)))
    assert head(x).shape == (2, 5)


def test_spp_linear_errors():
    with pytest.raises(ValueError, match=r"SPPLinear: levels must name at least one pyramid level"):
        SPPLinear(8, 5, levels=())
    with pytest.raises(ValueError, match=r"SPPLinear: levels entry must be an int >= 1, got 0"):
        SPPLinear(8, 5, levels=(2, 0))
    with pytest.raises(ValueError, match=r"SPPLinear: expected input \[N, C, H, W\], got shape \[2, 8, 5\]"):
        SPPLinear(8, 5)(torch.randn(2, 8, 5))


# --- mobile / shuffle blocks --------------------------------------------------------------------


def test_depthwise_separable_is_depthwise_then_pointwise():
    m = DepthwiseSeparable(32, 64)
    assert m.dw[0].groups == 32 and m.dw[0].weight.shape == (32, 1, 3, 3)
    assert m.pw[0].weight.shape == (64, 32, 1, 1)
    # 9*C + C*C' weights instead of 9*C*C'
    assert _conv_weights(m) == 9 * 32 + 32 * 64 < conv_params(32, 64, 3, bias=False)


def test_inverted_residual_shortcut_and_linear_bottleneck():
    block = InvertedResidual(16, 16, 1, expand_ratio=6)
    assert block.use_res_connect and not InvertedResidual(16, 24, 1, 6).use_res_connect
    assert isinstance(block.conv[-1], nn.BatchNorm2d)  # no activation after the projection
    assert block.conv[0][0].weight.shape == (96, 16, 1, 1)
    block.eval()
    x = torch.randn(2, 16, 5, 5)
    torch.testing.assert_close(block(x), x + block.conv(x))
    with pytest.raises(ValueError, match=r"InvertedResidual: stride must be 1 or 2, got 3"):
        InvertedResidual(16, 16, 3, 6)


def test_shuffle_unit_v1():
    unit = ShuffleUnitV1(240, 240, groups=3)
    assert unit.gconv1[0].groups == 3 and unit.gconv2[0].groups == 3 and unit.dwconv[0].groups == 60
    assert isinstance(unit.shuffle, ChannelShuffle)
    first = ShuffleUnitV1(24, 240, groups=3, stride=2, group_first=False)
    assert first.gconv1[0].groups == 1 and isinstance(first.shuffle, nn.Identity)
    assert first.gconv2[0].out_channels == 216  # concatenated with the 24 pooled input channels
    assert first(torch.randn(2, 24, 9, 9)).shape == (2, 240, 5, 5)
    with pytest.raises(
        ValueError, match=r"ShuffleUnitV1: at stride 1 in_channels \(24\) must equal out_channels \(240\)"
    ):
        ShuffleUnitV1(24, 240, groups=3)
    with pytest.raises(
        ValueError, match=r"ShuffleUnitV1: at stride 2 out_channels \(24\) must exceed in_channels \(240\)"
    ):
        ShuffleUnitV1(240, 24, groups=3, stride=2)
    with pytest.raises(ValueError, match=r"ShuffleUnitV1: stride must be 1 or 2, got 3"):
        ShuffleUnitV1(24, 24, groups=3, stride=3)


def test_shuffle_unit_v2_channel_split():
    unit = ShuffleUnitV2(8, 8, stride=1).eval()
    x = torch.randn(1, 8, 5, 5)
    out = unit(x)
    # after the shuffle with 2 groups, even channels are the untouched first half
    torch.testing.assert_close(out[:, 0::2], x[:, :4])
    torch.testing.assert_close(out[:, 1::2], unit.branch2(x[:, 4:]))
    with pytest.raises(ValueError, match=r"ShuffleUnitV2: out_channels must be even \(two halves\), got 7"):
        ShuffleUnitV2(8, 7, stride=2)
    with pytest.raises(
        ValueError, match=r"ShuffleUnitV2: at stride 1 in_channels \(8\) must equal out_channels \(16\)"
    ):
        ShuffleUnitV2(8, 16, stride=1)


def test_shufflenet_v1_options():
    assert _count(_meta("shufflenet_v1_g3", width_mult=0.5)) < PARAMS["shufflenet_v1_g3"]
    with pytest.raises(ValueError, match=r"ShuffleNetV1: groups must be one of \[1, 2, 3, 4, 8\], got 5"):
        from convolab.models.shufflenet import ShuffleNetV1

        ShuffleNetV1(groups=5)


# --- hourglass ----------------------------------------------------------------------------------


def test_residual_module_skip_projection():
    assert isinstance(Residual(64, 64).skip, nn.Identity)
    assert isinstance(Residual(64, 128).skip, Conv2d)
    with pytest.raises(ValueError, match=r"Residual: out_channels must be even"):
        Residual(4, 5)


@pytest.mark.parametrize("upsample", ["nearest", "transposed"])
@pytest.mark.parametrize("size", [(16, 16), (13, 10)])
def test_hourglass_keeps_size(upsample, size):
    hg = Hourglass(3, 8, upsample=upsample)
    x = torch.randn(2, 8, *size)
    assert hg(x).shape == x.shape
    assert (hasattr(hg, "up2") and isinstance(hg.up2, nn.Module)) == (upsample == "transposed")


def test_hourglass_is_recursive():
    hg = Hourglass(4, 8)
    depth, node = 0, hg
    while isinstance(node, Hourglass):
        depth, node = depth + 1, node.low2
    assert depth == 4 and isinstance(node, Residual)


def test_hourglass_errors():
    with pytest.raises(
        ValueError, match=r"Hourglass: upsample must be one of 'nearest', 'transposed', got 'bilinear'"
    ):
        Hourglass(2, 8, upsample="bilinear")
    with pytest.raises(ValueError, match=r"Hourglass: depth must be an int >= 1, got 0"):
        Hourglass(0, 8)
    with pytest.raises(ValueError, match=r"StackedHourglass: num_stacks must be an int >= 1, got 0"):
        from convolab.models.hourglass import StackedHourglass

        StackedHourglass(0)


def test_stacked_hourglass_intermediate_supervision():
    model = _meta("hourglass2", upsample="transposed")
    assert _count(model) == PARAMS["hourglass2"] + 4 * 2 * (
        256 * 256 * 4 + 256
    )  # a 2x2 transposed conv per level
    out = model.eval()(torch.empty(1, 3, 256, 256, device="meta"))
    assert len(out) == 2 and all(o.shape == (1, 16, 64, 64) for o in out)


# --- model-level argument errors --------------------------------------------------------------


def test_model_argument_errors():
    with pytest.raises(ValueError, match=r"VGG: config must be one of 'A', 'B', 'D', 'E', got 'C'"):
        from convolab.models.vgg import VGG

        VGG("C")
    with pytest.raises(
        ValueError, match=r"ResNet: layers must be 4 ints >= 1 \(blocks per stage\), got \(2, 2\)"
    ):
        from convolab.models.resnet import ResNet

        ResNet(BasicBlock, (2, 2))
    with pytest.raises(ValueError, match=r"InceptionV1: branch3_kernel must be 3 or 5, got 7"):
        InceptionV1(8, 4, 4, 4, 4, 4, 4, branch3_kernel=7)
    with pytest.raises(ValueError, match=r"MobileNetV2: width_mult must be a number > 0, got 0"):
        create_model("mobilenet_v2", width_mult=0)
    with pytest.raises(ValueError, match=r"create_model: unknown model 'resnet5'; did you mean 'resnet50'"):
        create_model("resnet5")


def test_mobilenet_width_multiplier():
    half = _meta("mobilenet_v2", width_mult=0.5)
    assert half.features[0][0].out_channels == 16 and half.features[-1][0].out_channels == 1280
    assert _count(half) < PARAMS["mobilenet_v2"]
    assert _meta("mobilenet_v1", width_mult=0.25).num_features == 256


def test_zero_init_residual():
    model = create_model("resnet18", zero_init_residual=True)
    assert all(
        float(m.bn2.weight.detach().abs().sum()) == 0 for m in model.modules() if isinstance(m, BasicBlock)
    )
    model = _meta("resnet50", zero_init_residual=True)
    assert all(
        m.bn3.weight.shape[0] == 4 * m.bn1.weight.shape[0]
        for m in model.modules()
        if isinstance(m, Bottleneck)
    )


# --- backbone API -------------------------------------------------------------------------------


def test_feature_extractor_named_maps():
    model = create_model("resnet18").eval()
    body = feature_extractor(model, {"layer1": "c2", "layer2": "c3", "layer3": "c4", "layer4": "c5"})
    x = torch.randn(1, 3, 64, 64)
    feats = body(x)
    assert list(feats) == ["c2", "c3", "c4", "c5"]
    assert [tuple(f.shape) for f in feats.values()] == [
        (1, 64, 16, 16),
        (1, 128, 8, 8),
        (1, 256, 4, 4),
        (1, 512, 2, 2),
    ]
    torch.testing.assert_close(feats["c5"], model.forward_features(x))


def test_feature_extractor_stops_early_and_keeps_maps_from_inplace_ops():
    model = create_model("mobilenet_v2", num_classes=3).eval()
    calls = []
    model.classifier.register_forward_hook(lambda *args: calls.append(1))
    x = torch.randn(1, 3, 32, 32)
    feats = feature_extractor(model, ["features.0.1"])(x)
    assert not calls  # the rest of the network never ran
    # features.0.2 is an in-place ReLU6: the captured BN output keeps its negative values
    expected = model.features[0][1](model.features[0][0](x))
    torch.testing.assert_close(feats["features.0.1"], expected)
    assert (feats["features.0.1"] < 0).any()
    both = feature_extractor(model, ["features.0.1", "features.1"])(x)
    torch.testing.assert_close(both["features.0.1"], expected)
    torch.testing.assert_close(both["features.1"], model.features[1](model.features[0](x)))
    assert not calls


def test_feature_extractor_errors():
    model = create_model("resnet18")
    with pytest.raises(
        ValueError,
        match=r"feature_extractor: ResNet has no submodule 'layer5'; did you mean 'layer4' or 'layer3' or 'layer2'\?",
    ):
        feature_extractor(model, ["layer5"])
    with pytest.raises(
        ValueError, match=r"feature_extractor: return_layers must name at least one submodule"
    ):
        feature_extractor(model, [])

    class SkipsB(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Identity(), nn.Identity()

        def forward(self, x):
            return self.a(x)

    with pytest.raises(
        ValueError, match=r"feature_extractor: submodules \['b'\] were not called by the forward"
    ):
        feature_extractor(SkipsB(), ["a", "b"])(torch.randn(1, 2))


@pytest.mark.parametrize("name", [n for n in list_models() if n not in FALLBACK_INPUT])
def test_freeze_except_head(name):
    model = _meta(name)
    trainable = freeze_except_head(model)
    assert trainable and all(any(t.startswith(h + ".") for h in model.head_names) for t in trainable)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert len(frozen) + len(trainable) == len(list(model.parameters()))
    assert frozen


def test_freeze_except_head_errors_and_explicit_head():
    model = create_model("mnist_cnn")
    with pytest.raises(ValueError, match=r"freeze_except_head: MnistCNN declares no head_names; pass head="):
        freeze_except_head(model)
    assert freeze_except_head(model, head="fc") == [n for n, _ in model.fc.named_parameters(prefix="fc")]
    with pytest.raises(
        ValueError, match=r"freeze_except_head: MnistCNN has no submodule 'fcc'; did you mean 'fc'"
    ):
        freeze_except_head(model, head="fcc")
    # fine-tuning: only the head moves
    model = create_model("resnet18", num_classes=3)
    freeze_except_head(model)
    before = model.conv1.weight.clone()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    opt.step()
    assert torch.equal(model.conv1.weight, before) and model.conv1.weight.grad is None


@pytest.mark.parametrize(
    "name", [n for n in list_models() if n not in FALLBACK_INPUT and "hourglass" not in n]
)
def test_reset_head(name):
    model = reset_head(_shape_model(name, num_classes=1000), 6).eval()
    size = model.default_input_size
    assert model(torch.empty(1, 3, *size, device="meta")).shape == (1, 6)
    assert _count(model) < _count(_shape_model(name))


def test_fine_tuning_recipe(tmp_path):
    """Seeds: load weights trained elsewhere, put a new head on the backbone, train only the head."""
    path = tmp_path / "pretrained.pth"
    torch.save(create_model("shufflenet_v2_x0_5").state_dict(), path)
    model = reset_head(create_model("shufflenet_v2_x0_5", weights=str(path)), 3)
    assert freeze_except_head(model) == ["fc.weight", "fc.bias"]
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    with pytest.raises(ValueError, match=r"reset_head: head 'score' of StackedHourglass has no linear layer"):
        reset_head(_meta("hourglass2"), 3)
    with pytest.raises(ValueError, match=r"reset_head: num_classes must be an int >= 1, got 0"):
        reset_head(model, 0)
