"""`explain` text: golden files, and every line re-checked by arithmetic and against torch."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convolab.viz.explain import explain_conv, explain_params, explain_receptive_field, parse_layer, parse_layers

GOLDEN = pathlib.Path(__file__).parent / "golden"


def _blocks(text: str, prefix: str) -> dict[str, np.ndarray]:
    """Matrices printed under header lines starting with ``prefix``."""
    out, lines = {}, text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(prefix):
            rows = []
            for row in lines[i + 1:]:
                if not re.fullmatch(r"\s+-?\d+( +-?\d+)*", row):
                    break
                rows.append([float(v) for v in row.split()])
            out[line] = np.array(rows)
    return out


def test_cs231n_golden():
    text = explain_conv("5x5x3", 2, 3, stride=2, padding=1, seed=0)
    assert text + "\n" == (GOLDEN / "explain_conv_cs231n.txt").read_text()


@pytest.mark.parametrize("args", [
    dict(input_size="5x5x3", filters=2, kernel_size=3, stride=2, padding=1),
    dict(input_size="6x5x2", filters=1, kernel_size=2, stride=1, padding="same", seed=4),
    dict(input_size="7x7x1", filters=2, kernel_size=3, stride=1, padding=0, dilation=2, seed=1),
])
def test_every_line_checks_by_hand(args):
    text = explain_conv(**args)
    xs = _blocks(text, "x[:, :, ")
    ws = _blocks(text, "w")
    os_ = _blocks(text, "o[:, :, ")
    biases = [float(b) for b in re.findall(r"bias b\d+ = (-?\d+)", text)]
    c, f = len(xs), len(biases)
    x = torch.tensor(np.stack(list(xs.values())))
    w = torch.tensor(np.stack([np.stack([v for k, v in ws.items() if k.startswith(f"w{o}[")]) for o in range(f)]))
    assert w.shape[:2] == (f, c)
    # x is printed padded: convolve it without padding
    ref = F.conv2d(x[None], w, torch.tensor(biases, dtype=torch.float64), stride=args.get("stride", 1),
                   dilation=args.get("dilation", 1))[0]
    printed = torch.tensor(np.stack(list(os_.values())))
    torch.testing.assert_close(printed, ref)
    # each channel line's products add up to its stated sum, and the sums plus bias to the output value
    n_sums = 0
    for line in text.splitlines():
        m = re.fullmatch(r"  channel \d+: (.*) = (-?\d+)", line)
        if m:
            assert eval(m.group(1)) == int(m.group(2))  # digits, *, +, parentheses only
        m = re.fullmatch(r"  sum: (.*) \+ b\d+ \((-?\d+)\) = (-?\d+)", line)
        if m:
            n_sums += 1
            assert eval(m.group(1)) + int(m.group(2)) == int(m.group(3))
    assert n_sums == ref.numel()


def test_receptive_field_golden_and_seed_formula():
    layers = ["conv:k=3", "conv:k=3", "pool:k=2", "conv:k=3,d=2", "conv:k=3,s=2,p=same"]
    text = explain_receptive_field(layers, 32)
    assert text + "\n" == (GOLDEN / "explain_receptive_field.txt").read_text()
    # the seeds' formula R_i = (k_i - 1) * prod(strides before) + R_{i-1}, by hand: 3, 5, 6, 6 + 4*2, 14 + 2*2
    sizes = [int(re.search(r"  (\d+) = ", line).group(1)) for line in text.splitlines()[3:]]
    assert sizes == [3, 5, 6, 14, 18]
    three = explain_receptive_field(["conv:k=3"] * 3)
    assert [line.split()[8] for line in three.splitlines()[3:]] == ["3", "5", "7"]


def test_params_golden_and_torch_counts():
    layers = ["conv:c=32,k=3", "pool:k=2", "conv:c=64,k=3,p=1,g=2", "fc:n=10"]
    text = explain_params(layers, "28x28x1")
    assert text + "\n" == (GOLDEN / "explain_params.txt").read_text()
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3), torch.nn.MaxPool2d(2), torch.nn.Conv2d(32, 64, 3, padding=1, groups=2),
        torch.nn.Flatten(), torch.nn.Linear(13 * 13 * 64, 10),
    )
    total = sum(p.numel() for p in model.parameters())
    assert f"total parameters: {total:,}" in text
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_layer_parsing_and_errors():
    assert parse_layers(["conv:k=3;pool:k=2 fc:n=4"])[1].stride == 2
    assert parse_layer("maxpool:k=3,s=2").kind == "pool"
    with pytest.raises(ValueError, match=r"explain: layer 'conv:k=3,x=1': key 'x' does not apply to conv"):
        parse_layer("conv:k=3,x=1")
    with pytest.raises(ValueError, match=r"explain: layer 'cnv:k=3': kind must be one of .*did you mean 'conv'"):
        parse_layer("cnv:k=3")
    with pytest.raises(ValueError, match=r"explain: layer 'conv:s=2': conv needs k=<kernel size>"):
        parse_layer("conv:s=2")
    with pytest.raises(ValueError, match=r"explain: layer 'conv:k=a': k must be an int, got 'a'"):
        parse_layer("conv:k=a")
    with pytest.raises(ValueError, match=r"explain: layer 'conv:k=0': k must be >= 1, got 0"):
        parse_layer("conv:k=0")
    with pytest.raises(ValueError, match=r"explain: layer 'conv:k3': expected key=value, got 'k3'"):
        parse_layer("conv:k3")
    with pytest.raises(ValueError, match=r"explain: the layer list is empty"):
        parse_layers([" "])
    with pytest.raises(ValueError, match=r"padding 'same' needs the input size"):
        explain_receptive_field(["conv:k=3,p=same"])
    with pytest.raises(ValueError, match=r"layer 2 'fc:n=3' is fully connected"):
        explain_receptive_field(["conv:k=3", "fc:n=3"])
    with pytest.raises(ValueError, match=r"explain params: layer 1 'conv:k=3' needs c=<out channels>"):
        explain_params(["conv:k=3"], "5x5x1")
    with pytest.raises(ValueError, match=r"groups \(2\) must divide in channels \(3\)"):
        explain_params(["conv:k=3,c=4,g=2"], "5x5x3")
    with pytest.raises(ValueError, match=r"explain params: input must look like HxWxC \(e.g. 5x5x3\), got '5xx'"):
        explain_params(["fc:n=3"], "5xx")
    with pytest.raises(ValueError, match=r"explain conv: output size would be 0"):
        explain_conv("2x2x1", 1, 3)
    with pytest.raises(ValueError, match=r"explain conv: filters must be an int >= 1, got 0"):
        explain_conv("5x5x1", 0)
