"""FLOP/MAC counters count a convolab model exactly as its torch.nn twin (same layers, torch's classes).

fvcore (jit trace), ``torch.utils.flop_counter`` (dispatch mode) and torchinfo (module hooks)
count convolab's layers as they are. thop and ptflops' default backend look hooks up by exact
class; the supported ways are in the README's deploy section and tested here: thop with
``custom_ops`` built from :func:`convolab.nn.torch_equivalents`, ptflops with its aten backend.
"""

from __future__ import annotations

import io
import warnings
from contextlib import redirect_stdout

import pytest
import torch

import convolab.nn as cnn
from convolab.models import create_model

MODELS = ["mnist_cnn", "resnet18", "mobilenet_v2"]


def _pair(name: str):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = create_model(name).eval()
    twin = cnn.to_torch(model, strict=True)
    assert not any(type(m).__module__.startswith("convolab.nn") for m in twin.modules())
    shape = (1, 1, 28, 28) if name == "mnist_cnn" else (1, 3, 64, 64)
    return model, twin, torch.randn(shape)


@pytest.mark.parametrize("name", MODELS)
def test_fvcore_counts_like_the_twin(name):
    from fvcore.nn import FlopCountAnalysis

    model, twin, x = _pair(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        theirs = FlopCountAnalysis(twin, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        assert ours.total() == theirs.total() > 0
        assert ours.by_module()[""] == theirs.by_module()[""]


@pytest.mark.parametrize("name", MODELS)
def test_torch_flop_counter_counts_like_the_twin(name):
    from torch.utils.flop_counter import FlopCounterMode

    model, twin, x = _pair(name)
    counts = []
    for m in (model, twin):
        with FlopCounterMode(display=False) as counter:
            m(x).sum().backward()
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1] > 0


def test_torch_flop_counter_sees_torchs_conv_whatever_auto_would_pick():
    """A 31x31 depthwise conv runs by FFT in eager training, but under a dispatch mode (a counter)
    convolab runs torch's conv, so the count is the convolution's."""
    from torch.utils.flop_counter import FlopCounterMode

    conv = cnn.Conv2d(64, 64, 31, padding=15, groups=64)
    ref = torch.nn.Conv2d(64, 64, 31, padding=15, groups=64)
    x = torch.randn(2, 64, 32, 32)
    counts = []
    for m in (conv, ref):
        with FlopCounterMode(display=False) as counter:
            m(x).sum().backward()
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1]


@pytest.mark.parametrize("name", MODELS)
def test_torchinfo_counts_like_the_twin(name):
    from torchinfo import summary

    model, twin, x = _pair(name)
    ours, theirs = (summary(m, input_data=x, verbose=0) for m in (model, twin))
    assert ours.total_mult_adds == theirs.total_mult_adds > 0
    assert ours.total_params == theirs.total_params


@pytest.mark.parametrize("name", MODELS)
def test_thop_with_custom_ops_counts_like_the_twin(name):
    from thop import profile
    from thop.profile import register_hooks

    model, twin, x = _pair(name)
    custom = {c: register_hooks[t] for c, t in cnn.torch_equivalents().items() if t in register_hooks}
    with redirect_stdout(io.StringIO()):
        ours = profile(model, inputs=(x,), custom_ops=custom, verbose=False)
        theirs = profile(twin, inputs=(x,), verbose=False)
        naive = profile(create_model(name).eval(), inputs=(x,), verbose=False)
    assert ours == theirs
    assert naive[0] < ours[0]  # without the table thop skips convolab's layers: why the README says so


@pytest.mark.parametrize("name", MODELS)
def test_ptflops_aten_backend_counts_like_the_twin(name):
    from ptflops import get_model_complexity_info

    model, twin, x = _pair(name)
    counts = []
    for m in (model, twin):
        with redirect_stdout(io.StringIO()):
            macs, _ = get_model_complexity_info(m, tuple(x.shape[1:]), as_strings=False, backend="aten",
                                                print_per_layer_stat=False)
        counts.append(macs)
    assert counts[0] == counts[1] > 0


def test_to_torch_strict_names_what_torch_cannot_spell():
    net = torch.nn.Sequential(cnn.Conv2d(3, 4, 3, stride=2, padding="same"), cnn.MaxPool2d(2))
    with pytest.raises(ValueError, match=r"to_torch: torch has no module for 0 \(Conv2d\)"):
        cnn.to_torch(net, strict=True)
    loose = cnn.to_torch(net)
    assert type(loose[0]) is cnn.Conv2d and type(loose[1]) is torch.nn.MaxPool2d
    x = torch.randn(2, 3, 9, 10)
    torch.testing.assert_close(loose(x), net(x))


@pytest.mark.parametrize(
    "layer",
    [
        cnn.Conv2d(3, 4, 3, padding=1, flip=True),
        cnn.Conv1d(3, 4, 5, padding="same", padding_mode="circular"),
        cnn.ConvTranspose2d(3, 4, 4, stride=2, padding=1, output_padding=1),
        cnn.MaxPool3d(3, 2, 1, ceil_mode=True),
        cnn.AvgPool2d(3, 2, 1, count_include_pad=False, divisor_override=5),
        cnn.LPPool2d(2, 3),
        cnn.AdaptiveMaxPool2d((3, None)),
    ],
    ids=lambda m: type(m).__name__,
)
def test_to_torch_layers_give_the_same_output(layer):
    twin = cnn.to_torch(layer, strict=True)
    assert type(twin) is cnn.torch_equivalents()[type(layer)]
    nd = layer.ndim
    x = torch.randn(2, 3, *(7,) * nd)
    torch.testing.assert_close(twin(x), layer(x))
