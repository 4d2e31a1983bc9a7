"""``convolab summary`` on the command line."""

from __future__ import annotations

import json
import textwrap

import pytest

from convolab.cli import main


def test_registered_model_table(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["summary", "mnist_cnn", "--input", "1x28x28"]) == 0
    out = capsys.readouterr().out
    assert "MnistCNN" in out and "1,425,214" in out and "layer4" in out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert main(["summary", "seed_cnn"]) == 0  # the old name works, and the default input is the model's own
    assert "Input [1, 1, 28, 28]" in capsys.readouterr().out


@pytest.mark.parametrize("width", [80, 60, 40])
def test_the_table_fits_the_width_and_never_cuts_a_number(width, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(width))
    assert main(["summary", "resnet50", "--depth", "1"]) == 0  # the terminal's width by default
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= width
    assert "25,557,032" in out and "1×2048×7×7" in out  # whole numbers and shapes
    assert (f"Left out to fit {width} characters: " in out) == (width < 80)
    if width >= 80:
        assert "4,089,184,256" in out and "AdaptiveA…" in out  # a long type name shortens, visibly
    assert main(["summary", "resnet50", "--depth", "1", "--width", str(width)]) == 0
    assert capsys.readouterr().out == out


def test_extra_outputs_are_explained(tmp_path, capsys, monkeypatch):
    (tmp_path / "two.py").write_text(textwrap.dedent("""
        from torch import nn
        class Two(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = nn.Conv2d(1, 2, 3)
            def forward(self, x):
                y = self.c(x)
                return y, y.mean(1), y.sum()
    """))
    assert main(["summary", f"{tmp_path / 'two.py'}:Two", "--input", "1x10x34", "--width", "200"]) == 0
    out = capsys.readouterr().out
    assert "1×2×8×32 +2" in out and "A shape followed by +N: the layer returns N more tensors" in out


def test_json_and_markdown(capsys):
    assert main(["summary", "mnist_cnn", "--input", "1x28x28", "--format", "json", "--depth", "1", "--batch", "2"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["input_shapes"] == [[2, 1, 28, 28]] and d["totals"]["params"] == 1425214
    assert {r["depth"] for r in d["rows"]} == {0, 1}
    assert main(["summary", "mnist_cnn", "--input", "1x28x28", "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("| Layer | Type |")


def test_user_file_and_module_attr(tmp_path, capsys, monkeypatch):
    (tmp_path / "mynet.py").write_text(textwrap.dedent("""
        from torch import nn
        net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3))
        def build():
            return nn.Sequential(nn.Conv2d(3, 4, 5))
    """))
    assert main(["summary", f"{tmp_path / 'mynet.py'}:net", "--input", "3x16x16"]) == 0
    assert "4×12×12" in capsys.readouterr().out
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["summary", "mynet:build", "--input", "3x16x16", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"][1]["receptive_field"][0]["size"] == 5


@pytest.mark.parametrize("argv, message", [
    (["summary", "mnist_cn"], "unknown model 'mnist_cn'; did you mean 'mnist_cnn'"),
    (["summary", "mnist_cnn", "--input", "1xx28"], "--input must look like 3x224x224"),
    (["summary", "mnist_cnn", "--input", "1x28x28", "--depth", "-1"], "--depth must be >= 0"),
    (["summary", "mnist_cnn", "--input", "1x28x28", "--batch", "0"], "--batch must be >= 1, got 0"),
    (["summary", "mnist_cnn", "--width", "10"], "--width must be >= 40 (room for Layer, Output shape and Params), got 10"),
    (["summary", "resnet50", "--input", "3x224"], "--input must be CxHxW with C = 3 for this model (its first "
     "convolution, conv1, takes 3 channels and 2 spatial dims), e.g. 3x224x224; got '3x224'"),
    (["summary", "resnet50", "--input", "1x224x224"], "--input must be CxHxW with C = 3 for this model"),
    (["summary", "mnist_cnn", "--input", "3x28x28"], "--input must be CxHxW with C = 1 for this model (its first "
     "convolution, layer1.0, takes 1 channel and 2 spatial dims), e.g. 1x28x28; got '3x28x28'"),
    (["summary", "mnist_cnn", "--input", "1x30x30"], "the forward pass of MnistCNN failed in 'fc.0'"),
    (["summary", "nowhere.py:net"], "no such file: nowhere.py"),
    (["summary", "json:dumps"], "json:dumps is not an nn.Module"),
    (["summary", "json:nothing"], "json has no attribute 'nothing'"),
])
def test_errors_exit_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
