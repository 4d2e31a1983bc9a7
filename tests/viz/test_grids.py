"""Kernel and feature-map grids draw the model's own numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convolab.models import create_model
from convolab.viz.grids import feature_map_grid, kernel_grid, layer_names


def _visible(fig):
    """The tiles (the colour bar is an axes too, labelled '<colorbar>')."""
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def _colorbar(fig):
    (bar,) = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    return bar


def test_kernel_grid_tiles_are_the_weights(tmp_path):
    conv = torch.nn.Conv2d(2, 3, 3)
    fig = kernel_grid(conv, path=tmp_path / "k.png")
    tiles = _visible(fig)
    assert len(tiles) == 6
    for ax, (o, i) in zip(tiles, [(o, i) for o in range(3) for i in range(2)]):
        np.testing.assert_allclose(ax.images[0].get_array(), conv.weight[o, i].detach().numpy())
        assert len(ax.texts) == 9  # small kernels carry their numbers
        assert ax.images[0].get_clim() == tiles[0].images[0].get_clim()  # one symmetric scale for all
    limit = float(conv.weight.detach().abs().max())
    assert tiles[0].images[0].get_clim() == pytest.approx((-limit, limit))
    assert _colorbar(fig).get_ylabel() == "weight (white = 0)"
    assert (tmp_path / "k.png").read_bytes()[:4] == b"\x89PNG"


def test_saved_pictures_are_cropped_to_what_is_drawn(tmp_path):
    from PIL import Image

    kernel_grid(torch.nn.Conv2d(1, 2, 3), path=tmp_path / "k.png")
    pixels = np.asarray(Image.open(tmp_path / "k.png").convert("L"))
    for edge in (pixels[:3], pixels[-3:], pixels[:, :3], pixels[:, -3:]):
        assert edge.min() > 200  # a thin white border, nothing cut
    inked = pixels < 200
    rows, cols = np.nonzero(inked.any(axis=1))[0], np.nonzero(inked.any(axis=0))[0]
    assert rows[0] < 15 and rows[-1] > len(inked) - 15  # no empty band above or below
    assert cols[0] < 15 and cols[-1] > inked.shape[1] - 15  # nor left or right


def test_kernel_grid_rgb_and_model_layer():
    rgb = kernel_grid(torch.randn(5, 3, 4, 4))
    assert len(_visible(rgb)) == 5 and rgb.axes[0].images[0].get_array().shape == (4, 4, 3)
    model = create_model("mnist_cnn")
    name = layer_names(model, "conv")[0]
    fig = kernel_grid(model, name, max_tiles=7)
    assert len(_visible(fig)) == 7


def test_feature_maps_are_the_layer_output():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.ReLU(), torch.nn.Conv2d(3, 2, 3))
    x = torch.randn(2, 1, 9, 9)
    fig = feature_map_grid(model, x, "1")
    expected = torch.relu(model[0](x))[0].detach()
    tiles = _visible(fig)
    assert len(tiles) == 3
    for c, ax in enumerate(tiles):
        np.testing.assert_allclose(ax.images[0].get_array(), expected[c].numpy(), rtol=1e-6)
        assert ax.images[0].get_clim() == pytest.approx((float(expected.min()), float(expected.max())))
    assert not model[1]._forward_hooks  # the hook is removed
    assert _colorbar(fig).get_ylabel() == "activation"
    with_input = feature_map_grid(model, x, "1", show_input=True, title="a title")
    tiles = _visible(with_input)
    assert len(tiles) == 4 and tiles[0].get_title() == "input"
    np.testing.assert_allclose(tiles[0].images[0].get_array(), x[0, 0].numpy())
    assert with_input._suptitle.get_text().startswith("a title\n1: all 3 feature maps")


def test_grid_errors():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.Flatten())
    with pytest.raises(ValueError, match=r"kernel_grid: layer must be one of '0', got '5'"):
        kernel_grid(model, "5")
    with pytest.raises(ValueError, match=r"kernel_grid: layer is required for a model; choices: 0"):
        kernel_grid(model)
    with pytest.raises(ValueError, match=r"kernel_grid: expected a 2-D conv weight .* got shape \[3, 1, 3\]"):
        kernel_grid(torch.randn(3, 1, 3))
    with pytest.raises(TypeError, match=r"kernel_grid: expected an nn.Module or a weight tensor, got list"):
        kernel_grid([1])
    with pytest.raises(ValueError, match=r"feature_map_grid: layer '1' must output \[N, C, H, W\] feature maps, got \[1, 147\]"):
        feature_map_grid(model, torch.randn(1, 1, 9, 9), "1")
    with pytest.raises(ValueError, match=r"feature_map_grid: layer must be one of '0', '1', got '00'; did you mean '0'"):
        feature_map_grid(model, torch.randn(1, 1, 9, 9), "00")
