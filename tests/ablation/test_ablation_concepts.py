"""The ablation's locally connected variant and its train_sizes axis (accuracy at sizes not seen in training)."""

from __future__ import annotations

import csv
import io

import pytest
import torch

import convolab.nn as cnn
from convolab import arithmetic as A
from convolab.ablation import AblationTable, ablate, build_variant, parse_swaps
from convolab.ablation.variants import train_sizes
from convolab.analysis import summary
from convolab.cli import main
from convolab.train import TrainConfig

TINY = TrainConfig(limit=64, batch_size=32)


def test_locally_connected_variant_keeps_the_windows_and_unshares_the_weights():
    net = build_variant("mnist_cnn", "conv", "locally_connected", num_classes=10)
    base = build_variant("mnist_cnn", "conv", "standard", num_classes=10)
    layer = net.layer3[0]
    assert type(net.layer1[0]) is cnn.Conv2d and isinstance(layer, cnn.LocallyConnected2d)
    assert (layer.input_size, layer.output_size) == ((13, 13), (11, 11))
    a, b = summary(net, (1, 1, 28, 28)), summary(base, (1, 1, 28, 28))
    assert a.row("layer4").fields == b.row("layer4").fields and a.macs == b.macs
    assert a.params - b.params == A.locally_connected_params(25, 50, 3, (11, 11)) - A.conv_params(25, 50, 3)


def test_train_sizes_variants_parse_and_refuse_bad_lists():
    assert train_sizes("28+20+36") == [28, 20, 36]
    assert parse_swaps("train_sizes=28,28+20") == [("train_sizes", "28"), ("train_sizes", "28+20")]
    with pytest.raises(ValueError, match=r"ablate: a train_sizes variant is image sizes in \[1, 4096\] joined by '\+' "
                                         r"\(e.g. 28 or 28\+20\+36\), got '28\+x'"):
        parse_swaps("train_sizes=28+x")
    with pytest.raises(ValueError, match=r"ablate: train_sizes variant '28\+28' lists a size twice"):
        parse_swaps("train_sizes=28+28")


def test_a_base_whose_head_takes_one_size_is_refused_before_training(tmp_path):
    with pytest.raises(ValueError, match=r"train: image sizes 28, 20 train at several sizes, .* model 'mnist_cnn' "
                                         r"cannot take 20x20 images: its head fc.0"):
        ablate("mnist_cnn", "train_sizes=28+20", out=tmp_path, epochs=1, seeds=[0], config=TINY, plot=False)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("sizes, match", [
    ([28, 0], r"ablate: eval_sizes must be image sizes in \[1, 4096\], got \[28, 0\]"),
    ([], r"ablate: eval_sizes must be image sizes in \[1, 4096\], got \[\]"),
])
def test_bad_eval_sizes(tmp_path, sizes, match):
    with pytest.raises(ValueError, match=match):
        ablate("mnist_spp", "train_sizes=28", out=tmp_path, epochs=1, seeds=[0], config=TINY, eval_sizes=sizes)
    with pytest.raises(ValueError, match=r"ablate: eval_sizes measures a train_sizes study; no train_sizes variant"):
        ablate("mnist_spp", "conv=standard", out=tmp_path, epochs=1, seeds=[0], config=TINY, eval_sizes=[20])


def test_train_sizes_study_measures_every_run_at_every_size(tmp_path):
    config = TrainConfig(limit=64, batch_size=32, size_schedule="batch")
    table = ablate("mnist_spp", "train_sizes=28,28+20", out=tmp_path, epochs=1, seeds=[0, 1], config=config,
                   plot=False, eval_sizes=[16, 20, 28])
    assert table.sizes == [16, 20, 28]
    assert table.columns[:8] == ("variant", "params", "MACs", "RF", "accuracy", "acc@16", "acc@20", "acc@28")
    for row in table.rows:
        assert set(row.size_accuracies) == {16, 20, 28} and all(len(v) == 2 for v in row.size_accuracies.values())
        assert row.size_accuracies[28] == row.accuracies  # the first size is where accuracy is measured
    assert table.rows[0].params == table.rows[1].params  # the same network, trained differently
    again = AblationTable.load(tmp_path / "table.json")
    assert again.rows == table.rows and again.cells() == table.cells()
    header = next(csv.reader(io.StringIO(table.to_csv())))
    assert header[-3:] == ["accuracy@16", "accuracy@20", "accuracy@28"]
    # resumed: the records answer, nothing is trained or measured again
    resumed = ablate("mnist_spp", "train_sizes=28,28+20", out=tmp_path, epochs=1, seeds=[0, 1], config=config,
                     plot=False, eval_sizes=[16, 20, 28], resume=True)
    assert [r.size_accuracies for r in resumed.rows] == [r.size_accuracies for r in table.rows]


def test_other_axes_have_no_size_columns(tmp_path):
    table = ablate("mnist_cnn", "conv=standard", out=tmp_path, epochs=1, seeds=[0], config=TINY, plot=False)
    assert table.sizes == [] and "acc@" not in " ".join(table.columns)
    assert "size_accuracies" not in table.to_dict()["rows"][0]


def test_command_line_train_sizes(tmp_path, capsys):
    assert main(["ablate", "--base", "mnist_spp", "--swap", "train_sizes=28,28+24", "--epochs", "1", "--seeds", "1",
                 "--limit", "64", "--batch-size", "32", "--no-plot", "--eval-sizes", "24,28,32",
                 "--size-schedule", "batch", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "acc@24" in out and "acc@32" in out and "acc@S: mean held-out accuracy with the images resized" in out
    with pytest.raises(SystemExit):
        main(["ablate", "--eval-sizes", "24,x", "--out", str(tmp_path / "b")])
    assert "expected image sizes separated by commas (e.g. 20,28,36), got '24,x'" in capsys.readouterr().err
