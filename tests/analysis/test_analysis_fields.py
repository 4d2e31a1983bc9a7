"""Receptive fields through every kind of op: hand-computed toy networks, the seeds' examples,
branches (aligned and not), transposed/upsampling paths, unknown ops; and an independent check of
the field against the true dependence of each output unit (the Jacobian, on real compute)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import convolab
from convolab.models import create_model
from convolab.analysis import receptive_field, register_window_layer, summary
from convolab.arithmetic import ReceptiveField, receptive_fields


def fields(model: nn.Module, shape, layer=None):
    return receptive_field(model, shape, layer)


def triple(rf: ReceptiveField):
    return (rf.size, rf.jump, rf.start)


# --------------------------------------------------------------------------- seeds' examples


def test_stacked_3x3_fields_3_5_7():
    net = nn.Sequential(*[nn.Conv2d(1, 1, 3) for _ in range(3)])
    s = summary(net, (1, 1, 16, 16))
    assert [triple(r.fields[0]) for r in s.rows[1:]] == [(3, 1, 1), (5, 1, 2), (7, 1, 3)]
    assert all(r.fields[0] == r.fields[1] for r in s.rows[1:])


def test_seed_formula_on_a_chain():
    # R_i = (k_i - 1) * prod(strides before i) + R_{i-1}, as in the seeds
    layers = [(3, 1, 1), (2, 2, 0), (3, 1, 1), (3, 2, 1), (5, 1, 2), (2, 2, 0)]
    net = nn.Sequential(*[
        nn.Conv2d(2, 2, k, s, p) if k != 2 else nn.MaxPool2d(k, s) for k, s, p in layers
    ])
    r, jump, expected = 1, 1, []
    for k, s, _ in layers:
        r += (k - 1) * jump
        jump *= s
        expected.append((r, jump))
    got = [(r.fields[0].size, r.fields[0].jump) for r in summary(net, (1, 2, 64, 64)).rows[1:]]
    assert got == expected
    assert [triple(f) for f in receptive_fields(layers)] == [triple(r.fields[0]) for r in summary(
        net, (1, 2, 64, 64)).rows[1:]]


def test_dilated_stack():
    net = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=d, dilation=d) for d in (1, 2, 4)])
    s = summary(net, (1, 1, 40, 40))
    assert [r.fields[0].size for r in s.rows[1:]] == [3, 7, 15]
    assert all(r.fields[0].effective_padding == (r.fields[0].size - 1) / 2 for r in s.rows[1:])


def test_mnist_cnn_fields_and_fc_union():
    s = summary(create_model("mnist_cnn"), (1, 1, 28, 28), depth=1)
    by = {r.name: r.fields[0] for r in s.rows}
    assert triple(by["layer1"]) == (3, 1, 1)
    assert triple(by["layer2"]) == (4, 2, 1.5)
    assert triple(by["layer3"]) == (8, 2, 3.5)
    assert triple(by["layer4"]) == (10, 4, 4.5)
    # the FC units see the union over the 5x5 map: 10 + 4*4 = 26 pixels, centred at 4.5 + 2*4
    assert triple(by["fc"]) == (26, 20, 12.5)


def test_per_dim_fields_and_asymmetric_same_padding():
    # convolab's 'same' at stride 2 pads (0, 1) on an even input: an explicit pad op before the conv
    net = nn.Sequential(convolab.nn.Conv2d(1, 1, (3, 5), stride=2, padding="same"))
    (h, w) = fields(net, (1, 1, 8, 8))
    assert triple(h) == (3, 2, 1) and h.effective_padding == 0      # pads (0, 1)
    assert triple(w) == (5, 2, 1) and w.effective_padding == 1      # pads (1, 2)
    net = nn.Sequential(convolab.nn.Conv2d(1, 1, 3, padding=((2, 0), (0, 2))))
    (h, w) = fields(net, (1, 1, 8, 8))
    assert (h.start, w.start) == (-1, 1) and (h.effective_padding, w.effective_padding) == (2, 0)


def test_conv1d_and_conv3d():
    assert triple(fields(nn.Sequential(nn.Conv1d(1, 1, 5, 2), nn.Conv1d(1, 1, 3)), (1, 1, 32))[0]) == (9, 2, 4)
    f = fields(nn.Sequential(nn.Conv3d(1, 1, (1, 3, 5), padding=(0, 1, 2)), nn.MaxPool3d(2)), (1, 1, 4, 8, 8))
    assert [triple(x) for x in f] == [(2, 2, 0.5), (4, 2, 0.5), (6, 2, 0.5)]


# --------------------------------------------------------------------------- branches


class Inception(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2)
        self.b1 = nn.Conv2d(8, 4, 1)
        self.b3 = nn.Sequential(nn.Conv2d(8, 4, 1), nn.Conv2d(4, 4, 3, padding=1))
        self.b5 = nn.Sequential(nn.Conv2d(8, 4, 1), nn.Conv2d(4, 4, 5, padding=2))
        self.pool = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(8, 4, 1))

    def forward(self, x):
        x = self.stem(x)
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.pool(x)], 1)


def test_inception_concat_is_the_union_of_aligned_branches():
    s = summary(Inception(), (1, 3, 33, 33), depth=None)
    by = {r.name: r.fields[0] for r in s.rows}
    assert triple(by["stem"]) == (3, 2, 1)
    assert triple(by["b1"]) == (3, 2, 1) and triple(by["b5"]) == (11, 2, 1)
    assert triple(by[""]) == (11, 2, 1)  # 3 + (5 - 1)*2, all centres at 1
    assert s.warnings == ()


class Residual(nn.Module):
    def __init__(self, main: nn.Module, shortcut: nn.Module):
        super().__init__()
        self.main, self.shortcut = main, shortcut

    def forward(self, x):
        return self.main(x) + self.shortcut(x)


def test_residual_add_aligned():
    block = Residual(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 2, 3, 2, padding=1)),
                     nn.Conv2d(2, 2, 1, 2))
    s = summary(block, (1, 2, 16, 16))
    assert triple(s.rows[0].fields[0]) == (5, 2, 0) and s.warnings == ()


def test_tf_same_padding_misaligns_a_resnet_shortcut():
    # main path 3x3 stride 2 'same' (pads (0, 1): centre at 1); shortcut 1x1 stride 2 (centre at 0)
    block = Residual(convolab.nn.Conv2d(2, 2, 3, 2, padding="same"), nn.Conv2d(2, 2, 1, 2))
    s = summary(block, (1, 2, 16, 16))
    (h, _) = s.rows[0].fields
    assert triple(h) == (3, 2, 1)  # the union of [0, 2] and [0, 0]
    assert h.bounds == (0, 2)
    assert any("misaligned" in w and "centres at 0, 1" in w for w in s.warnings)
    assert "misaligned" in " ".join(s.rows[0].notes)


def test_branches_with_different_jumps_have_no_field():
    class Bad(nn.Module):
        def forward(self, x):
            return F.max_pool2d(x, 2) + x[:, :, :4, :4]

    s = summary(Bad(), (1, 1, 8, 8))
    assert s.rows[0].fields is None and "different jumps (2 and 1)" in s.rows[0].problem
    assert any("different jumps" in w for w in s.warnings)
    with pytest.raises(ValueError, match=r"receptive_field: the field of '<model>' is unknown: .*jumps"):
        receptive_field(Bad(), (1, 1, 8, 8))


class SE(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(4, 2, 1), nn.ReLU(), nn.Conv2d(2, 4, 1), nn.Sigmoid())

    def forward(self, x):
        y = self.conv(x)
        return y * self.fc(y)


def test_squeeze_excitation_gate_keeps_the_local_field():
    s = summary(SE(), (1, 4, 10, 10), depth=None)
    by = {r.name: r for r in s.rows}
    assert triple(by["fc.0"].fields[0]) == (12, 10, 4.5)  # global pool: union over 10 units
    assert triple(by[""].fields[0]) == (3, 1, 0)
    assert any("gate" in n for n in by[""].notes)


def test_channels_last_mlp_keeps_fields():
    class ConvNeXtBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.dw = nn.Conv2d(8, 8, 7, padding=3, groups=8)
            self.norm = nn.LayerNorm(8)
            self.pw1, self.pw2 = nn.Linear(8, 32), nn.Linear(32, 8)

        def forward(self, x):
            y = self.dw(x).permute(0, 2, 3, 1)
            y = self.pw2(F.gelu(self.pw1(self.norm(y))))
            return x + y.permute(0, 3, 1, 2)

    s = summary(ConvNeXtBlock(), (2, 8, 12, 12), depth=None)
    by = {r.name: r for r in s.rows}
    assert triple(by["pw1"].fields[0]) == (7, 1, 0) and by["pw1"].output_shapes[0] == (2, 12, 12, 32)
    assert triple(by[""].fields[1]) == (7, 1, 0)
    assert by["pw1"].macs == 2 * 12 * 12 * 8 * 32


def test_crop_and_subsample_slices():
    class Crop(nn.Module):
        def forward(self, x):
            return F.conv2d(x, torch.ones(1, 1, 3, 3, device=x.device))[:, :, 2:, 1::2]

    (h, w) = fields(Crop(), (1, 1, 12, 12))
    assert triple(h) == (3, 1, 3) and triple(w) == (3, 2, 2)


# --------------------------------------------------------------------------- up-sampling paths


class UNetLevel(nn.Module):
    def __init__(self, up: nn.Module):
        super().__init__()
        self.enc = nn.Conv2d(1, 4, 3, padding=1)
        self.down = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1))
        self.up = up
        self.dec = nn.Conv2d(8, 1, 3, padding=1)

    def forward(self, x):
        e = self.enc(x)
        return self.dec(torch.cat([e, self.up(self.down(e))], 1))


@pytest.mark.parametrize("up, size", [
    (nn.ConvTranspose2d(4, 4, 2, stride=2), 9),
    (nn.Upsample(scale_factor=2, mode="nearest"), 9),
    (nn.Upsample(scale_factor=2, mode="bilinear"), 11),
    (nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1), 11),
])
def test_unet_skip_is_aligned_with_the_upsampled_path(up, size):
    s = summary(UNetLevel(up), (1, 1, 16, 16), depth=None)
    by = {r.name: r.fields[0] for r in s.rows}
    assert triple(by["down"]) == (8, 2, 0.5)
    assert triple(by["up"]) == (size, 1, 0)
    assert triple(by["dec"]) == (size + 2, 1, 0) and s.warnings == ()


def test_convolab_transposed_conv_field():
    net = nn.Sequential(nn.Conv2d(1, 1, 3, 2, 1), convolab.nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1))
    (h, _) = fields(net, (1, 1, 8, 8))
    assert triple(h) == (5, 1, 0)  # 3 + (1 unit of 2 px) as exact taps: 3 + 2


# --------------------------------------------------------------------------- independent check


def _support(net: nn.Module, length: int) -> list:
    """Input pixels each output unit really depends on (the Jacobian of a 1-D net, real compute)."""
    torch.manual_seed(0)
    for p in net.parameters():
        with torch.no_grad():
            p.copy_(torch.rand_like(p) + 0.1)  # positive weights: no cancellation
    jac = torch.autograd.functional.jacobian(
        lambda x: net(x).sum(1)[0], torch.rand(1, 1, length, dtype=torch.float64))
    jac = jac.reshape(jac.shape[0], length)
    out = []
    for row in jac:
        idx = torch.nonzero(row).flatten()
        out.append((int(idx.min()), int(idx.max())) if len(idx) else None)
    return out


ONE_D_NETS = {
    "conv_pool_dilated": lambda: nn.Sequential(nn.Conv1d(1, 2, 3, padding=1), nn.AvgPool1d(2),
                                               nn.Conv1d(2, 2, 3, dilation=2, padding=2), nn.Conv1d(2, 2, 5, 3)),
    "transposed_k4_s2": lambda: nn.Sequential(nn.Conv1d(1, 2, 3, 2, 1), nn.ConvTranspose1d(2, 2, 4, 2, 1)),
    "transposed_k3_s3_d2": lambda: nn.Sequential(nn.Conv1d(1, 2, 3), nn.ConvTranspose1d(2, 2, 3, 3, dilation=2)),
    "nearest_x3": lambda: nn.Sequential(nn.Conv1d(1, 2, 3, 2), nn.Upsample(scale_factor=3)),
    "linear_x2": lambda: nn.Sequential(nn.Conv1d(1, 2, 3, 2), nn.Upsample(scale_factor=2, mode="linear")),
    "linear_align_corners": lambda: nn.Sequential(nn.Conv1d(1, 2, 3), nn.Upsample(size=40, mode="linear", align_corners=True)),
    "adaptive_avg_13": lambda: nn.Sequential(nn.Conv1d(1, 2, 3), nn.AdaptiveAvgPool1d(13)),
}


@pytest.mark.parametrize("name", sorted(ONE_D_NETS))
def test_field_holds_exactly_what_each_unit_depends_on(name):
    net = ONE_D_NETS[name]().double()
    length = 64
    (rf,) = receptive_field(net, torch.empty(1, 1, length, dtype=torch.float64))
    support = _support(net, length)
    half = (rf.size - 1) / 2
    widths, offsets = [], []
    for o, seen in enumerate(support):
        c = rf.start + o * rf.jump
        if seen is None or c - half < 0 or c + half > length - 1:
            continue  # a unit that reads only zeros, or a field clipped by the borders
        lo, hi = seen
        assert c - half - 1e-9 <= lo and hi <= c + half + 1e-9, (o, lo, hi, c, half)
        widths.append(max(hi - c, c - lo))
        offsets.append((lo + hi) / 2 - c)
    assert len(widths) >= 3
    assert max(widths) == pytest.approx(half)  # the smallest field that holds every unit's inputs
    assert abs(sum(offsets) / len(offsets)) < 0.5 * rf.jump + 1e-9  # centres right on average


# --------------------------------------------------------------------------- unknown ops


class Rolled(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.after = nn.Conv2d(2, 2, 3)

    def forward(self, x):
        return self.after(torch.roll(self.conv(x), 1, dims=-1))


def test_unknown_op_is_reported_never_guessed():
    s = summary(Rolled(), (1, 1, 10, 10), depth=None)
    assert ("aten.roll", "", "no receptive-field rule") in s.not_analysed
    by = {r.name: r for r in s.rows}
    assert by["conv"].fields is not None
    assert by["after"].fields is None and "aten.roll" in by["after"].problem
    assert "?" in s.to_text() and "Not analysed: aten.roll" in s.to_text()
    with pytest.raises(ValueError, match=r"field of 'after' is unknown: after aten.roll \(not analysed\)"):
        receptive_field(Rolled(), (1, 1, 10, 10), "after")
    assert s.macs == 2 * 8 * 8 * 9 + 2 * 6 * 6 * 2 * 9  # MACs are still counted


def test_deformable_like_layer_reports_its_nominal_field():
    class FakeDeform(nn.Module):
        """A layer whose inner ops (roll) say nothing about its field."""

        def __init__(self):
            super().__init__()
            self.kernel_size, self.stride, self.padding, self.dilation = (3, 3), (2, 2), "same", (1, 1)
            self.conv = nn.Conv2d(1, 1, 3, 2, 1)

        def forward(self, x):
            return torch.roll(self.conv(x), 1, -1)

    register_window_layer(FakeDeform)
    s = summary(nn.Sequential(FakeDeform(), nn.Conv2d(1, 1, 3)), (1, 1, 9, 9), depth=None)
    assert triple(s.row("0").fields[0]) == (3, 2, 0)  # 'same' at stride 2 on 9: pads (1, 1)
    assert triple(s.row("1").fields[0]) == (7, 2, 2)
    assert s.not_analysed == () and s.row("0").macs == 25 * 9
    with pytest.raises(TypeError, match="register_window_layer: expected an nn.Module subclass"):
        register_window_layer(int)


def test_padding_modes_reflect_and_replicate():
    # mirrored or repeated border pixels lie inside the window's span: the window's field holds
    # them (circular padding reads the far side: tests/analysis/test_analysis_unknown.py)
    net = nn.Sequential(
        convolab.nn.Conv2d(1, 2, 3, padding=1, padding_mode="replicate"),
        nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"),
        nn.Conv2d(2, 2, 3, padding=(2, 1), padding_mode="replicate"),
    )
    s = summary(net, (1, 1, 8, 8))
    assert [triple(r.fields[0]) for r in s.rows[1:]] == [(3, 1, 0), (5, 1, 0), (7, 1, -1)]
    assert s.not_analysed == ()


def test_write_through_a_view_is_reported():
    class Embed(nn.Module):
        def forward(self, x):
            y = x.new_zeros(1, 1, 10, 10)
            y[:, :, 1:-1, 1:-1] = x
            return F.conv2d(y, torch.ones(1, 1, 3, 3, device=x.device))

    s = summary(Embed(), (1, 1, 8, 8))
    assert s.rows[0].fields is None and "written through a view" in s.rows[0].problem
    assert s.not_analysed[0][0] == "aten.copy_ into a view"


def test_pixel_shuffle_and_unshuffle():
    # space-to-depth by 2 = a 2x2 window of stride 2; depth-to-space undoes the jump like nearest x2
    net = nn.Sequential(nn.PixelUnshuffle(2), nn.Conv2d(4, 4, 3, padding=1), nn.PixelShuffle(2))
    s = summary(net, (1, 1, 16, 16))
    assert [triple(r.fields[0]) for r in s.rows[1:]] == [(2, 2, 0.5), (6, 2, 0.5), (7, 1, 0)]
    assert s.not_analysed == ()


class Hourglass(nn.Module):
    def __init__(self, **up):
        super().__init__()
        self.skip = nn.Conv2d(2, 2, 3, padding=1)
        self.low = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(2, 2, 3, padding=1))
        self.up = nn.Upsample(scale_factor=2, **up)

    def forward(self, x):
        return self.skip(x) + self.up(self.low(x))


def test_hourglass_add_of_upsampled_path():
    s = summary(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), Hourglass()), (1, 1, 16, 16), depth=None)
    assert triple(s.row("1.skip").fields[0]) == (5, 1, 0)
    assert triple(s.row("1.up").fields[0]) == (9, 1, 0)
    assert triple(s.row("1").fields[0]) == (9, 1, 0) and s.warnings == ()


def test_hourglass_with_align_corners_grid_does_not_align():
    # align_corners=True samples a grid of jump 2*(8-1)/(16-1) != 1: no single field at the add
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), Hourglass(mode="bilinear", align_corners=True))
    s = summary(net, (1, 1, 16, 16), depth=None)
    assert s.row("1.up").fields[0].jump == pytest.approx(14 / 15)
    assert s.row("1").fields is None and "different jumps" in s.row("1").problem


@pytest.mark.parametrize("algorithm", ["native", "im2col", "direct"])
def test_convolab_conv_fields_and_macs_do_not_depend_on_the_algorithm(algorithm):
    from convolab import arithmetic as A

    net = nn.Sequential(
        convolab.nn.Conv2d(2, 3, 3, stride=2, padding=1, dilation=2, algorithm=algorithm),
        convolab.nn.Conv2d(3, 3, (3, 5), padding="same", algorithm=algorithm),
        convolab.nn.ConvTranspose2d(3, 3, 4, 2, ((1, 2), (1, 1)), algorithm=algorithm),
    )
    s = summary(net, (1, 2, 16, 16), depth=None)
    assert [tuple(triple(f) for f in r.fields) for r in s.rows[1:]] == [
        ((5, 2, 1), (5, 2, 1)), ((9, 2, 1), (13, 2, 1)), ((12, 1, 0.5), (16, 1, 0.5))]
    assert s.macs == (A.conv_macs(2, 3, 3, (7, 7)) + A.conv_macs(3, 3, (3, 5), (7, 7))
                      + A.conv_transpose_macs(3, 3, 4, (7, 7)))
    assert s.not_analysed == () and s.warnings == ()


def test_a_failing_rule_is_reported_not_raised(monkeypatch):
    from convolab.analysis._rules import ATEN
    from convolab.analysis._tracer import OpRule

    def broken(tracer, func, named, out):
        raise KeyError("dims")

    monkeypatch.setitem(ATEN.ops, torch.ops.aten.max_pool2d_with_indices, OpRule(broken))
    s = summary(nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3)), (1, 1, 12, 12))
    assert s.row("1").fields is None and s.row("2").fields is None
    assert s.not_analysed == (("aten.max_pool2d_with_indices", "1", "rule failed: 'dims'"),)
    assert s.row("0").fields[0].size == 3
