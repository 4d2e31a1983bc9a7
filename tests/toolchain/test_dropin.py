"""The drop-in contract beyond the per-tool runs: torch's classes, fusion, memory format, low
precision, the graph of an export, and inductor."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import convolab
import convolab.nn as cnn
from convolab.models import create_model

from .subjects import relative_close


def test_every_module_with_a_torch_counterpart_subclasses_it():
    table = cnn.torch_equivalents()
    for name in ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
                 "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
                 "LPPool1d", "LPPool2d", "LPPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
                 "AdaptiveMaxPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d"):
        cls = getattr(cnn, name)
        assert issubclass(cls, getattr(nn, name)) and table[cls] is getattr(nn, name)
    assert isinstance(cnn.PointwiseConv2d(4, 8), nn.Conv2d)


@pytest.mark.parametrize("padding", [1, "same", ((1, 0), (0, 1))])
def test_torchs_fuse_conv_bn_eval_folds_every_padding_form(padding):
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    conv = cnn.Conv2d(3, 4, 3, padding=padding, stride=2 if padding == "same" else 1).eval()
    bn = nn.BatchNorm2d(4).eval()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    fused = fuse_conv_bn_eval(conv, bn)
    assert type(fused) is cnn.Conv2d and fused.padding == conv.padding  # deep copy: convolab's padding kept
    x = torch.randn(2, 3, 9, 10)
    torch.testing.assert_close(fused(x), bn(conv(x)), atol=1e-5, rtol=1e-5)


def test_torch_ao_fusion_refuses_by_class_and_works_after_to_torch():
    import torch.ao.quantization as quant

    net = nn.Sequential(cnn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    with pytest.raises(AssertionError, match=r"did not find fuser method for: \(<class 'convolab.nn.conv.Conv2d'>"):
        quant.fuse_modules(copy.deepcopy(net), [["0", "1", "2"]])
    fused = quant.fuse_modules(cnn.to_torch(net), [["0", "1", "2"]])
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(fused(x), net(x), atol=1e-5, rtol=1e-5)


def test_contiguous_in_contiguous_out_whatever_algorithm_auto_picks():
    """DCGAN's 4x4/2 transposed conv: a .view() after it must work (channels-last only when asked)."""
    layer = cnn.ConvTranspose2d(512, 256, 4, 2, 1)
    with torch.no_grad():
        y = layer(torch.randn(8, 512, 4, 4))
        assert y.is_contiguous()
        y.view(8, -1)
        for algorithm in ("native", "native_cl", "direct", "im2col", "fft"):
            out = convolab.conv_transpose2d(torch.randn(2, 8, 5, 5), torch.randn(8, 4, 4, 4), stride=2,
                                            padding=1, algorithm=algorithm)
            assert out.is_contiguous(), algorithm
        cl = torch.randn(2, 8, 5, 5).contiguous(memory_format=torch.channels_last)
        assert convolab.conv_transpose2d(cl, torch.randn(8, 4, 4, 4), algorithm="native_cl").is_contiguous(
            memory_format=torch.channels_last)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("name", ["mnist_cnn", "mobilenet_v2"])
def test_low_precision_modules_run_forward_and_backward(name, dtype):
    model = create_model(name).to(dtype)
    shape = (2, 1, 28, 28) if name == "mnist_cnn" else (2, 3, 32, 32)
    y = model(torch.randn(shape, dtype=dtype))
    assert y.dtype == dtype
    y.float().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == dtype for p in model.parameters())


def _relative_error(model: nn.Module, x: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    xs = x.clone().requires_grad_(True)
    with torch.autocast("cpu", torch.bfloat16):
        y = model(xs)
    y.float().sum().backward()
    out = float((y.float() - reference).abs().max() / reference.abs().max())
    return out, xs.grad


@pytest.mark.parametrize("name", ["mnist_cnn", "resnet18", "mobilenet_v2", "convnext_atto"])
def test_autocast_accuracy_is_that_of_the_torch_twin(name):
    """Under bf16 autocast a convolab network is as accurate as the same network in torch.nn
    (relative error of outputs and input gradients vs float32 within 1.5x the twin's)."""
    torch.manual_seed(0)
    model = create_model(name).eval()
    twin = cnn.to_torch(model, strict=True)
    shape = (2, 1, 28, 28) if name == "mnist_cnn" else (2, 3, 64, 64)
    x = torch.randn(shape)
    xs = x.clone().requires_grad_(True)
    reference = model(xs)
    reference.sum().backward()
    ours, g_ours = _relative_error(model, x, reference.detach())
    theirs, g_theirs = _relative_error(twin, x, reference.detach())
    assert ours <= 1.5 * theirs + 1e-3, (ours, theirs)
    scale = float(xs.grad.abs().max())
    g_err_ours = float((g_ours - xs.grad).abs().max()) / scale
    g_err_theirs = float((g_theirs - xs.grad).abs().max()) / scale
    assert g_err_ours <= 1.5 * g_err_theirs + 1e-3, (g_err_ours, g_err_theirs)


def test_exported_graph_does_not_depend_on_grad_mode():
    """A 31x31 depthwise conv runs by FFT in eager training and natively in eager inference; an
    exported program records torch's convolution either way."""
    layer = cnn.Conv2d(16, 16, 31, padding=15, groups=16)
    x = torch.randn(2, 16, 40, 40)
    graphs = []
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            program = torch.export.export(layer, (x,))
        graphs.append([str(n.target) for n in program.graph.nodes if n.op == "call_function"])
    assert graphs[0] == graphs[1] and "aten.conv2d.default" in graphs[0]


def test_inductor_compiles_a_network_in_one_graph():
    torch._dynamo.reset()
    model = create_model("mnist_cnn").eval()
    x = torch.randn(4, 1, 28, 28)
    compiled = torch.compile(model, fullgraph=True)
    relative_close(compiled(x), model(x), 1e-4)


def test_explicit_algorithms_are_traced_as_the_plain_convolution_when_exporting():
    """Every algorithm computes the same function; an exported program records torch's conv."""
    for algorithm in ("fft", "im2col", "direct", "winograd"):
        layer = cnn.Conv2d(4, 4, 3, padding=1, algorithm=algorithm)
        program = torch.export.export(layer, (torch.randn(2, 4, 8, 8),))
        targets = [str(n.target) for n in program.graph.nodes if n.op == "call_function"]
        assert targets == ["aten.conv2d.default"], (algorithm, targets)
