"""convolab.ablation: the variants keep every shape and change only their component; a tiny
ablation end to end (table vs convolab.analysis, row order, files, resumability); the command."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import convolab.nn as cnn
from convolab.ablation import AblationTable, HeadSwap, ablate, axes, build_variant, parse_swaps
from convolab.ablation import runner
from convolab.ablation.variants import _grouped_shuffle, Probe
from convolab.analysis import receptive_field, summary
from convolab.cli import main
from convolab.models import list_models
from convolab.train import TrainConfig

ALL = [(axis, value) for axis, values in axes().items() for value in values]
TINY = TrainConfig(limit=64, batch_size=32)


@pytest.mark.parametrize("axis,value", ALL, ids=[f"{a}={v}" for a, v in ALL])
def test_every_variant_keeps_the_output_shape(axis, value):
    net = build_variant("seed_cnn", axis, value, num_classes=7)
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 7)


@pytest.mark.parametrize("value,cls", [
    ("depthwise_separable", cnn.DepthwiseSeparableConv2d),
    ("spatially_separable", cnn.SpatiallySeparableConv2d),
    ("flattened", cnn.FlattenedConv2d),
    *([("deformable", cnn.DeformConv2d)] if hasattr(cnn, "DeformConv2d") else []),
])
def test_conv_swaps_replace_every_conv_but_the_stem(value, cls):
    net = build_variant("seed_cnn", "conv", value)
    assert type(net.layer1[0]) is cnn.Conv2d and isinstance(net.layer3[0], cls)
    assert (net.layer3[0].in_channels, net.layer3[0].out_channels) == (25, 50)


def test_grouped_shuffle_and_dilated():
    grouped = build_variant("seed_cnn", "conv", "grouped_shuffle").layer3[0]
    assert grouped[0].groups == 5 and isinstance(grouped[1], cnn.ChannelShuffle) and grouped[1].groups == 5
    base, dilated = build_variant("seed_cnn", "conv", "standard"), build_variant("seed_cnn", "conv", "dilated")
    assert dilated.layer3[0].dilation == (2, 2)
    # the same output sizes, a larger receptive field: 3x3 dilated 2 sees 5x5 at jump 2 -> +4 pixels
    assert [r.output_shapes for r in summary(dilated, (1, 1, 28, 28)).rows] == \
        [r.output_shapes for r in summary(base, (1, 1, 28, 28)).rows]
    assert receptive_field(base, (1, 1, 28, 28), "layer4")[0].size == 10
    assert receptive_field(dilated, (1, 1, 28, 28), "layer4")[0].size == 14


def test_grouped_shuffle_needs_a_common_divisor():
    conv = cnn.Conv2d(25, 49, 3)
    with pytest.raises(ValueError, match=r"ablate: conv=grouped_shuffle: layer 'x' has 25 -> 49 channels; no group count > 1"):
        _grouped_shuffle("x", conv, Probe((1, 25, 8, 8)))


def test_norm_order_head_and_downsample_variants():
    act_bn = build_variant("seed_cnn", "norm", "conv-act-bn")
    assert [type(m).__name__ for m in act_bn.layer3] == ["Conv2d", "ReLU", "BatchNorm2d"]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in build_variant("seed_cnn", "norm", "none").modules())
    spp = build_variant("seed_cnn", "head", "spp")
    assert isinstance(spp, HeadSwap) and isinstance(spp.body.fc, nn.Identity)  # the old classifier is gone
    assert sum(p.numel() for p in spp.parameters()) == summary(spp, (1, 1, 28, 28)).params == (
        (9 * 25 + 25) + 2 * 25 + (25 * 50 * 9 + 50) + 2 * 50  # convs and BNs
        + (50 * (16 + 4 + 1) + 1) * 1024 + (1024 + 1) * 128 + (128 + 1) * 10)  # the MLP reads 50 x 21 SPP bins
    strided = build_variant("seed_cnn", "downsample", "strided_conv")
    assert isinstance(strided.layer2[0], cnn.Conv2d) and strided.layer2[0].stride == (2, 2)
    assert isinstance(build_variant("seed_cnn", "downsample", "avgpool").layer4[0], cnn.AvgPool2d)
    bottleneck = build_variant("seed_cnn", "bottleneck", "on").layer3[0]
    assert [m.kernel_size for m in bottleneck if isinstance(m, cnn.Conv2d)] == [(1, 1), (3, 3), (1, 1)]


def test_bad_swaps_are_named():
    with pytest.raises(ValueError, match=r"ablate: swap axis must be one of 'conv', .* got 'cnv'.*'conv'"):
        parse_swaps("cnv=standard")
    with pytest.raises(ValueError, match=r"ablate: conv variant must be one of .*got 'dilatd'.*'dilated'"):
        parse_swaps("conv=standard,dilatd")
    with pytest.raises(ValueError, match=r"ablate: expected a swap as AXIS=VARIANT"):
        parse_swaps("conv")
    with pytest.raises(ValueError, match=r"ablate: variant conv=dilated is listed twice"):
        parse_swaps(["conv=dilated", "conv=dilated"])
    with pytest.raises(ValueError, match=r"ablate: unknown base network 'seed_nn'.*'mnist_cnn'"):
        ablate("seed_nn", "conv=standard", out="unused")
    with pytest.raises(ValueError, match=r"ablate: seeds must be distinct and at least one, got \[\]"):
        ablate(swaps="conv=standard", out="unused", seeds=[])
    if not hasattr(cnn, "DeformConv2d"):
        with pytest.raises(ValueError, match=r"ablate: conv=deformable needs convolab.nn.DeformConv2d"):
            parse_swaps("conv=deformable")


def test_tiny_ablation_end_to_end_and_resume(tmp_path, monkeypatch):
    table = ablate("seed_cnn", "conv=flattened,standard", out=tmp_path, epochs=1, seeds=[0, 1], config=TINY)
    assert [(r.axis, r.variant, r.seeds, len(r.accuracies)) for r in table.rows] == [
        ("conv", "flattened", (0, 1), 2), ("conv", "standard", (0, 1), 2)]
    for row in table.rows:
        s = summary(build_variant("seed_cnn", row.axis, row.variant), (1, 1, 28, 28))
        assert (row.params, row.macs) == (s.params, s.macs)
        assert row.receptive_field == (10, 10) and row.latency_ms > 0 and row.epoch_seconds > 0
        assert all(0 <= a <= 1 for a in row.accuracies) and row.accuracy_std is not None
        for seed, acc in zip(row.seeds, row.accuracies):
            record = json.loads((tmp_path / "runs" / row.name / f"seed{seed}" / "run.json").read_text())
            assert record["val_accuracy"] == acc and record["config"]["seed"] == seed
    assert not any(name.startswith("seed_cnn[") for name in list_models())  # registered only while running
    for name in ("table.md", "table.json", "table.csv", "accuracy_vs_macs.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert AblationTable.load(tmp_path / "table.json") == table
    assert table.to_csv().splitlines()[1].startswith("conv,flattened,")
    assert "| conv=flattened |" in table.to_markdown()

    # a resumed re-run trains nothing: every run is read back from its record
    monkeypatch.setattr(runner, "fit", lambda *a, **k: pytest.fail("a finished run was repeated"))
    again = ablate("seed_cnn", "conv=flattened,standard", out=tmp_path, epochs=1, seeds=[0, 1], config=TINY, plot=False,
                   resume=True)
    assert [r.accuracies for r in again.rows] == [r.accuracies for r in table.rows]
    with pytest.raises(ValueError, match=r"holds a finished run with other settings \(lr\)"):
        ablate("seed_cnn", "conv=flattened", out=tmp_path, epochs=1, seeds=[0], config=TrainConfig(limit=64, batch_size=32, lr=0.1),
               resume=True)
    # without resume (or overwrite) the earlier ablation is never replaced
    with pytest.raises(ValueError, match=r"ablate: --out .* already holds an earlier ablation \(accuracy_vs_macs.png, runs, "
                                         r"table.csv, table.json, \.\.\.\); continue it with --resume or replace it with --overwrite"):
        ablate("seed_cnn", "conv=flattened", out=tmp_path, epochs=1, seeds=[0], config=TINY)


def test_command(tmp_path, capsys):
    out = tmp_path / "ab"
    code = main(["ablate", "--swap", "head=flatten,avg", "--epochs", "1", "--seeds", "1", "--limit", "64",
                 "--batch-size", "32", "--no-plot", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and "head=avg" in text and "196,414" in text
    assert (out / "table.md").is_file() and not (out / "accuracy_vs_macs.png").exists()
    assert main(["ablate", "--swap", "conv=bogus", "--out", str(out)]) == 2
    assert "convolab ablate: error: ablate: conv variant must be one of" in capsys.readouterr().err


def test_an_interrupted_run_continues_from_its_checkpoint(tmp_path, monkeypatch):
    from convolab.train import Callback

    real_fit, calls = runner.fit, []

    class Stop(Callback):
        def on_checkpoint(self, path, epoch, step):
            if epoch == 1:
                raise KeyboardInterrupt  # killed right after the first epoch's checkpoint

    def interrupted(config, out, *, resume, callbacks, data):
        calls.append(resume)
        return real_fit(config, out, resume=resume, callbacks=[*callbacks, Stop()], data=data)

    def spy(config, out, *, resume, callbacks, data):
        calls.append(resume)
        return real_fit(config, out, resume=resume, callbacks=callbacks, data=data)

    settings = dict(out=tmp_path / "a", epochs=2, seeds=[0], config=TINY, plot=False)
    monkeypatch.setattr(runner, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ablate("seed_cnn", "conv=dilated", **settings)
    assert (tmp_path / "a" / "runs" / "conv=dilated" / "seed0" / "last.pt").is_file()
    monkeypatch.setattr(runner, "fit", spy)
    resumed = ablate("seed_cnn", "conv=dilated", **settings, resume=True)
    fresh = ablate("seed_cnn", "conv=dilated", **{**settings, "out": tmp_path / "b"})
    assert calls == [False, True, False]
    assert resumed.rows[0].accuracies == fresh.rows[0].accuracies


def _register(monkeypatch, name, build):
    from convolab.models import _registry

    monkeypatch.setitem(_registry._MODELS, name, build)


def test_variants_that_do_not_apply_to_the_base_are_named(monkeypatch):
    _register(monkeypatch, "tiny_plain", lambda num_classes=10, in_channels=1: nn.Sequential(
        nn.Conv2d(in_channels, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, num_classes)))
    _register(monkeypatch, "tiny_pooled", lambda num_classes=10, in_channels=1: nn.Sequential(
        nn.Conv2d(in_channels, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()))
    _register(monkeypatch, "tiny_linear", lambda num_classes=10: nn.Sequential(nn.Flatten(), nn.Linear(784, num_classes)))
    with pytest.raises(ValueError, match=r"ablate: norm=none: the base network has no conv -> BatchNorm2d -> activation"):
        build_variant("tiny_plain", "norm", "none")
    with pytest.raises(ValueError, match=r"ablate: downsample=avgpool: the base network has no max pooling layer"):
        build_variant("tiny_plain", "downsample", "avgpool")
    with pytest.raises(ValueError, match=r"ablate: head=spp: no linear layer follows the feature map '1'"):
        build_variant("tiny_pooled", "head", "spp")
    with pytest.raises(ValueError, match=r"ablate: cannot tell the input channels of 'tiny_linear'"):
        build_variant("tiny_linear", "head", "max")
    linear = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with pytest.raises(ValueError, match=r"ablate: head: the base network has no child module that returns a feature map"):
        axes()["head"]["max"](linear, Probe.of(linear, (1, 1, 28, 28)))
    # a variant that applies: the plain conv net's only conv is its stem, so conv swaps leave it as is
    assert isinstance(build_variant("tiny_plain", "conv", "flattened")[0], nn.Conv2d)


def test_bad_settings_are_named(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"ablate: expected at least one variant to compare, got none"):
        parse_swaps([])
    with pytest.raises(ValueError, match=r"ablate: threads must be >= 1, got 0"):
        ablate(swaps="conv=standard", out=tmp_path, threads=0)
    assert main(["ablate", "--seeds", "0", "--out", str(tmp_path)]) == 2
    assert "convolab ablate: error: --seeds must be >= 1, got 0" in capsys.readouterr().err
    assert main(["ablate", "--threads", "0", "--out", str(tmp_path)]) == 2
    assert "convolab ablate: error: --threads must be >= 1, got 0" in capsys.readouterr().err


def test_overwrite_replaces_only_what_an_ablation_wrote(tmp_path):
    settings = dict(out=tmp_path, epochs=1, seeds=[0], config=TINY, plot=False)
    ablate("seed_cnn", "conv=standard,flattened", **settings)
    (tmp_path / "notes.txt").write_text("mine")
    table = ablate("seed_cnn", "conv=standard", **settings, overwrite=True)
    assert [r.variant for r in table.rows] == ["standard"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["conv=standard"]  # the flattened run is gone
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_bad_output_folders_and_data_settings_fail_before_any_training(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "fit", lambda *a, **k: pytest.fail("trained before the check"))
    with pytest.raises(ValueError, match=r"ablate: --out /proc/convolab-x: cannot create the folder /proc/convolab-x"):
        ablate(swaps="conv=standard", out="/proc/convolab-x", config=TINY)
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match=r"ablate: --out .*f/x: .*f is a file, not a folder"):
        ablate(swaps="conv=standard", out=tmp_path / "f" / "x", config=TINY)
    with pytest.raises(ValueError, match=r"train: augment_shift must be at most 7 for 28x28 images"):
        ablate(swaps="conv=standard", out=tmp_path / "a", config=TrainConfig(limit=64, batch_size=32, augment_shift=9))
    assert not (tmp_path / "a").exists()
    with pytest.raises(ValueError, match=r"ablate: seeds must be ints in \[0, 2\*\*63 - 1\], got 1180591620717411303424"):
        ablate(swaps="conv=standard", out=tmp_path / "a", seeds=[0, 2**70])


def test_table_files_respect_the_umask(tmp_path):
    import os

    table = AblationTable.load  # a saved table re-rendered: the same writer as a real run
    rows = (runner.AblationRow("conv", "standard", 10, 20, (3, 3), (0.5, 0.6), (0, 1), 1.0, 0.1),)
    old = os.umask(0o022)
    try:
        written = AblationTable("seed_cnn", rows, {"epochs": 1, "seeds": [0, 1]}).save(tmp_path)
    finally:
        os.umask(old)
    assert table(written["json"]).rows == rows
    assert {oct(p.stat().st_mode & 0o777) for p in written.values()} == {"0o644"}


def _boxes_overlap(a, b):
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_plot_labels_cover_no_marker_and_no_other_label(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def row(name, params, macs, accs):
        axis, variant = name.split("=")
        return runner.AblationRow(axis, variant, params, macs, (10, 10), accs, tuple(range(len(accs))), 1.0, 0.5)

    # close points (as real ablations give): labels placed naively at the same offset collide
    rows = (row("conv=standard", 1425214, 1_610_000, (0.972, 0.975, 0.970)),
            row("conv=depthwise_separable", 1314589, 560_000, (0.965, 0.968, 0.962)),
            row("conv=flattened", 1320000, 600_000, (0.966, 0.967, 0.963)),
            row("conv=grouped_shuffle", 1330000, 620_000, (0.967, 0.968, 0.964)),
            row("conv=dilated", 1425214, 1_610_000, (0.970, 0.973, 0.969)),
            row("head=flatten", 1425214, 1_610_000, (0.972, 0.975, 0.970)),
            row("head=avg", 196414, 1_500_000, (0.95, 0.955, 0.951)),
            row("head=max", 196414, 1_500_000, (0.952, 0.956, 0.953)))
    figures, real_close = [], plt.close
    monkeypatch.setattr(plt, "close", lambda fig: figures.append(fig))
    AblationTable("seed_cnn", rows, {"epochs": 3, "seeds": [0, 1, 2]}).plot(tmp_path / "p.png")
    fig = figures[0]
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.texts]
    assert {line for t in labels for line in t.get_text().split("\n")} == {r.name for r in rows}
    assert "conv=standard\nhead=flatten" in [t.get_text() for t in labels]  # one label for the same point
    boxes = [matplotlib.text.Text.get_window_extent(t, renderer) for t in labels]  # the text alone, not its leader line
    for i, a in enumerate(boxes):
        assert all(not _boxes_overlap(a, b) for b in boxes[i + 1 :]), labels[i].get_text()
    for collection in ax.collections:
        if not len(collection.get_offsets()) or not hasattr(collection, "get_sizes") or not len(collection.get_sizes()):
            continue
        cx, cy = ax.transData.transform(collection.get_offsets()[0])
        radius = collection.get_sizes()[0] ** 0.5 / 2 * fig.dpi / 72
        for box in boxes:
            dx, dy = max(box.x0 - cx, 0, cx - box.x1), max(box.y0 - cy, 0, cy - box.y1)
            assert dx * dx + dy * dy >= radius * radius
    real_close(fig)
