"""Training at several input sizes (SPP-net) and offline hard-example mining: what each changes,
bitwise-exact resume through size switches and round boundaries, and every bad setting's message."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from convolab.cli import main
from convolab.data import ImageTensors
from convolab.train import Callback, TrainConfig, build_model, fit
from convolab.train.checkpoint import load_checkpoint
from convolab.train.mining import confusion_matrix, mine, split_pool, with_examples
from tests.train.test_train_loop import Crash, CrashAt, synthetic, weights

SPP = dict(model="mnist_spp", epochs=2, batch_size=8, lr=0.02, seed=0)


def _sizes_seen(tmp_path, **config) -> tuple[list[int], object]:
    seen: list[int] = []
    original = nn.Module.__call__

    def spy(self, *args, **kwargs):  # the model's own call: the top-level module has no name
        if type(self).__name__ == "MnistSPP" and self.training:
            seen.append(args[0].shape[-1])
        return original(self, *args, **kwargs)

    nn.Module.__call__ = spy
    try:
        result = fit(TrainConfig(**config), tmp_path, data=synthetic())
    finally:
        nn.Module.__call__ = original
    return seen, result


def test_sizes_switch_every_epoch(tmp_path):
    seen, result = _sizes_seen(tmp_path, **SPP, image_size=[28, 20])
    assert seen == [28] * 6 + [20] * 6  # 48 training images, batch 8: 6 steps per epoch
    assert [m["train_size"] for m in result.history] == [28, 20]
    assert {"val_accuracy", "val_accuracy@20"} <= result.history[-1].keys()
    assert result.config.image_size == [28, 20] and load_checkpoint(result.checkpoint)["config"]["image_size"] == [28, 20]


def test_sizes_switch_every_batch(tmp_path):
    seen, result = _sizes_seen(tmp_path, **SPP, image_size=[28, 20, 24], size_schedule="batch")
    assert seen == [28, 20, 24] * 4  # the global step picks the size: epoch 2 goes on where epoch 1 stopped
    assert [m["train_size"] for m in result.history] == ["each batch"] * 2


@pytest.mark.parametrize("schedule", ["epoch", "batch"])
def test_resume_through_size_switches_is_bitwise_identical(tmp_path, schedule):
    config = dict(SPP, image_size=[24, 28, 20], size_schedule=schedule, checkpoint_every=2, epochs=3)
    data = synthetic()
    full = fit(TrainConfig(**config), tmp_path / "full", data=data)
    with pytest.raises(Crash):
        fit(TrainConfig(**config), tmp_path / "cut", data=data, callbacks=[CrashAt(1, 3)])
    resumed = fit(TrainConfig(**config), tmp_path / "cut", data=data, resume=True)
    assert resumed.resumed_from == (1, 2)
    a, b = weights(full.weights), weights(resumed.weights)
    assert all(torch.equal(a[k], b[k]) for k in a)
    untimed = lambda history: [{k: v for k, v in m.items() if k != "seconds"} for m in history]  # noqa: E731
    assert untimed(resumed.history) == untimed(full.history)


def test_a_head_of_one_size_is_named():
    with pytest.raises(ValueError, match=r"train: image sizes 28, 24 train at several sizes, which needs a head that "
                                         r"takes any size \(spatial pyramid or global pooling before the classifier\); "
                                         r"model 'mnist_cnn' cannot take 24x24 images: its head fc.0 \(Linear, 1250 "
                                         r"inputs\) fails \(RuntimeError: .*\). Use a model with such a head, e.g. "
                                         r"mnist_spp, or one image size"):
        build_model(TrainConfig(image_size=[28, 24]), synthetic())
    model, pipeline = build_model(TrainConfig(model="mnist_spp", image_size=[28, 12, 40]), synthetic())
    assert pipeline.size == (28, 28)  # the first size is the evaluation size


@pytest.mark.parametrize("change, match", [
    (dict(image_size=[28, 28]), r"train: image_size lists a size twice, got \[28, 28\]"),
    (dict(image_size=[28, 0]), r"train: image_size must be sizes in \[1, 4096\], got \[28, 0\]"),
    (dict(image_size=[]), r"train: image_size must be sizes in \[1, 4096\], got \[\]"),
    (dict(size_schedule="step"), r"train: size_schedule must be one of 'epoch', 'batch', got 'step'"),
    (dict(mining_rounds=-1), r"train: mining_rounds must be an int in \[0, 100\], got -1"),
    (dict(mining_per_round=0), r"train: mining_per_round must be an int >= 1, got 0"),
    (dict(mining_weight=101), r"train: mining_weight must be an int in \[1, 100\], got 101"),
    (dict(mining_pool=1.0), r"train: mining_pool must be a fraction in \(0, 1\), got 1.0"),
    (dict(mining_pool=float("nan")), r"train: mining_pool must be a fraction in \(0, 1\), got nan"),
    (dict(mining_select="hardest"), r"train: mining_select must be one of 'hard', 'random', got 'hardest'; "
                                    r"did you mean 'hard'\?"),
])
def test_bad_settings(tmp_path, change, match):
    with pytest.raises(ValueError, match=match):
        fit(TrainConfig(**{**SPP, **change}), tmp_path, data=synthetic())


def test_command_line_sizes_and_their_errors(tmp_path, capsys):
    assert main(["train", "mnist_spp", "--image-size", "28,20", "--epochs", "1", "--limit", "64", "--batch-size",
                 "16", "--out", str(tmp_path / "a"), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "epoch 1: train at 28 loss" in out and "(at 20: " in out
    with pytest.raises(SystemExit):
        main(["train", "mnist_spp", "--image-size", "28,x", "--out", str(tmp_path / "b")])
    assert "argument --image-size: expected a size or sizes separated by commas (e.g. 28 or 28,24,32), got '28,x'" \
        in capsys.readouterr().err
    assert main(["train", "mnist_spp", "--image-size", "28,28", "--out", str(tmp_path / "c")]) == 2
    assert "--image-size lists a size twice, got 28,28" in capsys.readouterr().err
    assert main(["train", "mnist_cnn", "--mining-weight", "0", "--out", str(tmp_path / "d")]) == 2
    assert "--mining-weight must be an int in [1, 100], got 0" in capsys.readouterr().err


# --------------------------------------------------------------------------- mining

MINE = dict(epochs=1, batch_size=8, lr=0.005, seed=0, mining_rounds=2, mining_per_round=3, mining_weight=2,
            mining_pool=0.25)


def _data():
    return synthetic(n=128)


def test_mining_rounds_add_the_models_mistakes_and_retrain(tmp_path):
    data = _data()
    result = fit(TrainConfig(**MINE), tmp_path, data=data)
    assert [(m["epoch"], m["round"]) for m in result.history] == [(1, 1), (2, 2), (3, 3)]
    rounds = result.rounds
    assert [r["round"] for r in rounds] == [1, 2, 3]
    base = 96 - 24  # 96 training images, a quarter of them the pool
    assert rounds[0]["train_images"] == base and "added" not in rounds[0]
    assert rounds[1]["train_images"] == base + 2 * rounds[1]["added"] and rounds[1]["pool"] == 24
    assert rounds[2]["pool"] == 24 - rounds[1]["added"]
    assert all(r["added"] <= 3 and r["added"] <= r["pool_errors"] for r in rounds[1:])
    assert all(sum(map(sum, r["confusion"])) == 32 for r in rounds)  # every held-out image, once
    assert rounds[-1]["val_accuracy"] == result.val_accuracy
    summary = json.loads(result.metrics_json.read_text())
    assert summary["rounds"] == rounds and summary["config"]["mining_rounds"] == 2


class CrashAtEpochEnd(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, metrics):
        if epoch == self.epoch:
            raise Crash


@pytest.mark.parametrize("select", ["hard", "random"])
@pytest.mark.parametrize("crash", ["mid-round", "before-mining"])
def test_resume_through_a_round_is_bitwise_identical(tmp_path, select, crash):
    config = dict(MINE, mining_select=select, checkpoint_every=3, augment_shift=2)
    data = _data()
    full = fit(TrainConfig(**config), tmp_path / "full", data=data)
    # mid-round: dies in round 2 after its first checkpoint; before-mining: dies when round 1 has
    # ended and is saved, so the resumed run mines the pool itself
    stop = CrashAt(1, 4) if crash == "mid-round" else CrashAtEpochEnd(0)
    with pytest.raises(Crash):
        fit(TrainConfig(**config), tmp_path / "cut", data=data, callbacks=[stop])
    resumed = fit(TrainConfig(**config), tmp_path / "cut", data=data, resume=True)
    a, b = weights(full.weights), weights(resumed.weights)
    assert all(torch.equal(a[k], b[k]) for k in a)
    untimed = lambda history: [{k: v for k, v in m.items() if k != "seconds"} for m in history]  # noqa: E731
    assert untimed(resumed.history) == untimed(full.history)
    assert resumed.rounds == full.rounds


def test_resume_refuses_other_epochs_per_round(tmp_path):
    data = _data()
    fit(TrainConfig(**MINE), tmp_path, data=data)
    with pytest.raises(ValueError, match=r"belongs to a hard-example mining run of 1 epochs per round, now 2: the "
                                         r"rounds would no longer line up; resume with the same --epochs"):
        fit(TrainConfig(**{**MINE, "epochs": 2}), tmp_path, data=data, resume=True)


def test_an_empty_pool_is_refused(tmp_path):
    tiny = synthetic(n=8)
    with pytest.raises(ValueError, match=r"train: the mining pool is empty: 0.01 of 4 training images holds none; "
                                         r"raise --mining-pool"):
        fit(TrainConfig(**{**MINE, "mining_pool": 0.01, "batch_size": 2}), tmp_path, data=tiny)


class Fixed(nn.Module):
    """Returns the logits stored for each image (its first pixel indexes them)."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits[(x[:, 0, 0, 0] * 255).round().long()]


def _pool(labels):
    images = torch.arange(len(labels), dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    return ImageTensors(images, torch.tensor(labels))


def test_mine_takes_the_most_confident_mistakes_first():
    logits = torch.tensor([[5.0, 0.0], [0.0, 1.0], [0.0, 3.0], [2.0, 0.0], [0.0, 9.0]])
    pool = _pool([0, 0, 0, 1, 1])  # wrong: image 1 (says 1, mildly), 2 (says 1, surely), 3 (says 0)
    found = mine(Fixed(logits), nn.Identity(), pool, [], 2, "hard", 0, 2)
    assert found.indices == (2, 3) and found.errors == 3 and found.pool == 5
    assert found.false_positives_by_class == (1, 2)
    again = mine(Fixed(logits), nn.Identity(), pool, [2, 3], 5, "hard", 0, 2)
    assert again.indices == (1,) and again.pool == 3  # taken ones are no longer candidates
    control = mine(Fixed(logits), nn.Identity(), pool, [2, 3], 2, "random", 7, 2)
    assert len(control.indices) == 2 and not {2, 3} & set(control.indices)
    assert control == mine(Fixed(logits), nn.Identity(), pool, [2, 3], 2, "random", 7, 2)  # seeded


def test_examples_are_oversampled_for_any_dataset():
    base, pool = _pool([0, 1]), _pool([1, 1, 0])
    merged = with_examples(base, pool, [[2], [0]], 3)
    assert merged.labels.tolist() == [0, 1, 0, 0, 0, 1, 1, 1]
    assert with_examples(base, pool, [], 3) is base
    subset = torch.utils.data.Subset(pool, [0, 1, 2])
    mixed = with_examples(base, subset, [[1]], 2)
    assert len(mixed) == 4 and [int(mixed[i][1]) for i in range(4)] == [0, 1, 1, 1]
    train, held = split_pool(_pool([0, 0, 0, 0, 1, 1, 1, 1]), 0.25, 0)
    assert len(train) == 6 and held.labels.tolist() == [0, 1]


def test_confusion_matrix_counts_true_against_predicted():
    logits = torch.tensor([[5.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    cm = confusion_matrix(Fixed(logits), nn.Identity(), _pool([0, 0, 1]), 2)
    assert cm.tolist() == [[1, 1], [0, 1]]


def test_command_line_mining(tmp_path, capsys):
    assert main(["train", "mnist_cnn", "--epochs", "1", "--limit", "256", "--mining-rounds", "1", "--mining-per-round",
                 "20", "--out", str(tmp_path), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "206 training / 256 held-out images (and 50 held back as the hard-example mining pool, 1 round)" in out
    assert "round 2/2: the model got " in out and "(each 2x): training again from the same initial weights on" in out
    assert "round 2, epoch 2: train loss" in out


def test_mnist_spp_takes_any_size_from_10():
    from convolab.models import create_model

    model = create_model("mnist_spp").eval()
    for size in ((10, 10), (28, 28), (17, 40), (64, 64)):
        assert model(torch.zeros(1, 1, *size)).shape == (1, 10)
    with pytest.raises(ValueError, match=r"MaxPool2d: output size would be 0 along dim 2 \(in=1, kernel=2"):
        model(torch.zeros(1, 1, 9, 9))


def test_help_names_the_new_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for option in ("--image-size SIZE[,SIZE...]", "--size-schedule", "--mining-rounds N", "--mining-pool FRACTION",
                   "--mining-per-round K", "--mining-weight W", "--mining-select"):
        assert option in text
    assert "offline hard-example mining" in text


def test_pictures_of_a_network_trained_at_several_sizes(tmp_path, capsys):
    fit(TrainConfig(**{**SPP, "epochs": 1}, image_size=[28, 20]), tmp_path / "run", data=synthetic())
    assert main(["explain", "feature-maps", "--weights", str(tmp_path / "run" / "last.pt"), "--layer", "layer1",
                 "-o", str(tmp_path / "m.png")]) == 0
    assert "feature-maps of mnist_spp layer layer1" in capsys.readouterr().out
