"""`convolab animate` and `convolab explain`: files with the right content, one-line errors with exit 2."""

from __future__ import annotations

import re

import pytest
from PIL import Image

from convolab.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv,frames", [
    (["conv2d", "--input", "5", "--kernel", "3", "--stride", "2", "--padding", "1"], 9),
    (["conv1d", "--input", "8", "--padding", "same", "--stride", "2"], 4),
    (["dilated", "--input", "7"], 9),
    (["conv2d", "--input", "4x5", "--kernel", "3x2", "--padding", "valid"], 8),
    (["conv_transpose2d", "--input", "2", "--kernel", "3"], 16),
    (["conv_transpose1d", "--input", "3", "--stride", "2", "--padding", "1", "--output-padding", "1"], 6),
    (["checkerboard"], 9),
    (["grouped", "--in-channels", "4", "--out-channels", "6", "--groups", "2"], 6),
    (["shuffle", "--in-channels", "4", "--out-channels", "4", "--groups", "2"], 12),
    (["channel_shuffle", "--channels", "6", "--groups", "3"], 6),
    (["depthwise_separable", "--in-channels", "2", "--out-channels", "3", "--kernel", "3"], 20),
    (["depthwise_separable", "--in-channels", "1", "--out-channels", "2", "--kernel", "2", "--input", "3x4"], 18),
    (["pointwise", "--in-channels", "3", "--out-channels", "2"], 2),
    (["max_pool2d", "--input", "5", "--kernel", "2", "--ceil-mode"], 9),
    (["max_pool1d", "--input", "9", "--kernel", "3", "--stride", "2", "--padding", "1"], 5),
    (["avg_pool2d", "--input", "5", "--kernel", "3", "--stride", "2", "--padding", "1", "--exclude-pad"], 9),
    (["spp", "--input", "6x5", "--levels", "1,2,3", "--mode", "avg"], 14),
    (["deform_conv2d", "--input", "4", "--padding", "1", "--max-offset", "0.5"], 16),
    (["deform_conv1d", "--input", "6", "--kernel", "3"], 6),
    (["roi_pool", "--input", "6x7", "--box", "1,1,5,4", "--output-size", "2x3"], 6),
    (["roi_align", "--box", "0,0,4,4", "--scale", "0.5", "--sampling-ratio", "3", "--aligned"], 4),
])
def test_animate_gif(argv, frames, tmp_path, capsys):
    out = tmp_path / "a.gif"
    code, stdout, _ = _run(capsys, "animate", *argv, "-o", str(out), "--duration", "50")
    assert code == 0
    assert f"({frames} frames)" in stdout
    assert Image.open(out).n_frames == frames


def test_animate_html_and_png(tmp_path, capsys):
    code, _, _ = _run(capsys, "animate", "conv2d", "--input", "5", "--padding", "same", "-o", str(tmp_path / "a.html"))
    assert code == 0 and (tmp_path / "a.html").read_text().count('class="frame"') == 25
    code, out, _ = _run(capsys, "animate", "checkerboard", "-o", str(tmp_path / "a.png"))
    assert code == 0 and Image.open(tmp_path / "a.png").format == "PNG"
    assert f"wrote {tmp_path / 'a.png'} (the last of 9 frames): checkerboard" in out  # one picture, not 9


@pytest.mark.parametrize("where, message", [
    ("{tmp}/missing/x.gif", r"-o: no such folder '.*missing' \(create it first\), got '.*missing/x.gif'"),
    ("{tmp}/file.txt/x.gif", r"-o: '.*file.txt' is not a folder"),
    ("{tmp}/sub.gif", r"-o must be a file name, got the folder '.*sub.gif'"),
    ("/proc/x.gif", r"-o: cannot write in '/proc' \("),
])
def test_animate_checks_the_output_location_first(where, message, tmp_path, capsys, monkeypatch):
    import importlib

    (tmp_path / "file.txt").write_text("")
    (tmp_path / "sub.gif").mkdir()
    built = []
    monkeypatch.setattr(importlib.import_module("convolab.viz.animate"), "animate", lambda *a, **k: built.append(a))
    code, out, err = _run(capsys, "animate", "conv2d", "--input", "5", "-o", where.replace("{tmp}", str(tmp_path)))
    assert code == 2 and out == "" and not built  # nothing computed before the check
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "sub.gif"]  # no folder created


@pytest.mark.parametrize("argv,message", [
    (["animate", "conv3d", "--input", "5", "-o", "a.gif"], r"OP must be one of .*did you mean 'conv2d'"),
    (["animate", "conv2d", "--input", "5", "-o", "a.jpg"], r"-o must end in .gif, .html, .png, got 'a.jpg'"),
    (["animate", "conv2d", "-o", "a.gif"], r"conv2d needs --input \(e.g. --input 5x5\)"),
    (["animate", "conv2d", "--input", "5", "--groups", "2", "-o", "a.gif"],
     r"option --groups does not apply to conv2d \(its options: --input, --kernel"),
    (["animate", "conv2d", "--input", "5x", "-o", "a.gif"], r"--input must be an int or ints joined by 'x'"),
    (["animate", "conv2d", "--input", "5x5x5", "-o", "a.gif"], r"--input must have 1 or 2 entries for this op"),
    (["animate", "conv1d", "--input", "5x5", "-o", "a.gif"], r"--input must have 1 entry for this op"),
    (["animate", "conv2d", "--input", "50", "-o", "a.gif"], r"--input sides must be <= 24"),
    (["animate", "conv2d", "--input", "5", "--stride", "0", "-o", "a.gif"], r"--stride must be >= 1, got '0'"),
    (["animate", "conv2d", "--input", "5", "--padding", "-1", "-o", "a.gif"], r"--padding must be >= 0"),
    (["animate", "conv2d", "--input", "5", "--padding", "sam", "-o", "a.gif"], r"--padding must be an int"),
    (["animate", "conv2d", "--input", "2", "--kernel", "3", "-o", "a.gif"], r"output size would be 0"),
    (["animate", "conv_transpose2d", "--input", "2", "--padding", "same", "-o", "a.gif"],
     r"--padding 'same' is not defined for transposed convolution"),
    (["animate", "conv_transpose2d", "--input", "2", "--output-padding", "1", "-o", "a.gif"],
     r"output_padding \(1\) must be smaller than stride \(1\) or dilation \(1\)"),
    (["animate", "grouped", "--in-channels", "4", "--out-channels", "6", "--groups", "3", "-o", "a.gif"],
     r"groups \(3\) must divide in_channels \(4\)"),
    (["animate", "conv2d", "--input", "5", "--duration", "5", "-o", "a.gif"], r"--duration must be >= 20"),
    (["animate", "avg_pool2d", "--input", "5", "--dilation", "2", "-o", "a.gif"],
     r"option --dilation does not apply to avg_pool2d"),
    (["animate", "spp", "--levels", "1,x", "-o", "a.gif"], r"--levels must be ints joined by ','"),
    (["animate", "spp", "--levels", "0", "-o", "a.gif"], r"--levels must be ints in \[1, 24\]"),
    (["animate", "spp", "--mode", "min", "-o", "a.gif"], r"--mode must be one of 'max', 'avg', got 'min'"),
    (["animate", "conv2d", "--input", "5", "--ceil-mode", "-o", "a.gif"], r"option --ceil-mode does not apply to conv2d"),
    (["animate", "max_pool2d", "--input", "4", "--kernel", "2", "--padding", "2", "-o", "a.gif"],
     r"padding \(2, 2\) along dim 2 must be at most half the effective kernel size"),
    (["animate", "roi_align", "--box", "4,4,1,1", "-o", "a.gif"], r"roi_align: box 0 has x2 \(1\) < x1 \(4\)"),
    (["animate", "roi_pool", "--box", "1,2", "-o", "a.gif"], r"animate roi_pool: box must be \(x1, y1, x2, y2\)"),
    (["animate", "roi_pool", "--scale", "a", "-o", "a.gif"], r"--scale must be a number, got 'a'"),
    (["animate", "roi_pool", "--aligned", "-o", "a.gif"], r"option --aligned does not apply to roi_pool"),
    (["animate", "roi_align", "--sampling-ratio", "0", "-o", "a.gif"], r"--sampling-ratio must be >= 1"),
    (["animate", "deform_conv2d", "--input", "5", "--max-offset", "9", "-o", "a.gif"],
     r"animate deform_conv: max_offset must be a number in \[0, 3\], got 9.0"),
    (["explain", "cov"], r"TOPIC must be one of 'conv', 'receptive-field', 'params', 'overlay', 'kernels', 'feature-maps', 'top-patches', got 'cov'; did you mean 'conv'"),
    (["explain", "conv", "--stride", "two"], r"--stride must be an int, got 'two'"),
    (["explain", "conv", "--padding", "x"], r"--padding must be an int, got 'x'"),
    (["explain", "conv", "--input", "5x5x3x2"], r"input must be HxWxC"),
    (["explain", "conv", "--input", "3x224"], r"explain conv: input must be HxWxC, three positive ints \(e.g. 5x5x3 or 28x28x1\), got '3x224'"),
    (["explain", "conv", "conv:k=3"], r"explain conv takes options, not layers"),
    (["explain", "params", "conv:k=3,c=2"], r"explain params needs --input HxWxC"),
    (["explain", "receptive-field"], r"explain receptive-field needs layers"),
    (["explain", "receptive-field", "conv:k=3", "--kernel", "3"], r"option --kernel applies to 'explain conv' only"),
    (["explain", "receptive-field", "conv:k=3", "--input", "0"], r"--input must be >= 1, got 0"),
    (["explain", "conv", "--model", "mnist_cnn"], r"option --model applies to 'explain overlay\|kernels\|feature-maps\|top-patches' only"),
    (["explain", "conv", "--weights", "x.pt"], r"option --weights applies to 'explain overlay"),
    (["explain", "kernels", "--model", "mnist_cnn", "-o", "k.png"], r"explain kernels needs --layer"),
    (["explain", "kernels", "--layer", "layer1.0"], r"explain kernels needs --output FILE.png"),
    (["explain", "overlay", "--model", "mnist_cnn", "--layer", "layer3", "-o", "k.gif"], r"-o must end in .png"),
    (["explain", "overlay", "--layer", "layer3", "-o", "no/such/o.png"], r"-o: no such folder 'no/such'"),
    (["explain", "overlay", "--layer", "layer3", "--weights", "nothing.pt", "-o", "o.png"],
     r"--weights: no such file 'nothing.pt'"),
    (["explain", "overlay", "--layer", "layer3", "--image", "nothing.png", "-o", "o.png"],
     r"--image: no such file 'nothing.png'"),
    (["explain", "overlay", "--layer", "layer3", "--digit", "12", "-o", "o.png"], r"--digit must be <= 9, got 12"),
    (["explain", "overlay", "--layer", "layer3", "--digit", "1", "--image", "a.png", "-o", "o.png"],
     r"give --image or --digit, not both"),
    (["explain", "overlay", "--model", "mnist_cnn", "--layer", "layer9", "-o", "o.png"],
     r"receptive_field_overlay: no layer named 'layer9'; did you mean"),
    (["explain", "feature-maps", "--model", "sed_cnn", "--layer", "layer1", "-o", "f.png"],
     r"unknown model 'sed_cnn'; did you mean 'seed_cnn' or 'mnist_cnn'"),
    (["explain", "kernels", "--model", "mnist_cnn", "--layer", "layer1.0", "--image-size", "1x28", "-o", "k.png"],
     r"--image-size must be CxHxW"),
    (["explain", "kernels", "--model", "mnist_cnn", "--layer", "layer1.0", "--kernel", "3", "-o", "k.png"],
     r"option --kernel does not apply to 'explain kernels'"),
])
def test_errors_are_one_line_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"convolab {argv[0]}: error: ")
    assert re.search(message, err), err
    assert not list(tmp_path.iterdir())  # nothing written on error


def test_explain_commands_print(capsys):
    code, out, _ = _run(capsys, "explain", "conv", "--input", "5x5x3", "--filters", "2", "--kernel", "3",
                        "--stride", "2", "--padding", "1", "--seed", "0")
    assert code == 0 and "floor((5 + 1 + 1 - 1*(3 - 1) - 1) / 2) + 1 = 3" in out
    assert out.count("  sum: ") == 18
    code, out, _ = _run(capsys, "explain", "receptive-field", "conv:k=3", "conv:k=3", "conv:k=3")
    assert code == 0 and "7 = 5 + (3-1)*1" in out
    code, out, _ = _run(capsys, "explain", "params", "conv:c=8,k=3", "fc:n=2", "--input", "5x5x1")
    assert code == 0 and "8*1*3*3 + 8 = 80" in out and "72*2 + 2 = 146" in out and "total parameters: 226" in out


@pytest.mark.parametrize("topic,layer", [("overlay", "layer3"), ("kernels", "layer1.0"), ("feature-maps", "layer1")])
def test_explain_pictures(topic, layer, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no convolab-demo/ here: untrained weights, and the output says so
    out = tmp_path / f"{topic}.png"
    code, stdout, _ = _run(capsys, "explain", topic, "--layer", layer, "-o", str(out))
    assert code == 0 and stdout.startswith(f"wrote {out}: {topic} of mnist_cnn layer {layer}; weights: untrained")
    assert "run `convolab demo` first, or pass --weights FILE" in stdout
    assert Image.open(out).format == "PNG"


def _checkpoint(folder, seed=1):
    """A training checkpoint as `convolab train` writes it (weights of a seeded fresh model)."""
    from dataclasses import asdict

    import torch

    from convolab.models import create_model
    from convolab.train import TrainConfig, save_checkpoint

    torch.manual_seed(seed)
    model = create_model("mnist_cnn")
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(folder / "last.pt", {
        "config": asdict(TrainConfig(model="seed_cnn")),  # written under the old name: still fits
        "model": model.state_dict(),
        "data": {"classes": [str(c) for c in range(10)], "channels": 1, "size": [28, 28],
                 "mean": [0.13], "std": [0.31], "source": "test digits"},
        "history": [{"epoch": 1, "val_accuracy": 0.5}, {"epoch": 2, "val_accuracy": 0.75}],
    })
    save_checkpoint(folder / "model.pt", model.state_dict())
    return model


@pytest.mark.parametrize("weights", [None, "last.pt", "model.pt"])
def test_explain_pictures_draw_the_trained_weights_on_a_real_digit(weights, tmp_path, capsys, monkeypatch):
    import torch

    import convolab.viz
    from convolab.data import load_digits

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "convolab-demo" / "mnist_cnn"  # where `convolab demo` leaves its checkpoint
    model = _checkpoint(folder)
    drawn = {}
    monkeypatch.setattr(convolab.viz, "feature_map_grid",
                        lambda m, x, layer, path, **kw: drawn.update(model=m, x=x, layer=layer, **kw))
    argv = ["explain", "feature-maps", "--layer", "layer1", "--digit", "7", "-o", "maps.png"]
    if weights:
        argv += ["--weights", str(folder / weights)]
    code, out, _ = _run(capsys, *argv)
    assert code == 0, out
    shown = folder / (weights or "last.pt")
    assert f"weights: trained 2 epochs, 75.0% held-out ({shown if weights else 'convolab-demo/mnist_cnn/last.pt'})" in out
    assert "input: a handwritten 7" in out
    for name, value in model.state_dict().items():  # the checkpoint's weights, not fresh ones
        assert torch.equal(drawn["model"].state_dict()[name], value), name
    images, _ = load_digits()
    digit = images[int((images.labels == 7).nonzero()[0])][0]
    assert torch.allclose(drawn["x"][0], (digit - 0.13) / 0.31)  # normalised as in training
    assert drawn["show_input"] and drawn["layer"] == "layer1" and "input: a handwritten 7" in drawn["title"]


def test_explain_picture_of_an_image_file_and_bad_weights(tmp_path, capsys, monkeypatch):
    import numpy as np

    monkeypatch.chdir(tmp_path)
    Image.fromarray((np.arange(40 * 30) % 256).astype(np.uint8).reshape(30, 40)).save(tmp_path / "img.png")
    code, out, _ = _run(capsys, "explain", "overlay", "--layer", "layer3", "--image", "img.png", "-o", "o.png")
    assert code == 0 and "input: img.png" in out and Image.open(tmp_path / "o.png").format == "PNG"
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    code, _, err = _run(capsys, "explain", "kernels", "--layer", "layer1.0", "--weights", "junk.pt", "-o", "k.png")
    assert code == 2 and "--weights: 'junk.pt' is not a checkpoint or weights file" in err
    _checkpoint(tmp_path / "run")
    code, _, err = _run(capsys, "explain", "kernels", "--model", "resnet18", "--layer", "conv1",
                        "--weights", str(tmp_path / "run" / "last.pt"), "-o", "k.png")
    assert code == 2 and "were trained for model 'seed_cnn', not 'resnet18'" in err
    assert not (tmp_path / "k.png").exists()
