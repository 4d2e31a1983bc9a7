"""What units respond to: the top patches are the real inputs of the most excited units, cut to
their receptive field; the picture, the page, the command, and feature maps layer by layer."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from convolab.cli import main
from convolab.viz import top_patch_grid, top_patches, write_gallery
from convolab.viz.gallery import figure_page


def detector(padding: int = 0) -> nn.Module:
    """One 3x3 filter that answers to a bright diagonal: sum of the three diagonal pixels."""
    conv = nn.Conv2d(1, 2, 3, padding=padding, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0] = torch.eye(3)
        conv.weight[1, 0] = torch.eye(3).flip(1)  # the other diagonal
    return nn.Sequential(conv)


def test_the_top_patch_is_the_planted_pattern():
    images = torch.zeros(6, 1, 9, 9)
    images[4, 0, 2:5, 3:6] = torch.eye(3)  # the strongest diagonal, in image 4
    images[1, 0, 5:8, 1:4] = 0.5 * torch.eye(3)  # a weaker one in image 1
    found = top_patches(detector(), images, "0", channels=[0], top=2)
    assert found.where[0].tolist() == [[4, 2, 3], [1, 5, 1]]  # image, row and column of the unit
    torch.testing.assert_close(found.activations[0], torch.tensor([3.0, 1.5]))
    torch.testing.assert_close(found.patches[0, 0, 0], torch.eye(3))
    torch.testing.assert_close(found.patches[0, 1, 0], 0.5 * torch.eye(3))
    assert found.searched == 6 and [f.size for f in found.fields] == [3, 3]


def test_each_image_counts_once_per_channel_and_batches_do_not_matter():
    images = torch.rand(10, 1, 9, 9)
    a = top_patches(detector(), images, "0", channels=2, top=10, batch_size=3)
    b = top_patches(detector(), images, "0", channels=2, top=10, batch_size=100)
    assert sorted(a.where[0, :, 0].tolist()) == list(range(10))  # ten different images
    torch.testing.assert_close(a.activations, b.activations)
    assert torch.equal(a.where, b.where)


def test_fields_reaching_into_the_padding_are_nan_there():
    images = torch.zeros(1, 1, 6, 6)
    images[0, 0, 0:2, 0:2] = torch.eye(2)  # a diagonal at the corner: the padded unit (0, 0) sees it best
    found = top_patches(detector(padding=1), images, "0", channels=[0], top=1)
    patch = found.patches[0, 0, 0]
    assert found.where[0, 0].tolist() == [0, 0, 0]
    assert torch.isnan(patch[0]).all() and torch.isnan(patch[:, 0]).all()  # the padding row and column
    torch.testing.assert_close(patch[1:, 1:], torch.eye(2))


def test_a_deeper_layer_is_cut_to_its_field():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(2, 3, 3))
    found = top_patches(net, torch.rand(5, 1, 16, 16), "3", top=2)
    assert found.channels == (0, 1, 2) and tuple(found.patches.shape) == (3, 2, 1, 8, 8)  # 3 + 1 + 2*2 = 8
    assert not torch.isnan(found.patches).any()


def test_the_pipeline_resizes_and_the_patches_are_cut_at_that_size():
    class Resize(nn.Module):
        def forward(self, x):
            return nn.functional.interpolate(x, size=(12, 12), mode="bilinear", align_corners=False)

    found = top_patches(detector(), torch.rand(3, 1, 6, 6), "0", channels=1, top=1, pipeline=Resize())
    assert found.where[0, 0, 1] < 10 and found.patches.shape[-2:] == (3, 3)


def test_errors_name_the_problem():
    images = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"top_patches: layer must be one of '0'.*got '1'"):
        top_patches(detector(), images, "1")
    with pytest.raises(ValueError, match=r"top_patches: layer 'fc' must output \[N, C, H, W\] feature maps, got \[1, 3\]"):
        top_patches(_with_fc(), images, "fc")
    with pytest.raises(ValueError, match=r"top_patches: the receptive field of '0' is unknown \(after circular padding "
                                         r"\(not analysed\)\); its units' patches cannot be cut"):
        top_patches(nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular")), images, "0")
    with pytest.raises(ValueError, match=r"top_patches: channels must be a count >= 1 or channel indices in \[0, 1\] "
                                         r"\(layer '0' has 2\), got \[2\]"):
        top_patches(detector(), images, "0", channels=[2])
    with pytest.raises(ValueError, match=r"top_patches: channels must be a count >= 1 .* got 0"):
        top_patches(detector(), images, "0", channels=0)
    with pytest.raises(ValueError, match=r"top_patches: top must be an int >= 1, got 0"):
        top_patches(detector(), images, "0", top=0)
    with pytest.raises(ValueError, match=r"top_patches: images must be a float tensor \[N, C, H, W\] in \[0, 1\], got \[8, 8\]"):
        top_patches(detector(), torch.rand(8, 8), "0")
    with pytest.raises(TypeError, match=r"top_patches: model must be an nn.Module, got str"):
        top_patches("net", images, "0")


def _with_fc() -> nn.Module:
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.flat, self.fc = nn.Flatten(), nn.Linear(64, 3)

        def forward(self, x):
            return self.fc(self.flat(x))

    return Net()


def test_the_grid_has_a_tile_per_patch_and_the_page_embeds_it(tmp_path):
    found = top_patches(detector(padding=1), torch.rand(7, 1, 8, 8), "0", channels=2, top=4)
    fig = top_patch_grid(found, tmp_path / "p.png", title="a detector")
    assert sum(ax.get_visible() for ax in fig.axes) == 8 and (tmp_path / "p.png").stat().st_size > 0
    assert "a detector" in fig._suptitle.get_text() and "3x3 receptive field" in fig._suptitle.get_text()
    page = figure_page([("heading", "caption", tmp_path / "p.png")])
    assert page.count("data:image/png;base64,") == 1 and "<h2>heading</h2>" in page
    paths = write_gallery(tmp_path / "g", figures=[("What units respond to", "caption", tmp_path / "p.png")])
    assert "data:image/png;base64," in paths[-1].read_text() and paths[-1].name == "index.html"


def test_command_top_patches(tmp_path, capsys):
    out = tmp_path / "p.png"
    assert main(["explain", "top-patches", "--model", "mnist_cnn", "--layer", "layer3", "--channels", "3", "--top", "4",
                 "--limit", "40", "-o", str(out), "--html", str(tmp_path / "p.html")]) == 0
    text = capsys.readouterr().out
    assert "the 4 strongest patches (8x8, the units' receptive field) of 3 channels of mnist_cnn layer layer3" in text
    assert "untrained (random weights, seed 0)" in text and out.stat().st_size > 0
    assert "data:image/png;base64," in (tmp_path / "p.html").read_text()


@pytest.mark.parametrize("args, message", [
    (["--layer", "layer1", "--channels", "x"], "--channels must be a count N or channel indices C1,C2,..., got 'x'"),
    (["--layer", "layer1", "--channels", "0"], "--channels must be a count >= 1, got 0"),
    (["--layer", "layer1", "--top", "0"], "--top must be >= 1, got 0"),
    (["--layer", "layer1", "--top", "65"], "--top must be <= 64, got 65"),
    (["--layer", "layer1", "--digit", "3"], "option --digit does not apply to 'explain top-patches' (it searches --data)"),
    (["--channels", "4"], "explain top-patches needs --layer"),
    (["--layer", "fc", "--channels", "2"], "layer 'fc' must output [N, C, H, W] feature maps, got [1, 10]"),
    (["--layer", "layer1", "--data", "nope"], "--data: load_dataset: dataset kind must be one of 'digits', 'mnist', "
                                              "'folder', got 'nope'"),
])
def test_command_top_patches_errors(tmp_path, capsys, args, message):
    assert main(["explain", "top-patches", "--model", "mnist_cnn", "--limit", "20", *args,
                 "-o", str(tmp_path / "p.png")]) == 2
    assert message in capsys.readouterr().err


def test_patch_options_belong_to_top_patches(tmp_path, capsys):
    assert main(["explain", "kernels", "--layer", "layer1", "--top", "3", "-o", str(tmp_path / "k.png")]) == 2
    assert "option --top applies to 'explain top-patches' only" in capsys.readouterr().err


def test_feature_maps_layer_by_layer(tmp_path, capsys):
    assert main(["explain", "feature-maps", "--model", "mnist_cnn", "--layer", "all", "-o", str(tmp_path / "m.png")]) == 0
    assert sorted(p.name for p in tmp_path.glob("m_*.png")) == [f"m_layer{i}.png" for i in (1, 2, 3, 4)]
    assert "feature maps of mnist_cnn layer by layer (layer1, layer2, layer3, layer4)" in capsys.readouterr().out
    assert main(["explain", "feature-maps", "--model", "mnist_cnn", "--layer", "layer1,layer3.0",
                 "-o", str(tmp_path / "n.png")]) == 0
    assert (tmp_path / "n_layer3-0.png").is_file()
    assert main(["explain", "feature-maps", "--model", "mnist_cnn", "--layer", "layer1,layr3",
                 "-o", str(tmp_path / "o.png")]) == 2
    assert "layer must be one of" in capsys.readouterr().err and not (tmp_path / "o_layer1.png").exists()


def test_activation_values_are_finite_and_ordered():
    found = top_patches(detector(), torch.rand(12, 1, 7, 7), "0", top=5)
    assert all(math.isfinite(v) for v in found.activations.flatten().tolist())
    assert (found.activations[:, :-1] >= found.activations[:, 1:]).all()
