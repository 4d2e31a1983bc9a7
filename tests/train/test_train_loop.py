"""The training loop: learning, hard example mining, exact resume, metrics, clear errors."""

import csv
import json

import pytest
import torch

from convolab.data import DataSplit, ImageTensors
from convolab.data._dataset import make_split
from convolab.train import Callback, SyncBatchNorm, TrainConfig, build_model, convert_sync_batchnorm, fit, hard_example_loss
from convolab.train.checkpoint import load_checkpoint, save_checkpoint
from convolab.train.pipeline import InputPipeline, random_shift


def synthetic(n=64, classes=4, seed=0, size=28) -> DataSplit:
    """Easy images: a bright square whose position is the class, on noise."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 60, (n, 1, size, size), generator=g, dtype=torch.uint8)
    labels = torch.arange(n) % classes
    for i, c in enumerate(labels.tolist()):
        r = 2 + 5 * c * size // 28
        images[i, 0, r : r + 5, r : r + 5] = 255
    return make_split(ImageTensors(images, labels), [str(c) for c in range(classes)], "synthetic", 0.25, seed)


TINY = dict(epochs=2, batch_size=8, lr=0.02, seed=0)


def weights(path):
    state = torch.load(path, weights_only=True)
    return state.get("model", state)


def test_fit_learns_and_writes_everything(tmp_path):
    result = fit(TrainConfig(**TINY, augment_shift=1), tmp_path, data=synthetic())
    assert [m["epoch"] for m in result.history] == [1, 2]
    assert result.val_accuracy == 1.0  # the squares are trivial to tell apart
    rows = list(csv.DictReader(open(result.metrics_csv)))
    assert [r["epoch"] for r in rows] == ["1", "2"] and float(rows[-1]["val_accuracy"]) == 1.0
    summary = json.loads(result.metrics_json.read_text())
    assert summary["model"] == "mnist_cnn" and summary["final_val_accuracy"] == 1.0 and len(summary["epochs"]) == 2
    ckpt = load_checkpoint(result.checkpoint)
    assert (ckpt["epoch"], ckpt["step"]) == (2, 0) and ckpt["config"]["augment_shift"] == 1
    from convolab.models import create_model

    model = create_model("seed_cnn", num_classes=4, weights=str(result.weights))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), weights(result.checkpoint).values()))


class Crash(Exception):
    pass


class CrashAt(Callback):
    def __init__(self, epoch, step):
        self.at = (epoch, step)

    def on_step(self, epoch, step, loss, accuracy):
        if (epoch, step) == self.at:
            raise Crash


@pytest.mark.parametrize("hard_mining", [None, 0.5])
def test_resume_mid_epoch_is_bitwise_identical(tmp_path, hard_mining):
    config = dict(**TINY, checkpoint_every=2, augment_shift=2, hard_mining=hard_mining)
    data = synthetic()
    full = fit(TrainConfig(**config), tmp_path / "full", data=data)
    with pytest.raises(Crash):  # dies after step 5 of epoch 2; the last checkpoint is step 4
        fit(TrainConfig(**config), tmp_path / "cut", data=data, callbacks=[CrashAt(1, 5)])
    assert (load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"], load_checkpoint(tmp_path / "cut" / "last.pt")["step"]) == (1, 4)
    (tmp_path / "cut" / ".last.pt.x1y2.tmp").write_bytes(b"left by a kill during a write")
    resumed = fit(TrainConfig(**config), tmp_path / "cut", data=data, resume=True)
    assert resumed.resumed_from == (1, 4)
    assert not (tmp_path / "cut" / ".last.pt.x1y2.tmp").exists()
    a, b = weights(full.weights), weights(resumed.weights)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    untimed = lambda history: [{k: v for k, v in m.items() if k != "seconds"} for m in history]  # noqa: E731
    assert untimed(resumed.history) == untimed(full.history)  # the partial sums were restored too


def test_resume_refuses_other_architectures_and_settings(tmp_path):
    data = synthetic()
    fit(TrainConfig(**dict(TINY, epochs=1)), tmp_path, data=data)
    with pytest.raises(ValueError, match=r"belongs to a run with other settings: lr=0.02 \(now 0.1\)"):
        fit(TrainConfig(**dict(TINY, epochs=1, lr=0.1)), tmp_path, data=data, resume=True)
    state = load_checkpoint(tmp_path / "last.pt")
    state["config"]["model"] = "resnet18"
    save_checkpoint(tmp_path / "other.pt", state)
    with pytest.raises(ValueError, match=r"other.pt was written for model 'resnet18', not 'mnist_cnn'"):
        fit(TrainConfig(**dict(TINY, epochs=1)), tmp_path, data=data, resume=tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"does not fit model 'mnist_cnn': Error\(s\) in loading state_dict"):
        fit(TrainConfig(**dict(TINY, epochs=1)), tmp_path, data=synthetic(classes=3), resume=True)
    with pytest.raises(FileNotFoundError, match="--resume: no checkpoint at"):
        fit(TrainConfig(**TINY), tmp_path / "empty", data=data, resume=True)


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(epochs=-1), "train: epochs must be an int >= 1, got -1"),
        (dict(batch_size=0), "train: batch_size must be an int >= 1, got 0"),
        (dict(lr=-0.1), "train: lr must be a finite number > 0, got -0.1"),
        (dict(hard_mining=0.0), r"train: hard_mining must be a fraction in \(0, 1\], got 0.0"),
        (dict(model="seed_cn"), r"train: unknown model 'seed_cn'; did you mean 'mnist_cnn'\? \(`convolab models` lists all"),
        (dict(optimizer="adam"), "train: optimizer must be one of 'sgd', 'adamw', got 'adam'; did you mean 'adamw'"),
        (dict(augment_shift=-1), "train: augment_shift must be an int >= 0, got -1"),
        (dict(val_fraction=1.0), r"train: val_fraction must be a finite number in \[0, 1\), got 1.0"),
    ],
)
def test_bad_settings(tmp_path, change, match):
    with pytest.raises(ValueError, match=match):
        fit(TrainConfig(**{**TINY, **change}), tmp_path, data=synthetic())


def test_batch_larger_than_the_data(tmp_path):
    with pytest.raises(ValueError, match=r"batch_size \(64\) is larger than the training set \(48 images\)"):
        fit(TrainConfig(**dict(TINY, batch_size=64)), tmp_path, data=synthetic())


def _needs_32(num_classes: int = 10, in_channels: int = 1) -> torch.nn.Module:
    """Three unpadded 5x5 convs and a 4x4 pool: inputs below 28x28 are too small."""
    layers = [torch.nn.Conv2d(in_channels, 4, 5), torch.nn.Conv2d(4, 4, 5), torch.nn.Conv2d(4, 4, 5), torch.nn.MaxPool2d(4)]
    return torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, num_classes))


def test_model_that_cannot_take_the_images_fails_clearly(monkeypatch):
    from convolab.models._registry import _MODELS

    monkeypatch.setitem(_MODELS, "needs_32", _needs_32)
    with pytest.raises(ValueError, match=r"model 'mnist_cnn' cannot take 1x12x12 images \(RuntimeError: .*\); pass an image size"):
        build_model(TrainConfig(), synthetic(size=12))  # mnist_cnn only takes 28x28: no usual size works
    with pytest.raises(ValueError, match=r"cannot take 1x8x8 images .*; --image-size 32 works"):
        build_model(TrainConfig(model="needs_32"), synthetic(size=8))
    model, pipeline = build_model(TrainConfig(image_size=28), synthetic(size=12))  # resized: fine
    assert pipeline(torch.rand(2, 1, 12, 12)).shape == (2, 1, 28, 28)


def test_adamw_and_resized_training(tmp_path):
    result = fit(TrainConfig(**dict(TINY, optimizer="adamw", lr=1e-3, image_size=28, scheduler="none")), tmp_path, data=synthetic(size=20))
    assert result.val_accuracy > 0.5


def test_hard_example_loss_backpropagates_only_the_hardest():
    logits = torch.tensor([[5.0, 0.0], [0.0, 0.0], [0.0, 3.0], [1.0, 0.0]], requires_grad=True)
    target = torch.tensor([0, 0, 0, 0])
    per_sample = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    loss = hard_example_loss(logits, target, 0.5)  # the 2 hardest of 4: samples 2 and 1
    assert torch.allclose(loss, (per_sample[2] + per_sample[1]) / 2)
    loss.backward()
    assert logits.grad[[0, 3]].abs().sum() == 0 and logits.grad[[1, 2]].abs().sum() > 0
    assert torch.allclose(hard_example_loss(logits, target, None), per_sample.mean())
    assert torch.allclose(hard_example_loss(logits, target, 0.01), per_sample.max())  # at least one sample


def test_input_pipeline_channels_and_shift():
    x = torch.rand(3, 1, 6, 6)
    rgb = InputPipeline([0.5], [0.25], channels=3, size=None)(x)
    assert rgb.shape == (3, 3, 6, 6) and torch.equal(rgb[:, 0], rgb[:, 2]) and torch.allclose(rgb[:, :1], (x - 0.5) / 0.25)
    gray = InputPipeline([0.0], [1.0], channels=1, size=(4, 4))(torch.rand(2, 3, 6, 6))
    assert gray.shape == (2, 1, 4, 4)
    torch.manual_seed(0)
    shifted = random_shift(x, 2)
    # every image is its own translate of the original by at most 2 pixels, padded with zeros
    for img, orig in zip(shifted, x):
        assert any(
            torch.equal(img, torch.nn.functional.pad(orig, (2, 2, 2, 2))[:, dy : dy + 6, dx : dx + 6])
            for dy in range(5) for dx in range(5)
        )
    p = InputPipeline([0.0], [1.0], channels=1, size=None, shift=2).eval()
    assert torch.equal(p(x), x)  # no augmentation at evaluation


def test_sync_batchnorm_is_batchnorm_in_one_process():
    torch.manual_seed(0)
    bn = torch.nn.Sequential(torch.nn.BatchNorm2d(3))
    bn[0].weight.data.uniform_()
    sync = convert_sync_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm2d(3)))
    sync.load_state_dict(bn.state_dict())
    assert isinstance(sync[0], SyncBatchNorm)
    x = torch.randn(4, 3, 5, 5)
    assert torch.allclose(sync(x), bn(x)) and torch.allclose(sync[0].running_var, bn[0].running_var)
    with pytest.raises(ValueError, match="SyncBatchNorm: expected at least 2D input"):
        sync(torch.randn(3))


def _rgb_only(num_classes: int = 10) -> torch.nn.Module:
    """A registered-style builder without in_channels, expecting RGB."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, num_classes)
    )


def test_model_without_in_channels_gets_converted_images(tmp_path, monkeypatch):
    from convolab.models._registry import _MODELS

    monkeypatch.setitem(_MODELS, "rgb_only", _rgb_only)
    model, pipeline = build_model(TrainConfig(model="rgb_only"), synthetic())
    assert pipeline.channels == 3 and pipeline(torch.rand(2, 1, 28, 28)).shape == (2, 3, 28, 28)
    assert len(fit(TrainConfig(**dict(TINY, model="rgb_only", epochs=1)), tmp_path, data=synthetic()).history) == 1


def test_model_with_wrong_output_fails_clearly(monkeypatch):
    from convolab.models._registry import _MODELS

    monkeypatch.setitem(_MODELS, "features_only", lambda num_classes=10, in_channels=1: torch.nn.Conv2d(in_channels, 8, 3))
    with pytest.raises(ValueError, match=r"model 'features_only' must return logits \[N, 4\], got \[2, 8, 26, 26\]"):
        build_model(TrainConfig(model="features_only"), synthetic())
    monkeypatch.setitem(_MODELS, "no_classes", lambda: torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="model 'no_classes' does not take num_classes"):
        build_model(TrainConfig(model="no_classes"), synthetic())


def test_fit_on_an_image_folder_resized_to_the_model(tmp_path):
    from PIL import Image

    for c, name in enumerate(["left", "right"]):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(8):
            img = Image.new("RGB", (16, 16), (i, i, i))
            img.paste((255, 255, 255), (0 if c == 0 else 10, 4, 6 if c == 0 else 16, 12))
            img.save(tmp_path / "imgs" / name / f"{i}.png")
    config = TrainConfig(data=f"folder:{tmp_path / 'imgs'}", epochs=2, batch_size=4, lr=0.02, image_size=28, val_fraction=0.25)
    result = fit(config, tmp_path / "run")
    assert result.data_source.startswith("image folder") and len(result.history) == 2
    assert load_checkpoint(result.checkpoint)["data"]["classes"] == ["left", "right"]
