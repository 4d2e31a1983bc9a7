"""Weight-file compatibility with the common vision model zoo.

``tests/data/<model>_state_dict.json`` records the zoo's state_dict (key, shape)
list for ResNet-50, VGG-16, MobileNet v2 and ShuffleNet v2 ×1.0, written from
the published architecture definitions. Our models must produce exactly
that list (same keys, same shapes, same order), and a file saved in that
layout must load through ``create_model(name, weights=path)``.
"""

from __future__ import annotations

import json
import math
import pathlib

import pytest
import torch

from convolab.models import create_model

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"
RECORDED = sorted(p.name.removesuffix("_state_dict.json") for p in DATA.glob("*_state_dict.json"))
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _recorded(name: str) -> dict:
    return json.loads((DATA / f"{name}_state_dict.json").read_text())


def _zoo_file(name: str) -> dict[str, torch.Tensor]:
    """A state_dict as the zoo would save it: the recorded keys and shapes, distinct values."""
    torch.manual_seed(1)
    state = {}
    for key, shape in _recorded(name)["state_dict"]:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(123, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape) + 0.5
        else:
            state[key] = torch.randn(shape)
    return state


def test_recorded_models_include_resnet50_and_vgg16():
    assert {"resnet50", "vgg16"} <= set(RECORDED)


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_file_is_consistent(name):
    record = _recorded(name)
    params = sum(math.prod(shape) for key, shape in record["state_dict"] if not key.endswith(BUFFERS))
    assert record["model"] == name and params == record["num_params"]


@pytest.mark.parametrize("name", RECORDED)
def test_state_dict_keys_and_shapes_match_the_zoo(name):
    with torch.device("meta"):
        model = create_model(name)
    ours = [[key, list(t.shape)] for key, t in model.state_dict().items()]
    theirs = _recorded(name)["state_dict"]
    assert [k for k, _ in ours] == [k for k, _ in theirs]
    assert ours == theirs


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2", "shufflenet_v2_x1_0"])
def test_zoo_file_loads_round_trip(name, tmp_path):
    state = _zoo_file(name)
    path = tmp_path / f"{name}.pth"
    torch.save(state, path)
    model = create_model(name, weights=str(path))
    loaded = model.state_dict()
    assert list(loaded) == list(state)
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    # and it runs with them
    model.eval()
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1000)


@pytest.mark.parametrize("name", ["mobilenet_v1", "shufflenet_v1_g3", "hourglass2"])
def test_saved_model_round_trip(name, tmp_path):
    """Models outside the zoo: their own state_dict (in a checkpoint dict) saves and reloads unchanged."""
    model = create_model(name, num_classes=4)
    path = tmp_path / "model.pth"
    torch.save({"model": model.state_dict()}, path)
    again = create_model(name, num_classes=4, weights=str(path))
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)


def test_wrong_layout_fails_loudly(tmp_path):
    state = _zoo_file("mobilenet_v2")
    path = tmp_path / "m.pth"
    torch.save(state, path)
    with pytest.raises(RuntimeError, match=r"Error\(s\) in loading state_dict for ShuffleNetV2"):
        create_model("shufflenet_v2_x1_0", weights=str(path))
