"""AlexNet as published (Krizhevsky et al. 2012) against independent references.

- the parameter count layer by layer from the paper's Figure 2 (kernels of
  11×11×3, 5×5×48, 3×3×256, 3×3×192, 3×3×192; FCs 4096, 4096, 1000);
- ``groups=2`` against the paper's picture of two GPUs: each tower's half of
  the kernels applied to its own half of the maps, then concatenated;
- local response normalisation against a loop over the paper's formula;
- the map sizes of Figure 2 (55, 27, 13, 6) at 227×227.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convolab.analysis import summary
from convolab.models import create_model
from convolab.models.alexnet import AlexNetGrouped
from convolab.nn import Conv2d

# (out, in per group, kernel, groups) of conv1..conv5: the paper's "5×5×48" etc. are per-tower kernels
PAPER_CONVS = [(96, 3, 11, 1), (256, 48, 5, 2), (384, 256, 3, 1), (384, 192, 3, 2), (256, 192, 3, 2)]
PAPER_FCS = [(6 * 6 * 256, 4096), (4096, 4096), (4096, 1000)]


def _convs(model: nn.Module) -> list[Conv2d]:
    return [m for m in model.features if isinstance(m, Conv2d)]


def _meta(**kwargs) -> AlexNetGrouped:
    with torch.device("meta"):
        return create_model("alexnet_grouped", **kwargs)


def test_convs_are_the_papers_two_towers():
    model = _meta()
    got = [(c.out_channels, c.weight.shape[1], c.kernel_size[0], c.groups) for c in _convs(model)]
    assert got == PAPER_CONVS
    assert _convs(model)[0].stride == (4, 4) and _convs(model)[0].padding == (0, 0)


def test_parameter_count_layer_by_layer():
    convs = [o * i * k * k + o for o, i, k, _ in PAPER_CONVS]
    fcs = [i * o + o for i, o in PAPER_FCS]
    assert convs == [34_944, 307_456, 885_120, 663_936, 442_624]
    assert fcs == [37_752_832, 16_781_312, 4_097_000]
    assert sum(convs) + sum(fcs) == 60_965_224  # "60 million parameters"; the often quoted 60.9-61.0 M
    assert sum(p.numel() for p in _meta().parameters()) == 60_965_224
    # one tower (groups=1 everywhere): conv2, conv4, conv5 see all maps, twice their weights
    ungrouped = sum(o * i * g * k * k + o for o, i, k, g in PAPER_CONVS) + sum(fcs)
    assert ungrouped == 62_378_344
    # the zoo's single tower is narrower: 64/192/384/256/256
    with torch.device("meta"):
        assert sum(p.numel() for p in create_model("alexnet").parameters()) == 61_100_840


def test_grouped_conv_is_two_gpus_side_by_side():
    conv = _convs(_meta())[3].to_empty(device="cpu").double()  # conv4: 384 kernels of 3x3x192
    conv.reset_parameters()
    x = torch.randn(2, 384, 13, 13, dtype=torch.float64)
    w, b = conv.weight, conv.bias
    gpu1 = F.conv2d(x[:, :192], w[:192], b[:192], padding=1)
    gpu2 = F.conv2d(x[:, 192:], w[192:], b[192:], padding=1)
    torch.testing.assert_close(conv(x), torch.cat([gpu1, gpu2], dim=1))


def _lrn_paper(a: torch.Tensor, k=2.0, n=5, alpha=1e-4, beta=0.75) -> torch.Tensor:
    """b_i = a_i / (k + alpha * sum_{j=max(0, i-n/2)}^{min(N-1, i+n/2)} a_j^2)^beta, section 3.3."""
    out = torch.empty_like(a)
    channels = a.shape[1]
    for i in range(channels):
        lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
        out[:, i] = a[:, i] / (k + alpha * a[:, lo : hi + 1].pow(2).sum(1)).pow(beta)
    return out


def test_local_response_norm_is_the_papers_formula():
    model = create_model("alexnet_grouped")
    lrn1, lrn2 = model.features[2], model.features[6]
    assert isinstance(lrn1, nn.LocalResponseNorm) and isinstance(lrn2, nn.LocalResponseNorm)
    a = torch.rand(2, 96, 5, 5, dtype=torch.float64) * 40  # large enough that the sum matters
    torch.testing.assert_close(lrn1(a), _lrn_paper(a))
    assert not torch.allclose(lrn1(a), a / 2**0.75)


def test_lrn_off_keeps_the_layout():
    on, off = _meta(), _meta(lrn=False)
    assert isinstance(off.features[2], nn.Identity) and isinstance(off.features[6], nn.Identity)
    assert [(k, v.shape) for k, v in on.state_dict().items()] == [(k, v.shape) for k, v in off.state_dict().items()]


def test_map_sizes_of_figure_2():
    model = _meta().eval()
    x = torch.empty(1, 3, 227, 227, device="meta")
    sizes = {}
    for i, layer in enumerate(model.features):
        x = layer(x)
        sizes[i] = tuple(x.shape[1:])
    assert [sizes[i] for i in (0, 3, 4, 7, 8, 10, 12, 14)] == [
        (96, 55, 55), (96, 27, 27), (256, 27, 27), (256, 13, 13),
        (384, 13, 13), (384, 13, 13), (256, 13, 13), (256, 6, 6),
    ]  # fmt: skip
    x = torch.randn(1, 256, 6, 6)
    torch.testing.assert_close(model.avgpool(x), x)  # the adaptive pool is the identity at 227


def test_summary_macs():
    s = summary(_meta().eval(), (1, 3, 227, 227))
    maps = [55, 27, 13, 13, 13]
    convs = sum(o * i * k * k * m * m for (o, i, k, _), m in zip(PAPER_CONVS, maps))
    fcs = sum(i * o for i, o in PAPER_FCS)
    assert s.params == 60_965_224 and not s.not_analysed
    assert s.macs == convs + fcs == 724_406_816  # the widely quoted 724 M MACs of AlexNet


def test_paper_initialisation():
    torch.manual_seed(0)
    model = create_model("alexnet_grouped", paper_init=True)
    convs = _convs(model)
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    ones = [convs[1], convs[3], convs[4], linears[0], linears[1]]
    zeros = [convs[0], convs[2], linears[2]]
    assert all(torch.all(m.bias == 1) for m in ones) and all(torch.all(m.bias == 0) for m in zeros)
    assert abs(linears[0].weight.std().item() - 0.01) < 5e-4 and abs(linears[0].weight.mean().item()) < 5e-4
    default = create_model("alexnet_grouped")
    assert not torch.all(_convs(default)[1].bias == 1)


def test_trains_at_the_minimum_size():
    model = AlexNetGrouped(num_classes=4).train()
    model(torch.randn(2, 3, 67, 67)).square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises((ValueError, RuntimeError)):
        model(torch.randn(2, 3, 66, 66))
