"""The analysis never prints a wrong number: ops whose units do not see a window are unknown (``?``,
the op named), and the conventions behind a number are stated in the legend where they apply."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import convolab
from convolab.analysis import receptive_field, summary


class RowLSTM(nn.Module):
    """An LSTM reading the rows of an image as a sequence: output step t depends on rows 0..t."""

    def __init__(self, cls: type = nn.LSTM, bidirectional: bool = False) -> None:
        super().__init__()
        self.rnn = cls(32, 8, batch_first=True, bidirectional=bidirectional)

    def forward(self, x):
        return self.rnn(x[:, 0])[0]  # [N, H, W]: H steps of W features


class ColumnGRU(nn.Module):
    """A conv, then a GRU over its columns (sequence along W)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.rnn = nn.GRU(2 * 16, 8, batch_first=True)

    def forward(self, x):
        y = self.conv(x).permute(0, 3, 1, 2).flatten(2)  # [N, W, C*H]
        return self.rnn(y)[0]


def test_lstm_over_rows_has_no_field():
    # before: RF 32 with jump 1 along the rows, as if every step saw a 32-row window
    s = summary(RowLSTM(), (1, 1, 32, 32), depth=None)
    for row in s.rows:
        assert row.fields is None and "aten.stack" in row.problem and "recurrent" in row.problem
    assert any("aten.stack" in n for n in s.row("rnn").notes)  # the op is named on the layer
    assert "?" in s.to_text().splitlines()[2] and "Warning: rnn: aten.stack joins maps" in s.to_text(width=200)
    with pytest.raises(ValueError, match=r"field of 'rnn' is unknown: aten.stack joins maps that saw different parts"):
        receptive_field(RowLSTM(), (1, 1, 32, 32), "rnn")


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU, nn.RNN])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_every_recurrent_layer_is_unknown(cls, bidirectional):
    assert summary(RowLSTM(cls, bidirectional), (2, 1, 32, 32)).rows[0].fields is None


def test_recurrence_after_a_conv_keeps_the_conv_field():
    s = summary(ColumnGRU(), (1, 1, 16, 16))
    assert s.row("conv").fields[0].size == 3
    assert s.row("rnn").fields is None and s.rows[0].fields is None


def test_a_python_loop_over_positions_is_unknown():
    class Loop(nn.Module):
        def forward(self, x):  # each column's running sum over the columns before it
            return torch.stack([x[..., : i + 1].sum(-1) for i in range(x.shape[-1])], -1)

    assert summary(Loop(), (1, 1, 6, 6)).rows[0].fields is None


def test_stacking_maps_that_see_the_same_region_still_has_a_field():
    class TwoPools(nn.Module):
        def forward(self, x):
            return torch.stack([x.mean((2, 3)), x.amax((2, 3))], -1)

    (h, w) = receptive_field(TwoPools(), (1, 3, 8, 8))
    assert (h.size, w.size) == (8, 8)


@pytest.mark.parametrize("make", [
    lambda: nn.Conv2d(1, 1, 5, padding=2, padding_mode="circular"),
    lambda: convolab.nn.Conv2d(1, 1, 5, padding=2, padding_mode="circular"),
    lambda: convolab.nn.Conv2d(1, 1, 5, stride=2, padding="same", padding_mode="circular"),
], ids=["torch", "convolab", "convolab-same-s2"])
def test_circular_padding_has_no_field(make):
    # before: unit 0's field [-2, 2], while it reads columns 30, 31, 0, 1, 2
    conv = make()
    s = summary(conv, (1, 1, 32, 32))
    assert s.rows[0].fields is None and "circular padding" in s.rows[0].problem
    assert s.not_analysed[0][0] == "circular padding" and "wraps the map around" in s.not_analysed[0][2]
    assert "Not analysed: circular padding" in s.to_text(width=200)
    # the dependence that no window describes, on real compute
    x = torch.zeros(1, 1, 32, 32, requires_grad=True)
    conv(x)[0, 0, 0, 0].backward()
    cols = torch.nonzero(x.grad[0, 0].abs().sum(0)).flatten().tolist()
    assert 31 in cols and 0 in cols


def test_circular_padding_through_f_pad_and_after_it():
    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3)
            self.after = nn.Conv2d(1, 1, 3)

        def forward(self, x):
            return self.after(self.conv(F.pad(x, (1, 1, 1, 1), mode="circular")))

    s = summary(Wrap(), (1, 1, 10, 10))
    assert s.row("conv").fields is None and s.row("after").fields is None


def test_circular_mode_without_padding_is_a_window():
    s = summary(nn.Conv2d(1, 1, 3, padding=0, padding_mode="circular"), (1, 1, 8, 8))
    assert s.rows[0].fields[0].size == 3 and s.not_analysed == ()


class SE(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        y = self.conv(x)
        return y * torch.sigmoid(self.fc(y.mean((2, 3), keepdim=True)))


def test_the_gate_convention_is_stated_where_it_applies():
    s = summary(SE(), (1, 4, 16, 16))
    assert s.rows[0].fields[0].size == 3  # the local path's field
    assert len(s.conventions) == 1 and s.conventions[0].startswith("Gates are treated as constants")
    assert "Convention: Gates are treated as constants" in s.to_text(width=300)
    assert s.to_dict()["conventions"] == list(s.conventions)
    plain = summary(nn.Conv2d(4, 4, 3), (1, 4, 16, 16))
    assert plain.conventions == () and "Convention" not in plain.to_text()


def _support_1d(net: nn.Module, length: int, unit: int) -> tuple[int, int]:
    torch.manual_seed(0)
    for p in net.parameters():
        with torch.no_grad():
            p.copy_(torch.rand_like(p) + 0.1)
    x = torch.rand(1, 1, length, requires_grad=True)
    net(x)[0, :, unit].sum().backward()
    idx = torch.nonzero(x.grad[0, 0]).flatten()
    return int(idx.min()), int(idx.max())


@pytest.mark.parametrize("transposed", [nn.ConvTranspose1d, convolab.nn.ConvTranspose1d])
def test_the_upsampling_convention_is_stated_with_the_exact_support(transposed):
    net = nn.Sequential(nn.Conv1d(1, 1, 3, 2, 1), transposed(1, 1, 4, 2, 1))
    s = summary(net, (1, 1, 32))
    (rf,) = s.rows[-1].fields
    assert rf.size == 6  # the evenly spaced field
    lo, hi = _support_1d(net, 32, 10)
    assert hi - lo + 1 == 5  # what one unit depends on
    assert any(c.startswith("After up-sampling") and "RF 6, each unit depends on 5 pixels" in c for c in s.conventions)
    assert "Convention: After up-sampling" in s.to_text(width=400)


def test_an_exact_resampling_states_no_convention():
    # stride 1 (every unit reads the same taps) and global pooling are exact
    net = nn.Sequential(nn.ConvTranspose2d(1, 1, 3), nn.AdaptiveAvgPool2d(1))
    assert summary(net, (1, 1, 8, 8)).conventions == ()
    up = summary(nn.Upsample(scale_factor=2), (1, 1, 4, 4))
    assert up.conventions and up.conventions[0].startswith("After up-sampling")
