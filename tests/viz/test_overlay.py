"""The receptive-field overlay: the box is the analysis' theoretical field, the heat its effective field."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convolab.models import create_model
from convolab.viz.overlay import receptive_field_data, receptive_field_overlay


def test_box_is_the_theoretical_field_and_contains_the_effective_field(tmp_path):
    torch.manual_seed(0)
    # conv3 (stride 1) -> conv3 stride 2 -> conv3: by hand, r = 3, 5, 9; jump 1, 1, 2
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3, stride=2), nn.Conv2d(2, 1, 3))
    image = torch.randn(1, 17, 17)
    d = receptive_field_data(net, image, "2")
    assert d.output_size == (5, 5) and d.unit == (2, 2)
    # by hand: layer-2 unit u covers layer-1 units [u, u+2], layer-1 unit v covers layer-0 units
    # [2v, 2v+2], layer-0 unit w covers input [w, w+2]  =>  input [2u, 2u+8] = [4, 12]
    assert d.box == ((4.0, 12.0), (4.0, 12.0))
    heat = d.heat
    assert heat.shape == (17, 17) and float(heat.sum()) == pytest.approx(1.0)
    inside = torch.zeros_like(heat, dtype=torch.bool)
    inside[4:13, 4:13] = True
    assert float(heat[~inside].abs().sum()) == 0.0  # the effective field lies inside the theoretical one
    fig = receptive_field_overlay(net, image, "2", path=tmp_path / "o.png")
    (box,) = fig.axes[0].patches
    assert (box.get_x(), box.get_y(), box.get_width(), box.get_height()) == (3.5, 3.5, 9.0, 9.0)
    assert (tmp_path / "o.png").read_bytes()[:4] == b"\x89PNG"


def test_mnist_cnn_overlay():
    model = create_model("mnist_cnn")
    d = receptive_field_data(model, torch.randn(1, 28, 28), "layer3")
    (r0, r1), (c0, c1) = d.box
    assert r1 - r0 + 1 == d.fields[0].size
    outside = d.heat.clone()
    outside[int(r0):int(r1) + 1, int(c0):int(c1) + 1] = 0
    assert float(outside.sum()) == 0.0


@pytest.mark.parametrize("unit", [(0, 0), (2, 7), (10, 10)])
def test_any_unit_effective_field_lies_in_its_theoretical_box(unit):
    model = create_model("mnist_cnn")
    d = receptive_field_data(model, torch.randn(1, 28, 28), "layer3", unit=unit)
    assert d.unit == unit
    (r0, r1), (c0, c1) = d.box
    inside = d.heat[max(int(r0), 0):int(r1) + 1, max(int(c0), 0):int(c1) + 1]
    assert float(inside.sum()) == pytest.approx(1.0)  # all of the gradient falls in the box
    assert float(d.heat.sum()) == pytest.approx(1.0)


def test_overlay_errors():
    net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Flatten())
    with pytest.raises(ValueError, match=r"receptive_field_overlay: unit must be 2 indices inside the output \(3, 3\)"):
        receptive_field_data(net, torch.randn(1, 5, 5), "0", unit=(5, 0))
    with pytest.raises(TypeError, match=r"receptive_field_overlay: image must be a floating-point tensor"):
        receptive_field_data(net, torch.ones(1, 5, 5, dtype=torch.long), "0")
    with pytest.raises(ValueError, match=r"receptive_field_overlay: image must be \[C, H, W\]"):
        receptive_field_data(net, torch.randn(5, 5), "0")
    with pytest.raises(ValueError, match=r"no layer named '9'"):
        receptive_field_data(net, torch.randn(1, 5, 5), "9")
