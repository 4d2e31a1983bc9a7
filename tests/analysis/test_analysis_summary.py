"""The Summary object: rows, totals, MAC conventions, rendering (golden files), errors, and that the
analysis neither changes nor runs the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import convolab
from convolab import arithmetic as A
from convolab.analysis import Summary, receptive_field, summary
from convolab.models import create_model

GOLDEN = Path(__file__).parent / "golden"


class Small(nn.Module):
    """Every kind of op once: conv, BN, pooling, transposed conv, upsampling, add, cat, linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.branch = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.AvgPool2d(2)
        self.up = convolab.nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.head = nn.Linear(12, 10)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.branch(x)
        y = torch.cat([self.up(self.pool(x)), F.interpolate(x[:, :8], scale_factor=1.0)], 1)
        return self.head(y.mean((2, 3))[:, :12])


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return summary(Small(), (2, 3, 16, 16), depth=None)


def test_rows_in_call_order_with_depths(small):
    assert [r.name for r in small.rows] == ["", "stem", "stem.0", "stem.1", "stem.2", "branch", "pool", "up", "head"]
    assert [r.depth for r in small.rows] == [0, 1, 2, 2, 2, 1, 1, 1, 1]
    assert small.row("up").output_shapes == ((2, 4, 8, 8),)
    assert small.row("").type == "Small"


def test_macs_by_kind_follow_the_conventions(small):
    conv = A.conv_macs(3, 8, 3, (8, 8), batch=2) + A.conv_macs(8, 8, 3, (8, 8), batch=2)
    conv_t = A.conv_transpose_macs(8, 4, 2, (4, 4), batch=2)
    assert small.macs_by_kind["conv"] == conv + conv_t
    assert small.macs_by_kind["matmul"] == A.linear_macs(12, 10, batch=2)
    assert small.macs_by_kind["norm"] == A.norm_macs(2 * 8 * 8 * 8)
    # average pool (2x2 windows) and the global mean (one accumulate per input element)
    assert small.macs_by_kind["pool"] == A.avg_pool_macs(2 * 8 * 4 * 4, 2) + 2 * 12 * 8 * 8
    assert small.macs == conv + conv_t + A.linear_macs(12, 10, batch=2)
    assert small.row("up").macs == conv_t and small.row("stem").macs == A.conv_macs(3, 8, 3, (8, 8), batch=2)


def test_params_and_bytes(small):
    model = Small()
    assert small.params == sum(p.numel() for p in model.parameters())
    assert small.row("stem").params == 3 * 8 * 9 + 16
    assert small.row("stem.1").trainable == 16
    assert small.input_bytes == 2 * 3 * 16 * 16 * 4
    assert small.row("up").activation_bytes == 2 * 4 * 8 * 8 * 4
    leaves = [r for r in small.rows if r.name in ("stem.0", "stem.1", "stem.2", "branch", "pool", "up", "head")]
    assert small.activation_bytes == sum(r.activation_bytes for r in leaves)


def test_frozen_parameters_are_not_trainable():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 1))
    net[0].requires_grad_(False)
    s = summary(net, (1, 1, 8, 8))
    assert (s.params, s.trainable) == (20 + 6, 6)


def test_depth_limits_rows_not_totals(small):
    s = summary(Small(), (2, 3, 16, 16), depth=1)
    assert [r.name for r in s.rows] == ["", "stem", "branch", "pool", "up", "head"]
    assert s.macs == small.macs and s.row("stem.0").macs == small.row("stem.0").macs
    assert [r.name for r in summary(Small(), (2, 3, 16, 16), depth=0).rows] == [""]


def test_dict_and_json_round_trip(small):
    d = json.loads(small.to_json())
    assert d == small.to_dict()
    up = next(r for r in d["rows"] if r["name"] == "up")
    assert up["receptive_field"][0] == {"size": 11, "jump": 2, "start": 0, "padding": 5}
    assert d["totals"]["macs"] == small.macs and d["totals"]["params"] == small.params
    assert d["input_shapes"] == [[2, 3, 16, 16]]


def test_meta_and_real_devices_agree(small):
    torch.manual_seed(0)
    real = summary(Small(), (2, 3, 16, 16), depth=None, device="cpu")
    assert real.to_dict() == small.to_dict()


def test_model_is_neither_changed_nor_moved():
    model = create_model("mnist_cnn")
    model.train()
    model.fc.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    summary(model, (4, 1, 28, 28))
    assert model.training and not model.fc.training and model.layer1.training
    after = model.state_dict()
    assert all(after[k].device.type == "cpu" and torch.equal(after[k], v) for k, v in before.items())
    assert not model._forward_hooks and not model.layer1[0]._forward_pre_hooks


def test_large_input_allocates_nothing():
    # 1 x 64 x 8192 x 8192 float32 activations would be 16 GiB per layer: meta tensors cost nothing
    net = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1))
    s = summary(net, (1, 3, 8192, 8192))
    assert s.row("2").activation_bytes == 64 * 8192 * 8192 * 4
    assert s.row("2").fields[0].size == 5


def test_multiple_inputs_and_tensor_specs():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(1, 2, 5, padding=2).double()

        def forward(self, x, y):
            return self.a(x), self.b(y)

    s = summary(Two(), [(1, 1, 8, 8), torch.empty(1, 1, 6, 6, dtype=torch.float64)], depth=None)
    assert s.row("a").fields[0].size == 3 and s.row("b").fields[0].size == 5
    assert s.row("").output_shapes == ((1, 2, 8, 8), (1, 2, 6, 6))
    assert s.input_bytes == 64 * 4 + 36 * 8


def test_shared_module_gets_a_row_per_call():
    relu = nn.ReLU()
    net = nn.Sequential(nn.Conv2d(1, 1, 3), relu, nn.Conv2d(1, 1, 3), relu)
    s = summary(net, (1, 1, 10, 10))
    assert [r.name for r in s.rows] == ["", "0", "1", "2", "1"]
    assert [r.fields[0].size for r in s.rows if r.name == "1"] == [3, 5]


# --------------------------------------------------------------------------- rendering


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    assert path.read_text() == text, f"{name} changed; if intended, regenerate it"


def test_table_golden_fits_100_columns():
    s = summary(create_model("mnist_cnn"), (1, 1, 28, 28))
    text = str(s)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "1,425,214" in text and "2,925,702" in text
    _check_golden("mnist_cnn.txt", text)


def test_markdown_golden(small):
    s = summary(Small(), (2, 3, 16, 16), depth=1)
    md = s.to_markdown()
    assert md.splitlines()[1] == "|:---|:---|:---|---:|---:|---:|---:|---:|---:|"
    _check_golden("small.md", md)


def test_wide_network_table_stays_within_width():
    from tests.analysis import analysis_classic_nets as classic_nets

    with torch.device("meta"):
        model = classic_nets.resnet50()
    text = summary(model, (1, 3, 224, 224), depth=3).to_text()
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "4,089,184,256" in text and "427" in text


# --------------------------------------------------------------------------- errors


def test_errors_are_clear():
    net = nn.Sequential(nn.Conv2d(3, 4, 3))
    with pytest.raises(TypeError, match="summary: model must be a torch.nn.Module, got function"):
        summary(lambda x: x, (1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"summary: input_size must be a shape of ints >= 0 .* got \(1, -3, 8\)"):
        summary(net, [(1, -3, 8)])
    with pytest.raises(ValueError, match=r"summary: input_size must be a shape like"):
        summary(net, "3x8x8")
    with pytest.raises(ValueError, match=r"summary: depth must be an int >= 0 or None, got -1"):
        summary(net, (1, 3, 8, 8), depth=-1)
    with pytest.raises(ValueError, match=r"summary: the forward pass of Sequential failed in '0' for input "
                                         r"\[\[1, 2, 8, 8\]\]: .*channel"):
        summary(net, (1, 2, 8, 8))
    with pytest.raises(ValueError, match=r"summary: no layer named 'layr1'; did you mean 'layer1'"):
        summary(create_model("mnist_cnn"), (1, 1, 28, 28)).row("layr1")
    with pytest.raises(ValueError, match=r"receptive_field: no layer named 'layer5'; did you mean 'layer4'"):
        receptive_field(create_model("mnist_cnn"), (1, 1, 28, 28), "layer5")
    with pytest.raises(ValueError, match=r"receptive_field: layer Conv2d is not a submodule"):
        receptive_field(net, (1, 3, 8, 8), nn.Conv2d(1, 1, 1))


def test_receptive_field_by_module_and_default_output():
    net = create_model("mnist_cnn")
    assert receptive_field(net, (1, 1, 28, 28), net.layer3)[0].size == 8
    assert receptive_field(net, (1, 1, 28, 28))[0].size == 26
    assert isinstance(summary(net, (1, 1, 28, 28)), Summary)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fast_batch_norm_matches_the_meta_kernel(dtype, training, channels_last):
    from convolab.analysis._rules.merges import fast_batch_norm

    x = torch.empty(2, 8, 5, 5, device="meta", dtype=dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    w = torch.empty(8, device="meta", dtype=dtype)
    args = (x, w, w, w, w, training, 0.1, 1e-5)
    fast = fast_batch_norm(args, {})
    real = torch.ops.aten.native_batch_norm.default(*args)
    assert [(t.shape, t.dtype, t.stride()) for t in fast] == [(t.shape, t.dtype, t.stride()) for t in real]
    assert fast_batch_norm((x.half(), w.half(), None, None, None, False, 0.1, 1e-5), {}) is None


def test_data_dependent_model_needs_a_real_device():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3)

        def forward(self, x):
            y = self.conv(x)
            return y if bool(y.sum() >= 0) else -y

    with pytest.raises(ValueError, match=r"failed in '<model>'.*meta.*try device='cpu'"):
        summary(Branchy(), (1, 1, 8, 8))
    s = summary(Branchy(), (1, 1, 8, 8), device="cpu")
    assert s.rows[0].fields[0].size == 3
